/* The admin API's read endpoints: status, the configuration, routes,
 * upstreams with each server's health and per-worker counters, and the
 * metrics module's stats and Prometheus text. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/api.h"
#include "admin/metrics.h"
#include "health/state.h"
#include "policy/chain.h"
#include "server/runtime.h"
#include "server/worker.h"

/* "2026-11-28T13:11:43.250Z" or JSON null when ms is 0. */
static json_t *rfc3339(uint64_t unix_ms)
{
    char buf[40];
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (unix_ms == 0 || gmtime_r(&t, &tm) == NULL)
        return json_null();
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03uZ", (unsigned)(unix_ms % 1000));
    return json_string(buf);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void jn_admin_get_status(struct jn_config *cfg, struct jn_admin_response *rs)
{
    struct jn_runtime_info info;
    jn_runtime_get_info(&info);
    uint64_t now = wall_ms();
    double uptime = now > info.started_unix_ms ? (double)(now - info.started_unix_ms) / 1000.0 : 0;
    json_t *reloads = json_pack("{s:I, s:I, s:o, s:o}", "ok", (json_int_t)info.reloads_ok,
                                "failed", (json_int_t)info.reloads_failed, "last_at",
                                rfc3339(info.last_reload_unix_ms), "last_ok",
                                info.last_reload_unix_ms ? json_boolean(info.last_reload_ok)
                                                         : json_null());
    jn_admin_reply_json(rs, 200,
                        json_pack("{s:s, s:f, s:o, s:I, s:I, s:s, s:o, s:I}", "version",
                                  JN_VERSION, "uptime_seconds", uptime, "started_at",
                                  rfc3339(info.started_unix_ms), "workers",
                                  (json_int_t)info.workers, "generation",
                                  (json_int_t)info.generation, "config_file", cfg->file,
                                  "reloads", reloads, "runtime_changes",
                                  (json_int_t)info.changes));
}

void jn_admin_get_config(struct jn_config *cfg, struct jn_admin_response *rs)
{
    struct jn_runtime_info info;
    jn_runtime_get_info(&info);
    json_t *doc = cfg->json != NULL ? json_loads(cfg->json, 0, NULL) : NULL;
    if (doc == NULL) {
        jn_admin_reply_error(rs, 500, "the configuration document is not available");
        return;
    }
    json_t *changes = jn_runtime_changes_json();
    jn_admin_reply_json(rs, 200,
                        json_pack("{s:I, s:s, s:o, s:o*}", "generation",
                                  (json_int_t)info.generation, "file", cfg->file, "config", doc,
                                  "runtime_changes", changes));
}

static json_t *string_list(char *const *items, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, json_string(items[i]));
    return arr;
}

/* Exact header or query values of a match; credentials redacted as in
 * GET /config. */
static json_t *kv_object(const char *section, const struct jn_cfg_kv *kv, size_t n)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj != NULL && i < n; i++) {
        const char *keys[] = { "match", section, kv[i].name };
        bool secret = jn_cfg_is_secret(keys, 3);
        json_object_set_new(obj, kv[i].name, json_string(secret ? "<redacted>" : kv[i].value));
    }
    return obj;
}

static json_t *route_match(const struct jn_cfg_match *m)
{
    json_t *match = json_object();
    if (match == NULL)
        return NULL;
    json_object_set_new(match, "host", m->host ? json_string(m->host) : json_null());
    json_object_set_new(match, "path", m->path ? json_string(m->path) : json_null());
    json_object_set_new(match, "path_prefix",
                        m->path_prefix ? json_string(m->path_prefix) : json_null());
    json_object_set_new(match, "path_regex",
                        m->path_regex ? json_string(m->path_regex) : json_null());
    json_object_set_new(match, "methods", string_list(m->methods, m->nmethods));
    json_object_set_new(match, "headers", kv_object("headers", m->headers, m->nheaders));
    json_object_set_new(match, "query", kv_object("query", m->query, m->nquery));
    return match;
}

/* The listeners a route serves: its own list, or every http listener. */
static json_t *route_listeners(const struct jn_config *cfg, const struct jn_cfg_route *r)
{
    if (r->nlisteners > 0)
        return string_list(r->listeners, r->nlisteners);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < cfg->nlisteners; i++)
        if (cfg->listeners[i].protocol == JN_PROTO_HTTP)
            json_array_append_new(arr, json_string(cfg->listeners[i].name));
    return arr;
}

