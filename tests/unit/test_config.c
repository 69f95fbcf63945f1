/* Unit tests of the configuration loader (src/config): the schema, the
 * defaults, the value formats and where each error is reported.
 *
 * Standalone, before the router and balancers exist (stubs below):
 *   cc -std=c17 -D_GNU_SOURCE -Isrc -DJN_CONFIG_TEST_STUBS -fsanitize=address,undefined \
 *      -o /tmp/t_cfg tests/unit/test_config.c src/config/[a-z]*.c src/core/arena.c src/tls/tls.c \
 *      -lyaml -lpcre2-8 -lssl -lcrypto -lcriterion
 * In `make unit` the real router and balance registry are linked instead. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/common.h"
#include "core/log.h"

#ifdef JN_CONFIG_TEST_STUBS
/* Stand-ins for route/router.c and balance/balance.c: compile the regexes
 * (so that freeing them is exercised) and know round_robin and the hashing
 * algorithms only. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "balance/lb_maglev.h"
#include "route/router.h"

static pcre2_code *cfg_stub_compile(const char *pattern, struct jn_cfg_errors *errs,
                                    struct jn_cfg_pos pos, bool *failed)
{
    int code;
    PCRE2_SIZE offset;
    if (pattern == NULL)
        return NULL;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &offset, NULL);
    if (re == NULL) {
        jn_cfg_error(errs, pos, "invalid regular expression at offset %zu", (size_t)offset);
        *failed = true;
    }
    return re;
}

struct jn_router *jn_router_build(struct jn_config *cfg, struct jn_cfg_errors *errs)
{
    bool failed = false;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct jn_cfg_route *r = &cfg->routes[i];
        r->match.regex = cfg_stub_compile(r->match.path_regex, errs, r->pos, &failed);
        r->rewrite.regex = cfg_stub_compile(r->rewrite.pattern, errs, r->pos, &failed);
    }
    return failed ? NULL : malloc(1);
}

void jn_router_free(struct jn_router *r)
{
    free(r);
}

bool jn_lb_hashes(const char *name)
{
    return strcmp(name, "consistent_hash") == 0 || strcmp(name, "ip_hash") == 0;
}

bool jn_lb_known(const char *name)
{
    return strcmp(name, "round_robin") == 0 || jn_lb_hashes(name);
}
#endif

/* ---- helpers ---- */

static struct jn_config *cfg_load(const char *yaml, struct jn_cfg_errors *errs)
{
    return jn_config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

static void cfg_dump(const struct jn_cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "  | %s\n", errs->msgs[i]);
}

/* True when some message starts with prefix: tests pin "file:line:col: what"
 * and leave the rest of the wording free. */
static bool cfg_has(const struct jn_cfg_errors *errs, const char *prefix)
{
    for (size_t i = 0; i < errs->count; i++)
        if (strncmp(errs->msgs[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

/* Loads yaml, which must fail, and checks that each expected prefix was reported. */
static void cfg_expect_errors(const char *yaml, size_t n, ...)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = cfg_load(yaml, &errs);
    cr_expect_null(cfg, "the configuration loaded but should not have");
    jn_config_unref(cfg);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        if (!cfg_has(&errs, want)) {
            cfg_dump(&errs);
            cr_expect(false, "no error starting with \"%s\" (%zu errors reported)", want,
                      errs.count);
        }
    }
    va_end(ap);
    jn_cfg_errors_free(&errs);
}

static struct jn_config *cfg_expect_ok(const char *yaml)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = cfg_load(yaml, &errs);
    if (cfg == NULL)
        cfg_dump(&errs);
    cr_assert_not_null(cfg, "load failed with %zu errors; first: %s", errs.count,
                       errs.count ? errs.msgs[0] : "(none)");
    cr_assert_eq(errs.count, 0);
    jn_cfg_errors_free(&errs);
    return cfg;
}

static const struct jn_cfg_route *cfg_route(const struct jn_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (strcmp(cfg->routes[i].name, name) == 0)
            return &cfg->routes[i];
    cr_assert_fail("no route %s", name);
    return NULL;
}

static const char *cfg_kv(const struct jn_cfg_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].name, name) == 0)
            return kv[i].value;
    return NULL;
}

#define LISTENER "listeners:\n  - { name: public, address: 127.0.0.1:8080 }\n"

/* ---- the whole schema ---- */

static const char full_yaml[] =
    "workers: 4\n"
    "listeners:\n"
    "  - name: public\n"
    "    address: 127.0.0.1:8080\n"
    "  - name: v6\n"
    "    address: \"[::1]:8443\"\n"
    "timeouts: { client_header: 250ms, client_body: 2s, client_idle: 1m, upstream_connect: 1s,\n"
    "            upstream_response: 1h, upstream_idle: 90s, drain: 0s }\n"
    "http: { max_request_line: 4k, max_header_size: 1M, max_headers: 50, merge_slashes: false,\n"
    "        escaped_slashes: reject }\n"
    "access_log: { path: /var/log/junction/access.log, format: text }\n"
    "error_log: { path: stdout, level: debug }\n"
    "upstreams:\n"
    "  users:\n"
    "    balance: round_robin\n"
    "    keepalive: 0\n"
    "    servers:\n"
    "      - { address: 127.0.0.1:9001, weight: 3 }\n"
    "      - { address: localhost:9002 }\n"
    "  catalog:\n"
    "    servers: [ { address: \"[::1]:9100\" } ]\n"
    "routes:\n"
    "  - name: users\n"
    "    match: { host: \"*.Shop.TEST\", path_prefix: /users, methods: [get, POST],\n"
    "             headers: { X-Env: prod }, query: { v: \"2\" } }\n"
    "    priority: -5\n"
    "    upstream: users\n"
    "    strip_prefix: /users\n"
    "    rewrite: { pattern: \"^/old/(.*)$\", replace: \"/new/$1\" }\n"
    "    request_headers: { set: { X-Gateway: junction }, add: { X-A: b }, remove: [X-Secret] }\n"
    "    response_headers: { set: { Server: junction }, remove: [X-Powered-By, X-Debug] }\n"
    "    listeners: [public]\n"
    "  - match: { path_regex: \"^/a/(\\\\d+)$\" }\n"
    "    respond: { status: 404, body: \"none\\n\", headers: { Content-Type: text/plain } }\n"
    "  - match: { path: /catalog/items }\n"
    "    upstream: catalog\n";

