/* Weighted random: each usable server is chosen with probability
 * weight / total weight of the usable servers. */
#include <stdlib.h>

#include "balance/balance.h"

struct random_state {
    const struct jn_cfg_upstream *up; /* borrowed from the configuration snapshot */
};

static void *random_create(const struct jn_cfg_upstream *up)
{
    struct random_state *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->up = up;
    return s;
}

static int random_pick(void *state, const struct jn_lb_ctx *ctx)
{
    struct random_state *s = state;
    uint64_t total = 0;
    for (size_t i = 0; i < s->up->nservers; i++)
        if (jn_lb_usable(ctx, i))
            total += s->up->servers[i].weight;
    if (total == 0)
        return -1;
    uint64_t r = jn_lb_random(ctx->rng) % total;
    for (size_t i = 0; i < s->up->nservers; i++) {
        if (!jn_lb_usable(ctx, i))
            continue;
        if (r < s->up->servers[i].weight)
            return (int)i;
        r -= s->up->servers[i].weight;
    }
    return -1; /* not reached: r < total */
}

static void random_destroy(void *state)
{
    free(state);
}

const struct jn_lb_ops jn_lb_random_weighted = {
    .name = "random",
    .create = random_create,
    .pick = random_pick,
    .destroy = random_destroy,
};
