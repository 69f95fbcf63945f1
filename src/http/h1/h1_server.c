/* HTTP/1.1 client connections: reading request heads, rejecting malformed
 * ones, keep-alive and pipelining, timeouts, and the connection's end. */
#include "http/h1/h1_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/metrics.h"
#include "core/log.h"
#include "http/h2/h2_server.h"
#include "http/proxy.h"
#include "tls/tls.h"

#define MAX_HEADER_FIELDS 1000
#define LINGER_MS 2000 /* longest lingering close */

static void client_event(struct jn_loop *loop, struct jn_io *io, uint32_t events)
{
    struct jn_client *c = io->data;
    if (c->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->can_read = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->hup = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->can_write = true;
    jn_client_drive(c);
}

static void client_timeout(struct jn_loop *loop, struct jn_timer *t)
{
    struct jn_client *c = t->data;
    if (c->tp.handshaking) {
        jn_log(JN_LOG_INFO, "client %s: TLS handshake timeout", c->peer);
        jn_metrics_tls_handshake(c, false);
        jn_client_close(c);
        return;
    }
    if (c->lingering) {
        jn_client_close(c);
        return;
    }
    if (c->h2 != NULL) {
        jn_h2_timeout(c);
        return;
    }
    if (c->stream != NULL) {
        jn_proxy_client_timeout(c->stream);
        jn_client_drive(c);
        return;
    }
    if (!jn_buf_empty(&c->in) && jn_buf_empty(&c->out) && !c->close_after) {
        /* Slowloris: the header did not arrive in time. */
        char id[40];
        jn_request_id_new(c->worker, id, sizeof(id));
        jn_write_error(jn_client_out(c), 408, "request header timeout", id, true, false);
        c->close_after = true;
        jn_buf_consume(&c->in, jn_buf_len(&c->in));
        c->timer_kind = JN_CT_BODY;
        jn_client_set_timer(c, JN_CT_BODY); /* bounds the wait for the 408 to leave */
        jn_client_drive(c);
        return;
    }
    jn_client_close(c);
}

/* Closing a socket with unread input makes the kernel answer with a reset,
 * which can destroy the response still on its way to the client. So the
 * sending side is shut first and input is read and dropped for a moment
 * (nginx's lingering close), until the client closes or the timer fires. */
static void client_linger(struct jn_client *c)
{
    if (!c->lingering) {
        c->lingering = true;
        jn_tls_conn_shutdown(&c->tp); /* close_notify goes before the FIN */
        shutdown(c->io.fd, SHUT_WR);
        c->timer_kind = JN_CT_BODY;
        jn_timer_set(&c->worker->loop, &c->timer, LINGER_MS);
    }
    for (;;) {
        jn_buf_consume(&c->in, jn_buf_len(&c->in));
        int n = jn_client_read(c);
        if (n == JN_EAGAIN) {
            jn_buf_release(&c->worker->bufs, &c->in);
            return;
        }
        if (n <= 0) {
            jn_client_close(c);
            return;
        }
    }
}

void jn_client_set_timer(struct jn_client *c, enum jn_client_timer kind)
{
    const struct jn_cfg_timeouts *t = &c->worker->gen->cfg->timeouts;
    uint64_t ms = kind == JN_CT_IDLE ? t->client_idle
                  : kind == JN_CT_HEADER ? t->client_header : t->client_body;
    c->timer_kind = kind;
    jn_timer_set(&c->worker->loop, &c->timer, ms);
}

void jn_client_accept(struct jn_worker *w, const struct jn_listener_rt *l, int fd,
                      const struct sockaddr_storage *peer)
{
    struct jn_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->io = (struct jn_io){ .fd = fd, .cb = client_event, .data = c };
    c->tp = (struct jn_transport){ .ops = &jn_transport_plain, .fd = fd };
    jn_timer_init(&c->timer, client_timeout, c);
    c->worker = w;
    c->listener = l;
    if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->peer, sizeof(c->peer));
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->peer, sizeof(c->peer));
    /* Parsed once per connection: every request's client address starts here. */
    if (!jn_ip_parse(c->peer, strlen(c->peer), &c->peer_ip))
        memset(&c->peer_ip, 0, sizeof(c->peer_ip));
    const struct jn_cfg_tls *tls = w->gen->cfg->listeners[l->index].tls;
    if ((tls != NULL && jn_tls_conn_start(tls->server, &c->tp) != 0) ||
        jn_io_add(&w->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
        jn_tls_conn_free(&c->tp);
        close(fd);
        free(c);
        return;
    }
    if (tls != NULL) {
        c->tls_cfg = w->gen->cfg;
        jn_config_ref(c->tls_cfg);
    }
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->nclients++;
    w->stats.connections++;
    jn_metrics_conn_open(c);
    c->can_read = true; /* data may already be there (deferred accept) */
    c->can_write = true;
    /* The handshake has the time of a request head: a client that stalls
     * in it holds a connection as a slow header would. */
    jn_client_set_timer(c, c->tp.handshaking ? JN_CT_HEADER : JN_CT_IDLE);
    jn_client_drive(c);
}

