/* Shared server state: verdicts, outlier ejection, slow start and the retry
 * budget, as atomics read by every worker. */
#include "health/state.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"

#define RETRY_WINDOW_MS 10000   /* the budget looks at the last 10-20 s */
#define RETRY_MIN_PER_WINDOW 10 /* a quiet pool may still retry this many times */
#define MAX_EJECTION_MS (300 * 1000)

static void slots_unref(struct jn_server_slots *sl)
{
    if (sl != NULL && atomic_fetch_sub(&sl->refs, 1) == 1)
        free(sl);
}

static void pools_free(void *arg)
{
    struct jn_config *cfg = arg;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        for (size_t k = 0; cfg->pools[i].servers != NULL && k < cfg->upstreams[i].nservers; k++)
            slots_unref(cfg->pools[i].servers[k].slots);
        free(cfg->pools[i].servers);
    }
    free(cfg->pools);
    cfg->pools = NULL;
}

static const struct jn_pool_state *find_pool(const struct jn_config *prev, const char *name)
{
    const struct jn_cfg_upstream *up =
        prev != NULL && prev->pools != NULL ? jn_cfg_find_upstream(prev, name) : NULL;
    return up != NULL ? &prev->pools[up->index] : NULL;
}

/* A server keeps what is known of it across snapshots: the checker's
 * verdict, an ejection under way, slow start, and its connection slots
 * (shared, not copied: connections of the old snapshot still count). A
 * server is the same by its socket address, as everywhere across
 * snapshots (jn_cfg_find_server). */
static void carry_over(struct jn_pool_state *p, const struct jn_pool_state *old)
{
    for (size_t i = 0; i < p->cfg->nservers; i++) {
        long k = jn_cfg_find_server(old->cfg, &p->cfg->servers[i].addr);
        if (k < 0)
            continue;
        const struct jn_server_state *o = &old->servers[k];
        struct jn_server_state *n = &p->servers[i];
        free(n->slots);
        n->slots = o->slots;
        atomic_fetch_add(&n->slots->refs, 1);
        atomic_store(&n->check_down, atomic_load(&o->check_down));
        atomic_store(&n->check_passes, atomic_load(&o->check_passes));
        atomic_store(&n->check_fails, atomic_load(&o->check_fails));
        atomic_store(&n->failures, atomic_load(&o->failures));
        atomic_store(&n->ejections, atomic_load(&o->ejections));
        atomic_store(&n->back_since, atomic_load(&o->back_since));
        atomic_store(&n->ejections_total, atomic_load(&o->ejections_total));
        /* An ejection that is over is noticed by jn_server_usable, as in
         * the old state. */
        uint64_t until = atomic_load(&o->ejected_until);
        if (until != 0) {
            atomic_store(&n->ejected_until, until);
            atomic_fetch_add(&p->nejected, 1);
        }
    }
    atomic_store(&p->window, atomic_load(&old->window));
    for (int w = 0; w < 2; w++) {
        atomic_store(&p->requests[w], atomic_load(&old->requests[w]));
        atomic_store(&p->retries[w], atomic_load(&old->retries[w]));
    }
}

int jn_pools_create(struct jn_config *cfg, const struct jn_config *prev)
{
    cfg->pools = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*cfg->pools));
    if (cfg->pools == NULL)
        return JN_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        struct jn_pool_state *p = &cfg->pools[i];
        p->cfg = &cfg->upstreams[i];
        p->servers = calloc(p->cfg->nservers ? p->cfg->nservers : 1, sizeof(*p->servers));
        if (p->servers == NULL) {
            rc = JN_ENOMEM;
            break;
        }
        for (size_t k = 0; k < p->cfg->nservers && rc == 0; k++) {
            p->servers[k].slots = calloc(1, sizeof(*p->servers[k].slots));
            if (p->servers[k].slots == NULL)
                rc = JN_ENOMEM;
            else
                atomic_init(&p->servers[k].slots->refs, 1);
        }
        if (rc != 0)
            break;
        const struct jn_pool_state *old = find_pool(prev, p->cfg->name);
        if (old != NULL)
            carry_over(p, old);
    }
    if (rc == 0 && jn_config_on_free(cfg, pools_free, cfg) == 0)
        return 0;
    pools_free(cfg);
    return JN_ENOMEM;
}

