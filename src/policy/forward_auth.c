/* forward_auth: asks an authorisation service about each request (Traefik's
 * ForwardAuth, nginx's auth_request). The service gets a GET with the
 * request's method, URI, host and client in X-Forwarded-* fields and the
 * credentials named in copy_request_headers; a 2xx lets the request through
 * with the fields named in copy_response_headers taken from the answer, any
 * other answer goes back to the client as it is, and no answer is a 503. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "balance/hash_key.h"
#include "config/load.h"
#include "core/log.h"
#include "http/front.h"
#include "http/h1/h1_write.h"
#include "http/stream.h"
#include "http/subrequest.h"
#include "policy/chain.h"

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_DENIAL_BODY (64 * 1024) /* a longer answer body is a failed service */

struct forward_auth {
    char *upstream_name;
    const struct jn_cfg_upstream *up; /* borrowed from the snapshot */
    char *path;                       /* origin form, "/check" or "/check?x=1" */
    char **copy_request, **copy_response;
    size_t ncopy_request, ncopy_response;
    uint64_t timeout; /* ms */
};

/* A request's slot: the subrequest while it runs. */
struct forward_auth_state {
    struct jn_stream *s;             /* borrowed: the stream it belongs to */
    const struct forward_auth *conf; /* borrowed from the snapshot */
    struct jn_subreq *sub;           /* owned while pending, NULL once over */
};

static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){ s, strlen(s) };
}

/* ---- configuration ---- */

static bool is_one_of(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return true;
    return false;
}

/* Framing and hop-by-hop fields belong to each connection, never copied. */
static const char *const connection_fields[] = { "connection",        "keep-alive", "te",
                                                 "trailer",           "upgrade",    "host",
                                                 "transfer-encoding", "content-length",
                                                 "proxy-connection" };

static const char *check_response_name(struct jn_ld *ld, char *s)
{
    if (!jn_ld_is_token(s, strlen(s)))
        return "is not a valid header name";
    if (is_one_of(s, connection_fields, JN_ARRAY_LEN(connection_fields)))
        return "is a hop-by-hop, framing or Host field, never copied";
    return NULL;
}

static const char *check_request_name(struct jn_ld *ld, char *s)
{
    static const char *const own[] = { "x-forwarded-method", "x-forwarded-proto",
                                       "x-forwarded-host",   "x-forwarded-uri",
                                       "x-forwarded-for",    "x-request-id" };
    const char *why = check_response_name(ld, s);
    if (why == NULL && is_one_of(s, own, JN_ARRAY_LEN(own)))
        why = "is set by forward_auth itself";
    return why;
}

static void set_copy_request(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                             void *obj)
{
    struct forward_auth *fa = obj;
    jn_ld_string_list(ld, value, key->name, check_request_name, true, &fa->copy_request,
                      &fa->ncopy_request);
}

static void set_copy_response(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct forward_auth *fa = obj;
    jn_ld_string_list(ld, value, key->name, check_response_name, true, &fa->copy_response,
                      &fa->ncopy_response);
}

enum { KEY_UPSTREAM, KEY_PATH };

static const struct jn_ld_key keys[] = {
    [KEY_UPSTREAM] = JN_LD_REQ("upstream", jn_ld_set_string,
                               offsetof(struct forward_auth, upstream_name)),
    [KEY_PATH] = JN_LD_REQ("path", jn_ld_set_string, offsetof(struct forward_auth, path)),
    JN_LD_KEY("copy_request_headers", set_copy_request, 0),
    JN_LD_KEY("copy_response_headers", set_copy_response, 0),
    JN_LD_NUM("timeout", jn_ld_set_duration, offsetof(struct forward_auth, timeout), 1,
              3600 * 1000),
};
static const struct jn_ld_table table = JN_LD_TABLE("forward_auth", keys);

/* An origin-form target: "/", then printable ASCII without spaces or '#'. */
static const char *path_error(const char *p)
{
    if (p[0] == '\0')
        return "must not be empty";
    if (p[0] != '/')
        return "must start with /";
    for (const char *c = p; *c != '\0'; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '#')
            return "must be printable ASCII without spaces or #";
    return NULL;
}

