/* Reading metrics: the per-thread counters summed, shown for the names of
 * the current snapshot in the Prometheus text format and as /stats JSON.
 * Every metric is listed in docs/operations.md. */
#include "admin/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/metrics_count.h"
#include "config/config.h"
#include "core/loop.h"
#include "health/state.h"
#include "policy/chain.h"
#include "server/runtime.h"

#ifndef JN_VERSION
#define JN_VERSION "0.0.0"
#endif

/* ---- sums over threads ---- */

struct hist_sum {
    uint64_t bucket[JN_M_BUCKETS + 1]; /* not cumulative */
    uint64_t sum_us;
};

struct route_sum {
    uint64_t requests[JN_M_METHODS][JN_M_CLASSES];
    struct hist_sum duration, upstream;
};

static void add_hist(struct hist_sum *to, struct jn_mhist *h)
{
    for (size_t i = 0; i <= JN_M_BUCKETS; i++)
        to->bucket[i] += jn_m_load(&h->bucket[i]);
    to->sum_us += jn_m_load(&h->sum_us);
}

/* Adds slot's counters of every thread to out; false when no thread has
 * counted anything there yet. */
static bool sum_route(uint16_t slot, struct route_sum *out)
{
    bool seen = false;
    for (struct jn_mthread *t = jn_metrics_threads(); t != NULL; t = t->next) {
        struct jn_mroute *r = atomic_load_explicit(&t->routes[slot], memory_order_acquire);
        if (r == NULL)
            continue;
        seen = true;
        for (size_t m = 0; m < JN_M_METHODS; m++)
            for (size_t c = 0; c < JN_M_CLASSES; c++)
                out->requests[m][c] += jn_m_load(&r->requests[m][c]);
        add_hist(&out->duration, &r->duration);
        add_hist(&out->upstream, &r->upstream);
    }
    return seen;
}

static uint64_t hist_count(const struct hist_sum *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= JN_M_BUCKETS; i++)
        n += h->bucket[i];
    return n;
}

/* A listener's counter; gauges wrap per thread and come right in the sum. */
static uint64_t sum_listener(uint16_t slot, size_t field)
{
    uint64_t n = 0;
    for (struct jn_mthread *t = jn_metrics_threads(); t != NULL; t = t->next)
        n += jn_m_load((_Atomic uint64_t *)((char *)&t->listeners[slot] + field));
    return n;
}

static uint64_t sum_upstream(uint16_t slot, size_t field)
{
    uint64_t n = 0;
    for (struct jn_mthread *t = jn_metrics_threads(); t != NULL; t = t->next)
        n += jn_m_load((_Atomic uint64_t *)((char *)&t->upstreams[slot] + field));
    return n;
}

static void sum_policy(uint16_t slot, uint64_t out[JN_M_CODES])
{
    memset(out, 0, JN_M_CODES * sizeof(uint64_t));
    for (struct jn_mthread *t = jn_metrics_threads(); t != NULL; t = t->next) {
        _Atomic uint64_t(*p)[JN_M_CODES] =
            atomic_load_explicit(&t->policies, memory_order_acquire);
        for (size_t c = 0; p != NULL && c < JN_M_CODES; c++)
            out[c] += jn_m_load(&p[slot][c]);
    }
}

/* ---- text output ---- */

struct out {
    char *p; /* owned until handed to the caller */
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !o->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *p = realloc(o->p, cap);
        if (p == NULL) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

/* A label value as the format wants it: backslash, quote and newline
 * escaped. Names are already restricted by the loader; this is the seatbelt. */
static const char *esc(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s != '\0' && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n')
            buf[n++] = '\\';
        buf[n++] = *s == '\n' ? 'n' : *s;
    }
    buf[n] = '\0';
    return buf;
}

static void header(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The routes to show: the snapshot's, each slot once ("_other" may hold
 * several), and the requests no route matched. */
struct shown {
    uint16_t slot;
    const char *name;
    const struct jn_cfg_route *route; /* borrowed from the snapshot (_other: its first); NULL: _none */
};

