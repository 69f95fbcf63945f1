/* Unit tests of the router (src/route/router.c) and upstream paths
 * (src/route/rewrite.c), on configurations built by hand. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/arena.h"
#include "route/router.h"

#ifdef JN_ROUTER_TEST_STUBS
/* Stand-ins for src/config's error list, so that this file builds with the
 * router alone. */
void jn_cfg_error(struct jn_cfg_errors *errs, struct jn_cfg_pos pos, const char *fmt, ...)
{
    char msg[1024], line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s:%u:%u: %s", pos.file ? pos.file : "?", pos.line, pos.column,
             msg);
    if (errs->count == errs->cap) {
        errs->cap = errs->cap ? 2 * errs->cap : 8;
        errs->msgs = realloc(errs->msgs, errs->cap * sizeof(*errs->msgs));
    }
    errs->msgs[errs->count++] = strdup(line);
}

void jn_cfg_errors_free(struct jn_cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    memset(errs, 0, sizeof(*errs));
}
#endif

/* ---- fixture: a configuration built by hand ------------------------------ */

#define RT_MAX_ROUTES 6000

static struct jn_config rt_cfg;
static struct jn_cfg_errors rt_errs;
static struct jn_router *rt_router;

static void rt_setup(void)
{
    memset(&rt_cfg, 0, sizeof(rt_cfg));
    memset(&rt_errs, 0, sizeof(rt_errs));
    rt_router = NULL;
    jn_arena_init(&rt_cfg.arena, 0);
    rt_cfg.file = "test.yaml";
    rt_cfg.routes = jn_arena_calloc(&rt_cfg.arena, RT_MAX_ROUTES, sizeof(*rt_cfg.routes));
    cr_assert_not_null(rt_cfg.routes);
}

/* Frees what the snapshot would: the router, the compiled regexes, the arena. */
static void rt_teardown(void)
{
    jn_router_free(rt_router);
    for (size_t i = 0; i < rt_cfg.nroutes; i++) {
        pcre2_code_free(rt_cfg.routes[i].match.regex);
        pcre2_code_free(rt_cfg.routes[i].rewrite.regex);
    }
    jn_arena_free(&rt_cfg.arena);
    jn_cfg_errors_free(&rt_errs);
}

TestSuite(router, .init = rt_setup, .fini = rt_teardown);

static char *S(const char *s)
{
    return s ? jn_arena_strdup(&rt_cfg.arena, s) : NULL;
}

/* Appends a route on line (10 * its number), the way the loader numbers them. */
static struct jn_cfg_route *route_add(const char *name)
{
    cr_assert_lt(rt_cfg.nroutes, RT_MAX_ROUTES);
    struct jn_cfg_route *r = &rt_cfg.routes[rt_cfg.nroutes];
    r->name = S(name);
    r->index = rt_cfg.nroutes;
    r->pos = (struct jn_cfg_pos){"test.yaml", (uint32_t)(10 * (rt_cfg.nroutes + 1)), 3};
    rt_cfg.nroutes++;
    return r;
}

static struct jn_cfg_route *route_path(const char *name, const char *host, const char *path)
{
    struct jn_cfg_route *r = route_add(name);
    r->match.host = S(host);
    r->match.path = S(path);
    return r;
}

static struct jn_cfg_route *route_prefix(const char *name, const char *host, const char *prefix)
{
    struct jn_cfg_route *r = route_add(name);
    r->match.host = S(host);
    r->match.path_prefix = S(prefix);
    return r;
}

static struct jn_cfg_route *route_regex(const char *name, const char *host, const char *regex)
{
    struct jn_cfg_route *r = route_add(name);
    r->match.host = S(host);
    r->match.path_regex = S(regex);
    return r;
}

/* Sets the methods from a NULL-terminated list. */
static void route_methods(struct jn_cfg_route *r, ...)
{
    va_list ap;
    va_start(ap, r);
    r->match.methods = jn_arena_calloc(&rt_cfg.arena, 8, sizeof(char *));
    for (const char *m; (m = va_arg(ap, const char *)) != NULL;)
        r->match.methods[r->match.nmethods++] = S(m);
    va_end(ap);
}

static void kv_add(struct jn_cfg_kv **kv, size_t *n, const char *name, const char *value)
{
    struct jn_cfg_kv *grown = jn_arena_calloc(&rt_cfg.arena, *n + 1, sizeof(*grown));
    if (*n)
        memcpy(grown, *kv, *n * sizeof(*grown));
    grown[*n] = (struct jn_cfg_kv){S(name), S(value), value ? strlen(value) : 0};
    *kv = grown;
    (*n)++;
}

