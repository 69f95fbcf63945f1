/* libFuzzer target for the configuration loader: any bytes go to
 * jn_config_load_buffer, and everything is freed again (ASan/LSan watch).
 * Besides memory errors it checks the loader's contract: a load fails
 * exactly when it reports errors, every message is "fuzz.yaml:LINE:COL: ..."
 * (or "fuzz.yaml: ..."), and a loaded snapshot holds only validated values,
 * including paths that request normalisation (http/path.c) leaves unchanged
 * and the upstream policy sections' ranges and cross-key rules.
 *
 * Standalone, before the router and balancers exist:
 *   clang -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -DJN_CONFIG_TEST_STUBS -o /tmp/fuzz_config tests/fuzz/fuzz_config.c \
 *     src/config/[a-z]*.c src/core/arena.c src/http/path.c -lyaml -lpcre2-8 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/common.h"
#include "http/path.h"

#ifdef JN_CONFIG_TEST_STUBS
/* Stand-ins for route/router.c and balance/balance.c: compile the regexes
 * so that the snapshot's free path handles real PCRE2 codes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "route/router.h"

static pcre2_code *jn_fuzz_compile(const char *pattern, bool *failed)
{
    int code;
    PCRE2_SIZE offset;
    if (pattern == NULL)
        return NULL;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &offset, NULL);
    *failed |= re == NULL;
    return re;
}

struct jn_router *jn_router_build(struct jn_config *cfg, struct jn_cfg_errors *errs)
{
    bool failed = false;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct jn_cfg_route *r = &cfg->routes[i];
        r->match.regex = jn_fuzz_compile(r->match.path_regex, &failed);
        r->rewrite.regex = jn_fuzz_compile(r->rewrite.pattern, &failed);
    }
    if (failed)
        jn_cfg_error(errs, (struct jn_cfg_pos){cfg->file, 1, 1}, "invalid regular expression");
    return failed ? NULL : malloc(1);
}

void jn_router_free(struct jn_router *r)
{
    free(r);
}

bool jn_lb_known(const char *name)
{
    return strcmp(name, "round_robin") == 0;
}
#endif

#define JN_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "contract broken: %s (line %d)\n", #cond, __LINE__);                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void jn_fuzz_check_message(const char *msg)
{
    const char *p = msg + strlen("fuzz.yaml");
    JN_FUZZ_CHECK(strncmp(msg, "fuzz.yaml", strlen("fuzz.yaml")) == 0);
    if (p[0] == ':' && p[1] >= '1' && p[1] <= '9') {
        p += strspn(p + 1, "0123456789") + 1;
        JN_FUZZ_CHECK(p[0] == ':' && p[1] >= '1' && p[1] <= '9');
        p += strspn(p + 1, "0123456789") + 1;
    }
    JN_FUZZ_CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
}

/* A configured path must be what normalisation makes of itself. */
static void jn_fuzz_check_path(const char *path, const struct jn_cfg_http *http)
{
    if (path == NULL)
        return;
    struct jn_path_opts opts = {http->merge_slashes, http->escaped_slashes};
    struct jn_slice in = {path, strlen(path)}, out, query, authority;
    char *buf = malloc(in.len + 1);
    const char *err = NULL;
    JN_FUZZ_CHECK(buf != NULL);
    JN_FUZZ_CHECK(jn_path_normalize(in, &opts, buf, &out, &query, &authority, &err) == 0);
    JN_FUZZ_CHECK(jn_slice_eq(in, out));
    free(buf);
}

static void jn_fuzz_check_kv(const struct jn_cfg_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        JN_FUZZ_CHECK(kv[i].name != NULL && kv[i].value != NULL);
        JN_FUZZ_CHECK(strlen(kv[i].value) == kv[i].value_len);
        JN_FUZZ_CHECK(strpbrk(kv[i].value, "\r\n") == NULL);
    }
}

static void jn_fuzz_check_route(const struct jn_config *cfg, const struct jn_cfg_route *r)
{
    JN_FUZZ_CHECK(r->name != NULL);
    JN_FUZZ_CHECK(r->respond.enabled != (r->upstream != NULL));
    if (r->upstream != NULL)
        JN_FUZZ_CHECK(r->upstream >= cfg->upstreams &&
                      r->upstream < cfg->upstreams + cfg->nupstreams);
    JN_FUZZ_CHECK(!r->respond.enabled || (r->respond.status >= 100 && r->respond.status <= 599));
    jn_fuzz_check_path(r->match.path, &cfg->http);
    jn_fuzz_check_path(r->match.path_prefix, &cfg->http);
    jn_fuzz_check_path(r->strip_prefix, &cfg->http);
    JN_FUZZ_CHECK((r->match.path != NULL) + (r->match.path_prefix != NULL) +
                      (r->match.path_regex != NULL) <=
                  1);
    for (size_t i = 0; i < r->match.nmethods; i++)
        JN_FUZZ_CHECK(strpbrk(r->match.methods[i], "abcdefghijklmnopqrstuvwxyz") == NULL);
    jn_fuzz_check_kv(r->match.headers, r->match.nheaders);
    jn_fuzz_check_kv(r->request_headers.set, r->request_headers.nset);
    jn_fuzz_check_kv(r->request_headers.add, r->request_headers.nadd);
    jn_fuzz_check_kv(r->response_headers.set, r->response_headers.nset);
    jn_fuzz_check_kv(r->response_headers.add, r->response_headers.nadd);
    jn_fuzz_check_kv(r->respond.headers, r->respond.nheaders);
}