int jn_client_read(struct jn_client *c)
{
    if (!c->can_read)
        return JN_EAGAIN;
    if (jn_buf_acquire(&c->worker->bufs, &c->in) != 0)
        return JN_EIO;
    bool drained;
    ssize_t n = c->tp.ops->read(&c->tp, &c->in, &drained);
    if (drained && !c->hup)
        c->can_read = false;
    if (c->tp.read_wants_write)
        c->can_write = false; /* TLS: the read goes on at the next writable edge */
    if (n == 0)
        c->eof = true;
    else if (n > 0)
        jn_metrics_conn_bytes(c, (uint64_t)n, 0);
    return (int)n;
}

struct jn_buf *jn_client_out(struct jn_client *c)
{
    /* On failure the buffer stays empty and jn_buf_put falls back to malloc. */
    jn_buf_acquire(&c->worker->bufs, &c->out);
    return &c->out;
}

int jn_client_flush(struct jn_client *c)
{
    if (jn_buf_empty(&c->out)) {
        jn_buf_release(&c->worker->bufs, &c->out);
        return 0;
    }
    if (!c->can_write)
        return 0;
    size_t before = jn_buf_len(&c->out);
    ssize_t n = c->tp.ops->write(&c->tp, &c->out);
    jn_metrics_conn_bytes(c, 0, before - jn_buf_len(&c->out));
    if (n == JN_EIO)
        return JN_EIO;
    if (n == JN_EAGAIN && c->tp.write_wants_read)
        c->can_read = false; /* TLS: the write goes on at the next readable edge */
    else if (n == JN_EAGAIN)
        c->can_write = false;
    if (jn_buf_empty(&c->out))
        jn_buf_release(&c->worker->bufs, &c->out);
    return 0;
}

static void reject(struct jn_client *c, const struct jn_h1_message *msg)
{
    char id[40];
    jn_request_id_new(c->worker, id, sizeof(id));
    jn_log(JN_LOG_INFO, "client %s: request rejected with %u: %s", c->peer, msg->error_status,
           msg->error ? msg->error : "malformed request");
    jn_write_error(jn_client_out(c), msg->error_status ? msg->error_status : 400,
                   msg->error ? msg->error : "bad request", id, true, false);
    jn_metrics_conn_rejected(c, msg->error_status ? msg->error_status : 400);
    if (msg->error_status >= 500)
        c->worker->stats.errors_5xx++;
    else
        c->worker->stats.errors_4xx++;
    c->close_after = true;
    jn_buf_consume(&c->in, jn_buf_len(&c->in));
}

/* Grows the input buffer when a header section is larger than a pooled
 * buffer but still within the configured limits. */
static bool make_room_for_head(struct jn_client *c)
{
    const struct jn_cfg_http *h = &c->worker->gen->cfg->http;
    size_t limit = (size_t)h->max_request_line + h->max_header_size + 4;
    if (jn_buf_acquire(&c->worker->bufs, &c->in) != 0)
        return false;
    if (jn_buf_room(&c->in) > 0)
        return true;
    if (c->in.cap >= limit)
        return false;
    return jn_buf_grow(&c->in, limit) == 0;
}

/* HTTP/2 with prior knowledge (h2c, or h2 over TLS without ALPN) starts
 * with its preface where the first request would be. Returns 1 when the
 * connection turned to HTTP/2, JN_EAGAIN while the bytes so far are a
 * beginning of the preface, 0 for HTTP/1, JN_ENOMEM (c closed). */
