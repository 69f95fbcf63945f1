/* The proxy: turns a parsed request head into a stream, routes it, runs the
 * filter chain, and relays it to an upstream server over a pooled
 * connection, streaming bodies both ways with backpressure. */
#include "http/proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "balance/hash_key.h"
#include "balance/sticky.h"
#include "core/log.h"
#include "http/access_log.h"
#include "http/client_addr.h"
#include "http/front.h"
#include "http/grpc_web.h"
#include "http/h1/h1_server.h"
#include "http/h1/h1_write.h"
#include "http/h2/h2_client.h"
#include "http/path.h"
#include "http/proxy_upstream.h"
#include "http/upgrade.h"
#include "policy/chain.h"
#include "route/router.h"

#define EXTRA_FIELDS 32      /* room for fields the proxy and filters add */
#define MAX_UPSTREAM_PATH 16384
#define STREAM_CACHE 64 /* unused streams kept per worker */

static void release_upstream(struct jn_stream *s);
static int deliver_head(struct jn_stream *s, const struct jn_h1_message *mp);

/* The silence allowed to the upstream: upstream_response, or tunnel_idle
 * once a WebSocket over HTTP/2 is open. */
static uint64_t response_timeout(const struct jn_stream *s)
{
    const struct jn_cfg_timeouts *t = &s->gen->cfg->timeouts;
    return s->ws_h2 && s->resp_head_sent ? t->tunnel_idle : t->upstream_response;
}
static void finish(struct jn_stream *s);

/* ---- request ids and local responses ---- */

static void put_hex32(char *out, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

void jn_request_id_new(struct jn_worker *w, char *id, size_t size)
{
    /* xorshift seeded per thread from the clock and the worker id, plus a
     * per-thread sequence: ids only need to be unique, not secret. */
    uint32_t x = w->rng ? w->rng : (uint32_t)(jn_clock_ms() * 2654435761u) ^ (uint32_t)w->id;
    char buf[33];
    for (int i = 0; i < 3; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        put_hex32(buf + 8 * i, x);
    }
    w->rng = x;
    put_hex32(buf + 24, (uint32_t)++w->rng_seq);
    buf[32] = '\0';
    size_t n = JN_MIN(size - 1, (size_t)32);
    memcpy(id, buf, n);
    id[n] = '\0';
}

void jn_write_error(struct jn_buf *out, uint16_t status, const char *msg, const char *request_id,
                    bool close, bool head)
{
    char body[256], line[512];
    int blen = snprintf(body, sizeof(body), "{\"error\": \"%s\", \"request_id\": \"%s\"}\n", msg,
                        request_id);
    int hlen = snprintf(line, sizeof(line),
                        "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nX-Request-Id: %s\r\n%s\r\n",
                        status, jn_http_reason(status), blen, request_id,
                        close ? "Connection: close\r\n" : "");
    jn_buf_put(out, line, (size_t)hlen);
    if (!head)
        jn_buf_put(out, body, (size_t)blen);
}

static void count_status(struct jn_stream *s)
{
    struct jn_worker_stats *st = &s->gen->worker->stats;
    st->requests++;
    if (s->status >= 500)
        st->errors_5xx++;
    else if (s->status >= 400)
        st->errors_4xx++;
}

/* Answers the stream locally with a JSON error; the request body, if any is
 * left unread, forces the connection to close. */
static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){ s, strlen(s) };
}

void jn_stream_respond_error_with(struct jn_stream *s, uint16_t status, const char *msg,
                                  const struct jn_http_field *extra, size_t nextra)
{
    jn_upwait_cancel(&s->wait); /* answered: no longer waiting for a connection */
    char body[256];
    int blen = snprintf(body, sizeof(body), "{\"error\": \"%s\", \"request_id\": \"%s\"}\n", msg,
                        s->request_id);
    struct jn_http_field fields[48];
    struct jn_fields f = { fields, 0, JN_ARRAY_LEN(fields) };
    jn_fields_add(&f, cs("Content-Type"), cs("application/json"));
    for (size_t i = 0; i < nextra; i++)
        jn_fields_add(&f, extra[i].name, extra[i].value);
    /* The policies that saw the request see its answer (CORS headers on a
     * 401, RateLimit-* on a 502). */
    struct jn_http_response resp = { .status = status, .fields = fields, .nfields = f.n };
    jn_chain_response(s, &resp, &f);
    jn_fields_set(&f, cs("X-Request-Id"), cs(s->request_id));
    s->error = msg;
    s->front->respond(s, status, &f, body, (size_t)blen);
}

void jn_stream_respond_error(struct jn_stream *s, uint16_t status, const char *msg)
{
    jn_stream_respond_error_with(s, status, msg, NULL, 0);
}

/* ---- request head to upstream ---- */

static char *join_field(struct jn_stream *s, struct jn_fields *f, const char *name,
                        const char *append)
{
    size_t len = 0;
    for (size_t i = 0; i < f->n; i++)
        if (jn_slice_ieq(f->v[i].name, name))
            len += f->v[i].value.len + 2;
    char *v = jn_arena_alloc(&s->arena, len + strlen(append) + 1);
    if (v == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (!jn_slice_ieq(f->v[i].name, name))
            continue;
        memcpy(v + at, f->v[i].value.ptr, f->v[i].value.len);
        at += f->v[i].value.len;
        memcpy(v + at, ", ", 2);
        at += 2;
    }
    memcpy(v + at, append, strlen(append) + 1);
    return v;
}

