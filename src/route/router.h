/* The router: picks the route of a request in time independent of the
 * number of routes (hash tables by host and exact path, a segment trie for
 * prefixes; only path_regex routes are tried one by one, within their host).
 *
 * Order of evaluation (documented in docs/routing.md):
 *  1. host: exact host, then wildcard hosts from the longest suffix, then routes without host;
 *  2. within a host: exact path, then path_prefix from the longest, then path_regex
 *     in file order, then routes without a path matcher;
 *  3. among routes with the same host and path matcher: higher priority first, then file order;
 *     the first whose methods, headers and query all match wins. */
#ifndef JN_ROUTE_ROUTER_H
#define JN_ROUTE_ROUTER_H

#include "config/config.h"
#include "http/msg.h"

struct jn_router;

/* Builds the router for cfg->routes (regexes compiled here, with JIT). Reports
 * every error (bad regex, two routes that can never be told apart) into errs
 * with the route's position. Returns NULL on error. */
struct jn_router *jn_router_build(struct jn_config *cfg, struct jn_cfg_errors *errs);
void jn_router_free(struct jn_router *r);

/* Returns the matching route (borrowed from the snapshot) or NULL. Thread-safe:
 * the router is read-only after build (per-thread PCRE2 match data inside). */
const struct jn_cfg_route *jn_router_match(const struct jn_router *r,
                                           const struct jn_http_request *req);

/* Like jn_router_match for a request that arrived on the listener named
 * listener_name: routes whose listeners list is non-empty and does not name it
 * are skipped in place, so the evaluation order above still holds. NULL
 * listener_name skips nothing (that is jn_router_match). */
const struct jn_cfg_route *jn_router_match_listener(const struct jn_router *r,
                                                    const struct jn_http_request *req,
                                                    const char *listener_name);

/* Runs a compiled route regex (match.regex or rewrite.regex) on subject with
 * this thread's match data: allocation-free after the thread's first call.
 * Returns true on a match and points *ovector at the offsets of groups 0..9
 * (PCRE2_UNSET, i.e. SIZE_MAX, for a group that did not take part); they stay
 * valid until this thread's next call. A match-limit hit counts as no match. */
bool jn_route_regex_match(const struct pcre2_real_code_8 *code, struct jn_slice subject,
                          const size_t **ovector);

/* Computes the upstream path for a route: strip_prefix, then rewrite. Writes
 * at most cap bytes (NUL-terminated) into out. Returns the length, or
 * JN_ETOOBIG when it does not fit. The query string is not included. */
int jn_route_upstream_path(const struct jn_cfg_route *route, struct jn_slice path, char *out,
                           size_t cap);

#endif
