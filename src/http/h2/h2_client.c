/* HTTP/2 to upstreams. Each worker keeps, per server, a short list of
 * client sessions (at most MAX_SESSIONS, a new one opened only when the
 * others are full), each on one upstream connection that it owns.
 *
 * The same re-entrancy rule as the server side (h2_server.c): nghttp2
 * callbacks only record what happened and queue the stream; streams are
 * woken (front->wake) after nghttp2 returns, and a stream is freed only by
 * its own client side, which calls jn_h2up_release first. */
#include "http/h2/h2_client.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance/upstream.h"
#include "core/log.h"
#include "http/front.h"
#include "http/proxy.h"
#include "http/proxy_upstream.h"
#include "http/stream.h"
#include "tls/tls.h"

#define MAX_SESSIONS 4      /* per server and worker */
#define DEFAULT_STREAMS 100 /* assumed until the server's SETTINGS say */
#define STREAM_WINDOW (256 << 10)
#define SESSION_WINDOW (4 << 20)
#define OUT_HIGH (64 << 10)

struct jn_h2up_sess;

struct jn_h2up_stream {
    struct jn_stream *s;       /* borrowed: the proxy stream (owns this, in its arena) */
    struct jn_h2up_sess *sess; /* NULL once released or before start */
    int32_t id;                /* 0 until submitted */
    nghttp2_nv *nva;           /* arena: the request head */
    size_t nnv;
    bool has_body;
    bool deferred;   /* the request data source waits for bytes */
    bool head_ready; /* a final response head came */
    bool closed;     /* nghttp2 closed the stream */
    uint16_t status;
    struct jn_h1_header *fields; /* arena: response fields */
    size_t nfields, cap;
    struct jn_http_field *trailers; /* arena */
    size_t ntrailers, tcap;
    bool ended_in_head; /* END_STREAM on the response HEADERS */
    bool has_length;
    uint64_t length;
    size_t unacked;    /* DATA bytes in s->resp_in not yet given back as window */
    const char *error; /* static: why it failed, NULL while fine */
    uint16_t error_status;
    enum jn_outcome error_outcome;
    bool queued;
    struct jn_h2up_stream *next; /* the session's wake or pending list */
    struct jn_h2up_stream *all_prev, *all_next;
    struct jn_timer timer; /* upstream_response between frames */
};

struct jn_h2up_sess {
    struct jn_upstream_rt *up; /* borrowed */
    uint32_t server;
    struct jn_upconn *uc;     /* owned: the connection, until the session ends */
    nghttp2_session *session; /* owned */
    struct jn_buf_pool *pool; /* borrowed: the worker's buffers */
    struct jn_buf in, out;
    struct jn_h2up_stream *all;     /* streams attached */
    struct jn_h2up_stream *pending; /* attached before the connection was ready */
    struct jn_h2up_stream *wake, *wake_tail;
    uint32_t nstreams;
    bool ready; /* connected (and TLS with ALPN h2): requests go */
    bool dead;
    bool driving;              /* inside sess_drive: a nested call only queues */
    struct jn_timer kick;      /* a drive soon, from the loop, not from the caller's stack */
    struct jn_h2up_sess *next; /* the server's list */
};

/* ---- small helpers ---- */

static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){s, strlen(s)};
}

static void queue_wake(struct jn_h2up_stream *u)
{
    struct jn_h2up_sess *x = u->sess;
    if (u->queued || x == NULL)
        return;
    u->queued = true;
    u->next = NULL;
    if (x->wake_tail)
        x->wake_tail->next = u;
    else
        x->wake = u;
    x->wake_tail = u;
}

