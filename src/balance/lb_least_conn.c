/* Least connections: the server with the fewest requests in flight for its
 * weight. The scan starts one server further on each pick, so ties (an idle
 * pool, say) rotate instead of always landing on the first server. */
#include <stdlib.h>

#include "balance/balance.h"

struct lc_state {
    const struct jn_cfg_upstream *up; /* borrowed from the configuration snapshot */
    size_t next;                      /* where the next scan starts */
};

static void *lc_create(const struct jn_cfg_upstream *up)
{
    struct lc_state *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->up = up;
    return s;
}

static int lc_pick(void *state, const struct jn_lb_ctx *ctx)
{
    struct lc_state *s = state;
    size_t n = s->up->nservers;
    int best = -1;
    size_t i = s->next;
    for (size_t k = 0; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        if (!jn_lb_usable(ctx, i))
            continue;
        if (best < 0 || jn_lb_lighter(ctx->in_flight[i], jn_lb_weight(ctx, s->up->servers, i),
                                      ctx->in_flight[best],
                                      jn_lb_weight(ctx, s->up->servers, (size_t)best)))
            best = (int)i;
    }
    s->next = n ? (s->next + 1) % n : 0;
    return best;
}

static void lc_destroy(void *state)
{
    free(state);
}

const struct jn_lb_ops jn_lb_least_conn = {
    .name = "least_conn",
    .create = lc_create,
    .pick = lc_pick,
    .destroy = lc_destroy,
};