Test(config, full_schema_loads_with_every_value)
{
    struct jn_config *cfg = cfg_expect_ok(full_yaml);
    cr_expect_str_eq(cfg->file, "t.yaml");
    cr_expect_eq(cfg->refs, 1);
    cr_expect_eq(cfg->generation, 1);
    cr_expect_not_null(cfg->router);
    cr_expect_eq(cfg->workers, 4);

    cr_assert_eq(cfg->nlisteners, 2);
    const struct jn_cfg_listener *l = &cfg->listeners[0];
    cr_expect_str_eq(l->name, "public");
    cr_expect_str_eq(l->address, "127.0.0.1:8080");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
    cr_expect_eq(l->addrlen, sizeof(struct sockaddr_in));
    cr_expect_eq(sin->sin_family, AF_INET);
    cr_expect_eq(ntohs(sin->sin_port), 8080);
    cr_expect_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_expect_eq(l->pos.line, 3);
    cr_expect_eq(l->pos.column, 5);
    cr_expect_eq(cfg->listeners[1].addr.ss_family, AF_INET6);

    cr_expect_eq(cfg->timeouts.client_header, 250);
    cr_expect_eq(cfg->timeouts.client_body, 2000);
    cr_expect_eq(cfg->timeouts.client_idle, 60000);
    cr_expect_eq(cfg->timeouts.upstream_connect, 1000);
    cr_expect_eq(cfg->timeouts.upstream_response, 3600000);
    cr_expect_eq(cfg->timeouts.upstream_idle, 90000);
    cr_expect_eq(cfg->timeouts.drain, 0);

    cr_expect_eq(cfg->http.max_request_line, 4096);
    cr_expect_eq(cfg->http.max_header_size, 1 << 20);
    cr_expect_eq(cfg->http.max_headers, 50);
    cr_expect_eq(cfg->http.merge_slashes, false);
    cr_expect_eq(cfg->http.escaped_slashes, JN_SLASH_REJECT);
    cr_expect_str_eq(cfg->access_log.path, "/var/log/junction/access.log");
    cr_expect_eq(cfg->access_log.format, JN_LOGFMT_TEXT);
    cr_expect_str_eq(cfg->error_log.path, "stdout");
    cr_expect_eq(cfg->error_log.level, JN_LOG_DEBUG);

    cr_assert_eq(cfg->nupstreams, 2);
    const struct jn_cfg_upstream *up = &cfg->upstreams[0];
    cr_expect_str_eq(up->name, "users");
    cr_expect_str_eq(up->balance, "round_robin");
    cr_expect_eq(up->keepalive, 0);
    cr_expect_eq(up->index, 0);
    cr_assert_eq(up->nservers, 2);
    cr_expect_eq(up->servers[0].weight, 3);
    cr_expect_eq(up->servers[1].weight, 1);
    cr_expect_str_eq(up->servers[1].address, "localhost:9002");
    cr_expect_eq(up->servers[0].pos.line, 18);
    cr_expect_eq(cfg->upstreams[1].index, 1);
    cr_expect_str_eq(cfg->upstreams[1].balance, "round_robin");
    cr_expect_eq(cfg->upstreams[1].keepalive, 32);

    cr_assert_eq(cfg->nroutes, 3);
    const struct jn_cfg_route *r = &cfg->routes[0];
    cr_expect_str_eq(r->name, "users");
    cr_expect_eq(r->index, 0);
    cr_expect_eq(r->pos.line, 23);
    cr_expect_str_eq(r->match.host, "*.shop.test");
    cr_expect_str_eq(r->match.path_prefix, "/users");
    cr_expect_null(r->match.path);
    cr_assert_eq(r->match.nmethods, 2);
    cr_expect_str_eq(r->match.methods[0], "GET");
    cr_expect_str_eq(r->match.methods[1], "POST");
    cr_expect_str_eq(cfg_kv(r->match.headers, r->match.nheaders, "X-Env"), "prod");
    cr_expect_str_eq(cfg_kv(r->match.query, r->match.nquery, "v"), "2");
    cr_expect_eq(r->priority, -5);
    cr_expect_str_eq(r->upstream_name, "users");
    cr_expect_eq(r->upstream, &cfg->upstreams[0]);
    cr_expect_str_eq(r->strip_prefix, "/users");
    cr_expect_str_eq(r->rewrite.pattern, "^/old/(.*)$");
    cr_expect_str_eq(r->rewrite.replace, "/new/$1");
    cr_expect_str_eq(cfg_kv(r->request_headers.set, r->request_headers.nset, "X-Gateway"),
                     "junction");
    cr_expect_str_eq(cfg_kv(r->request_headers.add, r->request_headers.nadd, "X-A"), "b");
    cr_assert_eq(r->request_headers.nremove, 1);
    cr_expect_str_eq(r->request_headers.remove[0], "X-Secret");
    cr_expect_eq(r->response_headers.nremove, 2);
    cr_expect_eq(r->respond.enabled, false);
    cr_assert_eq(r->nlisteners, 1);
    cr_expect_str_eq(r->listeners[0], "public");

    r = &cfg->routes[1];
    cr_expect_str_eq(r->name, "route-1");
    cr_expect_str_eq(r->match.path_regex, "^/a/(\\d+)$");
    cr_expect_null(r->upstream);
    cr_expect(r->respond.enabled);
    cr_expect_eq(r->respond.status, 404);
    cr_expect_eq(r->respond.body_len, 5);
    cr_expect_str_eq(r->respond.body, "none\n");
    cr_expect_str_eq(cfg_kv(r->respond.headers, r->respond.nheaders, "Content-Type"), "text/plain");
    cr_expect_eq(r->nlisteners, 0);
    cr_expect_eq(cfg_route(cfg, "route-2")->upstream, &cfg->upstreams[1]);
    jn_config_unref(cfg);
}

Test(config, defaults_fill_every_optional_key)
{
    struct jn_config *cfg = cfg_expect_ok(LISTENER);
    cr_expect_eq(cfg->workers, 0);
    cr_expect_eq(cfg->timeouts.client_header, 10000);
    cr_expect_eq(cfg->timeouts.client_body, 30000);
    cr_expect_eq(cfg->timeouts.client_idle, 60000);
    cr_expect_eq(cfg->timeouts.upstream_connect, 5000);
    cr_expect_eq(cfg->timeouts.upstream_response, 60000);
    cr_expect_eq(cfg->timeouts.upstream_idle, 60000);
    cr_expect_eq(cfg->timeouts.drain, 10000);
    cr_expect_eq(cfg->http.max_request_line, 8192);
    cr_expect_eq(cfg->http.max_header_size, 32768);
    cr_expect_eq(cfg->http.max_headers, 100);
    cr_expect_eq(cfg->http.merge_slashes, true);
    cr_expect_eq(cfg->http.escaped_slashes, JN_SLASH_KEEP);
    cr_expect_str_eq(cfg->access_log.path, "stdout");
    cr_expect_eq(cfg->access_log.format, JN_LOGFMT_JSON);
    cr_expect_str_eq(cfg->error_log.path, "stderr");
    cr_expect_eq(cfg->error_log.level, JN_LOG_INFO);
    cr_expect_eq(cfg->nupstreams, 0);
    cr_expect_eq(cfg->nroutes, 0);
    jn_config_unref(cfg);
}

Test(config, route_defaults)
{
    struct jn_config *cfg = cfg_expect_ok(LISTENER "upstreams: { u: { servers: [ { address: "
                                                   "127.0.0.1:1 } ] } }\n"
                                                   "routes:\n  - upstream: u\n"
                                                   "  - { respond: {}, match: { path: / } }\n");
    const struct jn_cfg_route *r = &cfg->routes[0];
    cr_expect_str_eq(r->name, "route-0");
    cr_expect_eq(r->priority, 0);
    cr_expect_null(r->match.host);
    cr_expect_null(r->match.methods);
    cr_expect_eq(r->match.nmethods, 0);
    cr_expect_null(r->strip_prefix);
    cr_expect_null(r->rewrite.pattern);
    cr_expect_eq(r->upstream->servers[0].weight, 1);
    r = &cfg->routes[1];
    cr_expect(r->respond.enabled);
    cr_expect_eq(r->respond.status, 200);
    cr_expect_eq(r->respond.body_len, 0);
    jn_config_unref(cfg);
}

Test(config, workers_auto_and_numbers)
{
    struct jn_config *cfg = cfg_expect_ok("workers: auto\n" LISTENER);
    cr_expect_eq(cfg->workers, 0);
    jn_config_unref(cfg);
    cfg = cfg_expect_ok("workers: 256\n" LISTENER);
    cr_expect_eq(cfg->workers, 256);
    jn_config_unref(cfg);
    cfg_expect_errors("workers: 0\n" LISTENER, 1, "t.yaml:1:10: workers: 0 is out of range");
    cfg_expect_errors("workers: 257\n" LISTENER, 1, "t.yaml:1:10: workers: 257 is out of range");
    cfg_expect_errors("workers: \"4\"\n" LISTENER, 1, "t.yaml:1:10: workers: expected a number");
    cfg_expect_errors("workers: many\n" LISTENER, 1, "t.yaml:1:10: workers: expected a number");
}