static size_t shown_routes(const struct jn_config *cfg, struct shown *v)
{
    size_t n = 0;
    bool other = false;
    for (size_t i = 0; cfg != NULL && i < cfg->nroutes; i++) {
        const struct jn_cfg_route *r = &cfg->routes[i];
        if (r->metrics_slot == JN_M_ROUTE_OTHER) {
            if (!other)
                v[n++] = (struct shown){ JN_M_ROUTE_OTHER, "_other", r };
            other = true;
            continue;
        }
        v[n++] = (struct shown){ r->metrics_slot, r->name, r };
    }
    v[n++] = (struct shown){ JN_M_ROUTE_NONE, "_none", NULL };
    return n;
}

static void render_requests(struct out *o, const struct shown *v, size_t n,
                            const struct route_sum *sums)
{
    static const char *const classes[JN_M_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
    header(o, "junction_http_requests_total", "counter",
           "HTTP requests answered, by route, method and status class.");
    char name[256];
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < JN_M_METHODS; m++)
            for (size_t c = 0; c < JN_M_CLASSES; c++)
                if (sums[i].requests[m][c] > 0)
                    put(o, "junction_http_requests_total{route=\"%s\",method=\"%s\",code_class=\"%s\"} %llu\n",
                        esc(name, sizeof(name), v[i].name), jn_metrics_methods[m], classes[c],
                        (unsigned long long)sums[i].requests[m][c]);
}

static void render_hist(struct out *o, const char *metric, const char *label,
                        const struct hist_sum *h)
{
    uint64_t cum = 0;
    for (size_t b = 0; b < JN_M_BUCKETS; b++) {
        cum += h->bucket[b];
        put(o, "%s_bucket{%s,le=\"%s\"} %llu\n", metric, label, jn_metrics_bounds_text[b],
            (unsigned long long)cum);
    }
    cum += h->bucket[JN_M_BUCKETS];
    put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", metric, label, (unsigned long long)cum);
    put(o, "%s_sum{%s} %llu.%06llu\n", metric, label, (unsigned long long)(h->sum_us / 1000000),
        (unsigned long long)(h->sum_us % 1000000));
    put(o, "%s_count{%s} %llu\n", metric, label, (unsigned long long)cum);
}

static void render_durations(struct out *o, const struct shown *v, size_t n,
                             const struct route_sum *sums, bool upstream)
{
    const char *metric = upstream ? "junction_upstream_response_duration_seconds"
                                  : "junction_http_request_duration_seconds";
    header(o, metric, "histogram",
           upstream ? "Time from picking an upstream server to its response head, by route."
                    : "Time from a request's start to the end of its response, by route.");
    char name[256], label[300];
    for (size_t i = 0; i < n; i++) {
        const struct hist_sum *h = upstream ? &sums[i].upstream : &sums[i].duration;
        bool configured = v[i].route != NULL && (!upstream || v[i].route->upstream != NULL);
        if (!configured && hist_count(h) == 0)
            continue;
        snprintf(label, sizeof(label), "route=\"%s\"", esc(name, sizeof(name), v[i].name));
        render_hist(o, metric, label, h);
    }
}

/* One metric of every HTTP listener of the snapshot; tls_only for TLS ones. */
static void render_listener_metric(struct out *o, const struct jn_config *cfg, const char *metric,
                                   const char *type, const char *help, size_t field, bool tls_only)
{
    header(o, metric, type, help);
    char name[256];
    bool other = false;
    for (size_t i = 0; cfg != NULL && i < cfg->nlisteners; i++) {
        const struct jn_cfg_listener *l = &cfg->listeners[i];
        if (l->protocol != JN_PROTO_HTTP || (tls_only && l->tls == NULL))
            continue;
        if (l->metrics_slot == JN_M_LISTENER_OTHER && other)
            continue;
        other |= l->metrics_slot == JN_M_LISTENER_OTHER;
        const char *shown = l->metrics_slot == JN_M_LISTENER_OTHER ? "_other" : l->name;
        put(o, "%s{listener=\"%s\"} %lld\n", metric, esc(name, sizeof(name), shown),
            (long long)sum_listener(l->metrics_slot, field));
    }
}