/* Each status within lo..hi and listed once; NULL exactly when empty. */
static void jn_fuzz_check_statuses(const uint16_t *st, size_t n, unsigned lo, unsigned hi)
{
    JN_FUZZ_CHECK((st == NULL) == (n == 0));
    for (size_t i = 0; i < n; i++) {
        JN_FUZZ_CHECK(st[i] >= lo && st[i] <= hi);
        for (size_t j = 0; j < i; j++)
            JN_FUZZ_CHECK(st[i] != st[j]);
    }
}

/* The policy sections (load_upstream.c): ranges and cross-key rules. */
static void jn_fuzz_check_policy(const struct jn_cfg_upstream *up)
{
    const uint64_t hour = 3600000, day = 24 * hour;
    const struct jn_cfg_health *h = &up->health;
    JN_FUZZ_CHECK(h->path != NULL && h->path[0] == '/' && strpbrk(h->path, " #\r\n\t") == NULL);
    JN_FUZZ_CHECK(h->host == NULL || (h->host[0] != '\0' && strpbrk(h->host, "\r\n") == NULL));
    JN_FUZZ_CHECK(!h->tcp || h->enabled);
    JN_FUZZ_CHECK(h->interval >= 1 && h->interval <= day);
    JN_FUZZ_CHECK(h->timeout >= 1 && h->timeout <= h->interval);
    JN_FUZZ_CHECK(h->healthy_threshold >= 1 && h->healthy_threshold <= 100);
    JN_FUZZ_CHECK(h->unhealthy_threshold >= 1 && h->unhealthy_threshold <= 100);
    jn_fuzz_check_statuses(h->expect_status, h->nexpect_status, 100, 599);
    const struct jn_cfg_outlier *o = &up->outlier;
    JN_FUZZ_CHECK(o->consecutive_failures >= 1 && o->consecutive_failures <= 1000);
    jn_fuzz_check_statuses(o->failure_status, o->nfailure_status, 500, 599);
    JN_FUZZ_CHECK(o->ejection_time >= 1 && o->ejection_time <= day);
    JN_FUZZ_CHECK(o->max_ejected_percent <= 100);
    const struct jn_cfg_retries *r = &up->retries;
    JN_FUZZ_CHECK(r->attempts <= 10 && r->budget_percent <= 100);
    JN_FUZZ_CHECK((r->on & ~(uint32_t)(JN_RETRY_CONNECT | JN_RETRY_RESET | JN_RETRY_TIMEOUT)) == 0);
    jn_fuzz_check_statuses(r->status, r->nstatus, 500, 599);
    const struct jn_cfg_limits *l = &up->limits;
    JN_FUZZ_CHECK(l->max_connections <= 1000000 && l->max_pending <= 1000000);
    JN_FUZZ_CHECK(l->max_pending == 0 || l->max_connections > 0);
    JN_FUZZ_CHECK(l->queue_timeout >= 1 && l->queue_timeout <= day);
    const struct jn_cfg_sticky *st = &up->sticky;
    JN_FUZZ_CHECK(st->cookie == NULL ||
                  (st->cookie[0] != '\0' && strpbrk(st->cookie, " ;=,") == NULL));
    JN_FUZZ_CHECK(st->cookie != NULL || (st->ttl == 0 && st->secret == NULL));
    JN_FUZZ_CHECK(st->ttl <= 365 * day && (st->secret == NULL || st->secret[0] != '\0'));
    JN_FUZZ_CHECK(up->slow_start <= hour);
    JN_FUZZ_CHECK(up->ewma_decay >= 1 && up->ewma_decay <= hour);
    JN_FUZZ_CHECK(up->ewma_initial_us >= 1 && up->ewma_initial_us <= hour * 1000);
    /* Only balance: ewma may have its tuning changed. */
    JN_FUZZ_CHECK(strcmp(up->balance, "ewma") == 0 ||
                  (up->ewma_decay == 10000 && up->ewma_initial_us == 1000));
}

static void jn_fuzz_check_config(const struct jn_config *cfg)
{
    JN_FUZZ_CHECK(cfg->nlisteners > 0 && cfg->workers <= 256 && cfg->router != NULL);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        JN_FUZZ_CHECK(cfg->listeners[i].name != NULL && cfg->listeners[i].addrlen > 0);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct jn_cfg_upstream *up = &cfg->upstreams[i];
        JN_FUZZ_CHECK(up->name != NULL && up->balance != NULL && up->nservers > 0);
        for (size_t j = 0; j < up->nservers; j++)
            JN_FUZZ_CHECK(up->servers[j].weight >= 1 && up->servers[j].weight <= 1000);
        jn_fuzz_check_policy(up);
    }
    for (size_t i = 0; i < cfg->nroutes; i++)
        jn_fuzz_check_route(cfg, &cfg->routes[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = jn_config_load_buffer("fuzz.yaml", (const char *)data, size, &errs);
    JN_FUZZ_CHECK((cfg == NULL) == (errs.count > 0));
    for (size_t i = 0; i < errs.count; i++)
        jn_fuzz_check_message(errs.msgs[i]);
    if (cfg != NULL) {
        jn_fuzz_check_config(cfg);
        jn_config_ref(cfg);
        jn_config_unref(cfg);
        jn_config_unref(cfg);
    }
    jn_cfg_errors_free(&errs);
    return 0;
}
