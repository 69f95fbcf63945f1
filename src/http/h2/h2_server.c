/* HTTP/2 client connections. nghttp2 does the framing, HPACK, flow control
 * state and the protocol's own checks; this file turns its callbacks into
 * streams for the proxy and the proxy's responses into frames.
 *
 * Re-entrancy rule: nghttp2 is called to read (mem_recv) and to write
 * (mem_send) only from jn_h2_drive, never while the proxy drives a stream;
 * the proxy's calls into this file only submit, resume or reset. A stream
 * closed by nghttp2 goes to a garbage list, freed once nothing on the call
 * stack can still point at it. */
#include "http/h2/h2_server.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/front.h"
#include "http/h1/h1_server.h"
#include "http/proxy.h"
#include "http/stream.h"

/* Unsent output past which no more frames are made and no more input is
 * read: a client that does not read cannot make Junction buffer for it. */
#define OUT_HIGH (64 << 10)

struct jn_h2_stream {
    struct jn_stream *s;     /* owned */
    struct jn_h2_conn *conn; /* borrowed */
    int32_t id;
    struct jn_buf in;            /* request DATA not yet moved upstream */
    struct jn_buf out;           /* response body not yet taken by nghttp2 */
    struct jn_h1_header *fields; /* arena: regular request fields */
    size_t nfields, cap;
    struct jn_slice method, path, authority, cookie;
    bool has_protocol; /* :protocol (extended CONNECT) */
    struct jn_slice protocol;
    size_t header_bytes;       /* decoded so far, as SETTINGS_MAX_HEADER_LIST_SIZE counts */
    bool too_big;              /* beyond the header limits: answered 431 */
    bool started;              /* handed to the proxy */
    bool in_eof;               /* END_STREAM received */
    bool out_eof;              /* the whole response body is in out */
    bool deferred;             /* the data source waits for bytes */
    bool reset;                /* aborted here or closed by nghttp2 */
    bool queued;               /* on the ready list */
    struct jn_h2_stream *next; /* ready list or garbage list */
    struct jn_h2_stream *all_prev, *all_next; /* every stream of the connection */
};

struct jn_h2_conn {
    nghttp2_session *session; /* owned */
    struct jn_client *c;      /* borrowed: the connection it speaks on */
    /* The settings the connection started with, copied: a connection does
     * not hold a configuration snapshot alive after a reload. */
    struct jn_cfg_http2 settings;
    const struct jn_cfg_http2 *cfg; /* &settings */
    struct jn_h2_stream *ready, *ready_tail;
    struct jn_h2_stream *garbage;
    struct jn_h2_stream *all;
    uint32_t nstreams;
    uint64_t activity;       /* streams begun and body bytes moved: what re-arms the timer */
    uint64_t armed_activity; /* activity when the timer was last armed */
    uint32_t refused;            /* streams refused for going beyond the limit */
    uint64_t ctl_second;     /* loop second the control frame count is for */
    uint32_t ctl_frames;
    bool goaway;  /* GOAWAY submitted: no new streams */
    bool driving; /* inside jn_h2_drive: a nested call (a stream woken from
                     within, say by an upstream session) only marks streams */
    bool dead;    /* fatal: send what is queued, then close */
};

extern const struct jn_front_ops jn_front_h2;

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int jn_h2_preface(const char *p, size_t n)
{
    size_t k = n < JN_H2_PREFACE_LEN ? n : JN_H2_PREFACE_LEN;
    if (memcmp(p, preface, k) != 0)
        return 0;
    return k == JN_H2_PREFACE_LEN ? 1 : JN_EAGAIN;
}

static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){s, strlen(s)};
}

static void mark_ready(struct jn_h2_stream *hs)
{
    struct jn_h2_conn *h = hs->conn;
    if (hs->queued || hs->reset)
        return;
    hs->queued = true;
    hs->next = NULL;
    if (h->ready_tail != NULL)
        h->ready_tail->next = hs;
    else
        h->ready = hs;
    h->ready_tail = hs;
}

static void unqueue(struct jn_h2_stream *hs)
{
    struct jn_h2_conn *h = hs->conn;
    struct jn_h2_stream **pp = &h->ready, *prev = NULL;
    while (*pp != NULL && *pp != hs) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == NULL)
        return;
    *pp = hs->next;
    if (h->ready_tail == hs)
        h->ready_tail = prev;
    hs->queued = false;
}

