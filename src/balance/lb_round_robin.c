/* Smooth weighted round robin: every pick adds each server's weight to its
 * running score, takes the highest score and subtracts the total weight from
 * it. Over sum(weights) picks each server is chosen weight times, and heavy
 * servers are spread out instead of picked in bursts (5,1,1 gives
 * a a b a c a a, not a a a a a b c). */
#include <stdlib.h>

#include "balance/balance.h"

struct rr_state {
    size_t n;
    int64_t *score;        /* owned */
    struct jn_cfg_server *servers; /* borrowed from the configuration snapshot */
};

static void *rr_create(const struct jn_cfg_upstream *up)
{
    struct rr_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->score = calloc(up->nservers ? up->nservers : 1, sizeof(*s->score));
    if (s->score == NULL) {
        free(s);
        return NULL;
    }
    s->n = up->nservers;
    s->servers = up->servers;
    return s;
}

static int rr_pick(void *state, const struct jn_lb_ctx *ctx)
{
    struct rr_state *s = state;
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < s->n; i++) {
        if (!jn_lb_usable(ctx, i))
            continue;
        int64_t w = jn_lb_weight(ctx, s->servers, i);
        s->score[i] += w;
        total += w;
        if (best < 0 || s->score[i] > s->score[best])
            best = (int)i;
    }
    if (best >= 0)
        s->score[best] -= total;
    return best;
}

static void rr_destroy(void *state)
{
    struct rr_state *s = state;
    if (s == NULL)
        return;
    free(s->score);
    free(s);
}

const struct jn_lb_ops jn_lb_round_robin = {
    .name = "round_robin",
    .create = rr_create,
    .pick = rr_pick,
    .destroy = rr_destroy,
};