/* ---- value formats ---- */

Test(config, durations_need_a_unit_and_fit)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        {"250ms", 250}, {"2s", 2000}, {"1m", 60000},  {"1h", 3600000},
        {"0s", 0},      {"0ms", 0},   {"007s", 7000}, {"18446744073709551615ms", UINT64_MAX},
    };
    static const char *const bad[] = {
        "",
        "0",
        "30",
        "s",
        "-1s",
        "+1s",
        " 1s",
        "1s ",
        "1.5s",
        "1S",
        "1d",
        "1sm",
        "1 s",
        "ms",
        "1mss",
        "18446744073709551616ms",
        "5124095576030432h",
        "99999999999999999999999s",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        cr_expect_eq(jn_parse_duration(ok[i].in, &v), JN_OK, "%s", ok[i].in);
        cr_expect_eq(v, ok[i].ms, "%s", ok[i].in);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 0;
        cr_expect_eq(jn_parse_duration(bad[i], &v), JN_EINVAL, "\"%s\" accepted", bad[i]);
    }
    uint64_t v;
    cr_expect_eq(jn_parse_duration(NULL, &v), JN_EINVAL);
}

Test(config, sizes_take_an_optional_suffix_any_case)
{
    static const struct {
        const char *in;
        uint64_t bytes;
    } ok[] = {
        {"512", 512},    {"16k", 16384},  {"16K", 16384},
        {"1m", 1 << 20}, {"1M", 1 << 20}, {"1g", 1 << 30},
        {"1G", 1 << 30}, {"0", 0},        {"17179869183g", 17179869183ull << 30},
    };
    static const char *const bad[] = {
        "",    "k",  "-1",   "+1",   " 1",           "1 ",
        "1kb", "1t", "1.5k", "0x10", "17179869184g", "18446744073709551616",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        cr_expect_eq(jn_parse_size(ok[i].in, &v), JN_OK, "%s", ok[i].in);
        cr_expect_eq(v, ok[i].bytes, "%s", ok[i].in);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 0;
        cr_expect_eq(jn_parse_size(bad[i], &v), JN_EINVAL, "\"%s\" accepted", bad[i]);
    }
}

Test(config, addresses_are_numeric_or_localhost)
{
    static const struct {
        const char *in;
        const char *ip;
        int family;
        uint16_t port;
    } ok[] = {
        {"127.0.0.1:8080", "127.0.0.1", AF_INET, 8080},
        {":8080", "0.0.0.0", AF_INET, 8080},
        {"localhost:1", "127.0.0.1", AF_INET, 1},
        {"0.0.0.0:65535", "0.0.0.0", AF_INET, 65535},
        {"[::1]:8080", "::1", AF_INET6, 8080},
        {"[::]:443", "::", AF_INET6, 443},
        {"[2001:db8::ff00:42:8329]:80", "2001:db8::ff00:42:8329", AF_INET6, 80},
    };
    static const char *const bad[] = {
        "",
        "8080",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:+80",
        "127.0.0.1:80x",
        "127.0.0.1: 80",
        "1.2.3:80",
        "256.0.0.1:80",
        "example.com:80",
        "::1:80",
        "[::1]",
        "[::1]80",
        "[::1:80",
        "[zz::1]:80",
        "[127.0.0.1]:80",
        "LOCALHOST:80",
        "127.0.0.1:000080",
        "[fe80::1%eth0]:80",
        "1111111111111111111111111111111111111111111111111111111111111111:80",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        const char *err = NULL;
        char ip[INET6_ADDRSTRLEN] = "";
        cr_assert_eq(jn_parse_address(ok[i].in, &ss, &len, &err), JN_OK, "%s: %s", ok[i].in, err);
        cr_expect_eq(ss.ss_family, ok[i].family, "%s", ok[i].in);
        if (ok[i].family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            cr_expect_eq(len, sizeof(*a));
            cr_expect_eq(ntohs(a->sin_port), ok[i].port);
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        } else {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            cr_expect_eq(len, sizeof(*a));
            cr_expect_eq(ntohs(a->sin6_port), ok[i].port);
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        }
        cr_expect_str_eq(ip, ok[i].ip, "%s", ok[i].in);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        const char *err = NULL;
        cr_expect_eq(jn_parse_address(bad[i], &ss, &len, &err), JN_EINVAL, "\"%s\" accepted",
                     bad[i]);
        cr_expect_not_null(err, "%s", bad[i]);
    }
}

/* ---- where errors are reported ---- */

Test(config, unknown_keys_are_errors_at_the_key)
{
    cfg_expect_errors(LISTENER "workerz: 2\n", 1,
                      "t.yaml:3:1: unknown key 'workerz' in the configuration (known keys: "
                      "workers, listeners,");
    cfg_expect_errors("listeners:\n  - name: a\n    adress: 127.0.0.1:1\n", 2,
                      "t.yaml:3:5: unknown key 'adress' in listener",
                      "t.yaml:2:5: missing required key 'address' in listener");
    cfg_expect_errors(LISTENER "routes:\n  - match: { pth: /x }\n    respond: {}\n", 1,
                      "t.yaml:4:14: unknown key 'pth' in match");
    cfg_expect_errors(LISTENER "timeouts: { idle: 1s }\n", 1,
                      "t.yaml:3:13: unknown key 'idle' in timeouts");
}

Test(config, repeated_keys_are_errors)
{
    cfg_expect_errors(LISTENER "workers: 2\nworkers: 3\n", 1,
                      "t.yaml:4:1: duplicate key 'workers' in the configuration (first at line 3)");
}

Test(config, bad_duration_is_reported_at_the_value)
{
    cfg_expect_errors(LISTENER "timeouts:\n  client_header: 10x\n", 1,
                      "t.yaml:4:18: client_header: invalid duration '10x'");
    cfg_expect_errors(LISTENER "timeouts: { drain: 30 }\n", 1,
                      "t.yaml:3:20: drain: invalid duration '30'");
    cfg_expect_errors(LISTENER "timeouts: { client_idle: 25h }\n", 1,
                      "t.yaml:3:26: client_idle: '25h' is out of range");
    cfg_expect_errors(LISTENER "timeouts: { client_idle: 0s }\n", 1,
                      "t.yaml:3:26: client_idle: '0s' is out of range");
    cfg_expect_errors(LISTENER "timeouts: { client_idle: 99999999999999999999h }\n", 1,
                      "t.yaml:3:26: client_idle: invalid duration");
}

Test(config, bad_size_is_reported_at_the_value)
{
    cfg_expect_errors(LISTENER "http: { max_header_size: 12q }\n", 1,
                      "t.yaml:3:26: max_header_size: invalid size '12q'");
    cfg_expect_errors(LISTENER "http: { max_request_line: 4g }\n", 1,
                      "t.yaml:3:27: max_request_line: '4g' is out of range");
    cfg_expect_errors(LISTENER "http: { max_headers: 100k }\n", 1,
                      "t.yaml:3:22: max_headers: expected an integer");
}

Test(config, bad_address_is_reported_at_the_value)
{
    cfg_expect_errors("listeners:\n  - { name: a, address: 1.2.3:80 }\n", 1,
                      "t.yaml:2:25: address: invalid address '1.2.3:80': host must be a numeric");
    cfg_expect_errors("listeners:\n  - { name: a, address: \"127.0.0.1:0\" }\n", 1,
                      "t.yaml:2:25: address: invalid address '127.0.0.1:0': port must be");
    cfg_expect_errors("listeners:\n  - { name: a, address: \"::1:80\" }\n", 1,
                      "t.yaml:2:25: address: invalid address '::1:80': IPv6 addresses need");
    cfg_expect_errors(LISTENER "upstreams:\n  u:\n    servers: [ { address: db:5432 } ]\n", 1,
                      "t.yaml:5:27: address: invalid address 'db:5432'");
    cfg_expect_errors(LISTENER "upstreams:\n  u:\n    servers: [ { address: \"[::]:80\" } ]\n", 1,
                      "t.yaml:5:27: address: '[::]:80' is a wildcard");
    cfg_expect_errors(LISTENER "upstreams:\n  u:\n    servers: [ { address: \":80\" } ]\n", 1,
                      "t.yaml:5:27: address: ':80' is a wildcard");
}