static void route_header(struct jn_cfg_route *r, const char *name, const char *value)
{
    kv_add(&r->match.headers, &r->match.nheaders, name, value);
}

static void route_query(struct jn_cfg_route *r, const char *name, const char *value)
{
    kv_add(&r->match.query, &r->match.nquery, name, value);
}

static void route_listeners(struct jn_cfg_route *r, const char *a, const char *b)
{
    r->listeners = jn_arena_calloc(&rt_cfg.arena, 2, sizeof(char *));
    r->listeners[r->nlisteners++] = S(a);
    if (b)
        r->listeners[r->nlisteners++] = S(b);
}

static void build_ok(void)
{
    rt_router = jn_router_build(&rt_cfg, &rt_errs);
    cr_assert_not_null(rt_router, "build failed: %s", rt_errs.count ? rt_errs.msgs[0] : "?");
    cr_assert_eq(rt_errs.count, 0);
}

/* Builds and expects exactly one error containing want. */
static void build_fails_with(const char *want)
{
    rt_router = jn_router_build(&rt_cfg, &rt_errs);
    cr_assert_null(rt_router);
    cr_assert_eq(rt_errs.count, 1, "%zu errors", rt_errs.count);
    cr_assert(strstr(rt_errs.msgs[0], want) != NULL, "got: %s", rt_errs.msgs[0]);
}

/* ---- requests ------------------------------------------------------------ */

struct rt_req {
    struct jn_http_request req;
    struct jn_http_field fields[8];
};

static struct jn_slice sl(const char *s)
{
    return (struct jn_slice){s, s ? strlen(s) : 0};
}

static void req_init(struct rt_req *q, const char *method, const char *host, const char *path,
                     const char *query)
{
    memset(q, 0, sizeof(*q));
    q->req.method = sl(method);
    q->req.host = sl(host);
    q->req.path = sl(path);
    q->req.query = sl(query ? query : "");
    q->req.fields = q->fields;
}

static void req_header(struct rt_req *q, const char *name, const char *value)
{
    q->fields[q->req.nfields++] = (struct jn_http_field){sl(name), sl(value)};
}

static const char *name_of(const struct jn_cfg_route *r)
{
    return r ? r->name : "(none)";
}

static const char *route_for(const struct rt_req *q)
{
    return name_of(jn_router_match(rt_router, &q->req));
}

/* The name of the route for a GET without headers, "(none)" without one. */
static const char *match(const char *host, const char *path)
{
    struct rt_req q;
    req_init(&q, "GET", host, path, NULL);
    return route_for(&q);
}

static const char *match_query(const char *path, const char *query)
{
    struct rt_req q;
    req_init(&q, "GET", "h.test", path, query);
    return route_for(&q);
}

/* ---- path matchers and their order -------------------------------------- */

Test(router, exact_path_beats_prefix_and_regex)
{
    route_regex("regex", NULL, "^/users/.*$");
    route_prefix("prefix", NULL, "/users");
    route_path("exact", NULL, "/users/me");
    route_add("any");
    build_ok();
    cr_assert_str_eq(match("h.test", "/users/me"), "exact");
    cr_assert_str_eq(match("h.test", "/users/you"), "prefix");
    cr_assert_str_eq(match("h.test", "/other"), "any");
}

Test(router, prefix_beats_regex_and_regex_beats_no_path)
{
    route_add("any");
    route_regex("regex", NULL, "^/api/v[0-9]+/");
    route_prefix("prefix", NULL, "/api/v1");
    build_ok();
    cr_assert_str_eq(match("h.test", "/api/v1/x"), "prefix");
    cr_assert_str_eq(match("h.test", "/api/v2/x"), "regex");
    cr_assert_str_eq(match("h.test", "/api/vx/x"), "any");
}

Test(router, exact_path_matches_only_the_whole_path)
{
    route_path("exact", NULL, "/a/b");
    build_ok();
    cr_assert_str_eq(match("h.test", "/a/b"), "exact");
    cr_assert_str_eq(match("h.test", "/a/b/"), "(none)");
    cr_assert_str_eq(match("h.test", "/a"), "(none)");
    cr_assert_str_eq(match("h.test", "/A/B"), "(none)");
}

Test(router, longest_prefix_wins)
{
    route_prefix("root", NULL, "/");
    route_prefix("a", NULL, "/a");
    route_prefix("abc", NULL, "/a/b/c");
    route_prefix("ab", NULL, "/a/b");
    build_ok();
    cr_assert_str_eq(match("h.test", "/a/b/c/d"), "abc");
    cr_assert_str_eq(match("h.test", "/a/b/x"), "ab");
    cr_assert_str_eq(match("h.test", "/a/x"), "a");
    cr_assert_str_eq(match("h.test", "/x"), "root");
    cr_assert_str_eq(match("h.test", "/"), "root");
}

