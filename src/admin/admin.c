/* The admin listener: one thread, one event loop, HTTP/1.1 with keep-alive
 * read by Junction's own parser, bounded heads and bodies, timeouts. What a
 * request means is api.c's business; this file only moves bytes. */
#include "admin/admin.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/api.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/h1/h1_write.h"
#include "net/listener.h"

#define ADMIN_HEAD_MAX (16u << 10)  /* request line and header section: 431 beyond */
#define ADMIN_LINE_MAX (8u << 10)   /* request line: 414 beyond */
#define ADMIN_MAX_HEADERS 64
#define ADMIN_BODY_MAX (64u << 10)  /* 413 beyond */
#define ADMIN_MAX_CONNS 256         /* more are closed at once: the API is for a few operators */

enum { TIMER_NONE, TIMER_IDLE, TIMER_REQUEST, TIMER_WRITE };

struct admin_listener {
    struct jn_io io;
    bool metrics_only;
};

struct admin_conn {
    struct jn_io io;
    struct jn_timer timer;
    bool metrics_only;
    char *in;              /* owned: bytes read and not yet answered */
    size_t in_len, in_cap;
    struct jn_h1_scan scan;
    bool continue_sent;    /* 100 Continue written for the request being read */
    char *out;             /* owned: the response being written, NULL when none */
    size_t out_len, out_off;
    bool close_after;      /* close once out is written */
    bool eof;              /* the client closed its side */
    int timer_kind;        /* what the timer is armed for: TIMER_* */
    struct admin_conn *prev, *next;
};

static struct {
    struct jn_loop loop;
    pthread_t thread;
    bool running;
    _Atomic bool stopping;
    struct admin_listener listeners[2];
    size_t nlisteners;
    struct admin_conn *conns; /* owned: every open connection */
    /* ms, from timeouts: at start: client_header for a whole request once
     * begun, client_idle between requests, client_body for a response. */
    uint64_t request_timeout, idle_timeout, write_timeout;
    size_t nconns;
} A;

static void conn_close(struct admin_conn *c)
{
    jn_timer_stop(&A.loop, &c->timer);
    jn_io_del(&A.loop, &c->io);
    close(c->io.fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        A.conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    A.nconns--;
    free(c->in);
    free(c->out);
    free(c);
}

/* Serialises rs into c->out (rs->body is consumed). Returns 0 or JN_ENOMEM. */
static int conn_set_response(struct admin_conn *c, struct jn_admin_response *rs)
{
    char head[512], length[48] = "";
    if (rs->status != 204) /* RFC 9110 8.6: never on a 204 */
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", rs->len);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "%s%s%s%s%s\r\n",
                     rs->status, jn_http_reason((uint16_t)rs->status),
                     rs->content_type != NULL ? rs->content_type : "application/json", length,
                     rs->challenge ? "WWW-Authenticate: Bearer realm=\"junction-admin\"\r\n" : "",
                     rs->allow != NULL ? "Allow: " : "", rs->allow != NULL ? rs->allow : "",
                     rs->allow != NULL ? "\r\n" : "",
                     c->close_after ? "Connection: close\r\n" : "");
    size_t hn = n > 0 ? JN_MIN((size_t)n, sizeof(head) - 1) : 0;
    c->out = malloc(hn + rs->len);
    if (c->out != NULL) {
        memcpy(c->out, head, hn);
        if (rs->len > 0 && rs->body != NULL)
            memcpy(c->out + hn, rs->body, rs->len);
        c->out_len = hn + rs->len;
        c->out_off = 0;
    }
    free(rs->body);
    rs->body = NULL;
    return c->out != NULL ? 0 : JN_ENOMEM;
}

/* Answers a request that cannot be read on; the connection closes after. */
static void conn_refuse(struct admin_conn *c, int status, const char *why)
{
    struct jn_admin_response rs = { 0 };
    c->close_after = true;
    jn_admin_reply_error(&rs, status, "%s", why);
    conn_set_response(c, &rs); /* on failure out stays NULL: conn_drive closes */
    c->in_len = 0;
}

/* Sends "100 Continue" once, for a client waiting before it sends a body.
 * Best effort: it is tiny, and a client that misses it sends anyway. */
static void conn_continue(struct admin_conn *c, const struct jn_h1_message *m)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!m->expect_continue || c->continue_sent || c->out != NULL)
        return;
    c->continue_sent = true;
    ssize_t w = send(c->io.fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
    (void)w;
}

/* Runs the request whose head (head bytes) and body are complete in c->in. */
static void conn_answer(struct admin_conn *c, const struct jn_h1_message *m, size_t head,
                        size_t body_len)
{
    struct jn_admin_request rq = {
        .method = m->method, .target = m->target, .headers = m->headers,
        .nheaders = m->nheaders, .body = c->in + head, .body_len = body_len,
        .metrics_only = c->metrics_only,
    };
    struct jn_admin_response rs = { 0 };
    jn_admin_handle(&rq, &rs);
    if (rs.body == NULL && rs.status == 0)
        jn_admin_reply_error(&rs, 500, "no answer");
    c->close_after = !m->keep_alive || c->eof || rs.close;
    if (conn_set_response(c, &rs) != 0)
        c->close_after = true;
    size_t used = head + body_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->scan = (struct jn_h1_scan){ 0 };
    c->continue_sent = false;
}