static void unlink_lists(struct jn_h2up_sess *x, struct jn_h2up_stream *u)
{
    struct jn_h2up_stream **pp;
    if (u->queued) {
        struct jn_h2up_stream *prev = NULL;
        for (pp = &x->wake; *pp && *pp != u; prev = *pp, pp = &(*pp)->next)
            ;
        if (*pp) {
            *pp = u->next;
            if (x->wake_tail == u)
                x->wake_tail = prev;
        }
        u->queued = false;
    }
    for (pp = &x->pending; *pp && *pp != u; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = u->next;
    if (u->all_prev)
        u->all_prev->all_next = u->all_next;
    else
        x->all = u->all_next;
    if (u->all_next)
        u->all_next->all_prev = u->all_prev;
    u->all_prev = u->all_next = NULL;
}

static void fail_stream(struct jn_h2up_stream *u, uint16_t status, const char *why,
                        enum jn_outcome o)
{
    if (u->error == NULL) {
        u->error = why;
        u->error_status = status;
        u->error_outcome = o;
    }
    queue_wake(u);
}

static void sess_drive(struct jn_h2up_sess *x);
static void sess_free(struct jn_h2up_sess *x);
static void touch(struct jn_h2up_stream *u);

/* ---- the request ---- */

static bool connection_specific(struct jn_slice name)
{
    static const char *const names[] = {"connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "transfer-encoding",
                                        "upgrade",
                                        "content-length",
                                        "te",
                                        "host"};
    for (size_t i = 0; i < JN_ARRAY_LEN(names); i++)
        if (jn_slice_ieq(name, names[i]))
            return true;
    return false;
}

static bool nv_add(struct jn_stream *s, nghttp2_nv *nv, struct jn_slice name, struct jn_slice value,
                   bool lower)
{
    char *n = jn_arena_strndup(&s->arena, name.ptr, name.len);
    char *v = jn_arena_strndup(&s->arena, value.ptr, value.len);
    if (n == NULL || v == NULL)
        return false;
    for (char *p = n; lower && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    *nv = (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, name.len, value.len, NGHTTP2_NV_FLAG_NONE};
    return true;
}

int jn_h2up_prepare(struct jn_stream *s, const struct jn_fields *f, struct jn_slice path,
                    struct jn_slice query)
{
    struct jn_h2up_stream *u = jn_arena_alloc(&s->arena, sizeof(*u));
    nghttp2_nv *nva = jn_arena_alloc(&s->arena, (f->n + 6) * sizeof(*nva));
    if (u == NULL || nva == NULL)
        return JN_ENOMEM;
    *u = (struct jn_h2up_stream){.s = s, .nva = nva};
    s->h2up = u;
    /* :path is the upstream path and the query as received. */
    size_t plen = path.len + (query.len ? query.len + 1 : 0);
    char *p = jn_arena_alloc(&s->arena, plen + 1);
    if (p == NULL)
        return JN_ENOMEM;
    memcpy(p, path.ptr, path.len);
    if (query.len) {
        p[path.len] = '?';
        memcpy(p + path.len + 1, query.ptr, query.len);
    }
    struct jn_slice authority = jn_http_field_get(f->v, f->n, "host");
    if (authority.ptr == NULL)
        authority = cs(s->up->cfg->servers[s->server].address);
    bool tls = s->up->cfg->protocol == JN_UPSTREAM_H2;
    size_t n = 0;
    bool ok = nv_add(s, &nva[n++], cs(":method"), s->req.method, false) &&
              nv_add(s, &nva[n++], cs(":scheme"), cs(tls ? "https" : "http"), false) &&
              nv_add(s, &nva[n++], cs(":authority"), authority, false) &&
              nv_add(s, &nva[n++], cs(":path"), (struct jn_slice){p, plen}, false);
    for (size_t i = 0; ok && i < f->n; i++)
        if (!connection_specific(f->v[i].name))
            ok = nv_add(s, &nva[n++], f->v[i].name, f->v[i].value, true);
    /* Servers of gRPC require it; every HTTP/2 server accepts it. */
    ok = ok && nv_add(s, &nva[n++], cs("te"), cs("trailers"), false);
    if (ok && s->req_body.in == JN_H1_BODY_LENGTH && s->grpc_web != 2) /* base64: not the length */
        ok = nv_add(s, &nva[n++], cs("content-length"), jn_stream_u64(s, s->req_body.remaining),
                    false);
    u->nnv = n;
    u->has_body = !s->req_body.done;
    /* The body goes as it is in DATA frames: no HTTP/1.1 chunks. */
    uint64_t limit = s->req_body.limit; /* request_limits' max_body_size */
    jn_body_init(&s->req_body, s->req_body.in, s->req_body.remaining, false);
    s->req_body.limit = limit;
    s->req_body.chunked.keep_trailers = true; /* an HTTP/1.1 client's, for the server */
    return ok ? 0 : JN_ENOMEM;
}

static int submit_request_trailers(nghttp2_session *session, struct jn_h2up_stream *u)
{
    struct jn_stream *s = u->s;
    nghttp2_nv *nva = jn_arena_alloc(&s->arena, s->nreq_trailers * sizeof(*nva));
    if (nva == NULL)
        return JN_ENOMEM;
    for (size_t i = 0; i < s->nreq_trailers; i++) {
        const struct jn_http_field *t = &s->req_trailers[i];
        nva[i] = (nghttp2_nv){ (uint8_t *)t->name.ptr, (uint8_t *)t->value.ptr, t->name.len,
                               t->value.len, NGHTTP2_NV_FLAG_NONE };
    }
    return nghttp2_submit_trailer(session, u->id, nva, s->nreq_trailers) == 0 ? 0 : JN_EIO;
}

static ssize_t read_request(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user)
{
    struct jn_h2up_stream *u = source->ptr;
    struct jn_stream *s = u->s;
    size_t n = JN_MIN(length, jn_buf_len(&s->req_out));
    if (n > 0) {
        memcpy(buf, jn_buf_head(&s->req_out), n);
        jn_buf_consume(&s->req_out, n);
        touch(u);      /* an upload flowing is no silent server */
        queue_wake(u); /* room for more of the client's body */
    }
    if (jn_buf_empty(&s->req_out)) {
        if (s->req_body.done) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (s->nreq_trailers > 0 && submit_request_trailers(session, u) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers end it */
            return (ssize_t)n;
        }
        if (n == 0) {
            u->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static void response_timeout(struct jn_loop *loop, struct jn_timer *t)
{
    struct jn_h2up_stream *u = t->data;
    fail_stream(u, 504, "upstream response timeout", JN_OUT_TIMEOUT);
    if (u->sess != NULL && !u->sess->driving)
        sess_drive(u->sess);
}

static void touch(struct jn_h2up_stream *u)
{
    jn_timer_set(u->s->up->loop, &u->timer, u->s->gen->cfg->timeouts.upstream_response);
}

static void submit(struct jn_h2up_sess *x, struct jn_h2up_stream *u)
{
    nghttp2_data_provider prd = {.source.ptr = u, .read_callback = read_request};
    int32_t id =
        nghttp2_submit_request(x->session, NULL, u->nva, u->nnv, u->has_body ? &prd : NULL, u);
    if (id < 0) {
        fail_stream(u, 502, "upstream HTTP/2 request refused", JN_OUT_LOCAL);
        return;
    }
    u->id = id;
    touch(u);
}

/* ---- session callbacks ---- */

static bool add_header(struct jn_stream *s, struct jn_h1_header **v, size_t *n, size_t *cap,
                       const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct jn_h1_header *f = jn_arena_alloc(&s->arena, c * sizeof(*f));
        if (f == NULL)
            return false;
        if (*n)
            memcpy(f, *v, *n * sizeof(*f));
        *v = f;
        *cap = c;
    }
    char *a = jn_arena_strndup(&s->arena, (const char *)name, nlen);
    char *b = jn_arena_strndup(&s->arena, (const char *)value, vlen);
    if (a == NULL || b == NULL)
        return false;
    (*v)[(*n)++] = (struct jn_h1_header){{a, nlen}, {b, vlen}};
    return true;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct jn_h2up_stream *u = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (u == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct jn_stream *s = u->s;
    if (u->head_ready) { /* trailers */
        struct jn_h1_header *t = (struct jn_h1_header *)u->trailers;
        bool ok = add_header(s, &t, &u->ntrailers, &u->tcap, name, namelen, value, valuelen);
        u->trailers = (struct jn_http_field *)t;
        return ok ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        uint16_t st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = (uint16_t)(st * 10 + (value[i] - '0'));
        u->status = st;
        u->nfields = 0; /* a final head after interim ones starts afresh */
        return 0;
    }
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        uint64_t v = 0;
        for (size_t i = 0; i < valuelen; i++)
            v = v * 10 + (uint64_t)(value[i] - '0'); /* nghttp2 checked the digits */
        u->has_length = true;
        u->length = v;
        return 0;
    }
    return add_header(s, &u->fields, &u->nfields, &u->cap, name, namelen, value, valuelen)
               ? 0
               : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct jn_h2up_stream *u = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (u == NULL)
        return 0;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        if (!u->head_ready && u->status >= 200) {
            u->head_ready = true;
            u->ended_in_head = end;
        } else if (u->head_ready) {
            u->s->trailers = u->trailers;
            u->s->ntrailers = u->ntrailers;
        }
        if (!end)
            touch(u);
    }
    if (end && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
        u->s->upstream_eof = true;
        jn_timer_stop(u->s->up->loop, &u->timer); /* the server is done: the client's pace now */
    }
    queue_wake(u);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct jn_h2up_stream *u = nghttp2_session_get_stream_user_data(session, id);
    if (u == NULL) {
        nghttp2_session_consume(session, id, len);
        return 0;
    }
    struct jn_stream *s = u->s;
    /* The stream window bounds what waits here for the client. */
    jn_buf_acquire(&s->gen->worker->bufs, &s->resp_in);
    if (jn_buf_put(&s->resp_in, data, len) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    u->unacked += len;
    touch(u);
    queue_wake(u);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t code, void *user)
{
    struct jn_h2up_stream *u = nghttp2_session_get_stream_user_data(session, id);
    if (u == NULL)
        return 0;
    u->closed = true;
    if (!u->s->upstream_eof || !u->head_ready)
        fail_stream(u, 502,
                    code == NGHTTP2_REFUSED_STREAM ? "upstream refused the stream"
                                                   : "upstream reset the stream",
                    JN_OUT_RESET);
    return 0;
}

/* ---- the session ---- */

static nghttp2_session *client_session(struct jn_h2up_sess *x)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session *session = NULL;
    nghttp2_option *opt = NULL;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (nghttp2_option_new(&opt) == 0) {
        /* Windows open as the client takes the response: backpressure. */
        nghttp2_option_set_no_auto_window_update(opt, 1);
        nghttp2_session_client_new2(&session, cb, x, opt);
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cb);
    if (session == NULL)
        return NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, iv, JN_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, SESSION_WINDOW) != 0) {
        nghttp2_session_del(session);
        return NULL;
    }
    return session;
}

/* Every stream of a dead session fails (and may be retried elsewhere). */
static void sess_fail(struct jn_h2up_sess *x, const char *why, enum jn_outcome o)
{
    if (!x->dead)
        jn_log(JN_LOG_WARN, "upstream %s: server %s: HTTP/2 session ended: %s", x->up->cfg->name,
               x->up->cfg->servers[x->server].address, why);
    x->dead = true;
    for (struct jn_h2up_stream *u = x->all; u != NULL; u = u->all_next)
        fail_stream(u, 502, why, o);
}

static bool sess_connect(struct jn_h2up_sess *x)
{
    const char *why = NULL;
    int rc = jn_upconn_finish_connect(x->uc, &why);
    if (rc < 0) {
        sess_fail(x, why, JN_OUT_CONNECT);
        return false;
    }
    if (rc == 0)
        return false;
    if (x->up->cfg->protocol == JN_UPSTREAM_H2 && !jn_tls_alpn_is_h2(&x->uc->tp)) {
        sess_fail(x, "the server did not agree to h2 by ALPN", JN_OUT_CONNECT);
        return false;
    }
    x->ready = true;
    jn_timer_stop(x->up->loop, &x->uc->timer);
    while (x->pending != NULL) {
        struct jn_h2up_stream *u = x->pending;
        x->pending = u->next;
        submit(x, u);
    }
    return true;
}

static bool sess_read(struct jn_h2up_sess *x)
{
    struct jn_upconn *uc = x->uc;
    bool progress = false;
    while (uc->can_read && !x->dead) {
        if (jn_buf_acquire(x->pool, &x->in) != 0)
            break;
        ssize_t n = jn_upconn_read(uc, &x->in);
        if (n == JN_EAGAIN)
            break;
        if (n <= 0) {
            sess_fail(x,
                      n == 0 ? "upstream closed the HTTP/2 connection"
                             : "connection reset on the HTTP/2 connection",
                      JN_OUT_RESET);
            return true;
        }
        ssize_t rv = nghttp2_session_mem_recv(x->session, (const uint8_t *)jn_buf_head(&x->in),
                                              jn_buf_len(&x->in));
        jn_buf_consume(&x->in, jn_buf_len(&x->in));
        if (rv < 0) {
            sess_fail(x, nghttp2_strerror((int)rv), JN_OUT_RESET);
            return true;
        }
        progress = true;
    }
    return progress;
}

static bool sess_write(struct jn_h2up_sess *x)
{
    struct jn_upconn *uc = x->uc;
    bool progress = false;
    for (;;) {
        while (jn_buf_len(&x->out) < OUT_HIGH) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(x->session, &data);
            if (n < 0) {
                sess_fail(x, nghttp2_strerror((int)n), JN_OUT_RESET);
                return true;
            }
            if (n == 0)
                break;
            jn_buf_put(&x->out, data, (size_t)n);
        }
        if (jn_buf_empty(&x->out) || !uc->can_write)
            return progress;
        size_t before = jn_buf_len(&x->out);
        ssize_t rc = jn_upconn_write(uc, &x->out);
        if (rc == JN_EIO) {
            sess_fail(x, "connection reset on the HTTP/2 connection", JN_OUT_RESET);
            return true;
        }
        progress |= jn_buf_len(&x->out) != before;
        if (jn_buf_len(&x->out) == before)
            return progress;
    }
}