static int h2_preface(struct jn_client *c)
{
    if (c->requests > 0 || !c->worker->gen->cfg->http2.enabled || jn_buf_empty(&c->in))
        return 0;
    int rc = jn_h2_preface(jn_buf_head(&c->in), jn_buf_len(&c->in));
    if (rc == JN_EAGAIN && c->eof)
        return 0; /* never complete: HTTP/1 answers it */
    if (rc != 1)
        return rc;
    if (jn_h2_start(c) != 0) {
        jn_client_close(c);
        return JN_ENOMEM;
    }
    return 1;
}

/* Tries to start the next request from c->in. Returns true when one started,
 * false when more bytes are needed or the connection is ending. */
static bool next_request(struct jn_client *c)
{
    const struct jn_cfg_http *h = &c->worker->gen->cfg->http;
    struct jn_h1_limits lim = { h->max_request_line, h->max_header_size, h->max_headers };
    struct jn_h1_header hdrs[MAX_HEADER_FIELDS];
    if (lim.max_headers > MAX_HEADER_FIELDS)
        lim.max_headers = MAX_HEADER_FIELDS;
    for (;;) {
        /* A connection that is closing never starts another request: bytes
         * after an answered request (say, the unread body of a request
         * answered with 404) must not be taken for a new one. */
        if (c->close_after)
            return false;
        int h2 = h2_preface(c);
        if (h2 == 1 || h2 == JN_ENOMEM)
            return h2 == 1;
        if (h2 == JN_EAGAIN && !c->header_timer_armed) {
            c->header_timer_armed = true; /* a partial preface is a slow header too */
            jn_client_set_timer(c, JN_CT_HEADER);
        }
        if (h2 == 0 && !jn_buf_empty(&c->in)) {
            struct jn_h1_message msg;
            int rc = jn_h1_parse_request(jn_buf_head(&c->in), jn_buf_len(&c->in), &lim, hdrs,
                                         MAX_HEADER_FIELDS, &c->scan, &msg);
            if (rc > 0) {
                c->scan = (struct jn_h1_scan){ 0 };
                c->header_timer_armed = false;
                jn_proxy_start(c, &msg);
                return true;
            }
            if (rc != JN_EAGAIN) {
                reject(c, &msg);
                return false;
            }
            if (!c->header_timer_armed) {
                c->header_timer_armed = true;
                jn_client_set_timer(c, JN_CT_HEADER);
            }
        }
        if (c->eof || c->close_after || (c->worker->draining && jn_buf_empty(&c->in)))
            return false;
        if (!make_room_for_head(c))
            return false;
        int n = jn_client_read(c);
        if (n <= 0) {
            if (n == 0 || n == JN_EIO)
                c->eof = true;
            return false;
        }
    }
}

/* Drives the TLS handshake. Returns true once it is over; false while it
 * waits for an edge or when it failed (the connection is then closed). */
static bool client_handshake(struct jn_client *c)
{
    const char *why = NULL;
    int rc = jn_tls_handshake(&c->tp, &why);
    if (rc == 0 && jn_tls_client_subject(&c->tp, &c->tls_subject) != 0) {
        jn_log(JN_LOG_ERR, "client %s: out of memory for the client certificate subject", c->peer);
        jn_client_close(c);
        return false;
    }
    if (rc == 0) {
        jn_config_unref(c->tls_cfg);
        c->tls_cfg = NULL;
        jn_metrics_tls_handshake(c, true);
        jn_client_set_timer(c, JN_CT_IDLE);
        if (jn_tls_alpn_is_h2(&c->tp) && jn_h2_start(c) != 0) {
            jn_client_close(c);
            return false;
        }
        return true;
    }
    if (rc == JN_EAGAIN) {
        if (c->tp.read_wants_write)
            c->can_write = false;
        else
            c->can_read = false;
        return false;
    }
    jn_log(why == jn_tls_closed_in_handshake ? JN_LOG_DEBUG : JN_LOG_INFO,
           "client %s: TLS handshake failed: %s", c->peer, why);
    jn_metrics_tls_handshake(c, false);
    jn_client_close(c);
    return false;
}