Test(config, duplicate_listeners_are_errors)
{
    cfg_expect_errors("listeners:\n"
                      "  - { name: a, address: 127.0.0.1:80 }\n"
                      "  - { name: a, address: \"localhost:80\" }\n"
                      "  - { name: b, address: \":81\" }\n"
                      "  - { name: c, address: 0.0.0.0:81 }\n",
                      3, "t.yaml:3:13: duplicate listener name 'a' (first at line 2)",
                      "t.yaml:3:25: duplicate listener address '127.0.0.1:80' (first at line 2)",
                      "t.yaml:5:25: duplicate listener address '0.0.0.0:81' (first at line 4)");
}

Test(config, listeners_are_required)
{
    cfg_expect_errors("workers: 2\n", 1,
                      "t.yaml:1:1: missing required key 'listeners' in the configuration");
    cfg_expect_errors("listeners: []\n", 1,
                      "t.yaml:1:12: listeners: at least one listener is required");
    cfg_expect_errors("", 1, "t.yaml:1:1: the configuration is empty");
    cfg_expect_errors("# only a comment\n", 1, "t.yaml:1:1: the configuration is empty");
    cfg_expect_errors("listeners:\n", 1, "t.yaml:1:11: listeners: expected a list, got null");
}

/* ---- tcp listeners ---- */

#define TCP_UPSTREAM "upstreams:\n  db:\n    servers: [ { address: 127.0.0.1:5432 } ]\n"

Test(config, tcp_listener_loads_with_its_upstream_and_proxy_protocol)
{
    /* The upstream may come after the listener that names it. */
    struct jn_config *cfg = cfg_expect_ok("listeners:\n"
                                          "  - { name: web, address: 127.0.0.1:8080 }\n"
                                          "  - name: pg\n"
                                          "    address: 127.0.0.1:6432\n"
                                          "    protocol: tcp\n"
                                          "    upstream: db\n"
                                          "    proxy_protocol: v2\n"
                                          "timeouts: { tunnel_idle: 300ms }\n" TCP_UPSTREAM);
    cr_expect_eq(cfg->listeners[0].protocol, JN_PROTO_HTTP);
    cr_expect_null(cfg->listeners[0].upstream);
    cr_expect_eq(cfg->listeners[0].proxy_protocol, JN_PROXY_PROTOCOL_NONE);
    const struct jn_cfg_listener *l = &cfg->listeners[1];
    cr_expect_eq(l->protocol, JN_PROTO_TCP);
    cr_assert_not_null(l->upstream);
    cr_expect_str_eq(l->upstream->name, "db");
    cr_expect_eq(l->proxy_protocol, JN_PROXY_PROTOCOL_V2);
    cr_expect_eq(cfg->timeouts.tunnel_idle, 300);
    jn_config_unref(cfg);
    cfg = cfg_expect_ok(LISTENER);
    cr_expect_eq(cfg->timeouts.tunnel_idle, 3600000);
    jn_config_unref(cfg);
}

Test(config, tcp_listener_needs_a_known_upstream)
{
    cfg_expect_errors("listeners:\n  - { name: a, address: 127.0.0.1:80, protocol: tcp }\n", 1,
                      "t.yaml:2:5: missing required key 'upstream' in listener");
    cfg_expect_errors("listeners:\n"
                      "  - { name: a, address: 127.0.0.1:80, protocol: tcp, upstream: nope }\n"
                      TCP_UPSTREAM,
                      1, "t.yaml:2:64: upstream: unknown upstream 'nope'");
    cfg_expect_errors("listeners:\n  - { name: a, address: 127.0.0.1:80, protocol: udp }\n", 1,
                      "t.yaml:2:49: protocol: invalid value 'udp' (expected one of: http, tcp)");
    cfg_expect_errors("listeners:\n"
                      "  - { name: a, address: 127.0.0.1:80, protocol: tcp, upstream: db,\n"
                      "      proxy_protocol: v3 }\n" TCP_UPSTREAM,
                      1, "t.yaml:3:23: proxy_protocol: invalid value 'v3' (expected one of: v1, v2)");
}

Test(config, tcp_keys_on_an_http_listener_are_errors)
{
    cfg_expect_errors("listeners:\n"
                      "  - name: a\n"
                      "    address: 127.0.0.1:80\n"
                      "    upstream: db\n"
                      "    proxy_protocol: v1\n" TCP_UPSTREAM,
                      2, "t.yaml:4:5: upstream: only used with protocol: tcp",
                      "t.yaml:5:5: proxy_protocol: only used with protocol: tcp");
    cfg_expect_errors("listeners:\n"
                      "  - { name: a, address: 127.0.0.1:80, protocol: http, upstream: db }\n"
                      TCP_UPSTREAM,
                      1, "t.yaml:2:55: upstream: only used with protocol: tcp");
}

Test(config, routes_cannot_serve_a_tcp_listener)
{
    cfg_expect_errors("listeners:\n"
                      "  - { name: web, address: 127.0.0.1:80 }\n"
                      "  - { name: pg, address: 127.0.0.1:81, protocol: tcp, upstream: db }\n"
                      TCP_UPSTREAM "routes:\n  - { upstream: db, listeners: [web, pg] }\n",
                      1, "t.yaml:8:38: listeners: 'pg' is a tcp listener");
}

Test(config, tcp_listener_upstream_must_balance_without_http)
{
    cfg_expect_errors("listeners:\n"
                      "  - { name: a, address: 127.0.0.1:80, protocol: tcp, upstream: db }\n"
                      "upstreams:\n  db:\n    balance: consistent_hash\n    hash_key: path\n"
                      "    servers: [ { address: 127.0.0.1:5432 } ]\n",
                      1, "t.yaml:2:64: upstream: 'db' hashes a part of HTTP requests");
    cfg_expect_errors("listeners:\n"
                      "  - { name: a, address: 127.0.0.1:80, protocol: tcp, upstream: db }\n"
                      "upstreams:\n  db:\n    balance: ewma\n"
                      "    servers: [ { address: 127.0.0.1:5432 } ]\n",
                      1, "t.yaml:2:64: upstream: 'db' balances by HTTP response time");
    cfg_expect_errors("listeners:\n"
                      "  - { name: a, address: 127.0.0.1:80, protocol: tcp, upstream: db }\n"
                      "upstreams:\n  db:\n    sticky: { cookie: s }\n"
                      "    servers: [ { address: 127.0.0.1:5432 } ]\n",
                      1, "t.yaml:2:64: upstream: 'db' has sticky cookies");
    const char *ok[] = {"round_robin", "least_conn", "p2c", "random", "ip_hash"};
    for (size_t i = 0; i < JN_ARRAY_LEN(ok); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "listeners:\n"
                 "  - { name: a, address: 127.0.0.1:80, protocol: tcp, upstream: db }\n"
                 "upstreams:\n  db:\n    balance: %s\n"
                 "    servers: [ { address: 127.0.0.1:5432 } ]\n",
                 ok[i]);
        jn_config_unref(cfg_expect_ok(yaml));
    }
    jn_config_unref(cfg_expect_ok("listeners:\n"
                                  "  - { name: a, address: 127.0.0.1:80, protocol: tcp, upstream: db }\n"
                                  "upstreams:\n  db:\n    balance: consistent_hash\n"
                                  "    hash_key: client_ip\n"
                                  "    servers: [ { address: 127.0.0.1:5432 } ]\n"));
}