static void kick_fired(struct jn_loop *loop, struct jn_timer *t)
{
    sess_drive(t->data);
}

/* Writes what can go now; anything that must wake streams (a write that
 * failed, streams failed with it) is left to a drive from the loop: the
 * caller may be a stream's own code, or another session's callbacks. */
static void flush_later(struct jn_h2up_sess *x)
{
    if (x->driving)
        return;
    if (!x->dead)
        sess_write(x);
    if (x->dead || x->wake != NULL)
        jn_timer_set(x->up->loop, &x->kick, 0);
}

/* Reads, wakes the streams that something happened to, writes; until
 * nothing moves (edge-triggered readiness). */
static void sess_drive(struct jn_h2up_sess *x)
{
    if (x->driving)
        return;
    x->driving = true;
    for (;;) {
        bool progress = false;
        if (!x->ready && !x->dead && !sess_connect(x))
            break;
        progress |= sess_read(x);
        while (x->wake != NULL) {
            struct jn_h2up_stream *u = x->wake;
            x->wake = u->next;
            if (x->wake == NULL)
                x->wake_tail = NULL;
            u->queued = false;
            /* May release u (and free its stream): u is not touched after. */
            u->s->front->wake(u->s);
            progress = true;
        }
        if (!x->dead)
            progress |= sess_write(x);
        if (!progress || x->dead)
            break;
    }
    x->driving = false;
    if (x->dead && x->all == NULL) {
        sess_free(x);
        return;
    }
    if (x->all == NULL && x->ready && !x->dead)
        jn_timer_set(x->up->loop, &x->uc->timer, x->up->idle_timeout_ms);
    if (x->dead && x->wake != NULL)
        sess_drive(x); /* streams failed by the last pass still have to hear it */
}