/* X-Request-Id passes through when it is a sane token, else is replaced. */
static void take_request_id(struct jn_stream *s, struct jn_fields *f)
{
    struct jn_slice v = jn_http_field_get(f->v, f->n, "x-request-id");
    bool ok = v.ptr != NULL && v.len > 0 && v.len < sizeof(s->request_id);
    for (size_t i = 0; ok && i < v.len; i++)
        ok = v.ptr[i] > 0x20 && v.ptr[i] < 0x7f && v.ptr[i] != '"' && v.ptr[i] != '\\';
    if (ok) {
        memcpy(s->request_id, v.ptr, v.len);
        s->request_id[v.len] = '\0';
    } else {
        jn_request_id_new(s->gen->worker, s->request_id, sizeof(s->request_id));
    }
}

/* The tls: section of the listener the stream came in on, or NULL. */
static const struct jn_cfg_tls *listener_tls(const struct jn_stream *s)
{
    return s->gen->cfg->listeners[s->client->listener->index].tls;
}

/* A client certificate subject header is Junction's word alone: any field a
 * client sent under a name that some listener forwards the subject in is
 * dropped, on every listener (a plain-text one too: its requests may reach
 * the same upstreams), before routing and filters see the request. */
static void strip_client_subject_fields(const struct jn_stream *s, struct jn_fields *f)
{
    const struct jn_config *cfg = s->gen->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct jn_cfg_tls *tls = cfg->listeners[i].tls;
        if (tls != NULL && tls->client_subject_header != NULL)
            jn_fields_remove(f, tls->client_subject_header);
    }
}

static int add_forwarding_fields(struct jn_stream *s, struct jn_fields *f)
{
    char *xff = join_field(s, f, "x-forwarded-for", s->client->peer);
    char *via = join_field(s, f, "via", "1.1 junction");
    if (xff == NULL || via == NULL)
        return JN_ENOMEM;
    jn_fields_remove(f, "x-forwarded-for");
    jn_fields_remove(f, "via");
    jn_fields_remove(f, "expect");
    int rc = jn_fields_add(f, cs("X-Forwarded-For"), cs(xff));
    rc |= jn_fields_set(f, cs("X-Forwarded-Proto"), s->req.scheme);
    if (s->req.authority.len > 0)
        rc |= jn_fields_set(f, cs("X-Forwarded-Host"), s->req.authority);
    rc |= jn_fields_add(f, cs("Via"), cs(via));
    /* The authority of an absolute-form target wins over Host (RFC 9112
     * section 3.2.2), so the upstream sees the host that was routed on; an
     * HTTP/1.0 request without one gets the server's address. */
    if (s->absolute_form)
        rc |= jn_fields_set(f, cs("Host"), s->req.authority);
    else if (s->req.authority.ptr == NULL || s->req.authority.len == 0)
        rc |= jn_fields_set(f, cs("Host"), cs(s->up->cfg->servers[s->server].address));
    rc |= jn_fields_set(f, cs("X-Request-Id"), cs(s->request_id));
    const struct jn_cfg_tls *tls = listener_tls(s);
    if (tls != NULL && tls->client_subject_header != NULL && s->tls_client_subject != NULL)
        rc |= jn_fields_set(f, cs(tls->client_subject_header), cs(s->tls_client_subject));
    return rc ? JN_ETOOBIG : 0;
}

struct jn_slice jn_stream_u64(struct jn_stream *s, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    char *p = jn_arena_strndup(&s->arena, tmp + sizeof(tmp) - n, n);
    return p != NULL ? (struct jn_slice){ p, n } : cs("0");
}

static int add_request_framing(struct jn_stream *s, struct jn_fields *f, const struct jn_h1_message *m)
{
    if (s->ws_h2)
        return 0; /* after the 101 the bytes are the WebSocket's, unframed */
    if (m->body == JN_H1_BODY_CHUNKED || m->body == JN_H1_BODY_CLOSE)
        return jn_fields_add(f, cs("Transfer-Encoding"), cs("chunked"));
    if (m->body == JN_H1_BODY_LENGTH)
        return jn_fields_add(f, cs("Content-Length"), jn_stream_u64(s, m->content_length));
    return 0;
}

/* Serialises the upstream request head into s->req_out. */
static int build_upstream_head(struct jn_stream *s, struct jn_fields *f,
                               const struct jn_h1_message *m)
{
    char path[MAX_UPSTREAM_PATH]; /* serialised below, before this returns */
    int n = jn_route_upstream_path(s->route, s->req.path, path, sizeof(path));
    if (n < 0)
        return n;
    if (add_forwarding_fields(s, f) != 0 || add_request_framing(s, f, m) != 0)
        return JN_ETOOBIG;
    if (jn_buf_acquire(&s->gen->worker->bufs, &s->req_out) != 0)
        return JN_ENOMEM;
    int rc = jn_h1_write_request_head(&s->req_out, s->req.method,
                                      (struct jn_slice){path, (size_t)n}, s->req.query, f);
    s->req_head_len = jn_buf_len(&s->req_out);
    return rc;
}

/* ---- stream set-up ---- */

/* "host:port" -> "host"; "[v6]:port" -> "[v6]". */
static struct jn_slice strip_port(struct jn_slice authority)
{
    for (size_t i = authority.len; i-- > 0;) {
        if (authority.ptr[i] == ']')
            break;
        if (authority.ptr[i] == ':')
            return (struct jn_slice){ authority.ptr, i };
    }
    return authority;
}

