/* Power of two choices: two distinct servers drawn at random, the one with
 * fewer requests in flight for its weight wins. Nearly as good as least
 * connections at spreading load, without its herd behaviour when many
 * balancers see the same "least loaded" server. */
#include <stdlib.h>

#include "balance/balance.h"

struct p2c_state {
    const struct jn_cfg_upstream *up; /* borrowed from the configuration snapshot */
};

static void *p2c_create(const struct jn_cfg_upstream *up)
{
    struct p2c_state *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->up = up;
    return s;
}

static int p2c_pick(void *state, const struct jn_lb_ctx *ctx)
{
    struct p2c_state *s = state;
    int a, b;
    if (!jn_lb_two_choices(ctx, s->up->nservers, &a, &b))
        return a;
    const struct jn_cfg_server *sv = s->up->servers;
    return jn_lb_lighter(ctx->in_flight[b], sv[b].weight, ctx->in_flight[a], sv[a].weight) ? b : a;
}

static void p2c_destroy(void *state)
{
    free(state);
}

const struct jn_lb_ops jn_lb_p2c = {
    .name = "p2c",
    .create = p2c_create,
    .pick = p2c_pick,
    .destroy = p2c_destroy,
};