Test(config, unknown_upstream_is_reported_at_the_upstream_key)
{
    cfg_expect_errors(LISTENER "routes:\n  - upstream: nope\n", 1,
                      "t.yaml:4:5: upstream: unknown upstream 'nope'");
    /* Upstreams may come after the routes that name them. */
    struct jn_config *cfg = cfg_expect_ok(LISTENER "routes:\n  - upstream: later\n"
                                                   "upstreams:\n  later:\n    servers: "
                                                   "[ { address: 127.0.0.1:9 } ]\n");
    cr_expect_eq(cfg->routes[0].upstream, &cfg->upstreams[0]);
    jn_config_unref(cfg);
}

Test(config, yaml_syntax_errors_give_their_position)
{
    cfg_expect_errors("listeners:\n  - name: a\n   address: x\n", 1,
                      "t.yaml:3:4: YAML syntax error: did not find expected '-' indicator");
    cfg_expect_errors("http: { max_headers: 5\nlisteners: []\n", 1,
                      "t.yaml:2:10: YAML syntax error: did not find expected ',' or '}' "
                      "(while parsing a flow mapping that starts at line 1, column 7)");
    cfg_expect_errors("listeners:\n  - name: a\n    address: \"abc\n", 1,
                      "t.yaml:4:1: YAML syntax error: found unexpected end of stream");
    cfg_expect_errors("listeners: *nope\n", 1, "t.yaml:1:12: YAML syntax error: found undefined");
}

Test(config, invalid_bytes_give_their_position)
{
    cfg_expect_errors("listeners:\n  - name: a\n    address: \x01\n", 1,
                      "t.yaml:3:14: invalid input: control characters are not allowed");
    cfg_expect_errors("listeners:\n  - name: é\n    address: \xff\n", 1,
                      "t.yaml:3:14: invalid input: invalid leading UTF-8 octet");
}

Test(config, every_error_is_reported)
{
    struct jn_cfg_errors errs = {0};
    const char *yaml = "workers: lots\n"
                       "listeners:\n"
                       "  - { name: a, address: nowhere }\n"
                       "timeouts: { client_body: 1y }\n"
                       "http: { max_headers: 0, merge_slashes: maybe }\n"
                       "routes:\n"
                       "  - upstream: ghost\n"
                       "  - { respond: { status: 700 }, colour: blue }\n";
    cr_assert_null(cfg_load(yaml, &errs));
    cr_expect_eq(errs.count, 8);
    cr_expect(cfg_has(&errs, "t.yaml:1:10: workers: expected a number"));
    cr_expect(cfg_has(&errs, "t.yaml:3:25: address: invalid address 'nowhere'"));
    cr_expect(cfg_has(&errs, "t.yaml:4:26: client_body: invalid duration '1y'"));
    cr_expect(cfg_has(&errs, "t.yaml:5:22: max_headers: 0 is out of range"));
    cr_expect(cfg_has(&errs, "t.yaml:5:40: merge_slashes: expected true or false, got 'maybe'"));
    cr_expect(cfg_has(&errs, "t.yaml:7:5: upstream: unknown upstream 'ghost'"));
    cr_expect(cfg_has(&errs, "t.yaml:8:26: status: 700 is out of range"));
    cr_expect(cfg_has(&errs, "t.yaml:8:33: unknown key 'colour' in route"));
    jn_cfg_errors_free(&errs);
}

Test(config, wrong_types_are_errors)
{
    cfg_expect_errors("listeners: { name: a }\n", 1,
                      "t.yaml:1:12: listeners: expected a list, got a mapping");
    cfg_expect_errors("listeners:\n  - public\n", 1,
                      "t.yaml:2:5: listener: expected a mapping, got a string");
    cfg_expect_errors(LISTENER "timeouts: [1s]\n", 1,
                      "t.yaml:3:11: timeouts: expected a mapping, got a list");
    cfg_expect_errors(LISTENER "http: { max_headers: \"50\" }\n", 1,
                      "t.yaml:3:22: max_headers: expected an integer from 1 to 1000, got '50'");
    cfg_expect_errors(LISTENER "http: { merge_slashes: \"true\" }\n", 1,
                      "t.yaml:3:24: merge_slashes: expected true or false");
    cfg_expect_errors(LISTENER "http: { escaped_slashes: drop }\n", 1,
                      "t.yaml:3:26: escaped_slashes: invalid value 'drop' (expected one of: "
                      "keep, decode, reject)");
    cfg_expect_errors(LISTENER "access_log: { format: xml }\n", 1,
                      "t.yaml:3:23: format: invalid value 'xml'");
    cfg_expect_errors(LISTENER "error_log: { level: verbose, path: none }\n", 2,
                      "t.yaml:3:21: level: invalid value 'verbose'",
                      "t.yaml:3:36: path: the error log cannot be disabled");
    cfg_expect_errors(LISTENER "routes: { a: b }\n", 1,
                      "t.yaml:3:9: routes: expected a list, got a mapping");
    cfg_expect_errors(LISTENER "upstreams: [a]\n", 1,
                      "t.yaml:3:12: upstreams: expected a mapping of names, got a list");
    cfg_expect_errors(LISTENER "? [a]\n: b\n", 1,
                      "t.yaml:3:3: the configuration: expected a key name, got a list");
    cfg_expect_errors("- a\n", 1, "t.yaml:1:1: the configuration: expected a mapping, got a list");
    cfg_expect_errors("listeners:\n  - { name: \"a\\0b\", address: \":1\" }\n", 1,
                      "t.yaml:2:13: name: must not contain a NUL byte");
}

Test(config, log_settings)
{
    struct jn_config *cfg =
        cfg_expect_ok(LISTENER "access_log: { path: none }\nerror_log: { level: error }\n");
    cr_expect_str_eq(cfg->access_log.path, "none");
    cr_expect_eq(cfg->error_log.level, JN_LOG_ERR);
    jn_config_unref(cfg);
    cfg = cfg_expect_ok(LISTENER "error_log: { level: warn, path: /tmp/j.log }\n");
    cr_expect_eq(cfg->error_log.level, JN_LOG_WARN);
    cr_expect_str_eq(cfg->error_log.path, "/tmp/j.log");
    jn_config_unref(cfg);
}

#define UPSTREAM_U "upstreams: { u: { servers: [ { address: 127.0.0.1:9 } ] } }\n"

Test(config, upstream_checks)
{
    cfg_expect_errors(LISTENER "upstreams:\n  u:\n    balance: fastest\n    servers: []\n", 2,
                      "t.yaml:5:14: balance: unknown algorithm 'fastest'",
                      "t.yaml:6:14: servers: an upstream needs at least one server");
    cfg_expect_errors(LISTENER "upstreams:\n  u: { keepalive: 10001 }\n", 2,
                      "t.yaml:4:19: keepalive: 10001 is out of range",
                      "t.yaml:4:6: missing required key 'servers' in upstream");
    cfg_expect_errors(LISTENER "upstreams:\n  u:\n    servers:\n"
                               "      - { address: 127.0.0.1:9001, weight: 0 }\n"
                               "      - { address: 127.0.0.1:9002, weight: 1001 }\n"
                               "      - { address: \"localhost:9001\" }\n",
                      3, "t.yaml:6:44: weight: 0 is out of range (1 to 1000)",
                      "t.yaml:7:44: weight: 1001 is out of range",
                      "t.yaml:8:20: duplicate server address '127.0.0.1:9001' (first at line 6)");
    cfg_expect_errors(LISTENER
                      "upstreams:\n  \"bad name\": { servers: [ { address: \"[::1]:1\" } ] }\n"
                      "  u: { servers: [ { address: \"[::1]:1\" } ] }\n"
                      "  u: { servers: [ { address: \"[::1]:2\" } ] }\n",
                      2, "t.yaml:4:3: upstream name: invalid name 'bad name'",
                      "t.yaml:6:3: duplicate upstream 'u' (first at line 5)");
}