/* A client misbehaving at the connection level: GOAWAY with
 * ENHANCE_YOUR_CALM, nothing more is read, the connection closes once it
 * is sent. */
static void calm(struct jn_h2_conn *h, const char *why)
{
    if (h->dead)
        return;
    jn_log(JN_LOG_WARN, "client %s: HTTP/2 connection closed: %s", h->c->peer, why);
    nghttp2_session_terminate_session(h->session, NGHTTP2_ENHANCE_YOUR_CALM);
    h->dead = true;
}

/* ---- streams ---- */

/* Request body bytes that will never go upstream: their window goes back
 * to the client, or the connection's window would shrink for good (the
 * stream's own is gone with the stream, or no longer matters). */
static void drop_input(struct jn_h2_stream *hs)
{
    struct jn_h2_conn *h = hs->conn;
    size_t n = jn_buf_len(&hs->in);
    if (n > 0) {
        nghttp2_session_consume_connection(h->session, n);
        jn_buf_consume(&hs->in, n);
    }
    jn_buf_release(&h->c->worker->bufs, &hs->in);
}

static void stream_free(struct jn_h2_stream *hs)
{
    struct jn_h2_conn *h = hs->conn;
    struct jn_buf_pool *pool = &h->c->worker->bufs;
    if (hs->queued)
        unqueue(hs);
    if (hs->all_prev)
        hs->all_prev->all_next = hs->all_next;
    else
        h->all = hs->all_next;
    if (hs->all_next)
        hs->all_next->all_prev = hs->all_prev;
    jn_buf_release(pool, &hs->in);
    jn_buf_release(pool, &hs->out);
    jn_stream_free(hs->s); /* hs lives in its arena */
}

static void collect(struct jn_h2_conn *h)
{
    while (h->garbage != NULL) {
        struct jn_h2_stream *hs = h->garbage;
        h->garbage = hs->next;
        hs->queued = false; /* the link was reused for the garbage list */
        stream_free(hs);
    }
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct jn_h2_conn *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (h->goaway || h->dead) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct jn_stream *s = jn_stream_new(h->c, &jn_front_h2);
    struct jn_h2_stream *hs = s ? jn_arena_alloc(&s->arena, sizeof(*hs)) : NULL;
    if (hs == NULL) {
        jn_stream_free(s);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    }
    *hs = (struct jn_h2_stream){.s = s, .conn = h, .id = frame->hd.stream_id};
    s->h2 = hs;
    s->logged = true; /* nothing to log until the head is complete (start_stream) */
    hs->all_next = h->all;
    if (h->all)
        h->all->all_prev = hs;
    h->all = hs;
    h->nstreams++;
    h->activity++;
    nghttp2_session_set_stream_user_data(session, hs->id, hs);
    return 0;
}

static bool add_field(struct jn_h2_stream *hs, struct jn_slice name, struct jn_slice value)
{
    struct jn_arena *a = &hs->s->arena;
    if (hs->nfields == hs->cap) {
        size_t cap = hs->cap ? hs->cap * 2 : 16;
        struct jn_h1_header *f = jn_arena_alloc(a, cap * sizeof(*f));
        if (f == NULL)
            return false;
        if (hs->nfields)
            memcpy(f, hs->fields, hs->nfields * sizeof(*f));
        hs->fields = f;
        hs->cap = cap;
    }
    hs->fields[hs->nfields++] = (struct jn_h1_header){name, value};
    return true;
}

/* Cookie crumbs (RFC 9113 section 8.2.3) are joined with "; " into the one
 * field an HTTP/1.1 upstream expects. */
static bool add_cookie(struct jn_h2_stream *hs, const uint8_t *v, size_t len)
{
    size_t old = hs->cookie.len;
    char *p = jn_arena_alloc(&hs->s->arena, old + len + 3);
    if (p == NULL)
        return false;
    if (old) {
        memcpy(p, hs->cookie.ptr, old);
        memcpy(p + old, "; ", 2);
        old += 2;
    }
    memcpy(p + old, v, len);
    p[old + len] = '\0';
    hs->cookie = (struct jn_slice){p, old + len};
    return true;
}

/* A request trailer: kept for an HTTP/2 upstream (an HTTP/1.1 one does not
 * get them), within the same header list limit. */