/* True when the connection failed (the client reset it). A paused
 * stream's client that reset is gone, and the policy's work is dropped; a
 * FIN alone may be a half-close, which HTTP/1.1 allows, and is not. */
static bool client_reset(struct jn_client *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    return c->hup && getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0;
}

void jn_client_drive(struct jn_client *c)
{
    if (c->tp.handshaking && !client_handshake(c))
        return;
    if (c->lingering) {
        client_linger(c);
        return;
    }
    while (!c->closed) {
        if (c->h2 != NULL) {
            jn_h2_drive(c);
            return;
        }
        if (c->stream != NULL) {
            if (c->stream->paused && client_reset(c)) {
                c->stream->error = "client reset while a policy worked";
                jn_client_close(c); /* cancels the policy's work */
                return;
            }
            jn_proxy_drive(c->stream);
            if (c->stream != NULL || c->closed)
                break;
            continue;
        }
        /* One response at a time: the next pipelined request waits until
         * the previous response has left the buffer. */
        if (jn_client_flush(c) != 0) {
            jn_client_close(c);
            return;
        }
        if (!jn_buf_empty(&c->out) || !next_request(c))
            break;
    }
    if (c->closed || c->stream != NULL)
        return;
    if (jn_client_flush(c) != 0) {
        jn_client_close(c);
        return;
    }
    if (jn_buf_empty(&c->out) && (c->close_after || c->eof ||
                                  (c->worker->draining && jn_buf_empty(&c->in)))) {
        if (c->close_after && !c->eof)
            client_linger(c);
        else
            jn_client_close(c);
        return;
    }
    if (jn_buf_empty(&c->in)) {
        jn_buf_release(&c->worker->bufs, &c->in);
        if (jn_buf_empty(&c->out) && c->timer_kind != JN_CT_IDLE)
            jn_client_set_timer(c, JN_CT_IDLE);
    }
}

void jn_client_stream_done(struct jn_client *c, bool close)
{
    struct jn_stream *s = c->stream;
    c->stream = NULL;
    jn_stream_free(s);
    c->requests++;
    if (close) {
        c->close_after = true;
        jn_buf_consume(&c->in, jn_buf_len(&c->in));
    }
    c->timer_kind = JN_CT_BODY; /* forces the idle timer to be re-armed */
    jn_client_set_timer(c, JN_CT_BODY);
}

void jn_client_close(struct jn_client *c)
{
    if (c->closed)
        return;
    struct jn_worker *w = c->worker;
    if (c->stream != NULL) {
        struct jn_stream *s = c->stream;
        c->stream = NULL;
        jn_stream_free(s);
    }
    c->closed = true; /* streams freed below must not drive it */
    jn_h2_free(c);
    jn_metrics_conn_close(c);
    jn_timer_stop(&w->loop, &c->timer);
    jn_io_del(&w->loop, &c->io);
    jn_tls_conn_shutdown(&c->tp);
    jn_tls_conn_free(&c->tp);
    jn_config_unref(c->tls_cfg); /* after the TLS objects that used it */
    c->tls_cfg = NULL;
    close(c->io.fd);
    c->closed = true;
    jn_buf_release(&w->bufs, &c->in);
    jn_buf_release(&w->bufs, &c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nclients--;
    c->next = w->client_garbage;
    w->client_garbage = c;
}

void jn_clients_collect(struct jn_worker *w)
{
    while (w->client_garbage != NULL) {
        struct jn_client *c = w->client_garbage;
        w->client_garbage = c->next;
        free(c->tls_subject);
        free(c);
    }
}

void jn_client_drain(struct jn_client *c)
{
    if (c->h2 != NULL) {
        jn_h2_shutdown(c);
        jn_h2_drive(c); /* may close c */
    } else if (c->stream == NULL && jn_buf_empty(&c->in) && jn_buf_empty(&c->out))
        jn_client_close(c);
    else
        c->close_after = true;
}

void jn_clients_drain(struct jn_worker *w)
{
    struct jn_client *c = w->clients;
    while (c != NULL) {
        struct jn_client *next = c->next; /* taken first: c may close */
        jn_client_drain(c);
        c = next;
    }
}

void jn_clients_close_all(struct jn_worker *w)
{
    w->h2_deferred = NULL; /* every connection closes: none is left to drive */
    while (w->clients != NULL)
        jn_client_close(w->clients);
}