Test(router, prefix_matches_on_segment_boundaries)
{
    route_prefix("users", NULL, "/users");
    build_ok();
    cr_assert_str_eq(match("h.test", "/users"), "users");
    cr_assert_str_eq(match("h.test", "/users/"), "users");
    cr_assert_str_eq(match("h.test", "/users/1"), "users");
    cr_assert_str_eq(match("h.test", "/users/1/posts"), "users");
    cr_assert_str_eq(match("h.test", "/usersx"), "(none)");
    cr_assert_str_eq(match("h.test", "/user"), "(none)");
    cr_assert_str_eq(match("h.test", "/"), "(none)");
}

Test(router, prefix_with_trailing_slash_needs_more_path)
{
    route_prefix("users-slash", NULL, "/users/");
    build_ok();
    cr_assert_str_eq(match("h.test", "/users/"), "users-slash");
    cr_assert_str_eq(match("h.test", "/users/1"), "users-slash");
    cr_assert_str_eq(match("h.test", "/users"), "(none)");
    cr_assert_str_eq(match("h.test", "/usersx/1"), "(none)");
}

Test(router, prefix_with_trailing_slash_is_longer_than_without)
{
    route_prefix("plain", NULL, "/users");
    route_prefix("slash", NULL, "/users/");
    route_prefix("deeper", NULL, "/users/1");
    build_ok();
    cr_assert_str_eq(match("h.test", "/users"), "plain");
    cr_assert_str_eq(match("h.test", "/users/"), "slash");
    cr_assert_str_eq(match("h.test", "/users/2"), "slash");
    cr_assert_str_eq(match("h.test", "/users/1"), "deeper");
    cr_assert_str_eq(match("h.test", "/users/1/x"), "deeper");
}

Test(router, root_prefix_matches_everything)
{
    route_prefix("root", NULL, "/");
    build_ok();
    cr_assert_str_eq(match("h.test", "/"), "root");
    cr_assert_str_eq(match("h.test", "/anything/at/all"), "root");
    cr_assert_str_eq(match("h.test", "//x"), "root");
}

Test(router, empty_segments_are_matched_literally)
{
    route_prefix("a-empty", NULL, "/a//b");
    route_prefix("double", NULL, "//");
    build_ok();
    cr_assert_str_eq(match("h.test", "/a//b/c"), "a-empty");
    cr_assert_str_eq(match("h.test", "/a/b/c"), "(none)");
    cr_assert_str_eq(match("h.test", "//x"), "double");
    cr_assert_str_eq(match("h.test", "/x"), "(none)");
}

Test(router, regexes_are_tried_in_file_order)
{
    route_regex("first", NULL, "^/a");
    route_regex("second", NULL, "^/a/b");
    route_regex("hi-prio-later", NULL, "^/a/b/c");
    rt_cfg.routes[2].priority = 100;
    build_ok();
    cr_assert_str_eq(match("h.test", "/a/b/c"), "first");
    cr_assert_str_eq(match("h.test", "/x"), "(none)");
}

Test(router, regex_is_unanchored_unless_written_so)
{
    route_regex("admin", NULL, "/admin");
    build_ok();
    cr_assert_str_eq(match("h.test", "/x/admin/y"), "admin");
}

Test(router, a_more_specific_path_matcher_wins_over_priority)
{
    route_prefix("prefix-high", NULL, "/a");
    rt_cfg.routes[0].priority = 1000;
    route_path("exact-low", NULL, "/a/b");
    rt_cfg.routes[1].priority = -5;
    build_ok();
    cr_assert_str_eq(match("h.test", "/a/b"), "exact-low");
}

Test(router, unmatched_conditions_fall_through_to_shorter_prefixes)
{
    route_prefix("short", NULL, "/a");
    struct jn_cfg_route *r = route_prefix("long-post", NULL, "/a/b");
    route_methods(r, "POST", NULL);
    struct jn_cfg_route *e = route_path("exact-put", NULL, "/a/b");
    route_methods(e, "PUT", NULL);
    build_ok();
    cr_assert_str_eq(match("h.test", "/a/b"), "short");
    struct rt_req q;
    req_init(&q, "POST", "h.test", "/a/b", NULL);
    cr_assert_str_eq(route_for(&q), "long-post");
    req_init(&q, "PUT", "h.test", "/a/b", NULL);
    cr_assert_str_eq(route_for(&q), "exact-put");
}