static int add_trailer(struct jn_h2_conn *h, struct jn_h2_stream *hs, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen)
{
    struct jn_stream *s = hs->s;
    hs->header_bytes += namelen + valuelen + 32;
    if (hs->header_bytes > h->cfg->max_header_list_size || s->nreq_trailers >= 64)
        return 0;
    if (s->nreq_trailers == s->req_trailers_cap) {
        size_t cap = s->req_trailers_cap ? s->req_trailers_cap * 2 : 8;
        struct jn_http_field *t = jn_arena_alloc(&s->arena, cap * sizeof(*t));
        if (t == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (s->nreq_trailers)
            memcpy(t, s->req_trailers, s->nreq_trailers * sizeof(*t));
        s->req_trailers = t;
        s->req_trailers_cap = cap;
    }
    char *n = jn_arena_strndup(&s->arena, (const char *)name, namelen);
    char *v = jn_arena_strndup(&s->arena, (const char *)value, valuelen);
    if (n == NULL || v == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->req_trailers[s->nreq_trailers++] = (struct jn_http_field){ { n, namelen }, { v, valuelen } };
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct jn_h2_conn *h = user;
    struct jn_h2_stream *hs = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (hs != NULL && hs->started && !hs->too_big && namelen > 0 && name[0] != ':')
        return add_trailer(h, hs, name, namelen, value, valuelen);
    if (hs == NULL || hs->started || hs->too_big)
        return 0;
    /* Counted as SETTINGS_MAX_HEADER_LIST_SIZE is, while decoding: a small
     * block that expands into a huge list is stopped here. */
    hs->header_bytes += namelen + valuelen + 32;
    if (hs->header_bytes > h->cfg->max_header_list_size) {
        hs->too_big = true;
        return 0;
    }
    struct jn_arena *a = &hs->s->arena;
    const char *n = (const char *)name;
    char *v = jn_arena_strndup(a, (const char *)value, valuelen);
    if (v == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct jn_slice val = {v, valuelen};
    if (namelen > 0 && n[0] == ':') {
        /* nghttp2 already checked which pseudo-fields are allowed and
         * required, and that each comes once, before the regular ones. */
        if (namelen == 7 && memcmp(n, ":method", 7) == 0)
            hs->method = val;
        else if (namelen == 5 && memcmp(n, ":path", 5) == 0)
            hs->path = val;
        else if (namelen == 10 && memcmp(n, ":authority", 10) == 0)
            hs->authority = val;
        else if (namelen == 9 && memcmp(n, ":protocol", 9) == 0) {
            hs->has_protocol = true;
            hs->protocol = val;
        }
        return 0;
    }
    if (namelen == 6 && memcmp(n, "cookie", 6) == 0)
        return add_cookie(hs, value, valuelen) ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    /* Host is replaced by :authority when both are there (RFC 9113
     * section 8.3.1): the upstream sees the authority that was routed on. */
    if (namelen == 4 && memcmp(n, "host", 4) == 0 && hs->authority.ptr != NULL)
        return 0;
    if (hs->nfields + 2 > h->c->worker->gen->cfg->http.max_headers) {
        hs->too_big = true;
        return 0;
    }
    char *nm = jn_arena_strndup(a, n, namelen);
    if (nm == NULL || !add_field(hs, (struct jn_slice){nm, namelen}, val))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* WebSocket over HTTP/2 (RFC 8441): an extended CONNECT becomes the
 * HTTP/1.1 handshake an upstream expects (GET with Upgrade and a fresh
 * Sec-WebSocket-Key; the proxy adds Connection and Upgrade), and the
 * stream's DATA both ways carries the WebSocket's bytes. */
static bool websocket_connect(struct jn_h2_stream *hs, struct jn_h1_message *m)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!jn_slice_ieq(hs->protocol, "websocket") || !jn_slice_ieq(m->method, "CONNECT"))
        return false;
    char *key = jn_arena_alloc(&hs->s->arena, 25);
    if (key == NULL)
        return false;
    /* 16 bytes that need not be secret (RFC 6455: a nonce against caches). */
    char raw[32];
    jn_request_id_new(hs->conn->c->worker, raw, sizeof(raw));
    for (int i = 0; i < 21; i++)
        key[i] = b64[(unsigned char)raw[i] * 7u % 64u];
    key[21] = 'A';
    key[22] = '=';
    key[23] = '=';
    key[24] = '\0';
    if (!add_field(hs, cs("sec-websocket-key"), (struct jn_slice){key, 24}))
        return false;
    m->headers = hs->fields;
    m->nheaders = hs->nfields;
    m->method = cs("GET");
    hs->s->ws_h2 = true;
    return true;
}

/* A complete request head: the same jn_h1_message an HTTP/1.1 head
 * parses into, so routing, filters and the upstream side are shared. */
static void start_stream(struct jn_h2_conn *h, struct jn_h2_stream *hs, bool end_stream)
{
    struct jn_stream *s = hs->s;
    hs->started = true;
    s->logged = false;
    hs->in_eof = end_stream;
    /* DATA frames carry the body unframed, up to the end of the stream
     * (JN_H1_BODY_CLOSE) unless a Content-Length says how long it is. */
    struct jn_h1_message m = {
        .method = hs->method,
        .target = hs->path,
        .version_minor = 1,
        .keep_alive = true,
        .body = end_stream ? JN_H1_BODY_NONE : JN_H1_BODY_CLOSE,
    };
    bool ok = true;
    if (hs->authority.ptr != NULL) {
        /* Any Host seen before :authority arrived is dropped too. */
        size_t k = 0;
        for (size_t i = 0; i < hs->nfields; i++)
            if (!jn_slice_ieq(hs->fields[i].name, "host"))
                hs->fields[k++] = hs->fields[i];
        hs->nfields = k;
        ok = add_field(hs, cs("host"), hs->authority);
        m.host = hs->authority;
    } else {
        struct jn_slice host = {NULL, 0};
        for (size_t i = 0; i < hs->nfields; i++)
            if (jn_slice_ieq(hs->fields[i].name, "host"))
                host = hs->fields[i].value;
        m.host = host;
    }
    if (hs->cookie.ptr != NULL)
        ok = ok && add_field(hs, cs("cookie"), hs->cookie);
    for (size_t i = 0; i < hs->nfields; i++) {
        if (!end_stream && jn_slice_ieq(hs->fields[i].name, "content-length")) {
            /* nghttp2 checked it is a number and will check the DATA against it. */
            uint64_t n = 0;
            for (size_t j = 0; j < hs->fields[i].value.len; j++)
                n = n * 10 + (uint64_t)(hs->fields[i].value.ptr[j] - '0');
            m.body = JN_H1_BODY_LENGTH;
            m.content_length = n;
        }
        if (jn_slice_ieq(hs->fields[i].name, "expect"))
            m.expect_continue = true;
    }
    m.headers = hs->fields;
    m.nheaders = hs->nfields;
    if (!ok) {
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
        hs->reset = true;
        return;
    }
    if (hs->too_big) {
        /* The head was not kept: answer with what is known. */
        m.headers = NULL;
        m.nheaders = 0;
        jn_proxy_reject(s, &m, 431, "request header fields too large");
    } else if (hs->has_protocol && !websocket_connect(hs, &m)) {
        jn_proxy_reject(s, &m, 501, "extended CONNECT is only for websocket");
    } else {
        jn_proxy_run(s, &m);
    }
    mark_ready(hs);
}

static void count_control(struct jn_h2_conn *h)
{
    uint64_t second = jn_loop_now(&h->c->worker->loop) / 1000;
    if (second != h->ctl_second) {
        h->ctl_second = second;
        h->ctl_frames = 0;
    }
    if (++h->ctl_frames > h->cfg->max_control_frames)
        calm(h, "control frame flood (PING, SETTINGS or PRIORITY)");
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct jn_h2_conn *h = user;
    struct jn_h2_stream *hs = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (hs == NULL)
            break;
        if (!hs->started)
            start_stream(h, hs, end_stream);
        else if (end_stream) {
            hs->in_eof = true;
            mark_ready(hs);
        }
        break;
    case NGHTTP2_DATA:
        if (hs != NULL && end_stream) {
            hs->in_eof = true;
            mark_ready(hs);
        }
        break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            count_control(h);
        break;
    case NGHTTP2_PRIORITY:
        count_control(h);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct jn_h2_stream *hs = nghttp2_session_get_stream_user_data(session, id);
    struct jn_stream *s = hs ? hs->s : NULL;
    if (s == NULL || hs->reset || (s->phase != JN_STREAM_UPSTREAM && !s->paused) ||
        s->req_body.done || s->req_write_failed) {
        /* Nobody wants these bytes: give the window back at once. */
        nghttp2_session_consume(session, id, len);
        return 0;
    }
    /* Flow control bounds this buffer by the stream's window. */
    if (jn_buf_put(&hs->in, data, len) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    hs->conn->activity++;
    mark_ready(hs);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    struct jn_h2_conn *h = user;
    struct jn_h2_stream *hs = nghttp2_session_get_stream_user_data(session, id);
    if (hs == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    if (!hs->s->logged && hs->s->error == NULL)
        hs->s->error =
            error_code == NGHTTP2_NO_ERROR ? "stream closed early" : "client reset the stream";
    hs->reset = true;
    drop_input(hs);
    jn_stream_settle(hs->s);
    if (hs->queued)
        unqueue(hs);
    hs->next = h->garbage;
    h->garbage = hs;
    h->nstreams--;
    return 0;
}

/* A response sent whole while the client still sends its request body:
 * the rest is not wanted (RFC 9113 section 8.1). */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct jn_h2_conn *h = user;
    /* A client that goes on opening streams beyond the limit after being
     * refused is not a client that misread SETTINGS: it goes. */
    if (frame->hd.type == NGHTTP2_RST_STREAM &&
        frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM &&
        ++h->refused > h->cfg->max_concurrent_streams)
        calm(h, "too many streams beyond SETTINGS_MAX_CONCURRENT_STREAMS");
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS))
        return 0;
    struct jn_h2_stream *hs = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (hs != NULL && !hs->in_eof)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_NO_ERROR);
    return 0;
}