static void render_listeners(struct out *o, const struct jn_config *cfg)
{
#define F(x) offsetof(struct jn_mlistener, x)
    render_listener_metric(o, cfg, "junction_http_requests_in_flight", "gauge",
                           "Requests being answered, by listener.", F(in_flight), false);
    render_listener_metric(o, cfg, "junction_connections_open", "gauge",
                           "Client connections open, by listener.", F(connections), false);
    render_listener_metric(o, cfg, "junction_connections_accepted_total", "counter",
                           "Client connections accepted, by listener.", F(accepted), false);
    render_listener_metric(o, cfg, "junction_received_bytes_total", "counter",
                           "Bytes received from clients (after TLS), by listener.", F(bytes_in),
                           false);
    render_listener_metric(o, cfg, "junction_sent_bytes_total", "counter",
                           "Bytes sent to clients (before TLS), by listener.", F(bytes_out), false);
    render_listener_metric(o, cfg, "junction_tls_handshakes_total", "counter",
                           "TLS handshakes completed, by listener.", F(tls_ok), true);
    render_listener_metric(o, cfg, "junction_tls_handshake_errors_total", "counter",
                           "TLS handshakes that failed or timed out, by listener.", F(tls_failed),
                           true);
#undef F
}

/* Per server, from the state every thread shares (health/state.h). */
static void render_servers(struct out *o, const struct jn_config *cfg, int which)
{
    static const char *const names[] = { "junction_upstream_server_up",
                                         "junction_upstream_ejections_total",
                                         "junction_upstream_server_connections" };
    static const char *const types[] = { "gauge", "counter", "gauge" };
    static const char *const helps[] = {
        "1 when the server takes new requests (health checks pass, not ejected), else 0.",
        "Times outlier detection ejected the server.",
        "Connections open to the server from every worker, idle ones included.",
    };
    header(o, names[which], types[which], helps[which]);
    char un[256], sn[256];
    uint64_t now = jn_clock_ms();
    for (size_t i = 0; cfg != NULL && i < cfg->nupstreams; i++) {
        const struct jn_cfg_upstream *u = &cfg->upstreams[i];
        struct jn_pool_state *p = jn_pool_of(cfg, i);
        for (size_t k = 0; p != NULL && k < u->nservers; k++) {
            uint64_t until = UINT64_MAX, v;
            if (which == 0)
                v = jn_server_usable(p, k, now, &until) ? 1 : 0;
            else if (which == 1)
                v = atomic_load_explicit(&p->servers[k].ejections_total, memory_order_relaxed);
            else
                v = atomic_load_explicit(&p->servers[k].slots->connections, memory_order_relaxed);
            put(o, "%s{upstream=\"%s\",server=\"%s\"} %llu\n", names[which],
                esc(un, sizeof(un), u->name), esc(sn, sizeof(sn), u->servers[k].address),
                (unsigned long long)v);
        }
    }
}

static void render_upstream_metric(struct out *o, const struct jn_config *cfg, const char *metric,
                                   const char *help, size_t field)
{
    header(o, metric, "counter", help);
    char name[256];
    bool other = false;
    for (size_t i = 0; cfg != NULL && i < cfg->nupstreams; i++) {
        const struct jn_cfg_upstream *u = &cfg->upstreams[i];
        if (u->metrics_slot == JN_M_UPSTREAM_OTHER && other)
            continue;
        other |= u->metrics_slot == JN_M_UPSTREAM_OTHER;
        const char *shown = u->metrics_slot == JN_M_UPSTREAM_OTHER ? "_other" : u->name;
        put(o, "%s{upstream=\"%s\"} %llu\n", metric, esc(name, sizeof(name), shown),
            (unsigned long long)sum_upstream(u->metrics_slot, field));
    }
}

static void render_upstreams(struct out *o, const struct jn_config *cfg)
{
    for (int i = 0; i < 3; i++)
        render_servers(o, cfg, i);
    render_upstream_metric(o, cfg, "junction_upstream_retries_total",
                           "Requests retried on another server of the upstream.",
                           offsetof(struct jn_mupstream, retries));
    render_upstream_metric(o, cfg, "junction_upstream_limit_rejections_total",
                           "Requests refused with 503 by the upstream's limits (circuit breaker).",
                           offsetof(struct jn_mupstream, limit_rejections));
}

