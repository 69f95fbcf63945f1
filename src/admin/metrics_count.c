/* Recording metrics: the name -> slot registries that keep counters across
 * reloads, and the per-thread counters the request path bumps. A counter has
 * one writer (its thread), so a relaxed load and store suffice: no locked
 * instruction, no cache line shared with another worker. */
#include "admin/metrics_count.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/loop.h"
#include "http/h1/h1_server.h"
#include "http/stream.h"
#include "policy/chain.h"

const char *const jn_metrics_methods[JN_M_METHODS] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
};
/* Sub-millisecond buckets first: a gateway's own cost is tens of
 * microseconds, and a fast upstream answers within a millisecond. */
const uint64_t jn_metrics_bounds_us[JN_M_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};
const char *const jn_metrics_bounds_text[JN_M_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};
const uint16_t jn_metrics_codes[JN_M_CODES - 1] = {
    400, 401, 403, 404, 405, 413, 414, 429, 431, 500, 503,
};

/* ---- registries: name -> slot, for the life of the process ---- */

struct registry {
    pthread_mutex_t lock;
    char **names; /* owned, and each name; capacity max */
    size_t n, max;
};

static struct registry routes = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, JN_METRICS_MAX_ROUTES };
static struct registry upstreams = { PTHREAD_MUTEX_INITIALIZER, NULL, 0,
                                     JN_METRICS_MAX_UPSTREAMS };
static struct registry listeners = { PTHREAD_MUTEX_INITIALIZER, NULL, 0,
                                     JN_METRICS_MAX_LISTENERS };
static struct registry policies = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, JN_METRICS_MAX_POLICIES };

/* The slot of name, given one if new; max (the "_other" slot) when the
 * registry is full or memory is short. Call with r->lock held. */
static uint16_t slot_of(struct registry *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->names[i], name) == 0)
            return (uint16_t)i;
    if (r->names == NULL && (r->names = calloc(r->max, sizeof(*r->names))) == NULL)
        return (uint16_t)r->max;
    if (r->n == r->max || (r->names[r->n] = strdup(name)) == NULL)
        return (uint16_t)r->max;
    return (uint16_t)r->n++;
}

static uint16_t assign_one(struct registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    uint16_t slot = slot_of(r, name);
    pthread_mutex_unlock(&r->lock);
    return slot;
}

/* A route's policies: keyed by route and policy name together. */
static void assign_policies(struct jn_config *cfg, struct jn_cfg_route *r)
{
    r->metrics_policy_slots = jn_arena_alloc(&cfg->arena, (r->nchain + 1) * sizeof(uint16_t));
    if (r->metrics_policy_slots == NULL)
        return; /* rejections are then not counted for this route */
    pthread_mutex_lock(&policies.lock);
    for (size_t i = 0; i < r->nchain; i++) {
        char key[512];
        int n = snprintf(key, sizeof(key), "%s\n%s", r->name, r->chain[i]->ops->name);
        r->metrics_policy_slots[i] = n > 0 && (size_t)n < sizeof(key)
                                         ? slot_of(&policies, key)
                                         : (uint16_t)JN_M_POLICY_OTHER;
    }
    pthread_mutex_unlock(&policies.lock);
}

void jn_metrics_assign(struct jn_config *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        cfg->listeners[i].metrics_slot = assign_one(&listeners, cfg->listeners[i].name);
    for (size_t i = 0; i < cfg->nupstreams; i++)
        cfg->upstreams[i].metrics_slot = assign_one(&upstreams, cfg->upstreams[i].name);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        cfg->routes[i].metrics_slot = assign_one(&routes, cfg->routes[i].name);
        assign_policies(cfg, &cfg->routes[i]);
    }
}

/* ---- per-thread blocks ---- */

static struct jn_mthread *_Atomic threads; /* newest first */
static _Thread_local struct jn_mthread *mine;

struct jn_mthread *jn_metrics_threads(void)
{
    return atomic_load_explicit(&threads, memory_order_acquire);
}

/* This thread's block, made and published on its first count. NULL when
 * memory is short (nothing is counted then). */
static struct jn_mthread *block(void)
{
    if (mine != NULL)
        return mine;
    struct jn_mthread *t = aligned_alloc(64, (sizeof(*t) + 63) / 64 * 64);
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof(*t));
    struct jn_mthread *head = atomic_load_explicit(&threads, memory_order_relaxed);
    do
        t->next = head;
    while (!atomic_compare_exchange_weak_explicit(&threads, &head, t, memory_order_release,
                                                  memory_order_relaxed));
    mine = t;
    return t;
}

static inline void bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static struct jn_mroute *route_block(struct jn_mthread *t, uint16_t slot)
{
    struct jn_mroute *r = atomic_load_explicit(&t->routes[slot], memory_order_relaxed);
    if (r != NULL)
        return r;
    r = aligned_alloc(64, (sizeof(*r) + 63) / 64 * 64);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    atomic_store_explicit(&t->routes[slot], r, memory_order_release); /* zeroes before the pointer */
    return r;
}

static void observe(struct jn_mhist *h, uint64_t us)
{
    size_t i = 0;
    while (i < JN_M_BUCKETS && us > jn_metrics_bounds_us[i])
        i++;
    bump(&h->bucket[i], 1);
    bump(&h->sum_us, us);
}