/* An upstream u with the given keys (each line indented by four spaces). */
#define HASH_UP(keys)                                                                              \
    LISTENER "upstreams:\n  u:\n" keys "    servers: [ { address: 127.0.0.1:9 } ]\n"

Test(config, hashing_keys_load_with_their_defaults)
{
    struct jn_config *cfg = cfg_expect_ok(HASH_UP("    balance: consistent_hash\n"
                                                  "    hash_key: header:X-User\n"
                                                  "    hash_table_size: 1000003\n"
                                                  "    hash_balance_factor: 125\n"));
    cr_expect_str_eq(cfg->upstreams[0].hash_key, "header:X-User");
    cr_expect_eq(cfg->upstreams[0].hash_table_size, 1000003);
    cr_expect_eq(cfg->upstreams[0].hash_balance_factor, 125);
    jn_config_unref(cfg);
    cfg = cfg_expect_ok(HASH_UP("    balance: ip_hash\n"));
    cr_expect_str_eq(cfg->upstreams[0].hash_key, "client_ip", "ip_hash implies client_ip");
    cr_expect_eq(cfg->upstreams[0].hash_table_size, 65537);
    cr_expect_eq(cfg->upstreams[0].hash_balance_factor, 0);
    jn_config_unref(cfg);
    cfg = cfg_expect_ok(HASH_UP("    hash_key: client_ip\n    balance: ip_hash\n"));
    jn_config_unref(cfg);
    cfg = cfg_expect_ok(LISTENER UPSTREAM_U);
    cr_expect_null(cfg->upstreams[0].hash_key);
    jn_config_unref(cfg);
    static const char *const keys[] = {"client_ip", "path", "cookie:sid", "query:user id"};
    for (size_t i = 0; i < JN_ARRAY_LEN(keys); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 HASH_UP("    balance: consistent_hash\n    hash_key: \"%s\"\n"), keys[i]);
        jn_config_unref(cfg_expect_ok(yaml));
    }
}

Test(config, hashing_keys_are_checked_at_their_position)
{
    cfg_expect_errors(HASH_UP("    balance: consistent_hash\n"), 1,
                      "t.yaml:5:14: balance: consistent_hash needs a hash_key");
    cfg_expect_errors(HASH_UP("    hash_key: path\n    balance: round_robin\n"), 1,
                      "t.yaml:5:5: hash_key: only used by balance: consistent_hash or ip_hash");
    cfg_expect_errors(HASH_UP("    hash_table_size: 65537\n    hash_balance_factor: 150\n"), 2,
                      "t.yaml:5:5: hash_table_size: only used by balance: consistent_hash",
                      "t.yaml:6:5: hash_balance_factor: only used by balance: consistent_hash");
    cfg_expect_errors(HASH_UP("    balance: ip_hash\n    hash_key: path\n"), 1,
                      "t.yaml:6:15: hash_key: ip_hash always hashes client_ip");
    cfg_expect_errors(HASH_UP("    balance: consistent_hash\n    hash_key: \"header:\"\n"), 1,
                      "t.yaml:6:15: hash_key: invalid value 'header:'");
    cfg_expect_errors(HASH_UP("    balance: consistent_hash\n    hash_key: \"cookie:a b\"\n"), 1,
                      "t.yaml:6:15: hash_key: invalid value 'cookie:a b'");
    cfg_expect_errors(HASH_UP("    balance: consistent_hash\n    hash_key: ip\n"), 1,
                      "t.yaml:6:15: hash_key: invalid value 'ip'");
    cfg_expect_errors(HASH_UP("    balance: ip_hash\n    hash_table_size: 65536\n"), 1,
                      "t.yaml:6:22: hash_table_size: 65536 is not a prime number");
    cfg_expect_errors(HASH_UP("    balance: ip_hash\n    hash_table_size: 5\n"), 1,
                      "t.yaml:6:22: hash_table_size: 5 is out of range (7 to 1000003)");
    cfg_expect_errors(HASH_UP("    balance: ip_hash\n    hash_table_size: 1000033\n"), 1,
                      "t.yaml:6:22: hash_table_size: 1000033 is out of range");
    cfg_expect_errors(HASH_UP("    balance: ip_hash\n    hash_balance_factor: 99\n"), 1,
                      "t.yaml:6:26: hash_balance_factor: 99 is below 100");
}

Test(config, route_needs_exactly_one_target)
{
    cfg_expect_errors(LISTENER UPSTREAM_U "routes:\n  - name: both\n    upstream: u\n"
                                          "    respond: { status: 204 }\n",
                      1, "t.yaml:7:5: route: use either upstream or respond, not both");
    cfg_expect_errors(LISTENER "routes:\n  - name: neither\n    priority: 3\n", 1,
                      "t.yaml:4:5: route 'neither': needs either upstream or respond");
}

Test(config, one_path_matcher_per_route)
{
    cfg_expect_errors(LISTENER "routes:\n"
                               "  - match: { path: /a, path_prefix: /b, path_regex: c }\n"
                               "    respond: {}\n",
                      2, "t.yaml:4:24: match: path_prefix cannot be combined with path",
                      "t.yaml:4:41: match: path_regex cannot be combined with path");
    cfg_expect_errors(LISTENER "routes:\n  - { match: { path_regex: \"\" }, respond: {} }\n", 1,
                      "t.yaml:4:28: path_regex: must not be empty");
}

Test(config, paths_must_be_reachable_by_normalised_requests)
{
    struct jn_config *cfg = cfg_expect_ok(
        LISTENER "routes:\n"
                 "  - { match: { path: \"/a/b%2Fc/x;y=1/@:~!$&'()*+,=\" }, respond: {} }\n"
                 "  - { match: { path_prefix: /users/ }, respond: {} }\n"
                 "  - { match: { path: / }, strip_prefix: /, respond: {} }\n"
                 "  - { match: { path: \"/%C3%A9\" }, respond: {} }\n");
    cr_expect_str_eq(cfg->routes[1].match.path_prefix, "/users/");
    jn_config_unref(cfg);
    static const struct {
        const char *path;
        const char *why;
    } bad[] = {
        {"users", "path must start with '/'"},
        {"/a/../b", "path must not contain '.' or '..'"},
        {"/a/./b", "path must not contain '.' or '..'"},
        {"/a/..", "path must not contain '.' or '..'"},
        {"/a//b", "path contains '//'"},
        {"/a?b=1", "path must not contain '?' or '#'"},
        {"/a#top", "path must not contain '?' or '#'"},
        {"/a b", "path must not contain spaces"},
        {"/caf\xc3\xa9", "path must not contain spaces, control or non-ASCII"},
        {"/%7Euser", "path must not percent-encode letters"},
        {"/%41", "path must not percent-encode letters"},
        {"/%c3%a9", "path percent-encodings must use upper-case"},
        {"/%G1", "path has an invalid percent-encoding"},
        {"/%2", "path has an invalid percent-encoding"},
        {"/%00", "path must not contain %00"},
        {"/a[1]", "path contains a character requests cannot have"},
        {"/a\\\\b", "path contains a character requests cannot have"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[256], want[256];
        snprintf(yaml, sizeof(yaml),
                 LISTENER "routes:\n  - respond: {}\n    match:\n"
                          "      path_prefix: \"%s\"\n",
                 bad[i].path);
        snprintf(want, sizeof(want), "t.yaml:6:20: path_prefix: ");
        cfg_expect_errors(yaml, 1, want);
        struct jn_cfg_errors errs = {0};
        cr_expect_null(cfg_load(yaml, &errs));
        cr_expect(errs.count == 1 && strstr(errs.msgs[0], bad[i].why) != NULL, "%s: got \"%s\"",
                  bad[i].path, errs.count ? errs.msgs[0] : "");
        jn_cfg_errors_free(&errs);
    }
    /* Options change what a request path can look like. */
    cfg = cfg_expect_ok(LISTENER "http: { merge_slashes: false }\n"
                                 "routes: [ { match: { path: //a }, respond: {} } ]\n");
    jn_config_unref(cfg);
    cfg_expect_errors(LISTENER "http: { escaped_slashes: decode }\n"
                               "routes: [ { match: { path: /a%2Fb }, respond: {} } ]\n",
                      1, "t.yaml:4:28: path: '/a%2Fb': path contains %2F");
    cfg_expect_errors(LISTENER "routes: [ { strip_prefix: api, respond: {} } ]\n", 1,
                      "t.yaml:3:27: strip_prefix: 'api': path must start with '/'");
}

Test(config, hosts_are_lowercased_names_or_wildcards)
{
    struct jn_config *cfg =
        cfg_expect_ok(LISTENER "routes:\n"
                               "  - { match: { host: API.Example.COM }, respond: {} }\n"
                               "  - { match: { host: \"*.Shop.test\" }, respond: {} }\n"
                               "  - { match: { host: 10.0.0.1 }, respond: {} }\n"
                               "  - { match: { host: my_host-1 }, respond: {} }\n");
    cr_expect_str_eq(cfg->routes[0].match.host, "api.example.com");
    cr_expect_str_eq(cfg->routes[1].match.host, "*.shop.test");
    jn_config_unref(cfg);
    static const char *const bad[] = {
        "example.com:8080",
        "\"*\"",
        "\"*.\"",
        "a.*.com",
        "\"*example.com\"",
        "a..b",
        ".a",
        "a.",
        "\"[::1]\"",
        "\"a b\"",
        "\"caf\xc3\xa9.fr\"",
        "\"\"",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), LISTENER "routes:\n  - { respond: {}, match: { host: %s } }\n",
                 bad[i]);
        cfg_expect_errors(yaml, 1, "t.yaml:4:35: host: ");
    }
}