/* ---- hosts ---------------------------------------------------------------- */

Test(router, exact_host_then_wildcard_then_any_host)
{
    route_prefix("any", NULL, "/");
    route_prefix("wild", "*.shop.test", "/");
    route_prefix("exact", "a.shop.test", "/");
    build_ok();
    cr_assert_str_eq(match("a.shop.test", "/"), "exact");
    cr_assert_str_eq(match("b.shop.test", "/"), "wild");
    cr_assert_str_eq(match("other.test", "/"), "any");
}

Test(router, wildcard_matches_subdomains_but_not_the_bare_domain)
{
    route_prefix("wild", "*.shop.test", "/");
    build_ok();
    cr_assert_str_eq(match("a.shop.test", "/x"), "wild");
    cr_assert_str_eq(match("a.b.shop.test", "/x"), "wild");
    cr_assert_str_eq(match("shop.test", "/x"), "(none)");
    cr_assert_str_eq(match(".shop.test", "/x"), "(none)");
    cr_assert_str_eq(match("ashop.test", "/x"), "(none)");
    cr_assert_str_eq(match("a.shop.test.evil", "/x"), "(none)");
}

Test(router, longer_wildcard_suffix_wins)
{
    route_prefix("short", "*.test", "/");
    route_prefix("long", "*.shop.test", "/");
    build_ok();
    cr_assert_str_eq(match("a.b.shop.test", "/"), "long");
    cr_assert_str_eq(match("a.shop.test", "/"), "long");
    cr_assert_str_eq(match("a.other.test", "/"), "short");
}

Test(router, long_host_full_of_dots_still_matches_a_wildcard)
{
    route_prefix("wild", "*.shop.test", "/");
    route_prefix("any", NULL, "/");
    build_ok();
    static char host[8192];
    size_t n = 0;
    while (n < sizeof(host) - 64) {
        host[n++] = 'a';
        host[n++] = '.';
    }
    memcpy(host + n, "shop.test", sizeof("shop.test"));
    cr_assert_str_eq(match(host, "/"), "wild");
    memcpy(host + n, "shop.tesx", sizeof("shop.tesx"));
    cr_assert_str_eq(match(host, "/"), "any");
}

Test(router, host_falls_through_when_its_routes_do_not_match)
{
    route_path("exact-host", "api.test", "/only");
    route_prefix("wild", "*.test", "/w");
    route_prefix("any", NULL, "/");
    build_ok();
    cr_assert_str_eq(match("api.test", "/only"), "exact-host");
    cr_assert_str_eq(match("api.test", "/w/1"), "wild");
    cr_assert_str_eq(match("api.test", "/other"), "any");
}

Test(router, host_is_case_insensitive_and_ignores_port_and_trailing_dot)
{
    route_prefix("exact", "api.example.com", "/");
    route_prefix("wild", "*.Shop.Test", "/");
    build_ok();
    cr_assert_str_eq(match("API.Example.COM", "/"), "exact");
    cr_assert_str_eq(match("api.example.com:8080", "/"), "exact");
    cr_assert_str_eq(match("api.example.com.", "/"), "exact");
    cr_assert_str_eq(match("Api.Example.Com.:443", "/"), "exact");
    cr_assert_str_eq(match("X.SHOP.test:80", "/"), "wild");
    cr_assert_str_eq(match("api.example.co", "/"), "(none)");
}

Test(router, ipv6_host_keeps_its_colons)
{
    route_prefix("v6", "[::1]", "/");
    build_ok();
    cr_assert_str_eq(match("[::1]", "/"), "v6");
    cr_assert_str_eq(match("[::1]:8080", "/"), "v6");
}

Test(router, request_without_host_only_reaches_hostless_routes)
{
    route_prefix("hosted", "a.test", "/");
    route_prefix("any", NULL, "/x");
    build_ok();
    cr_assert_str_eq(match("", "/"), "(none)");
    cr_assert_str_eq(match(NULL, "/x"), "any");
}

/* ---- methods, headers, query --------------------------------------------- */

Test(router, methods_are_compared_exactly)
{
    struct jn_cfg_route *r = route_path("rw", NULL, "/m");
    route_methods(r, "GET", "POST", NULL);
    build_ok();
    struct rt_req q;
    req_init(&q, "POST", "h", "/m", NULL);
    cr_assert_str_eq(route_for(&q), "rw");
    req_init(&q, "GET", "h", "/m", NULL);
    cr_assert_str_eq(route_for(&q), "rw");
    req_init(&q, "get", "h", "/m", NULL);
    cr_assert_str_eq(route_for(&q), "(none)");
    req_init(&q, "DELETE", "h", "/m", NULL);
    cr_assert_str_eq(route_for(&q), "(none)");
    req_init(&q, "GETX", "h", "/m", NULL);
    cr_assert_str_eq(route_for(&q), "(none)");
}