/* Parses what c->in holds; answers one complete request. Returns true when
 * a response was set (the caller writes it), false when more bytes are
 * needed. */
static bool conn_parse(struct admin_conn *c)
{
    static const struct jn_h1_limits lim = { ADMIN_LINE_MAX, ADMIN_HEAD_MAX, ADMIN_MAX_HEADERS };
    struct jn_h1_header headers[ADMIN_MAX_HEADERS];
    struct jn_h1_message m = { 0 };
    if (c->in_len == 0)
        return false;
    int rc = jn_h1_parse_request(c->in, c->in_len, &lim, headers, ADMIN_MAX_HEADERS, &c->scan, &m);
    if (rc == JN_EAGAIN) {
        if (c->in_len >= ADMIN_HEAD_MAX + ADMIN_LINE_MAX) {
            conn_refuse(c, 431, "request head too large");
            return true;
        }
        return false;
    }
    if (rc < 0) {
        conn_refuse(c, m.error_status ? m.error_status : 400,
                    m.error ? m.error : "malformed request");
        return true;
    }
    size_t head = (size_t)rc;
    if (m.body == JN_H1_BODY_CHUNKED) {
        conn_refuse(c, 411, "send the body with a Content-Length (chunked bodies are not taken)");
        return true;
    }
    uint64_t body = m.body == JN_H1_BODY_LENGTH ? m.content_length : 0;
    if (body > ADMIN_BODY_MAX) {
        conn_refuse(c, 413, "request body larger than 64 KiB");
        return true;
    }
    if (c->in_len - head < body) {
        conn_continue(c, &m);
        return false;
    }
    conn_answer(c, &m, head, (size_t)body);
    return true;
}

/* Reads what the socket has, up to the most one request may take.
 * Returns false when the connection failed. */
static bool conn_read(struct admin_conn *c)
{
    const size_t max = ADMIN_HEAD_MAX + ADMIN_LINE_MAX + ADMIN_BODY_MAX;
    while (!c->eof && c->in_len < max) {
        if (c->in_len == c->in_cap) {
            size_t cap = JN_MIN(c->in_cap ? c->in_cap * 2 : 4096, max);
            char *in = realloc(c->in, cap);
            if (in == NULL)
                return false;
            c->in = in;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->io.fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0)
            c->in_len += (size_t)n;
        else if (n == 0)
            c->eof = true;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return true;
        else if (errno != EINTR)
            return false;
    }
    return true;
}

/* Writes the pending response. Returns 1 when it is all out, 0 when the
 * socket is full, -1 on failure. */
static int conn_flush(struct admin_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0)
            c->out_off += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    free(c->out);
    c->out = NULL;
    return 1;
}

/* Arms the timer for what the connection waits for, unless it already is:
 * a request that began has A.request_timeout as a whole. */
static void conn_arm(struct admin_conn *c, int kind)
{
    const uint64_t ms[] = { 0, A.idle_timeout, A.request_timeout, A.write_timeout };
    if (c->timer_kind == kind)
        return;
    c->timer_kind = kind;
    if (jn_timer_set(&A.loop, &c->timer, ms[kind]) != 0)
        c->timer_kind = TIMER_NONE;
}

/* Moves the connection on as far as it can: write, read, answer, again. */
static void conn_drive(struct admin_conn *c)
{
    for (;;) {
        if (c->out == NULL && c->close_after) { /* no response could be made: just close */
            conn_close(c);
            return;
        }
        if (c->out != NULL) {
            int rc = conn_flush(c);
            if (rc < 0 || (rc == 1 && c->close_after)) {
                conn_close(c);
                return;
            }
            if (rc == 0) {
                conn_arm(c, TIMER_WRITE);
                return;
            }
            c->timer_kind = TIMER_NONE; /* re-armed below for what comes next */
        }
        if (!conn_read(c)) {
            conn_close(c);
            return;
        }
        if (conn_parse(c))
            continue;
        if (c->eof) { /* nothing more will come: a partial request is dropped */
            conn_close(c);
            return;
        }
        conn_arm(c, c->in_len > 0 ? TIMER_REQUEST : TIMER_IDLE);
        return;
    }
}

static void conn_event(struct jn_loop *loop, struct jn_io *io, uint32_t events)
{
    struct admin_conn *c = io->data;
    if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
        conn_close(c);
        return;
    }
    conn_drive(c);
}