static void sess_event(struct jn_upconn *uc)
{
    sess_drive(uc->owner);
}

/* The connect deadline, or an idle session's end. */
static void sess_timeout(struct jn_upconn *uc)
{
    struct jn_h2up_sess *x = uc->owner;
    if (!x->ready)
        sess_fail(x, "upstream connect timeout", JN_OUT_CONNECT);
    else if (x->all == NULL)
        x->dead = true;
    sess_drive(x);
}

static void sess_free(struct jn_h2up_sess *x)
{
    struct jn_upstream_server_rt *srv = &x->up->servers[x->server];
    struct jn_h2up_sess **pp = &srv->h2;
    while (*pp != NULL && *pp != x)
        pp = &(*pp)->next;
    if (*pp != NULL)
        *pp = x->next;
    if (x->uc != NULL)
        jn_upconn_close(x->uc); /* still owned by x: not on the idle list */
    jn_timer_stop(x->up->loop, &x->kick);
    nghttp2_session_del(x->session);
    jn_buf_release(x->pool, &x->in);
    jn_buf_release(x->pool, &x->out);
    free(x);
}

static void free_server_sessions(struct jn_upstream_server_rt *srv)
{
    while (srv->h2 != NULL) {
        struct jn_h2up_sess *x = srv->h2;
        for (struct jn_h2up_stream *u = x->all; u != NULL; u = u->all_next)
            u->sess = NULL; /* no stream should be left: the pool goes last */
        sess_free(x);
    }
}