static json_t *route_json(const struct jn_config *cfg, const struct jn_cfg_route *r)
{
    json_t *policies = json_array();
    for (size_t i = 0; policies != NULL && i < r->nchain; i++)
        if (!r->chain[i]->disabled && strcmp(r->chain[i]->ops->name, "route_headers") != 0)
            json_array_append_new(policies, json_string(r->chain[i]->ops->name));
    json_t *respond = r->respond.enabled ? json_pack("{s:i}", "status", r->respond.status)
                                         : json_null();
    return json_pack("{s:s, s:i, s:o*, s:o, s:o*, s:o*, s:o*}", "name", r->name, "priority",
                     (int)r->priority, "match", route_match(&r->match), "upstream",
                     r->upstream_name ? json_string(r->upstream_name) : json_null(),
                     "listeners", route_listeners(cfg, r), "policies", policies, "respond",
                     respond);
}

void jn_admin_get_routes(struct jn_config *cfg, struct jn_admin_response *rs)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < cfg->nroutes; i++)
        json_array_append_new(arr, route_json(cfg, &cfg->routes[i]));
    jn_admin_reply_json(rs, 200, json_pack("{s:o*}", "routes", arr));
}

long jn_admin_find_upstream(const struct jn_config *cfg, const char *name)
{
    const struct jn_cfg_upstream *up = jn_cfg_find_upstream(cfg, name);
    return up != NULL ? (long)up->index : -1;
}

long jn_admin_find_server(const struct jn_config *cfg, size_t u, const char *address)
{
    const struct jn_cfg_upstream *up = &cfg->upstreams[u];
    for (size_t j = 0; j < up->nservers; j++)
        if (strcmp(up->servers[j].address, address) == 0)
            return (long)j;
    struct sockaddr_storage ss;
    socklen_t len;
    const char *err;
    if (jn_parse_address(address, &ss, &len, &err) != 0)
        return -1;
    return jn_cfg_find_server(up, &ss);
}

/* Per-server sums over the workers, for the servers of one snapshot. */
struct gather {
    const struct jn_config *cfg; /* borrowed: the snapshot being described */
    size_t *base;                /* owned: first slot of each upstream's servers */
    uint64_t *in_flight;         /* owned: one slot per server of every upstream */
    double *latency_sum_us;      /* owned */
    uint32_t *latency_n;         /* owned */
};

/* The worker's runtime of upstream u of g->cfg: by index when the worker
 * runs that snapshot, else by name (a reload or change is in progress). */
static const struct jn_upstream_rt *worker_upstream(const struct jn_worker *w,
                                                    const struct gather *g, size_t u)
{
    const struct jn_config *wc = w->gen != NULL ? w->gen->cfg : NULL;
    if (wc == NULL)
        return NULL;
    if (wc == g->cfg)
        return &w->gen->ups[u];
    long i = jn_admin_find_upstream(wc, g->cfg->upstreams[u].name);
    return i >= 0 ? &w->gen->ups[i] : NULL;
}

/* On each worker's thread: adds its in-flight requests and latency. */
static void gather_worker(struct jn_worker *w, void *arg)
{
    struct gather *g = arg;
    for (size_t u = 0; u < g->cfg->nupstreams; u++) {
        const struct jn_upstream_rt *rt = worker_upstream(w, g, u);
        const struct jn_cfg_upstream *up = &g->cfg->upstreams[u];
        for (size_t j = 0; rt != NULL && j < up->nservers; j++) {
            size_t k = j;
            if (rt->cfg != up) { /* another snapshot: the same server by address */
                k = SIZE_MAX;
                for (size_t x = 0; x < rt->cfg->nservers && k == SIZE_MAX; x++)
                    if (strcmp(rt->cfg->servers[x].address, up->servers[j].address) == 0)
                        k = x;
                if (k == SIZE_MAX)
                    continue;
            }
            size_t slot = g->base[u] + j;
            g->in_flight[slot] += rt->in_flight[k];
            if (rt->servers[k].latency_at_us != 0) {
                g->latency_sum_us[slot] += rt->servers[k].latency_ewma_us;
                g->latency_n[slot]++;
            }
        }
    }
}

static void gather_free(struct gather *g)
{
    free(g->base);
    free(g->in_flight);
    free(g->latency_sum_us);
    free(g->latency_n);
}