static int init_request(struct jn_stream *s, const struct jn_h1_message *m, const char **err)
{
    const struct jn_cfg_http *h = &s->gen->cfg->http;
    struct jn_path_opts opts = { h->merge_slashes, h->escaped_slashes };
    char *norm = jn_arena_alloc(&s->arena, m->target.len + 1);
    if (norm == NULL)
        return JN_ENOMEM;
    struct jn_slice authority;
    int rc =
        jn_path_normalize(m->target, &opts, norm, &s->req.path, &s->req.query, &authority, err);
    if (rc != 0)
        return rc;
    s->req.method = m->method;
    s->req.scheme = s->client->tp.ssl != NULL ? cs("https") : cs("http");
    s->absolute_form = authority.ptr != NULL;
    s->req.authority = s->absolute_form ? authority : m->host;
    s->req.host = strip_port(s->req.authority);
    s->req.version_major = s->h2 != NULL ? 2 : 1;
    s->req.version_minor = s->h2 != NULL ? 0 : m->version_minor;
    s->method = jn_arena_strndup(&s->arena, m->method.ptr, m->method.len);
    s->path = jn_arena_strndup(&s->arena, m->target.ptr, m->target.len);
    return s->method && s->path ? 0 : JN_ENOMEM;
}

static int init_fields(struct jn_stream *s, const struct jn_h1_message *m, struct jn_fields *f)
{
    s->fields_cap = m->nheaders + EXTRA_FIELDS;
    s->fields = jn_arena_alloc(&s->arena, s->fields_cap * sizeof(*s->fields));
    if (s->fields == NULL)
        return JN_ENOMEM;
    for (size_t i = 0; i < m->nheaders; i++)
        s->fields[i] = (struct jn_http_field){ m->headers[i].name, m->headers[i].value };
    *f = (struct jn_fields){ s->fields, m->nheaders, s->fields_cap };
    strip_client_subject_fields(s, f);
    s->req.fields = s->fields;
    s->req.nfields = f->n;
    return 0;
}

struct jn_stream *jn_stream_new(struct jn_client *c, const struct jn_front_ops *front)
{
    struct jn_worker *w = c->worker;
    struct jn_stream *s = w->stream_free;
    if (s != NULL) {
        struct jn_arena arena = s->arena;
        w->stream_free = s->next_free;
        w->nstream_free--;
        memset(s, 0, sizeof(*s));
        s->arena = arena;
    } else {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return NULL;
        jn_arena_init(&s->arena, 2048);
    }
    s->client = c;
    s->front = front;
    /* The peer until jn_client_addr_resolve says otherwise: early
     * rejections are logged with it too. */
    s->client_addr = c->peer_ip;
    memcpy(s->client_ip, c->peer, sizeof(s->client_ip));
    s->tls_client_subject = c->tls_subject;
    s->gen = c->worker->gen;
    s->gen->users++;
    s->server = -1;
    s->t_start = jn_loop_now(&c->worker->loop);
    return s;
}

static void stream_init(struct jn_stream *s, const struct jn_h1_message *m)
{
    s->head_request = m->method.len == 4 && memcmp(m->method.ptr, "HEAD", 4) == 0;
    s->client_keep_alive = m->keep_alive && !s->client->close_after;
    s->expect_continue = m->expect_continue;
    /* A body without a length (chunked, or an HTTP/2 stream's DATA up to
     * its end) goes upstream chunked. */
    bool chunk_out = (m->body == JN_H1_BODY_CHUNKED || m->body == JN_H1_BODY_CLOSE) && !s->ws_h2;
    jn_body_init(&s->req_body, m->body, m->content_length, chunk_out);
    s->req_nheaders = (uint32_t)m->nheaders;
}

