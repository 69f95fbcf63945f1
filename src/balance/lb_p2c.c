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

/* The k-th usable server (0-based), or -1. */
static int nth_usable(const struct jn_lb_ctx *ctx, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++)
        if (jn_lb_usable(ctx, i) && k-- == 0)
            return (int)i;
    return -1;
}

static int p2c_pick(void *state, const struct jn_lb_ctx *ctx)
{
    struct p2c_state *s = state;
    size_t n = s->up->nservers, usable = 0;
    for (size_t i = 0; i < n; i++)
        usable += jn_lb_usable(ctx, i);
    if (usable <= 1)
        return nth_usable(ctx, n, 0);
    size_t ka = jn_lb_random(ctx->rng) % usable;
    size_t kb = jn_lb_random(ctx->rng) % (usable - 1);
    if (kb >= ka)
        kb++; /* two distinct draws */
    int a = nth_usable(ctx, n, ka), b = nth_usable(ctx, n, kb);
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