static void conn_timeout(struct jn_loop *loop, struct jn_timer *t)
{
    struct admin_conn *c = t->data;
    c->timer_kind = TIMER_NONE;
    if (c->out != NULL || c->in_len == 0) { /* a stuck reader, or idle: just close */
        conn_close(c);
        return;
    }
    conn_refuse(c, 408, "request not received in time");
    conn_drive(c);
}

static void accept_one(struct admin_listener *l, int fd)
{
    struct admin_conn *c = A.nconns < ADMIN_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL) {
        close(fd);
        return;
    }
    c->io = (struct jn_io){ .fd = fd, .cb = conn_event, .data = c };
    c->metrics_only = l->metrics_only;
    jn_timer_init(&c->timer, conn_timeout, c);
    if (jn_io_add(&A.loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = A.conns;
    if (A.conns != NULL)
        A.conns->prev = c;
    A.conns = c;
    A.nconns++;
    conn_arm(c, TIMER_IDLE);
}

static void listener_event(struct jn_loop *loop, struct jn_io *io, uint32_t events)
{
    struct admin_listener *l = io->data;
    for (;;) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                jn_log(JN_LOG_WARN, "admin: accept: %s", strerror(errno));
            return; /* EAGAIN: all taken; anything else: try at the next event */
        }
        accept_one(l, fd);
    }
}

static void on_wake(struct jn_loop *loop)
{
    if (atomic_load(&A.stopping))
        jn_loop_stop(loop);
}

static void *admin_main(void *arg)
{
    jn_loop_run(&A.loop);
    while (A.conns != NULL)
        conn_close(A.conns);
    return NULL;
}

int jn_admin_listen(const char *what, const struct sockaddr_storage *addr, socklen_t len)
{
    const char *err = NULL;
    int fd = jn_listen(addr, len, &err);
    if (fd < 0)
        jn_log(JN_LOG_ERR, "%s listener: %s", what, err != NULL ? err : strerror(errno));
    return fd;
}

size_t jn_admin_fds(int *out, size_t max)
{
    size_t n = 0;
    for (; n < A.nlisteners && n < max; n++)
        out[n] = A.listeners[n].io.fd;
    return n;
}

static void close_listeners(void)
{
    for (size_t i = 0; i < A.nlisteners; i++)
        close(A.listeners[i].io.fd);
    A.nlisteners = 0;
}

/* Opens one listener (address as written in the file) into A.listeners. */
static int open_listener(const char *what, const char *address, bool metrics_only)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *err = NULL;
    if (jn_parse_address(address, &ss, &len, &err) != 0) {
        jn_log(JN_LOG_ERR, "%s listener: invalid address %s: %s", what, address, err);
        return JN_EIO;
    }
    int fd = jn_admin_listen(what, &ss, len);
    if (fd < 0)
        return JN_EIO;
    struct admin_listener *l = &A.listeners[A.nlisteners++];
    *l = (struct admin_listener){ .io = { .fd = fd, .cb = listener_event, .data = l },
                                  .metrics_only = metrics_only };
    return 0;
}

int jn_admin_start(const struct jn_config *cfg)
{
    if (!cfg->admin.enabled && cfg->metrics.address == NULL)
        return 0;
    if ((cfg->admin.enabled && open_listener("admin", cfg->admin.address, false) != 0) ||
        (cfg->metrics.address != NULL &&
         open_listener("metrics", cfg->metrics.address, true) != 0)) {
        close_listeners();
        return JN_EIO;
    }
    if (jn_loop_init(&A.loop) != 0) {
        close_listeners();
        return JN_EIO;
    }
    A.loop.on_wake = on_wake;
    A.request_timeout = cfg->timeouts.client_header;
    A.idle_timeout = cfg->timeouts.client_idle;
    A.write_timeout = cfg->timeouts.client_body;
    atomic_store(&A.stopping, false);
    for (size_t i = 0; i < A.nlisteners; i++)
        if (jn_io_add(&A.loop, &A.listeners[i].io, EPOLLIN) != 0)
            goto fail;
    if (pthread_create(&A.thread, NULL, admin_main, NULL) != 0)
        goto fail;
    A.running = true;
    if (cfg->admin.enabled)
        jn_log(JN_LOG_INFO, "admin API on %s%s", cfg->admin.address,
               cfg->admin.token == NULL ? " (no token_file: every endpoint is denied)" : "");
    if (cfg->metrics.address != NULL)
        jn_log(JN_LOG_INFO, "metrics on %s", cfg->metrics.address);
    return 0;
fail:
    jn_log(JN_LOG_ERR, "admin: cannot start its thread");
    close_listeners();
    jn_loop_destroy(&A.loop);
    return JN_EIO;
}

void jn_admin_stop(void)
{
    if (!A.running)
        return;
    atomic_store(&A.stopping, true);
    jn_loop_wake(&A.loop);
    pthread_join(A.thread, NULL);
    A.running = false;
    close_listeners();
    jn_loop_destroy(&A.loop);
}