Test(router, header_names_ignore_case_and_values_are_exact)
{
    struct jn_cfg_route *r = route_path("beta", NULL, "/h");
    route_header(r, "X-Version", "beta");
    route_path("default", NULL, "/h")->priority = -1;
    build_ok();
    struct rt_req q;
    req_init(&q, "GET", "h", "/h", NULL);
    req_header(&q, "x-version", "beta");
    cr_assert_str_eq(route_for(&q), "beta");
    req_init(&q, "GET", "h", "/h", NULL);
    req_header(&q, "X-VERSION", "Beta");
    cr_assert_str_eq(route_for(&q), "default");
    req_init(&q, "GET", "h", "/h", NULL);
    cr_assert_str_eq(route_for(&q), "default");
    req_init(&q, "GET", "h", "/h", NULL);
    req_header(&q, "X-Version", "betas");
    cr_assert_str_eq(route_for(&q), "default");
}

Test(router, all_header_matchers_must_match)
{
    struct jn_cfg_route *r = route_path("both", NULL, "/h");
    route_header(r, "A", "1");
    route_header(r, "B", "2");
    build_ok();
    struct rt_req q;
    req_init(&q, "GET", "h", "/h", NULL);
    req_header(&q, "a", "1");
    cr_assert_str_eq(route_for(&q), "(none)");
    req_header(&q, "b", "2");
    cr_assert_str_eq(route_for(&q), "both");
}

Test(router, query_parameters_are_decoded_before_comparing)
{
    struct jn_cfg_route *r = route_path("q", NULL, "/s");
    route_query(r, "search term", "a b&c");
    route_query(r, "v", "2");
    build_ok();
    cr_assert_str_eq(match_query("/s", "search+term=a+b%26c&v=2"), "q");
    cr_assert_str_eq(match_query("/s", "v=2&search%20term=a%20b%26c"), "q");
    cr_assert_str_eq(match_query("/s", "search+term=a+b&c&v=2"), "(none)");
    cr_assert_str_eq(match_query("/s", "search+term=a+b%26c"), "(none)");
    cr_assert_str_eq(match_query("/s", ""), "(none)");
}

Test(router, query_uses_the_first_occurrence)
{
    struct jn_cfg_route *r = route_path("q", NULL, "/s");
    route_query(r, "v", "2");
    build_ok();
    cr_assert_str_eq(match_query("/s", "v=2&v=3"), "q");
    cr_assert_str_eq(match_query("/s", "v=3&v=2"), "(none)");
    cr_assert_str_eq(match_query("/s", "&&x&v=2"), "q");
    cr_assert_str_eq(match_query("/s", "vv=2"), "(none)");
}

Test(router, query_empty_value_and_bare_name)
{
    struct jn_cfg_route *r = route_path("q", NULL, "/s");
    route_query(r, "debug", "");
    build_ok();
    cr_assert_str_eq(match_query("/s", "debug"), "q");
    cr_assert_str_eq(match_query("/s", "debug="), "q");
    cr_assert_str_eq(match_query("/s", "debug=1"), "(none)");
}

Test(router, query_malformed_escape_stands_for_itself)
{
    struct jn_cfg_route *r = route_path("q", NULL, "/s");
    route_query(r, "p", "100%");
    build_ok();
    cr_assert_str_eq(match_query("/s", "p=100%"), "q");
    cr_assert_str_eq(match_query("/s", "p=100%25"), "q");
}

/* ---- priority and file order --------------------------------------------- */

Test(router, higher_priority_first_within_one_matcher)
{
    route_prefix("low", NULL, "/p");
    struct jn_cfg_route *r = route_prefix("high", NULL, "/p");
    route_header(r, "X-Any", NULL);
    r->priority = 10;
    build_ok();
    struct rt_req q;
    req_init(&q, "GET", "h", "/p/1", NULL);
    req_header(&q, "X-Any", "whatever");
    cr_assert_str_eq(route_for(&q), "high");
    req_init(&q, "GET", "h", "/p/1", NULL);
    cr_assert_str_eq(route_for(&q), "low");
}