static void resolve_upstream(struct jn_ld *ld, struct forward_auth *fa, yaml_node_t *at)
{
    for (size_t i = 0; i < ld->cfg->nupstreams; i++) {
        const struct jn_cfg_upstream *up = &ld->cfg->upstreams[i];
        if (strcmp(up->name, fa->upstream_name) != 0)
            continue;
        if (up->protocol != JN_UPSTREAM_HTTP1)
            jn_ld_error(ld, at,
                        "forward_auth: upstream %s speaks HTTP/2 (protocol:); the authorisation "
                        "service must be an http1 upstream",
                        jn_ld_quote(ld, up->name, strlen(up->name)));
        fa->up = up;
        return;
    }
    jn_ld_error(ld, at, "forward_auth: upstream: unknown upstream %s",
                jn_ld_quote(ld, fa->upstream_name, strlen(fa->upstream_name)));
}

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct forward_auth *fa = jn_ld_calloc(ld, 1, sizeof(*fa));
    struct jn_ld_found found[JN_ARRAY_LEN(keys)] = { 0 };
    size_t before = ld->nerrors;
    if (fa == NULL)
        return NULL;
    fa->timeout = DEFAULT_TIMEOUT_MS;
    if (!jn_ld_map(ld, value, &table, fa, found))
        return NULL;
    if (fa->upstream_name != NULL)
        resolve_upstream(ld, fa, found[KEY_UPSTREAM].value);
    const char *why = fa->path != NULL ? path_error(fa->path) : NULL;
    if (why != NULL)
        jn_ld_error(ld, found[KEY_PATH].value, "forward_auth: path: %s", why);
    if (fa->copy_request == NULL) {
        /* By default the service sees the credentials a client sends. */
        static char *defaults[] = { "Authorization", "Cookie" };
        fa->copy_request = defaults;
        fa->ncopy_request = JN_ARRAY_LEN(defaults);
    }
    return ld->nerrors == before ? fa : NULL;
}

/* ---- the request ---- */

static bool listed(struct jn_slice name, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (jn_slice_ieq(name, names[i]))
            return true;
    return false;
}

/* "path?query", the one normalised path the route matched. */
static struct jn_slice forwarded_uri(struct jn_stream *s)
{
    size_t n = s->req.path.len + 1 + s->req.query.len;
    char *p = jn_arena_alloc(&s->arena, n + 1);
    if (p == NULL)
        return s->req.path;
    memcpy(p, s->req.path.ptr, s->req.path.len);
    n = s->req.path.len;
    if (s->req.query.len > 0) {
        p[n++] = '?';
        memcpy(p + n, s->req.query.ptr, s->req.query.len);
        n += s->req.query.len;
    }
    return (struct jn_slice){ p, n };
}

/* What the service receives besides the request line and Host. Returns 0
 * or JN_ETOOBIG. */
static int auth_fields(struct jn_stream *s, const struct forward_auth *fa,
                       const struct jn_fields *req, struct jn_fields *out)
{
    int rc = 0;
    for (size_t i = 0; i < req->n; i++)
        if (listed(req->v[i].name, fa->copy_request, fa->ncopy_request))
            rc |= jn_fields_add(out, req->v[i].name, req->v[i].value);
    rc |= jn_fields_add(out, cs("X-Forwarded-Method"), s->req.method);
    rc |= jn_fields_add(out, cs("X-Forwarded-Proto"), s->req.scheme);
    if (s->req.authority.len > 0)
        rc |= jn_fields_add(out, cs("X-Forwarded-Host"), s->req.authority);
    rc |= jn_fields_add(out, cs("X-Forwarded-Uri"), forwarded_uri(s));
    rc |= jn_fields_add(out, cs("X-Forwarded-For"), cs(s->client_ip));
    rc |= jn_fields_add(out, cs("X-Request-Id"), cs(s->request_id));
    return rc != 0 ? JN_ETOOBIG : 0;
}

static void answered(void *arg, const struct jn_subreq_answer *a);

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    const struct forward_auth *fa = conf;
    struct forward_auth_state *st = jn_arena_calloc(&s->arena, 1, sizeof(*st));
    size_t cap = fields->n + 8;
    struct jn_http_field *v = jn_arena_alloc(&s->arena, cap * sizeof(*v));
    if (st == NULL || v == NULL)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    struct jn_fields out = { v, 0, cap };
    if (auth_fields(s, fa, fields, &out) != 0)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    /* A hashing balancer keys on this request (its fields as the client sent them). */
    uint64_t hash = 0;
    struct jn_http_request req = s->req;
    req.fields = fields->v;
    req.nfields = fields->n;
    if (fa->up->hash_key != NULL)
        jn_hash_key(fa->up->hash_key, &req, s->client_ip, &hash);
    /* Only the service names the user: a client's own copies go, whatever
     * the answer holds. */
    for (size_t i = 0; i < fa->ncopy_response; i++)
        jn_fields_remove(fields, fa->copy_response[i]);
    char tag[80];
    snprintf(tag, sizeof(tag), "forward_auth, request %s", s->request_id);
    struct jn_subreq_params p = {
        .up = &s->gen->ups[fa->up->index],
        .bufs = &s->gen->worker->bufs,
        .hash = fa->up->hash_key != NULL ? &hash : NULL,
        .target = cs(fa->path),
        .fields = &out,
        .timeout_ms = fa->timeout,
        .max_body = MAX_DENIAL_BODY,
        .skip_2xx_body = true,
        .tag = tag,
        .done = answered,
        .arg = st,
    };
    const char *err = NULL;
    *st = (struct forward_auth_state){ .s = s, .conf = fa };
    st->sub = jn_subreq_start(&p, &err);
    if (st->sub == NULL) {
        jn_log(JN_LOG_WARN, "forward_auth: upstream %s: %s (request %s)", fa->up->name, err,
               s->request_id);
        return jn_policy_reject(s, 503, "authorization service unavailable", NULL, 0);
    }
    *state = st;
    return JN_FILTER_PAUSE;
}