static bool is_idempotent(struct jn_slice method)
{
    static const char *const ok[] = { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE" };
    for (size_t i = 0; i < JN_ARRAY_LEN(ok); i++)
        if (jn_slice_eq(method, cs(ok[i])))
            return true;
    return false;
}

/* A direct response configured on the route. */
static void respond_local(struct jn_stream *s)
{
    const struct jn_cfg_respond *r = &s->route->respond;
    struct jn_http_field fields[64];
    struct jn_fields f = { fields, 0, JN_ARRAY_LEN(fields) };
    for (size_t i = 0; i < r->nheaders && i < 32; i++)
        jn_fields_add(&f, cs(r->headers[i].name),
                      (struct jn_slice){ r->headers[i].value, r->headers[i].value_len });
    struct jn_http_response resp = { .status = r->status, .fields = fields, .nfields = f.n };
    jn_chain_response(s, &resp, &f);
    jn_h1_strip_hop_by_hop(&f);
    jn_fields_set(&f, cs("X-Request-Id"), cs(s->request_id));
    s->front->respond(s, r->status, &f, r->body, r->body_len);
}

/* An HTTP/2 upstream: the request head goes as HEADERS, built from f. */
static void start_h2_upstream(struct jn_stream *s, struct jn_fields *f)
{
    char path[MAX_UPSTREAM_PATH]; /* copied by jn_h2up_prepare */
    int n = jn_route_upstream_path(s->route, s->req.path, path, sizeof(path));
    if (n < 0 || add_forwarding_fields(s, f) != 0 ||
        jn_h2up_prepare(s, f, (struct jn_slice){ path, (size_t)n }, s->req.query) != 0) {
        jn_stream_respond_error(s, 431, "request header too large to forward");
        return;
    }
    s->retryable = s->req_body.done && is_idempotent(s->req.method);
    s->phase = JN_STREAM_UPSTREAM;
    s->t_upstream = jn_loop_now(&s->client->worker->loop);
    if (s->expect_continue && !s->req_body.done)
        s->front->continue_100(s);
    jn_h2up_start(s);
}

static void start_upstream(struct jn_stream *s, struct jn_fields *f, const struct jn_h1_message *m)
{
    s->up = &s->gen->ups[s->route->upstream->index];
    jn_upstream_count_request(s->up);
    s->server = jn_proxy_pick(s);
    if (s->server < 0) {
        jn_stream_respond_error(s, 503, "no upstream server available");
        return;
    }
    s->up->in_flight[s->server]++;
    s->counted = true;
    if (s->up->cfg->protocol != JN_UPSTREAM_HTTP1) {
        s->grpc_web = jn_grpc_web_request(s, f);
        start_h2_upstream(s, f);
        return;
    }
    if (build_upstream_head(s, f, m) != 0) {
        jn_stream_respond_error(s, 431, "request header too large to forward");
        return;
    }
    s->retryable = m->body == JN_H1_BODY_NONE && is_idempotent(m->method);
    s->phase = JN_STREAM_UPSTREAM;
    s->t_upstream = jn_loop_now(&s->client->worker->loop);
    if (s->expect_continue && !s->req_body.done)
        s->front->continue_100(s);
    jn_proxy_connect(s, 0);
}

/* Hop-by-hop fields go before the filters run, so that a client naming a
 * field in Connection cannot remove what a filter or the route set. A
 * WebSocket handshake gets its Connection and Upgrade back. */
static enum jn_filter_verdict strip_then_filter(struct jn_stream *s, struct jn_fields *f,
                                                const struct jn_h1_message *m)
{
    bool websocket = jn_upgrade_is_websocket(m);
    jn_h1_strip_hop_by_hop(f);
    s->upgrade = (websocket || s->ws_h2) && jn_upgrade_add_fields(f) == 0;
    enum jn_filter_verdict v = jn_chain_request(s, f);
    s->req.nfields = f->n; /* the request as the filters left it (hash keys read it) */
    return v;
}

/* Past the policies: a local answer or the upstream. */
static void proceed(struct jn_stream *s, struct jn_fields *f, const struct jn_h1_message *m)
{
    if (s->route->respond.enabled)
        respond_local(s);
    else
        start_upstream(s, f, m);
}

static int hold_slice(struct jn_stream *s, struct jn_slice *v)
{
    if (v->ptr == NULL)
        return 0;
    char *p = jn_arena_strndup(&s->arena, v->ptr, v->len);
    if (p == NULL)
        return JN_ENOMEM;
    v->ptr = p;
    return 0;
}

/* A policy paused the stream: the head's views point into the client's
 * input, which moves on, so what the rest of the exchange reads is copied
 * into the arena. Only a paused request pays for the copies. */
static int hold_head(struct jn_stream *s, struct jn_fields *f, const struct jn_h1_message *m)
{
    struct jn_h1_message *h = jn_arena_alloc(&s->arena, sizeof(*h));
    if (h == NULL)
        return JN_ENOMEM;
    *h = *m;
    h->headers = NULL;
    h->nheaders = 0;
    int rc = 0;
    for (size_t i = 0; i < f->n; i++)
        rc |= hold_slice(s, &f->v[i].name) | hold_slice(s, &f->v[i].value);
    rc |= hold_slice(s, &s->req.method) | hold_slice(s, &s->req.authority) |
          hold_slice(s, &s->req.path) | hold_slice(s, &s->req.query);
    if (rc != 0)
        return JN_ENOMEM;
    s->req.host = strip_port(s->req.authority);
    h->method = s->req.method;
    h->host = s->req.authority;
    h->target = (struct jn_slice){ s->path, strlen(s->path) };
    s->held = h;
    s->held_nfields = f->n;
    return 0;
}

void jn_proxy_resume(struct jn_stream *s)
{
    struct jn_fields f = { s->fields, s->held_nfields, s->fields_cap };
    if (s->h2 == NULL && s->phase == JN_STREAM_REQ_HEAD && (s->client->eof || s->client->hup)) {
        /* The HTTP/1.1 client left during the pause: the request is not
         * sent on its behalf (nginx's default; logged as 499). */
        s->error = "client closed request";
        s->front->abort(s);
        return;
    }
    s->req.fields = s->fields;
    s->req.nfields = f.n;
    if (s->phase == JN_STREAM_REQ_HEAD) {
        enum jn_filter_verdict v = jn_chain_request(s, &f);
        s->req.nfields = f.n;
        s->held_nfields = f.n;
        if (v == JN_FILTER_CONTINUE)
            proceed(s, &f, s->held);
    }
    if (s->paused)
        return;
    s->req.fields = NULL;
    s->req.nfields = 0;
    s->front->wake(s);
}

void jn_proxy_start(struct jn_client *c, const struct jn_h1_message *m)
{
    struct jn_stream *s = jn_stream_new(c, &jn_front_h1);
    if (s == NULL) {
        jn_client_close(c);
        return;
    }
    c->stream = s;
    jn_proxy_run(s, m);
}

void jn_proxy_run(struct jn_stream *s, const struct jn_h1_message *m)
{
    struct jn_client *c = s->client;
    stream_init(s, m);
    struct jn_fields f;
    const char *err = "bad request";
    if (init_fields(s, m, &f) != 0) {
        jn_buf_consume(&c->in, m->header_bytes);
        jn_request_id_new(c->worker, s->request_id, sizeof(s->request_id));
        jn_stream_respond_error(s, 500, "out of memory");
        return;
    }
    take_request_id(s, &f);
    jn_client_addr_resolve(s, &f);
    int rc = init_request(s, m, &err);
    if (rc == 0) {
        s->route = jn_router_match_listener(s->gen->cfg->router, &s->req, c->listener->name);
        if (s->route == NULL)
            jn_stream_respond_error(s, 404, "no route");
        else {
            enum jn_filter_verdict v = strip_then_filter(s, &f, m);
            if (v == JN_FILTER_CONTINUE)
                proceed(s, &f, m);
            else if (v == JN_FILTER_PAUSE && hold_head(s, &f, m) != 0) {
                jn_chain_end(s); /* cancels the pause */
                jn_stream_respond_error(s, 500, "out of memory");
            }
        }
    } else {
        s->req_body.done = true; /* the body is never read: the connection closes */
        s->client_keep_alive = false;
        jn_stream_respond_error(s, 400, err);
    }
    /* Views into the head are dead from here on: everything needed was
     * serialised or copied into the arena. */
    jn_buf_consume(&c->in, m->header_bytes);
    s->req.fields = NULL;
    s->req.nfields = 0;
}

void jn_proxy_reject(struct jn_stream *s, const struct jn_h1_message *m, uint16_t status,
                     const char *msg)
{
    stream_init(s, m);
    jn_request_id_new(s->gen->worker, s->request_id, sizeof(s->request_id));
    s->method = jn_arena_strndup(&s->arena, m->method.ptr, m->method.len);
    s->path = jn_arena_strndup(&s->arena, m->target.ptr, m->target.len);
    s->req_body.done = true; /* never read */
    s->client_keep_alive = false;
    jn_stream_respond_error(s, status, msg);
}

/* ---- relaying ---- */

/* Bad framing in the request body: 400 if the response has not begun,
 * otherwise the connection is cut (a status cannot change mid-response). */
int jn_proxy_bad_body(struct jn_stream *s, const char *err)
{
    s->error = err ? err : "invalid request body framing";
    jn_proxy_drop_upconn(s);
    if (s->resp_head_sent) {
        s->front->abort(s);
        return -1;
    }
    if (s->req_body.too_big) /* past a route's max_body_size (request_limits) */
        jn_stream_respond_error(s, 413, "request body too large");
    else
        jn_stream_respond_error(s, 400, "invalid request body framing");
    return -1;
}

static int write_upstream(struct jn_stream *s)
{
    struct jn_upconn *uc = s->uc;
    if (jn_buf_empty(&s->req_out) || !uc->can_write)
        return 0;
    size_t before = jn_buf_len(&s->req_out);
    ssize_t n = jn_upconn_write(uc, &s->req_out); /* plain or TLS */
    if (n == JN_EIO) {
        /* The server may have answered early (413, 401) and closed: stop
         * sending and read what it said; reading fails if it said nothing. */
        s->req_write_failed = true;
        jn_buf_consume(&s->req_out, jn_buf_len(&s->req_out));
        uc->can_read = true;
        uc->hup = true;
        return 1;
    }
    if (jn_buf_len(&s->req_out) == before)
        return 0;
    /* A request body still flowing counts as activity: the response timer
     * measures the server's silence, not the length of an upload. */
    jn_timer_set(s->up->loop, &uc->timer, response_timeout(s));
    return 1;
}

static int read_upstream(struct jn_stream *s)
{
    struct jn_upconn *uc = s->uc;
    if (!uc->can_read || s->upstream_eof)
        return 0;
    if (jn_buf_acquire(&s->client->worker->bufs, &s->resp_in) != 0)
        return 0;
    ssize_t n = jn_upconn_read(uc, &s->resp_in); /* plain or TLS */
    if (n > 0)
        return 1;
    if (n == 0) {
        s->upstream_eof = true;
        return 1;
    }
    if (n == JN_EAGAIN)
        return 0;
    jn_proxy_upstream_fail(s, 502, "connection reset while reading the response", JN_OUT_RESET);
    return -1;
}

/* A response head larger than a pooled buffer, but within the limits, gets
 * a larger buffer. Returns 1 when it grew (read again), 0 when not needed,
 * -1 when s ended. */
static int grow_response_buffer(struct jn_stream *s, size_t limit)
{
    if (jn_buf_room(&s->resp_in) > 0 || s->resp_in.cap >= limit)
        return 0;
    if (jn_buf_grow(&s->resp_in, limit) != 0) {
        jn_proxy_upstream_fail(s, 502, "out of memory for the response header", JN_OUT_LOCAL);
        return -1;
    }
    return 1;
}

/* The upstream switched to WebSocket for an HTTP/2 client (RFC 8441): the
 * client gets 200, and from here both bodies are the WebSocket's bytes, up
 * to either side's end. */
static int ws_h2_accept(struct jn_stream *s, const struct jn_h1_message *m, size_t head_len)
{
    bool websocket = false;
    for (size_t i = 0; i < m->nheaders; i++)
        websocket |= jn_slice_ieq(m->headers[i].name, "upgrade") &&
                     jn_slice_ieq(m->headers[i].value, "websocket");
    if (!websocket) {
        jn_proxy_upstream_fail(s, 502, "101 Switching Protocols to another protocol than websocket",
                               JN_OUT_RESET);
        return -1;
    }
    struct jn_h1_message ok = *m;
    ok.status = 200;
    ok.body = JN_H1_BODY_CLOSE;
    ok.keep_alive = false;
    deliver_head(s, &ok);
    if (s->resp_head_sent)
        jn_buf_consume(&s->resp_in, head_len);
    return 1;
}

/* Parses the response head and writes the client's version of it. */
static int handle_response_head(struct jn_stream *s)
{
    const struct jn_cfg_http *h = &s->gen->cfg->http;
    struct jn_h1_limits lim = { h->max_header_size, h->max_header_size, h->max_headers };
    struct jn_h1_header hdrs[256];
    struct jn_h1_message m;
    if (lim.max_headers > JN_ARRAY_LEN(hdrs))
        lim.max_headers = JN_ARRAY_LEN(hdrs);
    /* Nothing read yet (connected, not yet readable): resp_in may have no
     * storage, and growing it here would malloc a head-sized buffer (about
     * 40 KiB, for nearly every request: page faults and heap trimming) in
     * place of a pooled one, and parse from a null pointer. */
    if (jn_buf_empty(&s->resp_in) && !s->upstream_eof)
        return 0;
    int rc = jn_h1_parse_response(jn_buf_head(&s->resp_in), jn_buf_len(&s->resp_in), &lim, hdrs,
                                  JN_ARRAY_LEN(hdrs), &s->resp_scan, s->head_request, &m);
    if (rc == JN_EAGAIN) {
        if (!s->upstream_eof)
            return grow_response_buffer(s, (size_t)lim.max_request_line + lim.max_header_size + 4);
        jn_proxy_upstream_fail(s, 502,
                      jn_buf_empty(&s->resp_in) ? "connection closed before the response"
                                                : "truncated response header",
                      JN_OUT_RESET);
        return -1;
    }
    if (rc < 0) {
        jn_proxy_upstream_fail(s, 502, m.error ? m.error : "invalid response", JN_OUT_RESET);
        return -1;
    }
    if (m.status == 101 && s->upgrade && s->ws_h2)
        return ws_h2_accept(s, &m, (size_t)rc);
    if (m.status == 101 && s->upgrade)
        return jn_upgrade_start(s, &m, (size_t)rc);
    if (m.status < 200) {
        /* Interim responses (100, 103) are consumed here: the client's 100
         * Continue was already sent by Junction itself. 101 was never asked for. */
        if (m.status == 101) {
            jn_proxy_upstream_fail(s, 502, "unexpected 101 Switching Protocols", JN_OUT_RESET);
            return -1;
        }
        jn_buf_consume(&s->resp_in, (size_t)rc);
        s->resp_scan = (struct jn_h1_scan){ 0 };
        return 1;
    }
    rc = deliver_head(s, &m);
    if (rc > 0 && s->resp_head_sent)
        jn_buf_consume(&s->resp_in, (size_t)m.header_bytes);
    return rc;
}

/* The response head, parsed from HTTP/1.1 or received as HTTP/2 HEADERS:
 * passive health and retries see its status, the filters its fields, and
 * the client gets its own version of it. Returns 1. */
static int deliver_head(struct jn_stream *s, const struct jn_h1_message *mp)
{
    struct jn_h1_message m = *mp;
    if (s->grpc_web && !jn_grpc_web_is_grpc(&m))
        s->grpc_web = 0; /* not a gRPC answer (a 404 page): passed on as it is */
    if (s->grpc_web && m.body == JN_H1_BODY_LENGTH)
        m.body = JN_H1_BODY_CLOSE; /* a trailers frame follows: the length no longer holds */
    if (jn_proxy_judge_response(s, m.status))
        return 1; /* retried on another server */
    s->status = m.status;
    s->upstream_keep_alive = m.keep_alive;
    s->t_upstream_head = jn_loop_now(&s->client->worker->loop);
    uint64_t now_us = jn_clock_us();
    if (s->t_upstream_us != 0 && now_us >= s->t_upstream_us)
        jn_upstream_observe(s->up, (uint32_t)s->server, now_us - s->t_upstream_us, now_us);
    struct jn_http_field fields[256 + EXTRA_FIELDS];
    struct jn_fields f = { fields, 0, JN_ARRAY_LEN(fields) };
    for (size_t i = 0; i < m.nheaders; i++)
        fields[f.n++] = (struct jn_http_field){ m.headers[i].name, m.headers[i].value };
    jn_h1_strip_hop_by_hop(&f);
    struct jn_http_response resp = { .status = m.status, .fields = fields, .nfields = f.n };
    jn_chain_response(s, &resp, &f);
    jn_fields_set(&f, cs("X-Request-Id"), cs(s->request_id));
    char cookie[512]; /* written out below, before this returns */
    size_t clen = 0;
    if (s->up->sticky != NULL && !s->sticky_hit &&
        (clen = jn_sticky_set_cookie(s->up->cfg, s->up->sticky[s->server], cookie,
                                     sizeof(cookie))) > 0)
        jn_fields_add(&f, cs("Set-Cookie"), (struct jn_slice){ cookie, clen });
    if (s->grpc_web)
        jn_grpc_web_response(s, &f);
    if (s->ws_h2)
        jn_fields_remove(&f, "sec-websocket-accept"); /* HTTP/2 has no key exchange */
    s->front->response_head(s, m.status, &f, &m);
    s->resp_body.hold_end = s->grpc_web && !s->resp_body.done; /* the trailers frame goes last */
    s->resp_head_sent = true;
    /* The response header is in: from now on the response timeout bounds
     * the silence between reads instead. */
    if (s->uc != NULL)
        jn_timer_set(s->up->loop, &s->uc->timer, response_timeout(s));
    return 1;
}

/* The trailers of a chunked body, once it is through, as fields in the
 * arena (lower-case names, as HTTP/2 wants them) for the other side. */
static void take_trailers(struct jn_stream *s, struct jn_body *b, struct jn_http_field **out,
                          size_t *n)
{
    struct jn_slice names[64], values[64];
    if (!b->done || b->chunked.trailers == NULL || *n > 0)
        return;
    size_t k = jn_h1_trailer_fields(&b->chunked, names, values, JN_ARRAY_LEN(names));
    struct jn_http_field *f = jn_arena_alloc(&s->arena, (k ? k : 1) * sizeof(*f));
    for (size_t i = 0; f != NULL && i < k; i++) {
        char *name = jn_arena_strndup(&s->arena, names[i].ptr, names[i].len);
        char *value = jn_arena_strndup(&s->arena, values[i].ptr, values[i].len);
        if (name == NULL || value == NULL)
            return;
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        f[i] = (struct jn_http_field){ { name, names[i].len }, { value, values[i].len } };
    }
    if (f != NULL) {
        *out = f;
        *n = k;
    }
    jn_body_free(b);
}

static int pump_response(struct jn_stream *s)
{
    if (!s->resp_head_sent || s->resp_body.done)
        return 0;
    struct jn_buf *out = s->front->body_out(s);
    if (out == NULL)
        return 0;
    s->resp_body.src_eof = s->upstream_eof;
    const char *err = NULL;
    size_t before = jn_buf_len(out);
    int rc = jn_body_pump(&s->resp_body, &s->resp_in, out, &err);
    take_trailers(s, &s->resp_body, &s->trailers, &s->ntrailers);
    if (rc < 0) {
        jn_proxy_upstream_fail(s, 502, err ? err : "invalid response body framing", JN_OUT_RESET);
        return -1;
    }
    if (s->resp_body.src_done && !s->resp_body.done) {
        /* gRPC-Web: the upstream's trailers become the body's last frame. */
        char frame[16384];
        size_t n = jn_grpc_web_trailers(s, frame, sizeof(frame));
        if (jn_body_end(&s->resp_body, out, frame, n) == 0) {
            s->ntrailers = 0; /* said in the body; not again as HTTP/2 trailers */
            rc = 1;
        }
    }
    s->bytes_sent += jn_buf_len(out) - before;
    if (!s->resp_body.done && !s->resp_body.src_done && s->upstream_eof &&
        jn_buf_empty(&s->resp_in)) {
        jn_proxy_upstream_fail(s, 502, "upstream closed before the end of the response body",
                               JN_OUT_RESET);
        return -1;
    }
    if (rc > 0 && s->uc != NULL)
        jn_timer_set(s->up->loop, &s->uc->timer, response_timeout(s));
    return rc;
}

/* Hands the client what is ready. Returns 1 when bytes left, 0 when not,
 * -1 when the client is gone (the exchange is then aborted). */
static int flush_client(struct jn_stream *s)
{
    int rc = s->front->flush(s);
    if (rc >= 0)
        return rc;
    s->error = "client write failed";
    s->front->abort(s);
    return -1;
}

/* One pass for an HTTP/2 upstream: the session moves the frames, this
 * moves the bytes between them and the client. Same returns as relay_once. */
static int relay_h2(struct jn_stream *s)
{
    uint16_t status;
    enum jn_outcome o;
    const char *why = jn_h2up_error(s, &status, &o);
    if (why != NULL) {
        jn_proxy_upstream_fail(s, status, why, o);
        return -1;
    }
    size_t from = jn_buf_len(&s->req_out);
    int p = s->front->pump_request(s);
    if (p < 0 || s->phase != JN_STREAM_UPSTREAM)
        return -1;
    if (s->grpc_web == 2 && jn_grpc_web_decode(s, from) != 0)
        return jn_proxy_bad_body(s, "invalid base64 in a gRPC-Web text body");
    take_trailers(s, &s->req_body, &s->req_trailers, &s->nreq_trailers);
    jn_h2up_push(s);
    struct jn_h1_message m;
    if (!s->resp_head_sent && jn_h2up_head(s, &status, &m)) {
        if (s->grpc_web == 2 && m.body == JN_H1_BODY_LENGTH)
            m.body = JN_H1_BODY_CLOSE; /* base64 changes the length: up to the end */
        deliver_head(s, &m);
        if (s->phase != JN_STREAM_UPSTREAM || !s->resp_head_sent)
            return s->phase == JN_STREAM_UPSTREAM ? 0 : -1; /* retried elsewhere, or answered */
        p = 1;
    }
    if (s->grpc_web == 2 && s->resp_head_sent && jn_grpc_web_encode(s) != 0) {
        jn_proxy_upstream_fail(s, 502, "out of memory for a gRPC-Web text body", JN_OUT_LOCAL);
        return -1;
    }
    size_t before = jn_buf_len(&s->resp_in);
    int rc = pump_response(s);
    if (rc < 0)
        return -1;
    if (jn_buf_len(&s->resp_in) < before) {
        size_t used = before - jn_buf_len(&s->resp_in);
        s->gw_encoded -= JN_MIN(used, s->gw_encoded);
        jn_h2up_consumed(s, used);
    }
    return p | rc | flush_client(s);
}

/* One pass over every direction. Returns 1 on progress, 0 stalled, -1 when s ended. */
static int relay_once(struct jn_stream *s)
{
    int p = s->front->pump_request(s);
    if (p < 0 || s->phase != JN_STREAM_UPSTREAM)
        return -1;
    if (s->uc == NULL || !jn_proxy_check_connected(s))
        return s->phase == JN_STREAM_UPSTREAM && s->uc != NULL ? p : -1;
    int rc = write_upstream(s);
    if (rc < 0)
        return -1;
    p |= rc;
    if (s->ws_h2 && s->req_body.done && jn_buf_empty(&s->req_out) && !s->ws_shut &&
        s->resp_head_sent) {
        s->ws_shut = true; /* the client ended its stream: the upstream sees our end */
        shutdown(s->uc->io.fd, SHUT_WR);
    }
    if ((rc = read_upstream(s)) < 0)
        return -1;
    p |= rc;
    if (!s->resp_head_sent && (rc = handle_response_head(s)) != 0) {
        if (rc < 0 || s->phase != JN_STREAM_UPSTREAM)
            return rc < 0 ? -1 : 1; /* ended, or upgraded: jn_proxy_drive goes on */
        p = 1;
    }
    if ((rc = pump_response(s)) < 0)
        return -1;
    return p | rc | flush_client(s);
}

void jn_proxy_drive(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    const struct jn_front_ops *front = s->front;
    bool moved = false;
    if (s->logged)
        return; /* over, waiting for its client side to let go of it */
    while (s->phase == JN_STREAM_UPSTREAM) {
        struct jn_upconn *uc = s->uc;
        int rc = s->h2up != NULL ? relay_h2(s) : relay_once(s);
        if (!front->alive(c, s))
            return;
        /* A failure retried on another connection: a pooled one is already
         * writable and will raise no edge, so go on with it now. */
        if (rc < 0 && s->phase == JN_STREAM_UPSTREAM && s->uc != NULL && s->uc != uc)
            rc = 1;
        if (s->resp_body.done && s->resp_head_sent) {
            s->phase = JN_STREAM_DONE;
            release_upstream(s); /* back to the pool while the client drains */
        }
        if (rc <= 0)
            break;
        moved = true;
    }
    if (s->phase == JN_STREAM_TUNNEL) {
        jn_upgrade_drive(s);
        return;
    }
    if (s->phase != JN_STREAM_DONE) {
        /* A client that stops reading (or sending its body) is timed out. */
        if (moved && (front->pending(s) || !s->req_body.done))
            front->touch(s);
        return;
    }
    if (front->flush(s) < 0) {
        front->abort(s);
        return;
    }
    if (!front->alive(c, s))
        return;
    if (!front->pending(s))
        finish(s);
    else
        front->touch(s);
}

void jn_proxy_client_timeout(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    if (s->paused) {
        /* A policy is at work and bounds its own wait. */
        jn_client_set_timer(c, JN_CT_BODY);
        return;
    }
    s->error = "client timeout";
    if (s->phase == JN_STREAM_UPSTREAM && !s->req_body.done && !jn_buf_empty(&s->req_out) &&
        (s->uc != NULL || jn_h2up_attached(s))) {
        /* The client is not slow: the upstream is not taking the body, and
         * its own timer judges that. */
        jn_client_set_timer(c, JN_CT_BODY);
        return;
    }
    if (s->phase == JN_STREAM_UPSTREAM && !s->resp_head_sent && !s->req_body.done) {
        jn_proxy_drop_upconn(s);
        jn_stream_respond_error(s, 408, "request body timeout");
        return;
    }
    if (s->phase == JN_STREAM_UPSTREAM && s->req_body.done &&
        (!s->resp_head_sent || jn_buf_empty(&c->out)))
        return; /* waiting on the upstream, whose own timers apply */
    jn_client_close(c);
}

/* ---- the end ---- */

static void release_upstream(struct jn_stream *s)
{
    struct jn_upconn *uc = s->uc;
    if (s->h2up != NULL)
        jn_h2up_release(s);
    jn_upwait_cancel(&s->wait);
    if (s->counted) {
        s->up->in_flight[s->server]--;
        s->counted = false;
    }
    if (uc == NULL)
        return;
    s->uc = NULL;
    bool reusable = s->upstream_keep_alive && s->resp_body.done && s->req_body.done &&
                    jn_buf_empty(&s->resp_in) && jn_buf_empty(&s->req_out) && !s->upstream_eof;
    jn_upconn_finish(uc, reusable);
}

/* Counts and logs a stream once, however it ended. A stream cut short
 * before it had a status is logged as 499, nginx's "client closed request". */
static void account(struct jn_stream *s)
{
    if (s->logged)
        return;
    s->logged = true;
    jn_chain_end(s);
    if (s->status == 0)
        s->status = 499;
    count_status(s);
    jn_access_log_write(s);
}

static void finish(struct jn_stream *s)
{
    release_upstream(s);
    account(s);
    s->front->done(s);
}

void jn_stream_settle(struct jn_stream *s)
{
    s->phase = JN_STREAM_DONE;
    release_upstream(s);
    account(s);
}

void jn_stream_free(struct jn_stream *s)
{
    if (s == NULL)
        return;
    struct jn_worker *w = s->gen->worker;
    release_upstream(s);
    account(s);
    jn_body_free(&s->req_body);
    jn_body_free(&s->resp_body);
    jn_buf_release(&w->bufs, &s->req_out);
    jn_buf_release(&w->bufs, &s->resp_in);
    jn_gen_release(s->gen);
#ifndef JN_ASAN /* let AddressSanitizer see every stream's lifetime */
    if (w->nstream_free < STREAM_CACHE) {
        jn_arena_reset(&s->arena);
        s->next_free = w->stream_free;
        w->stream_free = s;
        w->nstream_free++;
        return;
    }
#endif
    jn_arena_free(&s->arena);
    free(s);
}

void jn_stream_cache_destroy(struct jn_worker *w)
{
    while (w->stream_free != NULL) {
        struct jn_stream *s = w->stream_free;
        w->stream_free = s->next_free;
        jn_arena_free(&s->arena);
        free(s);
    }
    w->nstream_free = 0;
}