/* The upstream's trailers (gRPC's grpc-status) after the body. */
static int submit_trailers(struct jn_h2_stream *hs)
{
    struct jn_stream *s = hs->s;
    nghttp2_nv *nva = jn_arena_alloc(&s->arena, s->ntrailers * sizeof(*nva));
    if (nva == NULL)
        return JN_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->ntrailers; i++) {
        const struct jn_http_field *t = &s->trailers[i];
        if (t->name.len == 0 || t->name.ptr[0] == ':')
            continue;
        nva[n++] = (nghttp2_nv){(uint8_t *)t->name.ptr, (uint8_t *)t->value.ptr, t->name.len,
                                t->value.len, NGHTTP2_NV_FLAG_NONE};
    }
    return nghttp2_submit_trailer(hs->conn->session, hs->id, nva, n) == 0 ? 0 : JN_EIO;
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user)
{
    struct jn_h2_stream *hs = source->ptr;
    size_t n = JN_MIN(length, jn_buf_len(&hs->out));
    if (n > 0) {
        memcpy(buf, jn_buf_head(&hs->out), n);
        jn_buf_consume(&hs->out, n);
    }
    if (jn_buf_empty(&hs->out)) {
        jn_buf_release(&hs->conn->c->worker->bufs, &hs->out);
        if (hs->out_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (hs->s->ntrailers > 0 && submit_trailers(hs) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers end it */
            return (ssize_t)n;
        }
        if (n == 0) {
            hs->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    hs->conn->activity += n > 0;
    mark_ready(hs); /* room for more of the response */
    return (ssize_t)n;
}

/* ---- the front end ops: what the proxy calls ---- */

static bool connection_specific(struct jn_slice name)
{
    static const char *const names[] = {
        "connection",     "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
        "content-length", "te"};
    for (size_t i = 0; i < JN_ARRAY_LEN(names); i++)
        if (jn_slice_ieq(name, names[i]))
            return true;
    return false;
}

/* Submits the response head: lower-case names (RFC 9113 section 8.2.2),
 * no connection-specific fields, the length when known. */
static void submit_head(struct jn_stream *s, uint16_t status, const struct jn_fields *f,
                        const struct jn_slice *length, bool with_body)
{
    struct jn_h2_stream *hs = s->h2;
    struct jn_h2_conn *h = hs->conn;
    nghttp2_nv *nva = jn_arena_alloc(&s->arena, (f->n + 2) * sizeof(*nva));
    char code[4];
    snprintf(code, sizeof(code), "%03u", (unsigned)status % 1000u);
    size_t n = 0;
    if (nva == NULL)
        goto fail;
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < f->n; i++) {
        if (connection_specific(f->v[i].name))
            continue;
        char *name = jn_arena_strndup(&s->arena, f->v[i].name.ptr, f->v[i].name.len);
        if (name == NULL)
            goto fail;
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        nva[n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)f->v[i].value.ptr, f->v[i].name.len,
                                f->v[i].value.len, NGHTTP2_NV_FLAG_NONE};
    }
    if (length != NULL)
        nva[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)length->ptr, 14,
                                length->len, NGHTTP2_NV_FLAG_NONE};
    nghttp2_data_provider prd = {.source.ptr = hs, .read_callback = read_body};
    if (nghttp2_submit_response(h->session, hs->id, nva, n, with_body ? &prd : NULL) == 0)
        return;
fail:
    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
    hs->reset = true;
}

