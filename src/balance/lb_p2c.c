/* Power of two choices: two distinct servers drawn at random, the one with
 * fewer requests in flight for its weight wins. Nearly as good as least
 * connections at spreading load, without its herd behaviour when many
 * balancers see the same "least loaded" server. */
#include "balance/balance.h"

static int p2c_pick(void *state, const struct jn_lb_ctx *ctx)
{
    const struct jn_lb_plain *s = state;
    int a, b;
    if (!jn_lb_two_choices(ctx, s->up->nservers, &a, &b))
        return a;
    const struct jn_cfg_server *sv = s->up->servers;
    return jn_lb_lighter(ctx->in_flight[b], jn_lb_weight(ctx, sv, (size_t)b), ctx->in_flight[a],
                         jn_lb_weight(ctx, sv, (size_t)a))
               ? b
               : a;
}

const struct jn_lb_ops jn_lb_p2c = {
    .name = "p2c",
    .create = jn_lb_plain_create,
    .pick = p2c_pick,
    .destroy = jn_lb_plain_destroy,
};