void jn_h2up_init(void)
{
    jn_upstream_set_h2_free_hook(free_server_sessions);
}

static struct jn_h2up_sess *sess_new(struct jn_stream *s)
{
    struct jn_h2up_sess *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->up = s->up;
    x->server = (uint32_t)s->server;
    x->pool = &s->gen->worker->bufs;
    jn_timer_init(&x->kick, kick_fired, x);
    x->session = client_session(x);
    const char *err = NULL;
    if (x->session == NULL ||
        jn_upconn_get(s->up, (uint32_t)s->server, JN_UPCONN_FRESH, &x->uc, &err) != 0) {
        if (x->session != NULL) {
            jn_log(JN_LOG_ERR, "upstream %s: connect to %s failed: %s", s->up->cfg->name,
                   s->up->cfg->servers[s->server].address, err);
            nghttp2_session_del(x->session);
        }
        free(x);
        return NULL;
    }
    x->uc->owner = x;
    x->uc->on_event = sess_event;
    x->uc->on_timeout = sess_timeout;
    jn_timer_set(s->up->loop, &x->uc->timer, s->gen->cfg->timeouts.upstream_connect);
    struct jn_upstream_server_rt *srv = &s->up->servers[s->server];
    x->next = srv->h2;
    srv->h2 = x;
    return x;
}