static void render_policies(struct out *o, const struct jn_config *cfg)
{
    header(o, "junction_policy_rejections_total", "counter",
           "Requests a policy answered itself, by route, policy and status.");
    char rn[256];
    for (size_t i = 0; cfg != NULL && i < cfg->nroutes; i++) {
        const struct jn_cfg_route *r = &cfg->routes[i];
        for (size_t k = 0; r->metrics_policy_slots != NULL && k < r->nchain; k++) {
            bool dup = false; /* a policy listed twice (two rate limits) shares a slot */
            for (size_t j = 0; j < k; j++)
                dup |= r->metrics_policy_slots[j] == r->metrics_policy_slots[k];
            if (dup || r->metrics_policy_slots[k] == JN_M_POLICY_OTHER)
                continue;
            uint64_t counts[JN_M_CODES];
            sum_policy(r->metrics_policy_slots[k], counts);
            for (size_t c = 0; c < JN_M_CODES; c++) {
                if (counts[c] == 0)
                    continue;
                char code[8];
                snprintf(code, sizeof(code), "%u", c < JN_M_CODES - 1 ? jn_metrics_codes[c] : 0u);
                put(o, "junction_policy_rejections_total{route=\"%s\",policy=\"%s\",code=\"%s\"} %llu\n",
                    esc(rn, sizeof(rn), r->name), r->chain[k]->ops->name,
                    c < JN_M_CODES - 1 ? code : "other", (unsigned long long)counts[c]);
            }
        }
    }
}