static int gather_run(struct gather *g, const struct jn_config *cfg)
{
    size_t total = 0;
    *g = (struct gather){ .cfg = cfg, .base = calloc(cfg->nupstreams + 1, sizeof(size_t)) };
    for (size_t u = 0; g->base != NULL && u < cfg->nupstreams; u++) {
        g->base[u] = total;
        total += cfg->upstreams[u].nservers;
    }
    g->in_flight = calloc(total + 1, sizeof(*g->in_flight));
    g->latency_sum_us = calloc(total + 1, sizeof(*g->latency_sum_us));
    g->latency_n = calloc(total + 1, sizeof(*g->latency_n));
    if (g->base == NULL || g->in_flight == NULL || g->latency_sum_us == NULL ||
        g->latency_n == NULL) {
        gather_free(g);
        return JN_ENOMEM;
    }
    jn_workers_run_each(gather_worker, g);
    return 0;
}

static json_t *server_json(const struct jn_config *cfg, size_t u, size_t j, const struct gather *g)
{
    const struct jn_cfg_server *s = &cfg->upstreams[u].servers[j];
    struct jn_pool_state *pool = jn_pool_of(cfg, u);
    struct jn_server_state *st = pool != NULL ? &pool->servers[j] : NULL;
    bool down = st != NULL && atomic_load(&st->check_down);
    bool ejected = st != NULL && atomic_load(&st->ejected_until) > jn_clock_ms();
    size_t slot = g->base[u] + j;
    json_t *latency = g->latency_n[slot] > 0
                          ? json_real(g->latency_sum_us[slot] / g->latency_n[slot] / 1000.0)
                          : json_null();
    return json_pack("{s:s, s:i, s:b, s:s, s:b, s:b, s:I, s:I, s:I, s:o}", "address", s->address,
                     "weight", (int)s->weight, "drain", s->drain, "health",
                     ejected ? "ejected" : down ? "unhealthy" : "healthy", "checked_down", down,
                     "ejected", ejected, "ejections",
                     (json_int_t)(st != NULL ? atomic_load(&st->ejections_total) : 0),
                     "in_flight", (json_int_t)g->in_flight[slot], "connections",
                     (json_int_t)(st != NULL ? atomic_load(&st->slots->connections) : 0),
                     "latency_ewma_ms", latency);
}

static const char *protocol_name(enum jn_upstream_protocol p)
{
    return p == JN_UPSTREAM_H2C ? "h2c" : p == JN_UPSTREAM_H2 ? "h2" : "http1";
}

static json_t *upstream_json(const struct jn_config *cfg, size_t u, const struct gather *g)
{
    const struct jn_cfg_upstream *up = &cfg->upstreams[u];
    json_t *servers = json_array();
    for (size_t j = 0; servers != NULL && j < up->nservers; j++)
        json_array_append_new(servers, server_json(cfg, u, j, g));
    return json_pack("{s:s, s:s, s:s, s:o*}", "name", up->name, "balance", up->balance,
                     "protocol", protocol_name(up->protocol), "servers", servers);
}

json_t *jn_admin_server_json(struct jn_config *cfg, size_t u, size_t j)
{
    struct gather g;
    if (gather_run(&g, cfg) != 0)
        return NULL;
    json_t *s = server_json(cfg, u, j, &g);
    gather_free(&g);
    return s;
}

void jn_admin_get_upstreams(struct jn_config *cfg, const char *name, struct jn_admin_response *rs)
{
    long only = name != NULL ? jn_admin_find_upstream(cfg, name) : -1;
    struct gather g;
    if (name != NULL && only < 0) {
        jn_admin_reply_error(rs, 404, "no upstream named '%s'", name);
        return;
    }
    if (gather_run(&g, cfg) != 0) {
        jn_admin_reply_error(rs, 500, "out of memory");
        return;
    }
    if (name != NULL) {
        jn_admin_reply_json(rs, 200, upstream_json(cfg, (size_t)only, &g));
    } else {
        json_t *arr = json_array();
        for (size_t u = 0; arr != NULL && u < cfg->nupstreams; u++)
            json_array_append_new(arr, upstream_json(cfg, u, &g));
        jn_admin_reply_json(rs, 200, json_pack("{s:o*}", "upstreams", arr));
    }
    gather_free(&g);
}

void jn_admin_get_stats(struct jn_admin_response *rs)
{
    json_t *stats = jn_metrics_stats_json();
    if (stats == NULL)
        jn_admin_reply_error(rs, 500, "statistics are not available");
    else
        jn_admin_reply_json(rs, 200, stats);
}

void jn_admin_get_metrics(struct jn_admin_response *rs)
{
    size_t len = 0;
    char *text = jn_metrics_render(&len);
    if (text == NULL) {
        jn_admin_reply_error(rs, 500, "metrics are not available");
        return;
    }
    free(rs->body);
    rs->status = 200;
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
    rs->body = text;
    rs->len = len;
}