Test(router, file_order_breaks_priority_ties)
{
    struct jn_cfg_route *a = route_path("first", NULL, "/f");
    route_methods(a, "GET", "POST", NULL);
    struct jn_cfg_route *b = route_path("second", NULL, "/f");
    route_methods(b, "GET", NULL);
    build_ok();
    cr_assert_str_eq(match("h", "/f"), "first");
}

Test(router, negative_priority_goes_last)
{
    route_add("fallback")->priority = -10;
    struct jn_cfg_route *r = route_add("default");
    route_methods(r, "GET", NULL);
    build_ok();
    cr_assert_str_eq(match("h", "/x"), "default");
    struct rt_req q;
    req_init(&q, "POST", "h", "/x", NULL);
    cr_assert_str_eq(route_for(&q), "fallback");
}

/* ---- indistinguishable routes -------------------------------------------- */

Test(router, indistinguishable_routes_are_an_error_with_the_first_line)
{
    route_path("a", "api.test", "/x");
    route_path("b", "api.test", "/x");
    build_fails_with("test.yaml:20:3: route 'b' can never be matched: it has the same match as "
                     "route 'a' (line 10)");
}

Test(router, indistinguishable_compares_method_and_header_sets)
{
    struct jn_cfg_route *a = route_prefix("a", NULL, "/x");
    route_methods(a, "GET", "POST", NULL);
    route_header(a, "X-A", "1");
    route_header(a, "X-B", "2");
    route_query(a, "q", "1");
    struct jn_cfg_route *b = route_prefix("b", NULL, "/x");
    route_methods(b, "POST", "GET", "GET", NULL);
    route_header(b, "x-b", "2");
    route_header(b, "x-a", "1");
    route_query(b, "q", "1");
    build_fails_with("route 'b' can never be matched: it has the same match as route 'a' "
                     "(line 10)");
}

Test(router, unnamed_routes_are_named_by_their_place_in_the_file)
{
    route_path("a", NULL, "/x");
    route_path(NULL, NULL, "/y");
    route_path(NULL, NULL, "/y");
    build_fails_with("test.yaml:30:3: route #3 can never be matched: it has the same match as "
                     "route #2 (line 20)");
}

Test(router, indistinguishable_host_spellings_are_one_host)
{
    route_regex("a", "Api.Test", "^/r");
    route_regex("b", "api.test", "^/r");
    build_fails_with("route 'b' can never be matched");
}

Test(router, routes_without_any_matcher_are_indistinguishable)
{
    route_add("a");
    route_add("b");
    route_add("c");
    rt_router = jn_router_build(&rt_cfg, &rt_errs);
    cr_assert_null(rt_router);
    cr_assert_eq(rt_errs.count, 2); /* every error is reported */
    cr_assert(strstr(rt_errs.msgs[0], "route 'b'") != NULL);
    cr_assert(strstr(rt_errs.msgs[1], "route 'c'") != NULL);
}

Test(router, routes_differing_in_one_matcher_are_allowed)
{
    route_path("plain", "h.test", "/x");
    route_path("other-host", "g.test", "/x");
    route_prefix("prefix", "h.test", "/x");
    route_path("prio", "h.test", "/x")->priority = 1;
    route_methods(route_path("method", "h.test", "/x"), "GET", NULL);
    route_header(route_path("header", "h.test", "/x"), "A", "1");
    route_header(route_path("header2", "h.test", "/x"), "A", "2");
    route_query(route_path("query", "h.test", "/x"), "A", "1");
    route_prefix("slash", "h.test", "/x/");
    route_listeners(route_path("listener", "h.test", "/x"), "public", NULL);
    build_ok();
}

Test(router, strictly_shadowed_routes_are_allowed)
{
    route_prefix("all", NULL, "/x");
    route_methods(route_prefix("get", NULL, "/x"), "GET", NULL);
    build_ok();
    cr_assert_str_eq(match("h", "/x"), "all");
}

/* ---- regex errors --------------------------------------------------------- */

Test(router, bad_path_regex_is_reported_with_its_route)
{
    route_regex("broken", NULL, "^/(a");
    build_fails_with("test.yaml:10:3: route 'broken': path_regex: missing closing parenthesis");
}

Test(router, bad_rewrite_pattern_is_reported)
{
    struct jn_cfg_route *r = route_prefix("rw", NULL, "/");
    r->rewrite.pattern = S("[a-");
    r->rewrite.replace = S("/");
    build_fails_with("route 'rw': rewrite.pattern:");
}

Test(router, rewrite_template_naming_a_missing_group_is_reported)
{
    struct jn_cfg_route *r = route_prefix("rw", NULL, "/");
    r->rewrite.pattern = S("^/(a)/(b)");
    r->rewrite.replace = S("/$3");
    build_fails_with("route 'rw': rewrite.replace: a $N names a group");
}