Test(config, methods_are_tokens_stored_upper_case)
{
    struct jn_config *cfg = cfg_expect_ok(
        LISTENER "routes: [ { match: { methods: [get, Purge, M-SEARCH] }, respond: {} } ]\n");
    const struct jn_cfg_match *m = &cfg->routes[0].match;
    cr_assert_eq(m->nmethods, 3);
    cr_expect_str_eq(m->methods[0], "GET");
    cr_expect_str_eq(m->methods[1], "PURGE");
    cr_expect_str_eq(m->methods[2], "M-SEARCH");
    jn_config_unref(cfg);
    cfg_expect_errors(LISTENER "routes:\n  - respond: {}\n    match: { methods: [GET, \"G T\", "
                               "get, [x]] }\n",
                      3, "t.yaml:5:29: methods: 'G T' is not a valid method name",
                      "t.yaml:5:36: duplicate methods 'GET' (first at line 5)",
                      "t.yaml:5:41: methods: expected a string, got a list");
    cfg_expect_errors(LISTENER "routes: [ { match: { methods: [] }, respond: {} } ]\n", 1,
                      "t.yaml:3:31: methods: must not be empty");
}

Test(config, headers_must_be_safe_to_send)
{
    cfg_expect_errors(LISTENER "routes:\n  - respond: {}\n"
                               "    request_headers:\n"
                               "      set: { \"Bad Name\": x, X-A: \"a\\r\\nInjected: 1\" }\n"
                               "      add: { X-B: \"\\x01\", Content-Length: \"5\" }\n"
                               "      remove: [ \"X:Y\" ]\n",
                      5, "t.yaml:6:14: set: invalid header name 'Bad Name'",
                      "t.yaml:6:34: set: X-A: header value must not contain CR, LF or NUL",
                      "t.yaml:7:19: add: X-B: header value must not contain control characters",
                      "t.yaml:7:27: add: Content-Length is computed by the gateway",
                      "t.yaml:8:17: remove: 'X:Y' is not a valid header name");
    cfg_expect_errors(LISTENER
                      "routes:\n  - respond: { headers: { Transfer-Encoding: chunked } }\n",
                      1, "t.yaml:4:27: headers: Transfer-Encoding is computed by the gateway");
    cfg_expect_errors(LISTENER "routes:\n  - respond: {}\n"
                               "    response_headers: { set: { X-A: 1, x-a: 2 } }\n",
                      1, "t.yaml:5:40: duplicate header 'x-a' (first at line 5)");
    cfg_expect_errors(LISTENER "routes:\n  - respond: {}\n"
                               "    match: { headers: { X-A: [1] }, query: { \"\": x } }\n",
                      2, "t.yaml:5:30: headers: expected a header value, got a list",
                      "t.yaml:5:46: query: parameter names must not be empty");
    struct jn_config *cfg = cfg_expect_ok(
        LISTENER "routes:\n  - respond: {}\n"
                 "    match: { headers: { X-Num: 2, X-Bool: true, Content-Length: \"0\" } }\n"
                 "    request_headers: { set: { X-Tab: \"a\\tb\" }, add: { X-Empty: \"\" } }\n");
    const struct jn_cfg_route *r = &cfg->routes[0];
    cr_expect_str_eq(cfg_kv(r->match.headers, r->match.nheaders, "X-Num"), "2");
    cr_expect_str_eq(cfg_kv(r->match.headers, r->match.nheaders, "X-Bool"), "true");
    cr_expect_str_eq(cfg_kv(r->request_headers.set, r->request_headers.nset, "X-Tab"), "a\tb");
    cr_expect_eq(r->request_headers.add[0].value_len, 0);
    jn_config_unref(cfg);
}

Test(config, respond_body_keeps_its_bytes)
{
    struct jn_config *cfg =
        cfg_expect_ok(LISTENER "routes: [ { respond: { status: 418, body: \"a\\0b\" } } ]\n");
    const struct jn_cfg_respond *r = &cfg->routes[0].respond;
    cr_expect_eq(r->status, 418);
    cr_assert_eq(r->body_len, 3);
    cr_expect_eq(memcmp(r->body, "a\0b", 3), 0);
    jn_config_unref(cfg);
    cfg_expect_errors(LISTENER "routes: [ { respond: { status: 204, body: x } } ]\n", 1,
                      "t.yaml:3:43: body: a 204 response cannot have a body");
    cfg_expect_errors(LISTENER "routes: [ { respond: { status: 99 } } ]\n", 1,
                      "t.yaml:3:32: status: 99 is out of range (100 to 599)");
}

Test(config, rewrite_needs_pattern_and_replace)
{
    cfg_expect_errors(LISTENER UPSTREAM_U "routes:\n  - upstream: u\n    rewrite: { pattern: x }\n",
                      1, "t.yaml:6:14: missing required key 'replace' in rewrite");
    cfg_expect_errors(LISTENER UPSTREAM_U
                      "routes:\n  - upstream: u\n    rewrite: { pattern: x, replace: \"/\\n\" }\n",
                      1, "t.yaml:6:37: replace: must not contain control characters");
}

Test(config, route_names_are_unique)
{
    cfg_expect_errors(LISTENER "routes:\n"
                               "  - { name: a, respond: {} }\n"
                               "  - { respond: {} }\n"
                               "  - { name: a, respond: {} }\n"
                               "  - { name: route-1, respond: {} }\n"
                               "  - { name: \"a/b\", respond: {} }\n",
                      3, "t.yaml:6:13: duplicate route name 'a' (first at line 4)",
                      "t.yaml:7:13: duplicate route name 'route-1' (first at line 5)",
                      "t.yaml:8:13: name: invalid name 'a/b'");
}