struct jn_pool_state *jn_pool_of(const struct jn_config *cfg, size_t index)
{
    return cfg->pools != NULL && index < cfg->nupstreams ? &cfg->pools[index] : NULL;
}

static void bump(struct jn_pool_state *p)
{
    atomic_fetch_add_explicit(&p->version, 1, memory_order_release);
}

bool jn_server_usable(struct jn_pool_state *p, size_t i, uint64_t now_ms, uint64_t *until)
{
    struct jn_server_state *s = &p->servers[i];
    uint64_t ej = atomic_load_explicit(&s->ejected_until, memory_order_relaxed);
    /* The end of an ejection is noticed even while the checks say down, so
     * that the server gives its place under the cap back. The first to
     * notice takes it off the count. */
    if (ej != 0 && now_ms >= ej && atomic_compare_exchange_strong(&s->ejected_until, &ej, 0)) {
        atomic_fetch_sub(&p->nejected, 1);
        atomic_store(&s->back_since, now_ms);
        atomic_store(&s->failures, 0);
        jn_log(JN_LOG_WARN, "upstream %s: server %s: ejection over, back in the pool", p->cfg->name,
               p->cfg->servers[i].address);
        bump(p);
        ej = 0;
    }
    if (ej != 0 && ej < *until)
        *until = ej;
    return ej == 0 && !atomic_load_explicit(&s->check_down, memory_order_relaxed);
}

/* Takes server i out for ejection_time x 2^(ejections in a row), when the
 * pool's cap allows. The run of ejections is forgiven once the server has
 * stayed in for as long as its last ejection. */
static void eject(struct jn_pool_state *p, size_t i, uint64_t now_ms)
{
    const struct jn_cfg_outlier *o = &p->cfg->outlier;
    struct jn_server_state *s = &p->servers[i];
    uint32_t cap = (uint32_t)(p->cfg->nservers * o->max_ejected_percent / 100);
    if (cap == 0 && o->max_ejected_percent > 0)
        cap = 1;
    uint32_t n = atomic_load(&p->nejected);
    do {
        if (n >= cap)
            return; /* failures keep counting; the next one tries again */
    } while (!atomic_compare_exchange_weak(&p->nejected, &n, n + 1));
    uint32_t times = atomic_load(&s->ejections);
    uint64_t back = atomic_load(&s->back_since);
    /* Doubling stops at 5 minutes, or at ejection_time when that is longer. */
    uint64_t cap_ms = JN_MAX(o->ejection_time, (uint64_t)MAX_EJECTION_MS);
    uint64_t last = JN_MIN(o->ejection_time << JN_MIN(times > 0 ? times - 1 : 0, 16u), cap_ms);
    /* Clocks of different threads may disagree by a few ms: "back" can be
     * later than "now". */
    if (times > 0 && back != 0 && now_ms > back && now_ms - back > last)
        times = 0;
    uint64_t span = JN_MIN(o->ejection_time << JN_MIN(times, 16u), cap_ms);
    uint64_t expected = 0;
    if (!atomic_compare_exchange_strong(&s->ejected_until, &expected, now_ms + span)) {
        atomic_fetch_sub(&p->nejected, 1); /* another worker ejected it first */
        return;
    }
    atomic_store(&s->ejections, times + 1);
    atomic_fetch_add(&s->ejections_total, 1);
    jn_log(JN_LOG_WARN, "upstream %s: server %s ejected for %llu ms after %u failures in a row",
           p->cfg->name, p->cfg->servers[i].address, (unsigned long long)span,
           atomic_load(&s->failures));
    bump(p);
}