static void render_process(struct out *o, const struct jn_runtime_info *info)
{
    header(o, "junction_build_info", "gauge", "Always 1; the version is in its label.");
    put(o, "junction_build_info{version=\"%s\"} 1\n", JN_VERSION);
    header(o, "junction_process_start_time_seconds", "gauge",
           "When the process started, in seconds since the Unix epoch.");
    put(o, "junction_process_start_time_seconds %llu.%03llu\n",
        (unsigned long long)(info->started_unix_ms / 1000),
        (unsigned long long)(info->started_unix_ms % 1000));
    header(o, "junction_config_generation", "gauge",
           "Generation of the running configuration (1 at start, +1 per reload or change).");
    put(o, "junction_config_generation %llu\n", (unsigned long long)info->generation);
    header(o, "junction_config_reloads_total", "counter",
           "Reloads of the configuration file, by result.");
    put(o, "junction_config_reloads_total{result=\"ok\"} %llu\n",
        (unsigned long long)info->reloads_ok);
    put(o, "junction_config_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)info->reloads_failed);
    header(o, "junction_config_last_reload_successful", "gauge",
           "1 when the last reload was applied (or none was tried), 0 when it was refused.");
    put(o, "junction_config_last_reload_successful %d\n",
        info->last_reload_unix_ms == 0 || info->last_reload_ok ? 1 : 0);
    header(o, "junction_runtime_changes_total", "counter",
           "Server changes applied at run time (admin API).");
    put(o, "junction_runtime_changes_total %llu\n", (unsigned long long)info->changes);
}

char *jn_metrics_render_config(const struct jn_config *cfg, size_t *len)
{
    struct out o = { 0 };
    struct shown *v = calloc((cfg != NULL ? cfg->nroutes : 0) + 1, sizeof(*v));
    size_t n = v != NULL ? shown_routes(cfg, v) : 0;
    struct route_sum *sums = calloc(n + 1, sizeof(*sums));
    if (v == NULL || sums == NULL) {
        free(v);
        free(sums);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        sum_route(v[i].slot, &sums[i]);
    struct jn_runtime_info info;
    jn_runtime_get_info(&info);
    render_process(&o, &info);
    render_requests(&o, v, n, sums);
    render_durations(&o, v, n, sums, false);
    render_durations(&o, v, n, sums, true);
    render_listeners(&o, cfg);
    render_upstreams(&o, cfg);
    render_policies(&o, cfg);
    free(v);
    free(sums);
    if (o.oom || o.p == NULL) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}

char *jn_metrics_render(size_t *len)
{
    struct jn_config *cfg = jn_runtime_config();
    char *text = jn_metrics_render_config(cfg, len);
    if (cfg != NULL)
        jn_config_unref(cfg);
    return text;
}

/* ---- /stats ---- */

static json_t *buckets_json(const struct hist_sum *h)
{
    json_t *le = json_array(), *counts = json_array();
    uint64_t cum = 0;
    for (size_t b = 0; b <= JN_M_BUCKETS; b++) {
        if (b < JN_M_BUCKETS)
            json_array_append_new(le, json_real((double)jn_metrics_bounds_us[b] / 1e6));
        cum += h->bucket[b];
        json_array_append_new(counts, json_integer((json_int_t)cum));
    }
    return json_pack("{s:o,s:o}", "le", le, "counts", counts);
}

static uint64_t route_requests(const struct route_sum *r, size_t cls_from, size_t cls_to)
{
    uint64_t n = 0;
    for (size_t m = 0; m < JN_M_METHODS; m++)
        for (size_t c = cls_from; c <= cls_to; c++)
            n += r->requests[m][c];
    return n;
}

static json_t *routes_json(const struct jn_config *cfg)
{
    json_t *routes = json_array();
    for (size_t i = 0; cfg != NULL && i < cfg->nroutes; i++) {
        struct route_sum r = { 0 };
        sum_route(cfg->routes[i].metrics_slot, &r);
        json_array_append_new(
            routes, json_pack("{s:s,s:I,s:I,s:o}", "name", cfg->routes[i].name, "requests_total",
                              (json_int_t)route_requests(&r, 0, JN_M_CLASSES - 1), "errors_total",
                              (json_int_t)route_requests(&r, 4, 4), "latency_buckets",
                              buckets_json(&r.duration)));
    }
    return routes;
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

json_t *jn_metrics_stats_json_config(const struct jn_config *cfg)
{
    struct route_sum all = { 0 };
    for (uint16_t slot = 0; slot < JN_M_ROUTE_SLOTS; slot++)
        sum_route(slot, &all);
    uint64_t l[4] = { 0 };
    for (uint16_t slot = 0; slot <= JN_METRICS_MAX_LISTENERS; slot++) {
        l[0] += sum_listener(slot, offsetof(struct jn_mlistener, in_flight));
        l[1] += sum_listener(slot, offsetof(struct jn_mlistener, connections));
        l[2] += sum_listener(slot, offsetof(struct jn_mlistener, bytes_in));
        l[3] += sum_listener(slot, offsetof(struct jn_mlistener, bytes_out));
    }
    struct jn_runtime_info info;
    jn_runtime_get_info(&info);
    double now = unix_now();
    double up = info.started_unix_ms ? now - (double)info.started_unix_ms / 1000.0 : 0.0;
    json_t *responses = json_object();
    static const char *const classes[JN_M_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
    for (size_t c = 0; c < JN_M_CLASSES; c++)
        json_object_set_new(responses, classes[c], json_integer((json_int_t)route_requests(&all, c, c)));
    return json_pack("{s:f,s:f,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:o,s:o}", "time", now,
                     "uptime_seconds", up > 0 ? up : 0.0, "generation",
                     (json_int_t)info.generation, "requests_total",
                     (json_int_t)route_requests(&all, 0, JN_M_CLASSES - 1), "responses", responses,
                     "in_flight", (json_int_t)(int64_t)l[0], "connections_open",
                     (json_int_t)(int64_t)l[1], "bytes_in", (json_int_t)l[2], "bytes_out",
                     (json_int_t)l[3], "latency_buckets", buckets_json(&all.duration), "routes",
                     routes_json(cfg));
}

json_t *jn_metrics_stats_json(void)
{
    struct jn_config *cfg = jn_runtime_config();
    json_t *j = jn_metrics_stats_json_config(cfg);
    if (cfg != NULL)
        jn_config_unref(cfg);
    return j;
}