static bool body_allowed(uint16_t status)
{
    return status >= 200 && status != 204 && status != 304;
}

static void h2_respond(struct jn_stream *s, uint16_t status, struct jn_fields *f, const char *body,
                       size_t len)
{
    struct jn_h2_stream *hs = s->h2;
    s->status = status;
    s->phase = JN_STREAM_DONE;
    if (hs->reset)
        return;
    bool allowed = body_allowed(status);
    bool with_body = allowed && !s->head_request && len > 0;
    if (with_body && jn_buf_put(&hs->out, body, len) != 0)
        with_body = false;
    hs->out_eof = true;
    struct jn_slice clen = jn_stream_u64(s, len);
    submit_head(s, status, f, allowed ? &clen : NULL, with_body);
    if (with_body)
        s->bytes_sent += len;
}

static void h2_response_head(struct jn_stream *s, uint16_t status, struct jn_fields *f,
                             const struct jn_h1_message *m)
{
    jn_body_init(&s->resp_body, m->body, m->content_length, false);
    s->resp_body.chunked.keep_trailers = true; /* an HTTP/1.1 upstream's, for the client */
    struct jn_slice clen = jn_stream_u64(s, m->content_length);
    bool known = m->body == JN_H1_BODY_LENGTH || (s->head_request && m->content_length > 0);
    if (!s->h2->reset)
        submit_head(s, status, f, known ? &clen : NULL, !s->resp_body.done);
}