Test(router, rewrite_template_with_a_stray_dollar_is_reported)
{
    struct jn_cfg_route *r = route_prefix("rw", NULL, "/");
    r->rewrite.pattern = S("^/(a)");
    r->rewrite.replace = S("/$x");
    build_fails_with("rewrite.replace: '$' must be followed");
}

Test(router, rewrite_template_with_a_query_is_reported)
{
    struct jn_cfg_route *r = route_prefix("rw", NULL, "/");
    r->rewrite.pattern = S("^/(a)");
    r->rewrite.replace = S("/$1?x=1");
    build_fails_with("rewrite.replace: must not contain '?'");
}

Test(router, relative_path_matcher_is_reported)
{
    route_prefix("rel", NULL, "users");
    build_fails_with("route 'rel': path and path_prefix must start with '/'");
}

Test(router, empty_configuration_matches_nothing)
{
    build_ok();
    cr_assert_str_eq(match("h", "/"), "(none)");
}

/* ---- listeners ------------------------------------------------------------ */

Test(router, listener_filter_skips_routes_in_place)
{
    route_listeners(route_prefix("internal", NULL, "/admin"), "internal", NULL);
    route_prefix("public", NULL, "/");
    route_listeners(route_prefix("both", NULL, "/both"), "a", "b");
    build_ok();
    struct rt_req q;
    req_init(&q, "GET", "h", "/admin/x", NULL);
    cr_assert_str_eq(name_of(jn_router_match_listener(rt_router, &q.req, "internal")), "internal");
    cr_assert_str_eq(name_of(jn_router_match_listener(rt_router, &q.req, "public")), "public");
    cr_assert_str_eq(name_of(jn_router_match_listener(rt_router, &q.req, NULL)), "internal");
    req_init(&q, "GET", "h", "/both", NULL);
    cr_assert_str_eq(name_of(jn_router_match_listener(rt_router, &q.req, "b")), "both");
    cr_assert_str_eq(name_of(jn_router_match_listener(rt_router, &q.req, "c")), "public");
}

/* ---- scale ---------------------------------------------------------------- */

Test(router, five_thousand_routes_build_and_match)
{
    char buf[128], name[32];
    for (int i = 0; i < 1250; i++) {
        snprintf(name, sizeof(name), "exact%d", i);
        snprintf(buf, sizeof(buf), "/svc%d/item", i);
        route_path(name, NULL, buf);
        snprintf(name, sizeof(name), "prefix%d", i);
        snprintf(buf, sizeof(buf), "/svc%d", i);
        route_prefix(name, NULL, buf);
        snprintf(name, sizeof(name), "host%d", i);
        snprintf(buf, sizeof(buf), "h%d.example.test", i);
        route_prefix(name, buf, "/");
        snprintf(name, sizeof(name), "wild%d", i);
        snprintf(buf, sizeof(buf), "*.w%d.example.test", i);
        route_prefix(name, buf, "/");
    }
    cr_assert_eq(rt_cfg.nroutes, 5000);
    build_ok();
    for (int i = 0; i < 1250; i++) {
        char host[64], path[64], want[32];
        snprintf(path, sizeof(path), "/svc%d/item", i);
        snprintf(want, sizeof(want), "exact%d", i);
        cr_assert_str_eq(match("nowhere.test", path), want);
        snprintf(path, sizeof(path), "/svc%d/other/deep", i);
        snprintf(want, sizeof(want), "prefix%d", i);
        cr_assert_str_eq(match("nowhere.test", path), want);
        snprintf(host, sizeof(host), "H%d.example.test", i);
        snprintf(want, sizeof(want), "host%d", i);
        cr_assert_str_eq(match(host, "/svc1/item"), want);
        snprintf(host, sizeof(host), "x.y.w%d.example.test", i);
        snprintf(want, sizeof(want), "wild%d", i);
        cr_assert_str_eq(match(host, "/svc1/item"), want);
    }
    cr_assert_str_eq(match("nowhere.test", "/svc99999"), "(none)");
}

/* ---- threads -------------------------------------------------------------- */

static void *match_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/r/%d", i);
        struct rt_req q;
        req_init(&q, "GET", "h", path, NULL);
        const struct jn_cfg_route *r = jn_router_match(rt_router, &q.req);
        if (r == NULL || strcmp(r->name, i % 2 ? "odd" : "even") != 0)
            return (void *)1;
    }
    return NULL;
}