/* ---- the answer ---- */

/* Adds a field to the held request, growing its array in the arena when
 * it is full. Returns 0 or JN_ENOMEM. */
static int held_add(struct jn_stream *s, struct jn_fields *f, struct jn_slice name,
                    struct jn_slice value)
{
    if (f->n == f->cap) {
        size_t cap = f->cap * 2 + 8;
        struct jn_http_field *v = jn_arena_alloc(&s->arena, cap * sizeof(*v));
        if (v == NULL)
            return JN_ENOMEM;
        memcpy(v, f->v, f->n * sizeof(*v));
        f->v = v;
        f->cap = cap;
        s->fields = v;
        s->fields_cap = cap;
    }
    return jn_fields_add(f, name, value);
}

/* A 2xx: the fields named in copy_response_headers go to the upstream
 * with the request, in the arena (the answer's bytes go away). */
static int allow(struct jn_stream *s, const struct forward_auth *fa,
                 const struct jn_subreq_answer *a)
{
    struct jn_fields f = { s->fields, s->held_nfields, s->fields_cap };
    int rc = 0;
    for (size_t i = 0; i < a->nheaders && rc == 0; i++) {
        const struct jn_h1_header *h = &a->headers[i];
        for (size_t k = 0; k < fa->ncopy_response; k++) {
            if (!jn_slice_ieq(h->name, fa->copy_response[k]))
                continue;
            char *value = jn_arena_strndup(&s->arena, h->value.ptr, h->value.len);
            rc = value == NULL ? JN_ENOMEM
                               : held_add(s, &f, cs(fa->copy_response[k]),
                                          (struct jn_slice){ value, h->value.len });
            break;
        }
    }
    s->held_nfields = f.n;
    return rc;
}

/* Any other answer goes to the client as the service gave it: status,
 * end-to-end fields and body, in Junction's own framing. */
static void deny(struct jn_stream *s, const struct jn_subreq_answer *a)
{
    struct jn_http_field fields[JN_SUBREQ_MAX_HEADERS + 32];
    struct jn_fields f = { fields, 0, JN_ARRAY_LEN(fields) };
    for (size_t i = 0; i < a->nheaders; i++)
        jn_fields_add(&f, a->headers[i].name, a->headers[i].value);
    jn_h1_strip_hop_by_hop(&f);
    /* The policies that saw the request see its answer (CORS headers). */
    struct jn_http_response resp = { .status = a->status, .fields = fields, .nfields = f.n };
    jn_chain_response(s, &resp, &f);
    jn_fields_set(&f, cs("X-Request-Id"), cs(s->request_id));
    s->error = "denied by the authorization service";
    s->front->respond(s, a->status, &f, a->body != NULL ? a->body : "", a->body_len);
}

static void answered(void *arg, const struct jn_subreq_answer *a)
{
    struct forward_auth_state *st = arg;
    struct jn_stream *s = st->s;
    st->sub = NULL;
    if (a->status == 0)
        jn_policy_reject(s, 503, "authorization service unavailable", NULL, 0);
    else if (a->status < 200 || a->status > 299)
        deny(s, a);
    else if (allow(s, st->conf, a) != 0)
        jn_policy_reject(s, 500, "out of memory", NULL, 0);
    jn_chain_resume(s); /* may free s, and st with it */
}

static void cancel(struct jn_stream *s, void *conf, void **state)
{
    struct forward_auth_state *st = *state;
    if (st != NULL && st->sub != NULL) {
        jn_subreq_cancel(st->sub);
        st->sub = NULL;
    }
}

const struct jn_policy_ops jn_policy_forward_auth = {
    .name = "forward_auth",
    .parse = parse,
    .on_request = on_request,
    .on_done = cancel,
    .cancel = cancel,
};