static void h2_continue_100(struct jn_stream *s)
{
    struct jn_h2_stream *hs = s->h2;
    nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE };
    if (!hs->reset)
        nghttp2_submit_headers(hs->conn->session, NGHTTP2_FLAG_NONE, hs->id, NULL, &nv, 1, NULL);
}

static struct jn_buf *h2_body_out(struct jn_stream *s)
{
    struct jn_h2_stream *hs = s->h2;
    if (hs->reset || jn_buf_acquire(&hs->conn->c->worker->bufs, &hs->out) != 0)
        return NULL;
    return &hs->out;
}

static int h2_pump_request(struct jn_stream *s)
{
    struct jn_h2_stream *hs = s->h2;
    nghttp2_session *session = hs->conn->session;
    size_t before = jn_buf_len(&hs->in);
    if (s->req_body.done || s->req_write_failed || hs->reset) {
        drop_input(hs); /* bytes left over are dropped, and their window given back */
        return 0;
    }
    if (jn_buf_acquire(&s->client->worker->bufs, &s->req_out) != 0)
        return 0;
    const char *err = NULL;
    s->req_body.src_eof = hs->in_eof;
    int rc = jn_body_pump(&s->req_body, &hs->in, &s->req_out, &err);
    size_t used = before - jn_buf_len(&hs->in);
    if (used > 0)
        nghttp2_session_consume(session, hs->id, used); /* the client may send as much again */
    if (rc < 0)
        return jn_proxy_bad_body(s, err);
    if (jn_buf_empty(&hs->in))
        jn_buf_release(&hs->conn->c->worker->bufs, &hs->in);
    return rc;
}

/* The proxy moved response bytes: the data source may go on. */
static int h2_flush(struct jn_stream *s)
{
    struct jn_h2_stream *hs = s->h2;
    if (hs->reset)
        return 0;
    if (s->resp_head_sent && s->resp_body.done)
        hs->out_eof = true;
    if (hs->deferred && (!jn_buf_empty(&hs->out) || hs->out_eof)) {
        hs->deferred = false;
        nghttp2_session_resume_data(hs->conn->session, hs->id);
    }
    return 0;
}

static bool h2_pending(const struct jn_stream *s)
{
    return false; /* hs->out belongs to the stream, which lives until nghttp2 closes it */
}

static bool h2_alive(const struct jn_client *c, const struct jn_stream *s)
{
    return !c->closed && !s->h2->reset;
}