void jn_pool_report(struct jn_pool_state *p, size_t server, enum jn_outcome o, uint64_t now_ms)
{
    struct jn_server_state *s = &p->servers[server];
    if (o == JN_OUT_LOCAL)
        return;
    if (o == JN_OUT_OK) {
        if (atomic_load_explicit(&s->failures, memory_order_relaxed) != 0)
            atomic_store_explicit(&s->failures, 0, memory_order_relaxed);
        return;
    }
    if (!p->cfg->outlier.enabled)
        return;
    uint32_t n = atomic_fetch_add(&s->failures, 1) + 1;
    if (n >= p->cfg->outlier.consecutive_failures && atomic_load(&s->ejected_until) == 0)
        eject(p, server, now_ms);
}

void jn_pool_set_checked(struct jn_pool_state *p, size_t server, bool up, uint64_t now_ms)
{
    struct jn_server_state *s = &p->servers[server];
    if (atomic_exchange(&s->check_down, !up) == !up)
        return;
    if (up)
        atomic_store(&s->back_since, now_ms);
    jn_log(JN_LOG_WARN, "upstream %s: server %s is %s (health check)", p->cfg->name,
           p->cfg->servers[server].address, up ? "up" : "down");
    bump(p);
}

/* Moves the budget's window forward: the current one becomes the previous. */
static size_t budget_window(struct jn_pool_state *p, uint64_t now_ms)
{
    uint64_t w = now_ms / RETRY_WINDOW_MS;
    uint64_t cur = atomic_load_explicit(&p->window, memory_order_relaxed);
    /* A thread whose clock still reads the previous window counts there
     * (never moves the window back, which would wipe both). */
    if (w < cur)
        return w & 1;
    if (w > cur && atomic_compare_exchange_strong(&p->window, &cur, w)) {
        size_t next = w & 1;
        /* A gap longer than a window leaves nothing recent behind. */
        if (w - cur > 1) {
            atomic_store(&p->requests[!next], 0);
            atomic_store(&p->retries[!next], 0);
        }
        atomic_store(&p->requests[next], 0);
        atomic_store(&p->retries[next], 0);
    }
    return w & 1;
}

void jn_pool_count_requests(struct jn_pool_state *p, uint32_t n, uint64_t now_ms)
{
    size_t w = budget_window(p, now_ms);
    atomic_fetch_add_explicit(&p->requests[w], n, memory_order_relaxed);
}

bool jn_pool_retry_allowed(struct jn_pool_state *p, uint64_t now_ms)
{
    size_t w = budget_window(p, now_ms);
    uint64_t req = atomic_load(&p->requests[0]) + atomic_load(&p->requests[1]);
    uint64_t ret = atomic_load(&p->retries[0]) + atomic_load(&p->retries[1]);
    uint64_t cap = req * p->cfg->retries.budget_percent / 100;
    if (ret >= cap && ret >= RETRY_MIN_PER_WINDOW)
        return false;
    atomic_fetch_add(&p->retries[w], 1);
    return true;
}

uint32_t jn_server_ramp(struct jn_pool_state *p, size_t i, uint64_t now_ms, uint64_t *until)
{
    uint64_t span = p->cfg->slow_start;
    uint64_t back = atomic_load_explicit(&p->servers[i].back_since, memory_order_relaxed);
    if (span == 0 || back == 0 || now_ms >= back + span)
        return 1000;
    /* Steps of a twentieth of the ramp keep refreshes rare. */
    uint64_t step = JN_MAX(span / 20, (uint64_t)1);
    uint64_t done = now_ms > back ? now_ms - back : 0; /* another thread's clock may lead */
    uint64_t next = back + (done / step + 1) * step;
    if (next < *until)
        *until = next;
    return (uint32_t)(100 + 900 * done / span);
}