Test(config, route_listeners_name_existing_listeners)
{
    const char *two = "listeners:\n  - { name: a, address: \":1\" }\n"
                      "  - { name: b, address: \":2\" }\n";
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "%sroutes:\n  - { listeners: [b], respond: {} }\n", two);
    struct jn_config *cfg = cfg_expect_ok(yaml);
    cr_assert_eq(cfg->routes[0].nlisteners, 1);
    cr_expect_str_eq(cfg->routes[0].listeners[0], "b");
    jn_config_unref(cfg);
    snprintf(yaml, sizeof(yaml),
             "%sroutes:\n  - { listeners: [a, c, a], respond: {} }\n"
             "  - { listeners: [], respond: {} }\n",
             two);
    cfg_expect_errors(yaml, 3, "t.yaml:5:22: listeners: 'c' is not a listener name",
                      "t.yaml:5:25: duplicate listeners 'a' (first at line 5)",
                      "t.yaml:6:18: listeners: must not be empty");
}

/* ---- documents, aliases, files, lifetime ---- */

Test(config, aliases_are_followed)
{
    struct jn_config *cfg =
        cfg_expect_ok(LISTENER "upstreams:\n"
                               "  a: &pool { servers: [ { address: \"127.0.0.1:9\" } ] }\n"
                               "  b: *pool\n");
    cr_expect_eq(cfg->nupstreams, 2);
    cr_expect_str_eq(cfg->upstreams[1].servers[0].address, "127.0.0.1:9");
    jn_config_unref(cfg);
    /* A node that contains itself is walked once per schema level, not forever. */
    cfg_expect_errors(LISTENER "routes: [ &r { respond: {}, match: *r } ]\n", 1,
                      "t.yaml:3:16: unknown key 'respond' in match");
    cfg_expect_errors(LISTENER "routes: &l [ *l ]\n", 1,
                      "t.yaml:3:9: route: expected a mapping, got a list");
}

Test(config, alias_expansion_is_bounded)
{
    /* 1000 routes sharing a list of 1000 methods: a million visits from a
     * few kilobytes. Products like this grow with every level of aliases. */
    size_t cap = 64 * 1024, o;
    char *yaml = malloc(cap);
    cr_assert_not_null(yaml);
    o = (size_t)snprintf(yaml, cap, LISTENER "routes:\n  - &r { respond: {}, match: { methods: [");
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "%sM%d", i ? "," : "", i);
    o += (size_t)snprintf(yaml + o, cap - o, "] } }\n");
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "  - *r\n");
    struct jn_cfg_errors errs = {0};
    cr_expect_null(cfg_load(yaml, &errs));
    cr_expect_eq(errs.count, 1);
    cr_expect(cfg_has(&errs, "t.yaml:1:1: document too complex"));
    jn_cfg_errors_free(&errs);
    free(yaml);
}

Test(config, only_one_document)
{
    cfg_expect_errors(LISTENER "---\nworkers: 2\n", 1,
                      "t.yaml:4:1: only one YAML document is allowed");
    struct jn_config *cfg = cfg_expect_ok("---\n" LISTENER "...\n");
    jn_config_unref(cfg);
}

Test(config, errors_without_a_list_still_fail)
{
    cr_expect_null(cfg_load("workers: 0\n" LISTENER, NULL));
    cr_expect_null(jn_config_load_file("/nonexistent/junction.yaml", NULL));
    cr_expect_null(jn_config_load_buffer(NULL, NULL, 0, NULL));
}

Test(config, error_list_is_capped)
{
    size_t cap = 256 * 1024, o;
    char *yaml = malloc(cap);
    cr_assert_not_null(yaml);
    o = (size_t)snprintf(yaml, cap, LISTENER "routes:\n");
    for (int i = 0; i < 1500; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "  - { priority: x, respond: {} }\n");
    struct jn_cfg_errors errs = {0};
    cr_expect_null(cfg_load(yaml, &errs));
    cr_assert_eq(errs.count, 1000);
    cr_expect_str_eq(errs.msgs[999], "t.yaml:1003:17: too many errors; the rest are not reported");
    jn_cfg_errors_free(&errs);
    free(yaml);
}

Test(config, error_format)
{
    struct jn_cfg_errors errs = {0};
    jn_cfg_error(&errs, (struct jn_cfg_pos){"a.yaml", 3, 7}, "bad %s %d", "thing", 42);
    jn_cfg_error(&errs, (struct jn_cfg_pos){"a.yaml", 0, 0}, "cannot open");
    jn_cfg_error(&errs, (struct jn_cfg_pos){NULL, 1, 1}, "x");
    jn_cfg_error(NULL, (struct jn_cfg_pos){"a.yaml", 1, 1}, "ignored");
    cr_assert_eq(errs.count, 3);
    cr_expect_str_eq(errs.msgs[0], "a.yaml:3:7: bad thing 42");
    cr_expect_str_eq(errs.msgs[1], "a.yaml: cannot open");
    cr_expect_str_eq(errs.msgs[2], "<config>:1:1: x");
    jn_cfg_errors_free(&errs);
    cr_expect_eq(errs.count, 0);
    cr_expect_null(errs.msgs);
    jn_cfg_errors_free(&errs);
}

Test(config, load_file_names_the_file)
{
    char path[] = "/tmp/jn-test-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char yaml[] = LISTENER "workers: nope\n";
    cr_assert_eq(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)(sizeof(yaml) - 1));
    close(fd);
    struct jn_cfg_errors errs = {0};
    cr_expect_null(jn_config_load_file(path, &errs));
    cr_assert_eq(errs.count, 1);
    char want[128];
    snprintf(want, sizeof(want), "%s:3:10: workers:", path);
    cr_expect(cfg_has(&errs, want), "%s", errs.msgs[0]);
    jn_cfg_errors_free(&errs);

    cr_expect_null(jn_config_load_file("/nonexistent/junction.yaml", &errs));
    cr_expect(cfg_has(&errs, "/nonexistent/junction.yaml: cannot open: "));
    jn_cfg_errors_free(&errs);
    unlink(path);
}

Test(config, snapshot_lives_until_the_last_reference)
{
    struct jn_config *cfg = cfg_expect_ok(LISTENER);
    jn_config_ref(cfg);
    jn_config_ref(cfg);
    cr_expect_eq(cfg->refs, 3);
    jn_config_unref(cfg);
    jn_config_unref(cfg);
    cr_expect_eq(cfg->refs, 1);
    cr_expect_str_eq(cfg->listeners[0].name, "public"); /* still alive */
    jn_config_unref(cfg);                               /* freed: ASan would see a leak */
    jn_config_unref(NULL);
}

Test(config, router_errors_fail_the_load)
{
    struct jn_cfg_errors errs = {0};
    cr_expect_null(
        cfg_load(LISTENER "routes: [ { match: { path_regex: \"(\" }, respond: {} } ]\n", &errs));
    cr_expect_geq(errs.count, 1);
    jn_cfg_errors_free(&errs);
}

Test(config, shipped_example_loads)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = jn_config_load_file("examples/junction.yaml", &errs);
    if (cfg == NULL)
        cfg_dump(&errs);
    cr_assert_not_null(cfg);
    cr_expect_eq(cfg->nlisteners, 3);
    const struct jn_cfg_route *users = cfg_route(cfg, "users");
    cr_expect_str_eq(users->match.path_prefix, "/users");
    cr_assert_not_null(users->upstream);
    cr_expect_eq(users->upstream->nservers, 2);
    cr_expect_eq(users->upstream->servers[0].weight, 2);
    cr_expect_str_eq(cfg_route(cfg, "health")->respond.body, "ok\n");
    cr_expect_str_eq(cfg_route(cfg, "demo-a")->respond.body, "hello from demo-a\n");
    cr_expect_str_eq(cfg_route(cfg, "demo-b")->listeners[0], "demo-b");
    jn_config_unref(cfg);
}