static void h2_abort(struct jn_stream *s)
{
    struct jn_h2_stream *hs = s->h2;
    drop_input(hs);
    if (!hs->reset) {
        hs->reset = true;
        nghttp2_submit_rst_stream(hs->conn->session, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
    jn_stream_settle(s);
}

static void h2_done(struct jn_stream *s)
{
    drop_input(s->h2); /* answered before its body was read (a 404, an early 413) */
    h2_flush(s);       /* the last bytes, or the end of the body, may be waiting */
}

/* An upstream answered: the stream is marked, and the connection driven
 * once the event batch is over, so that the responses that came in the
 * same batch leave in one write (and one TLS record) instead of one each. */
static void h2_wake(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    if (c->closed)
        return;
    mark_ready(s->h2);
    if (!c->deferred) {
        c->deferred = true;
        c->next_deferred = c->worker->h2_deferred;
        c->worker->h2_deferred = c;
    }
}

void jn_h2_run_deferred(struct jn_worker *w)
{
    while (w->h2_deferred != NULL) {
        struct jn_client *c = w->h2_deferred;
        w->h2_deferred = c->next_deferred;
        c->deferred = false;
        if (!c->closed && c->h2 != NULL)
            jn_h2_drive(c);
    }
}

static void h2_touch(struct jn_stream *s)
{
}

const struct jn_front_ops jn_front_h2 = {
    .respond = h2_respond,
    .continue_100 = h2_continue_100,
    .response_head = h2_response_head,
    .body_out = h2_body_out,
    .pump_request = h2_pump_request,
    .flush = h2_flush,
    .pending = h2_pending,
    .alive = h2_alive,
    .abort = h2_abort,
    .done = h2_done,
    .wake = h2_wake,
    .touch = h2_touch,
};

/* ---- the connection ---- */

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    return cb;
}

static int make_session(struct jn_h2_conn *h)
{
    const struct jn_cfg_http2 *cfg = h->cfg;
    nghttp2_session_callbacks *cb = make_callbacks();
    nghttp2_option *opt = NULL;
    int rc = cb != NULL ? nghttp2_option_new(&opt) : -1;
    if (rc == 0) {
        /* Windows open as the upstream takes the body, not as it arrives:
         * that is the backpressure from upstream to client. */
        nghttp2_option_set_no_auto_window_update(opt, 1);
        nghttp2_option_set_no_closed_streams(opt, 1);
        nghttp2_option_set_max_continuations(opt, cfg->max_continuations);
        nghttp2_option_set_stream_reset_rate_limit(opt, cfg->reset_burst, cfg->reset_rate);
        rc = nghttp2_session_server_new2(&h->session, cb, h, opt);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return JN_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_list_size},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, /* WebSocket over HTTP/2 */
    };
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, JN_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)cfg->connection_window_size) != 0)
        return JN_ENOMEM;
    return 0;
}

int jn_h2_start(struct jn_client *c)
{
    struct jn_h2_conn *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return JN_ENOMEM;
    h->c = c;
    h->settings = c->worker->gen->cfg->http2;
    h->cfg = &h->settings;
    c->h2 = h;
    if (make_session(h) != 0) {
        jn_h2_free(c);
        return JN_ENOMEM;
    }
    return 0;
}

/* Feeds what c->in holds to nghttp2, then reads more. Returns true on progress. */
static bool receive(struct jn_h2_conn *h)
{
    struct jn_client *c = h->c;
    bool progress = false;
    for (int i = 0; i < 4 && !h->dead; i++) {
        if (!jn_buf_empty(&c->in)) {
            ssize_t rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)jn_buf_head(&c->in),
                                                  jn_buf_len(&c->in));
            if (rv < 0) {
                /* Fatal to the session; still say why when that can be said
                 * (not after a bad preface: the client does not speak HTTP/2). */
                bool calm_down =
                    rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
                jn_log(calm_down ? JN_LOG_WARN : JN_LOG_INFO, "client %s: HTTP/2 error: %s",
                       c->peer, nghttp2_strerror((int)rv));
                if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                    nghttp2_session_terminate_session(
                        h->session, calm_down ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
                h->dead = true;
                jn_buf_consume(&c->in, jn_buf_len(&c->in));
                return true;
            }
            jn_buf_consume(&c->in, (size_t)rv);
            progress = true;
        }
        if (jn_buf_len(&c->out) >= OUT_HIGH || !c->can_read)
            break;
        int n = jn_client_read(c);
        if (n == 0 || n == JN_EIO) {
            h->dead = true; /* the client is gone: nothing more can be said to it */
            c->eof = true;
            return true;
        }
        if (n < 0)
            break;
    }
    return progress;
}

