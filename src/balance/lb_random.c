/* Weighted random: each usable server is chosen with probability
 * weight / total weight of the usable servers. */
#include "balance/balance.h"

static int random_pick(void *state, const struct jn_lb_ctx *ctx)
{
    const struct jn_lb_plain *s = state;
    uint64_t total = 0;
    for (size_t i = 0; i < s->up->nservers; i++)
        if (jn_lb_usable(ctx, i))
            total += jn_lb_weight(ctx, s->up->servers, i);
    if (total == 0)
        return -1;
    uint64_t r = jn_lb_random(ctx->rng) % total;
    for (size_t i = 0; i < s->up->nservers; i++) {
        if (!jn_lb_usable(ctx, i))
            continue;
        if (r < jn_lb_weight(ctx, s->up->servers, i))
            return (int)i;
        r -= jn_lb_weight(ctx, s->up->servers, i);
    }
    return -1; /* not reached: r < total */
}

const struct jn_lb_ops jn_lb_random_weighted = {
    .name = "random",
    .create = jn_lb_plain_create,
    .pick = random_pick,
    .destroy = jn_lb_plain_destroy,
};
