/* Peak-EWMA, latency-aware balancing. Each server keeps a moving average of
 * its response-head latency that jumps up at once on a slower sample (so a
 * server that turns slow is avoided at once) and decays towards faster
 * samples with a time constant (so it is forgiven gradually). The cost of a
 * server is its average times (requests in flight + 1), divided by its
 * weight; the pick is power-of-two-choices on that cost. A server with no
 * sample yet starts at a modest default, so new servers get tried, and an
 * estimate without fresh samples decays towards zero, so a server that once
 * looked slow is tried again. */
#include <math.h>
#include <stdlib.h>

#include "balance/balance.h"

/* Used when the upstream leaves them unset (0): configurations built in
 * code rather than loaded. The loader's defaults are the same. */
#define EWMA_DECAY_US 10000000.0 /* time constant: 10 s */
#define EWMA_DEFAULT_US 1000.0   /* a server never measured counts as 1 ms */

struct ewma_server {
    double latency_us;
    uint64_t stamp_us; /* when latency_us was last updated; 0 = never */
};

struct ewma_state {
    const struct jn_cfg_upstream *up; /* borrowed from the configuration snapshot */
    double decay_us;                  /* ewma: decay */
    struct ewma_server *servers;      /* owned, one per server */
};

static void *ewma_create(const struct jn_cfg_upstream *up)
{
    struct ewma_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->up = up;
    s->servers = calloc(up->nservers ? up->nservers : 1, sizeof(*s->servers));
    if (s->servers == NULL) {
        free(s);
        return NULL;
    }
    s->decay_us = up->ewma_decay > 0 ? (double)up->ewma_decay * 1000.0 : EWMA_DECAY_US;
    double initial = up->ewma_initial_us > 0 ? (double)up->ewma_initial_us : EWMA_DEFAULT_US;
    for (size_t i = 0; i < up->nservers; i++)
        s->servers[i].latency_us = initial;
    return s;
}

static void ewma_observe(void *state, int server, uint64_t latency_us, uint64_t now_us)
{
    struct ewma_state *s = state;
    struct ewma_server *e = &s->servers[server];
    double sample = (double)latency_us;
    if (e->stamp_us == 0 || sample > e->latency_us) {
        e->latency_us = sample; /* the peak: slower news counts at once */
    } else {
        double elapsed = now_us > e->stamp_us ? (double)(now_us - e->stamp_us) : 0.0;
        double w = exp(-elapsed / s->decay_us);
        e->latency_us = e->latency_us * w + sample * (1.0 - w);
    }
    e->stamp_us = now_us;
}

/* The latency estimate as of now: without new samples it decays towards
 * zero, so a server that once looked slow is tried again after a while
 * instead of being shunned forever on stale news. */
static double latency_now(const struct ewma_state *s, int i, uint64_t now_us)
{
    const struct ewma_server *e = &s->servers[i];
    if (e->stamp_us == 0 || now_us <= e->stamp_us) /* never measured, or no clock */
        return e->latency_us;
    return e->latency_us * exp(-(double)(now_us - e->stamp_us) / s->decay_us);
}

static double cost(const struct ewma_state *s, const struct jn_lb_ctx *ctx, int i, uint64_t now_us)
{
    /* +1 us keeps a server answering in under a microsecond from costing 0
     * whatever its queue. */
    return (latency_now(s, i, now_us) + 1.0) * (double)(ctx->in_flight[i] + 1) /
           (double)jn_lb_weight(ctx, s->up->servers, (size_t)i);
}

static int ewma_pick(void *state, const struct jn_lb_ctx *ctx)
{
    struct ewma_state *s = state;
    int a, b;
    if (!jn_lb_two_choices(ctx, s->up->nservers, &a, &b))
        return a;
    return cost(s, ctx, b, ctx->now_us) < cost(s, ctx, a, ctx->now_us) ? b : a;
}

static void ewma_destroy(void *state)
{
    struct ewma_state *s = state;
    if (s == NULL)
        return;
    free(s->servers);
    free(s);
}

const struct jn_lb_ops jn_lb_ewma = {
    .name = "ewma",
    .create = ewma_create,
    .pick = ewma_pick,
    .destroy = ewma_destroy,
    .observe = ewma_observe,
};