static bool drive_streams(struct jn_h2_conn *h)
{
    bool progress = false;
    while (h->ready != NULL && !h->c->closed) {
        struct jn_h2_stream *hs = h->ready;
        h->ready = hs->next;
        if (h->ready == NULL)
            h->ready_tail = NULL;
        hs->queued = false;
        if (!hs->reset) {
            jn_proxy_drive(hs->s);
            progress = true;
        }
    }
    return progress;
}

static bool send_frames(struct jn_h2_conn *h)
{
    struct jn_client *c = h->c;
    bool progress = false;
    while (jn_buf_len(&c->out) < OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->session, &data);
        if (n < 0) {
            jn_log(JN_LOG_INFO, "client %s: HTTP/2 error: %s", c->peer, nghttp2_strerror((int)n));
            h->dead = true;
            break;
        }
        if (n == 0)
            break;
        jn_buf_put(jn_client_out(c), data, (size_t)n);
        progress = true;
    }
    return progress;
}

static void drive(struct jn_client *c);

void jn_h2_drive(struct jn_client *c)
{
    struct jn_h2_conn *h = c->h2;
    if (h->driving)
        return; /* the drive under way sees the streams marked ready */
    h->driving = true;
    drive(c);
    if (!c->closed) /* closed: h is freed (c itself lives until the batch ends) */
        h->driving = false;
}

static void drive(struct jn_client *c)
{
    struct jn_h2_conn *h = c->h2;
    /* Until nothing moves: readiness is edge-triggered, so stopping early
     * would wait for an event that may never come. */
    while (!c->closed) {
        bool progress = receive(h);
        progress |= drive_streams(h);
        if (c->closed)
            return;
        progress |= send_frames(h);
        size_t before = jn_buf_len(&c->out);
        if (jn_client_flush(c) != 0) {
            jn_client_close(c);
            return;
        }
        progress |= jn_buf_len(&c->out) != before;
        collect(h);
        if (!progress)
            break;
    }
    if (c->closed)
        return;
    bool want = nghttp2_session_want_read(h->session) || nghttp2_session_want_write(h->session);
    bool idle = h->nstreams == 0 && h->ready == NULL;
    if (jn_buf_empty(&c->out) &&
        (h->dead || !want || (idle && (c->close_after || c->worker->draining)))) {
        jn_client_close(c);
        return;
    }
    /* Only streams moving re-arm the timer: PINGs alone do not keep a
     * connection open. */
    if (idle && c->timer_kind != JN_CT_IDLE)
        jn_client_set_timer(c, JN_CT_IDLE);
    else if (!idle && (h->activity != h->armed_activity || c->timer_kind == JN_CT_IDLE))
        jn_client_set_timer(c, JN_CT_BODY);
    h->armed_activity = h->activity;
}

/* True when a stream has response bytes that the client's flow-control
 * window keeps from being sent: the client, not the upstream, is slow. */
static bool client_stalls(struct jn_h2_conn *h)
{
    bool conn_shut = nghttp2_session_get_remote_window_size(h->session) <= 0;
    for (struct jn_h2_stream *hs = h->all; hs != NULL; hs = hs->all_next)
        if (!hs->reset && !jn_buf_empty(&hs->out) &&
            (conn_shut || nghttp2_session_get_stream_remote_window_size(h->session, hs->id) <= 0))
            return true;
    return false;
}

void jn_h2_timeout(struct jn_client *c)
{
    struct jn_h2_conn *h = c->h2;
    if (h->nstreams > 0 && jn_buf_empty(&c->out) && !h->dead && !client_stalls(h)) {
        /* Streams wait on their upstreams, whose own timers apply. */
        jn_client_set_timer(c, JN_CT_BODY);
        return;
    }
    if (h->nstreams > 0 || h->dead) {
        jn_client_close(c); /* the client stopped reading */
        return;
    }
    jn_h2_shutdown(c); /* idle: GOAWAY, then the close */
    jn_client_set_timer(c, JN_CT_BODY);
    jn_h2_drive(c);
}

void jn_h2_shutdown(struct jn_client *c)
{
    struct jn_h2_conn *h = c->h2;
    c->close_after = true;
    if (h->goaway || h->dead)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
}

void jn_h2_free(struct jn_client *c)
{
    struct jn_h2_conn *h = c->h2;
    if (h == NULL)
        return;
    collect(h);
    while (h->all != NULL)
        stream_free(h->all);
    nghttp2_session_del(h->session);
    free(h);
    c->h2 = NULL;
}