/* A session with room for one more stream, or a new one while there are
 * fewer than MAX_SESSIONS; else the least loaded (nghttp2 queues what goes
 * beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS). */
static struct jn_h2up_sess *pick_session(struct jn_stream *s)
{
    struct jn_h2up_sess *best = NULL;
    int n = 0;
    for (struct jn_h2up_sess *x = s->up->servers[s->server].h2; x != NULL; x = x->next) {
        if (x->dead || (x->ready && !nghttp2_session_check_request_allowed(x->session)))
            continue;
        n++;
        uint32_t max = x->ready ? nghttp2_session_get_remote_settings(
                                      x->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
                                : DEFAULT_STREAMS;
        if (x->nstreams < max)
            return x;
        if (best == NULL || x->nstreams < best->nstreams)
            best = x;
    }
    if (n < MAX_SESSIONS || best == NULL) {
        struct jn_h2up_sess *x = sess_new(s);
        return x != NULL ? x : best; /* at max_connections: queue on the least loaded */
    }
    return best;
}

void jn_h2up_start(struct jn_stream *s)
{
    struct jn_h2up_stream *u = s->h2up;
    /* A retry starts afresh: nothing of the last answer may leak into it. */
    u->error = NULL;
    u->head_ready = false;
    u->closed = false;
    u->deferred = false;
    u->ended_in_head = false;
    u->has_length = false;
    u->length = 0;
    u->unacked = 0;
    u->status = 0;
    u->nfields = 0;
    u->ntrailers = 0;
    u->id = 0;
    s->trailers = NULL;
    s->ntrailers = 0;
    jn_timer_init(&u->timer, response_timeout, u);
    struct jn_h2up_sess *x = pick_session(s);
    if (x == NULL) {
        jn_stream_respond_error(s, 502, "upstream connect failed");
        return;
    }
    u->sess = x;
    u->all_next = x->all;
    if (x->all)
        x->all->all_prev = u;
    x->all = u;
    x->nstreams++;
    s->t_upstream_us = jn_clock_us();
    if (x->ready) {
        submit(x, u);
        flush_later(x);
    } else {
        u->next = x->pending;
        x->pending = u;
    }
}

void jn_h2up_push(struct jn_stream *s)
{
    struct jn_h2up_stream *u = s->h2up;
    struct jn_h2up_sess *x = u->sess;
    if (x == NULL || x->dead || u->id == 0)
        return;
    if (u->deferred && (!jn_buf_empty(&s->req_out) || s->req_body.done)) {
        u->deferred = false;
        nghttp2_session_resume_data(x->session, u->id);
    }
    flush_later(x);
}

void jn_h2up_consumed(struct jn_stream *s, size_t n)
{
    struct jn_h2up_stream *u = s->h2up;
    struct jn_h2up_sess *x = u->sess;
    n = JN_MIN(n, u->unacked);
    u->unacked -= n;
    if (x == NULL || x->dead || u->id == 0 || n == 0)
        return;
    nghttp2_session_consume(x->session, u->id, n);
    flush_later(x);
}

const char *jn_h2up_error(const struct jn_stream *s, uint16_t *status, enum jn_outcome *o)
{
    const struct jn_h2up_stream *u = s->h2up;
    if (u == NULL || u->error == NULL)
        return NULL;
    *status = u->error_status;
    *o = u->error_outcome;
    return u->error;
}

bool jn_h2up_attached(const struct jn_stream *s)
{
    return s->h2up != NULL && s->h2up->sess != NULL;
}

bool jn_h2up_head(struct jn_stream *s, uint16_t *status, struct jn_h1_message *m)
{
    struct jn_h2up_stream *u = s->h2up;
    if (u == NULL || !u->head_ready)
        return false;
    *status = u->status;
    *m = (struct jn_h1_message){
        .status = u->status, .headers = u->fields, .nheaders = u->nfields, .keep_alive = true};
    if (u->ended_in_head || s->head_request)
        m->body = JN_H1_BODY_NONE;
    else if (u->has_length)
        m->body = JN_H1_BODY_LENGTH;
    else
        m->body = JN_H1_BODY_CLOSE;
    m->content_length = u->length;
    return true;
}

void jn_h2up_release(struct jn_stream *s)
{
    struct jn_h2up_stream *u = s->h2up;
    struct jn_h2up_sess *x = u != NULL ? u->sess : NULL;
    if (x == NULL)
        return;
    jn_timer_stop(s->up->loop, &u->timer);
    unlink_lists(x, u);
    u->sess = NULL;
    x->nstreams--;
    if (u->id != 0) {
        nghttp2_session_set_stream_user_data(x->session, u->id, NULL);
        /* Window for bytes the client will never take, and the stream ended
         * here unless it already had. */
        if (u->unacked > 0 && !x->dead)
            nghttp2_session_consume(x->session, u->id, u->unacked);
        if (!u->closed && !x->dead)
            nghttp2_submit_rst_stream(x->session, NGHTTP2_FLAG_NONE, u->id, NGHTTP2_CANCEL);
    }
    u->unacked = 0;
    if (x->driving)
        return;
    if (x->dead && x->all == NULL) {
        sess_free(x);
        return;
    }
    flush_later(x);
    if (x->all == NULL && x->ready && !x->dead)
        jn_timer_set(x->up->loop, &x->uc->timer, x->up->idle_timeout_ms);
}