Test(router, regex_matching_is_thread_safe)
{
    route_regex("even", NULL, "^/r/[0-9]*[02468]$");
    route_regex("odd", NULL, "^/r/[0-9]*[13579]$");
    build_ok();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, match_many, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        cr_assert_null(res);
    }
}

/* ---- upstream paths ------------------------------------------------------- */

static const char *upstream(struct jn_cfg_route *r, const char *path)
{
    static char out[256];
    int n = jn_route_upstream_path(r, sl(path), out, sizeof(out));
    cr_assert_geq(n, 0);
    cr_assert_eq((size_t)n, strlen(out));
    return out;
}

static struct jn_cfg_route *rewrite_route(const char *strip, const char *pattern,
                                          const char *replace)
{
    struct jn_cfg_route *r = route_prefix("up", NULL, "/");
    r->strip_prefix = S(strip);
    r->rewrite.pattern = S(pattern);
    r->rewrite.replace = S(replace);
    build_ok();
    return r;
}

Test(router, strip_prefix_cuts_on_a_segment_boundary)
{
    struct jn_cfg_route *r = rewrite_route("/catalog", NULL, NULL);
    cr_assert_str_eq(upstream(r, "/catalog/items"), "/items");
    cr_assert_str_eq(upstream(r, "/catalog/"), "/");
    cr_assert_str_eq(upstream(r, "/catalog"), "/");
    cr_assert_str_eq(upstream(r, "/catalogue/x"), "/catalogue/x");
    cr_assert_str_eq(upstream(r, "/other"), "/other");
}

Test(router, strip_prefix_with_trailing_slash_strips_the_same)
{
    struct jn_cfg_route *r = rewrite_route("/catalog/", NULL, NULL);
    cr_assert_str_eq(upstream(r, "/catalog/items"), "/items");
    cr_assert_str_eq(upstream(r, "/catalog"), "/");
}

Test(router, rewrite_substitutes_groups)
{
    struct jn_cfg_route *r = rewrite_route(NULL, "^/users/([0-9]+)/(.*)$", "/v2/u/$1/$2$$");
    cr_assert_str_eq(upstream(r, "/users/42/posts"), "/v2/u/42/posts$");
}

Test(router, rewrite_replaces_only_the_match)
{
    struct jn_cfg_route *r = rewrite_route(NULL, "old", "new");
    cr_assert_str_eq(upstream(r, "/a/old/b/old"), "/a/new/b/old");
}

Test(router, rewrite_without_a_match_leaves_the_path)
{
    struct jn_cfg_route *r = rewrite_route(NULL, "^/x/(.*)", "/y/$1");
    cr_assert_str_eq(upstream(r, "/z/1"), "/z/1");
}

Test(router, rewrite_runs_after_strip_prefix)
{
    struct jn_cfg_route *r = rewrite_route("/api", "^/v1/(.*)", "/$1");
    cr_assert_str_eq(upstream(r, "/api/v1/things"), "/things");
    cr_assert_str_eq(upstream(r, "/api"), "/");
}

Test(router, rewrite_unset_group_is_empty)
{
    struct jn_cfg_route *r = rewrite_route(NULL, "^/(a)?(b)", "/[$1]($2)");
    cr_assert_str_eq(upstream(r, "/b"), "/[](b)");
}

Test(router, rewrite_result_always_starts_with_a_slash)
{
    struct jn_cfg_route *r = rewrite_route(NULL, "^/api/(.*)$", "$1");
    cr_assert_str_eq(upstream(r, "/api/users"), "/users");
    cr_assert_str_eq(upstream(r, "/api/"), "/");
}

Test(router, upstream_path_too_long_is_an_error)
{
    struct jn_cfg_route *r = rewrite_route(NULL, "^/(.*)$", "/$1$1$1");
    char out[8];
    cr_assert_eq(jn_route_upstream_path(r, sl("/abc"), out, sizeof(out)), JN_ETOOBIG);
    cr_assert_eq(jn_route_upstream_path(r, sl("/ab"), out, sizeof(out)), 7);
    cr_assert_str_eq(out, "/ababab");
    cr_assert_eq(jn_route_upstream_path(r, sl("/ab"), out, 7), JN_ETOOBIG);
    cr_assert_eq(jn_route_upstream_path(r, sl("/ab"), out, 0), JN_ETOOBIG);
}

Test(router, route_without_strip_or_rewrite_passes_the_path)
{
    struct jn_cfg_route *r = rewrite_route(NULL, NULL, NULL);
    cr_assert_str_eq(upstream(r, "/a/b%2Fc"), "/a/b%2Fc");
}