/* ---- the request path ---- */

static bool enabled(const struct jn_stream *s)
{
    return s->gen->cfg->metrics.enabled;
}

void jn_metrics_stream_start(struct jn_stream *s)
{
    struct jn_mthread *t;
    if (!enabled(s) || !s->client->metered || (t = block()) == NULL)
        return;
    s->metered = true;
    s->metrics_listener = s->client->metrics_slot;
    s->t_start_us = jn_clock_us();
    bump(&t->listeners[s->metrics_listener].in_flight, 1);
}

void jn_metrics_stream_free(struct jn_stream *s)
{
    if (s->metered)
        bump(&mine->listeners[s->metrics_listener].in_flight, (uint64_t)-1);
}

static size_t method_index(const char *m)
{
    if (m == NULL)
        return JN_M_METHODS - 1;
    for (size_t i = 0; i < JN_M_METHODS - 1; i++)
        if (strcmp(m, jn_metrics_methods[i]) == 0)
            return i;
    return JN_M_METHODS - 1;
}

static uint16_t route_slot(const struct jn_stream *s)
{
    return s->route != NULL ? s->route->metrics_slot : (uint16_t)JN_M_ROUTE_NONE;
}

void jn_metrics_stream_done(struct jn_stream *s)
{
    struct jn_mroute *r;
    if (!s->metered || (r = route_block(mine, route_slot(s))) == NULL)
        return;
    size_t cls = s->status >= 100 && s->status < 600 ? s->status / 100u - 1 : 4;
    bump(&r->requests[method_index(s->method)][cls], 1);
    observe(&r->duration, jn_clock_us() - s->t_start_us);
}

void jn_metrics_upstream_start(struct jn_stream *s)
{
    if (s->metered)
        s->t_upstream_start_us = jn_clock_us();
}

void jn_metrics_upstream_head(struct jn_stream *s)
{
    struct jn_mroute *r;
    if (!s->metered || s->t_upstream_start_us == 0 ||
        (r = route_block(mine, route_slot(s))) == NULL)
        return;
    observe(&r->upstream, jn_clock_us() - s->t_upstream_start_us);
    s->t_upstream_start_us = 0; /* once per stream */
}

void jn_metrics_retry(struct jn_stream *s)
{
    if (s->metered)
        bump(&mine->upstreams[s->up->cfg->metrics_slot].retries, 1);
}

void jn_metrics_limit_rejected(struct jn_stream *s)
{
    if (s->metered)
        bump(&mine->upstreams[s->up->cfg->metrics_slot].limit_rejections, 1);
}

static size_t code_index(uint16_t status)
{
    for (size_t i = 0; i < JN_M_CODES - 1; i++)
        if (jn_metrics_codes[i] == status)
            return i;
    return JN_M_CODES - 1;
}

void jn_metrics_policy_rejected(struct jn_stream *s, uint16_t status)
{
    const struct jn_cfg_route *r = s->route;
    if (!s->metered || r == NULL || r->metrics_policy_slots == NULL || s->chain_at >= r->nchain)
        return;
    _Atomic uint64_t(*p)[JN_M_CODES] =
        atomic_load_explicit(&mine->policies, memory_order_relaxed);
    if (p == NULL) {
        p = calloc(JN_METRICS_MAX_POLICIES + 1, sizeof(*p));
        if (p == NULL)
            return;
        atomic_store_explicit(&mine->policies, p, memory_order_release);
    }
    bump(&p[r->metrics_policy_slots[s->chain_at]][code_index(status)], 1);
}

/* ---- connections ---- */

void jn_metrics_conn_open(struct jn_client *c)
{
    struct jn_mthread *t;
    const struct jn_config *cfg = c->worker->gen->cfg;
    if (!cfg->metrics.enabled || (t = block()) == NULL)
        return;
    c->metered = true;
    c->metrics_slot = cfg->listeners[c->listener->index].metrics_slot;
    bump(&t->listeners[c->metrics_slot].connections, 1);
    bump(&t->listeners[c->metrics_slot].accepted, 1);
}

void jn_metrics_conn_close(struct jn_client *c)
{
    if (c->metered)
        bump(&mine->listeners[c->metrics_slot].connections, (uint64_t)-1);
}

void jn_metrics_conn_bytes(struct jn_client *c, uint64_t in, uint64_t out)
{
    if (!c->metered)
        return;
    struct jn_mlistener *l = &mine->listeners[c->metrics_slot];
    if (in > 0)
        bump(&l->bytes_in, in);
    if (out > 0)
        bump(&l->bytes_out, out);
}

void jn_metrics_conn_rejected(struct jn_client *c, uint16_t status)
{
    struct jn_mroute *r;
    if (!c->metered || (r = route_block(mine, JN_M_ROUTE_NONE)) == NULL)
        return;
    size_t cls = status >= 100 && status < 600 ? status / 100u - 1 : 4;
    bump(&r->requests[JN_M_METHODS - 1][cls], 1);
    observe(&r->duration, 0); /* no stream, no start: every count has an observation */
}

void jn_metrics_tls_handshake(struct jn_client *c, bool ok)
{
    if (!c->metered)
        return;
    struct jn_mlistener *l = &mine->listeners[c->metrics_slot];
    bump(ok ? &l->tls_ok : &l->tls_failed, 1);
}
