/* The admin API's front door: the dashboard page, the bearer token, and the
 * table that maps a method and a path to an endpoint (docs/operations.md). */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/api.h"
#include "admin/dashboard.h"
#include "server/runtime.h"
#include "tls/digest.h"

long jn_admin_pct_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? jn_hex_digit_value((unsigned char)in[i + 1]) : -1;
            int lo = hi >= 0 ? jn_hex_digit_value((unsigned char)in[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            if (c == '\0' || c == '/')
                return -1; /* a segment never holds them: no confusion with the path */
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

int jn_admin_split_path(struct jn_slice target, struct jn_admin_path *out)
{
    const char *p = target.ptr, *end = target.ptr + target.len;
    const char *q = memchr(p, '?', target.len);
    if (q != NULL)
        end = q;
    out->n = 0;
    if (p == end || *p != '/')
        return JN_EINVAL;
    if (end - p == 1)
        return 0; /* "/": the page */
    while (p < end) {
        const char *s = p + 1;
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (e == NULL)
            e = end;
        if (e == s || out->n == JN_ADMIN_MAX_SEGMENTS)
            return JN_EINVAL;
        if (jn_admin_pct_decode(s, (size_t)(e - s), out->seg[out->n], sizeof(out->seg[0])) < 0)
            return JN_EINVAL;
        out->n++;
        p = e;
    }
    return 0;
}

bool jn_admin_token_ok(struct jn_slice authorization, const char *token, size_t token_len)
{
    static const char scheme[] = "bearer ";
    size_t n = sizeof(scheme) - 1;
    if (token == NULL || authorization.len <= n ||
        !jn_slice_ieq((struct jn_slice){ authorization.ptr, n }, scheme))
        return false;
    /* Digests have one length whatever was sent, so comparing them tells
     * nothing of the token's bytes or its length. */
    uint8_t want[32], got[32];
    if (jn_sha256(token, token_len, want) != 0 ||
        jn_sha256(authorization.ptr + n, authorization.len - n, got) != 0)
        return false;
    return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

void jn_admin_reply_json(struct jn_admin_response *rs, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(body);
    free(rs->body);
    rs->body = NULL;
    rs->content_type = "application/json";
    if (text == NULL) {
        static const char oom[] = "{\"error\":\"out of memory\"}\n";
        rs->status = 500;
        rs->body = strdup(oom);
        rs->len = rs->body != NULL ? sizeof(oom) - 1 : 0;
        return;
    }
    size_t n = strlen(text);
    rs->body = realloc(text, n + 2);
    if (rs->body == NULL) {
        rs->body = text;
    } else {
        rs->body[n++] = '\n';
        rs->body[n] = '\0';
    }
    rs->status = status;
    rs->len = n;
}

void jn_admin_reply_error(struct jn_admin_response *rs, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    jn_admin_reply_json(rs, status, json_pack("{s:s}", "error", msg));
}

static void reply_bytes(struct jn_admin_response *rs, int status, const char *type,
                        const char *data, size_t len)
{
    rs->status = status;
    rs->content_type = type;
    rs->body = malloc(len + 1);
    rs->len = rs->body != NULL ? len : 0;
    if (rs->body != NULL)
        memcpy(rs->body, data, len);
}

enum endpoint {
    EP_STATUS, EP_CONFIG, EP_ROUTES, EP_UPSTREAMS, EP_UPSTREAM, EP_STATS, EP_METRICS,
    EP_ADD_SERVER, EP_SET_SERVER, EP_REMOVE_SERVER, EP_RELOAD,
};

/* One route: a method and a path pattern ("*" takes any one segment). */
struct admin_route {
    const char *method;
    const char *pattern[JN_ADMIN_MAX_SEGMENTS];
    size_t n;
    enum endpoint ep;
    const char *allow; /* every method of this path, for a 405 */
};

static const struct admin_route routes[] = {
    { "GET", { "status" }, 1, EP_STATUS, "GET" },
    { "GET", { "config" }, 1, EP_CONFIG, "GET" },
    { "GET", { "routes" }, 1, EP_ROUTES, "GET" },
    { "GET", { "upstreams" }, 1, EP_UPSTREAMS, "GET" },
    { "GET", { "upstreams", "*" }, 2, EP_UPSTREAM, "GET" },
    { "GET", { "stats" }, 1, EP_STATS, "GET" },
    { "GET", { "metrics" }, 1, EP_METRICS, "GET" },
    { "POST", { "upstreams", "*", "servers" }, 3, EP_ADD_SERVER, "POST" },
    { "PATCH", { "upstreams", "*", "servers", "*" }, 4, EP_SET_SERVER, "PATCH, DELETE" },
    { "DELETE", { "upstreams", "*", "servers", "*" }, 4, EP_REMOVE_SERVER, "PATCH, DELETE" },
    { "POST", { "reload" }, 1, EP_RELOAD, "POST" },
};

static bool route_matches(const struct admin_route *r, const struct jn_admin_path *p)
{
    if (r->n != p->n)
        return false;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->pattern[i], "*") != 0 && strcmp(r->pattern[i], p->seg[i]) != 0)
            return false;
    return true;
}

static void run_endpoint(enum endpoint ep, const struct jn_admin_path *p,
                         const struct jn_admin_request *rq, struct jn_admin_response *rs)
{
    struct jn_config *cfg = jn_runtime_config();
    if (cfg == NULL) {
        jn_admin_reply_error(rs, 503, "Junction is starting or stopping");
        return;
    }
    switch (ep) {
    case EP_STATUS: jn_admin_get_status(cfg, rs); break;
    case EP_CONFIG: jn_admin_get_config(cfg, rs); break;
    case EP_ROUTES: jn_admin_get_routes(cfg, rs); break;
    case EP_UPSTREAMS: jn_admin_get_upstreams(cfg, NULL, rs); break;
    case EP_UPSTREAM: jn_admin_get_upstreams(cfg, p->seg[1], rs); break;
    case EP_STATS: jn_admin_get_stats(rs); break;
    case EP_METRICS: jn_admin_get_metrics(rs); break;
    case EP_ADD_SERVER: jn_admin_add_server(p->seg[1], rq, rs); break;
    case EP_SET_SERVER: jn_admin_set_server(p->seg[1], p->seg[3], rq, rs); break;
    case EP_REMOVE_SERVER: jn_admin_remove_server(p->seg[1], p->seg[3], rq, rs); break;
    case EP_RELOAD: jn_admin_reload(rs); break;
    }
    jn_config_unref(cfg);
}

static void dispatch(const struct jn_admin_path *p, const struct jn_admin_request *rq,
                     struct jn_admin_response *rs)
{
    const char *allow = NULL;
    for (size_t i = 0; i < JN_ARRAY_LEN(routes); i++) {
        if (!route_matches(&routes[i], p))
            continue;
        if (jn_slice_eq(rq->method, (struct jn_slice){ routes[i].method,
                                                       strlen(routes[i].method) })) {
            run_endpoint(routes[i].ep, p, rq, rs);
            return;
        }
        allow = routes[i].allow;
    }
    if (allow != NULL) {
        rs->allow = allow;
        jn_admin_reply_error(rs, 405, "method %.*s not allowed here (allowed: %s)",
                             (int)JN_MIN(rq->method.len, 32), rq->method.ptr, allow);
        return;
    }
    jn_admin_reply_error(rs, 404, "no such admin endpoint");
}

/* The Authorization field; false when it is sent more than once. */
static bool find_authorization(const struct jn_admin_request *rq, struct jn_slice *out)
{
    *out = (struct jn_slice){ NULL, 0 };
    for (size_t i = 0; i < rq->nheaders; i++) {
        if (!jn_slice_ieq(rq->headers[i].name, "authorization"))
            continue;
        if (out->ptr != NULL)
            return false;
        *out = rq->headers[i].value;
    }
    return true;
}

/* Returns true when the request may go on; otherwise rs holds the refusal. */
static bool authorized(const struct jn_admin_request *rq, struct jn_admin_response *rs)
{
    struct jn_config *cfg = jn_runtime_config();
    if (cfg == NULL) {
        jn_admin_reply_error(rs, 503, "Junction is starting or stopping");
        return false;
    }
    struct jn_slice auth;
    bool ok = false;
    if (cfg->admin.token == NULL) {
        jn_admin_reply_error(rs, 403, "the admin API is denied: no admin token_file is "
                                      "configured (there is no default token)");
    } else if (!find_authorization(rq, &auth)) {
        jn_admin_reply_error(rs, 400, "more than one Authorization field");
    } else if (!(ok = jn_admin_token_ok(auth, cfg->admin.token, cfg->admin.token_len))) {
        rs->challenge = true;
        jn_admin_reply_error(rs, 401, auth.ptr == NULL ? "authorization required: send "
                                                         "Authorization: Bearer <token>"
                                                       : "invalid token");
    }
    jn_config_unref(cfg);
    return ok;
}

static bool is_get(const struct jn_admin_request *rq)
{
    return jn_slice_eq(rq->method, JN_SLICE_LIT("GET"));
}

void jn_admin_handle(const struct jn_admin_request *rq, struct jn_admin_response *rs)
{
    struct jn_admin_path p;
    if (jn_admin_split_path(rq->target, &p) != 0) {
        jn_admin_reply_error(rs, 400, "malformed request path");
        return;
    }
    bool metrics = p.n == 1 && strcmp(p.seg[0], "metrics") == 0;
    if (rq->metrics_only) { /* the metrics: listener serves that alone, without a token */
        if (!metrics)
            jn_admin_reply_error(rs, 404, "only /metrics is served here");
        else if (!is_get(rq))
            rs->allow = "GET", jn_admin_reply_error(rs, 405, "only GET is allowed here");
        else
            jn_admin_get_metrics(rs);
        return;
    }
    bool page = p.n == 0, favicon = p.n == 1 && strcmp(p.seg[0], "favicon.ico") == 0;
    if ((page || favicon) && !is_get(rq)) {
        rs->allow = "GET";
        jn_admin_reply_error(rs, 405, "only GET is allowed here");
    } else if (page) {
        reply_bytes(rs, 200, "text/html; charset=utf-8", jn_dashboard_html,
                    jn_dashboard_html_len);
    } else if (favicon) {
        reply_bytes(rs, 204, "image/x-icon", "", 0);
    } else if (authorized(rq, rs)) {
        dispatch(&p, rq, rs);
    }
}
