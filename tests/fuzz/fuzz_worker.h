/* The harness shared by the fuzz targets that run a real worker (fuzz_h2,
 * fuzz_gateway): a client connection on a socketpair, a fake upstream in
 * this process whose answer the input chooses, and an event loop run by
 * hand until everything settles. Included by each target (static functions,
 * as tests/fuzz/fuzz_h1_common.h). The target sets FUZZ_NAME. */
#ifndef JN_FUZZ_WORKER_H
#define JN_FUZZ_WORKER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "http/access_log.h"
#include "http/h1/h1_server.h"
#include "http/h2/h2_server.h"
#include "http/proxy.h"
#include "net/tcp_proxy.h"
#include "server/worker.h"

enum up_answer { UP_LENGTH, UP_CHUNKED, UP_CLOSE, UP_SILENT };

#define MAX_PASSES 20000 /* an input that never settles is a busy loop: a finding */
#define MAX_UPCONNS 64

static int upstream_listen_fd = -1; /* the fake upstream, shared by every input */
static int devnull = -1;            /* both logs are formatted, then dropped here */
static char big[48 << 10];          /* the fake upstream's big body */

/* One connection Junction opened to the fake upstream. */
struct upconn {
    int fd;
    char tail[3];     /* last bytes read, to find "\r\n\r\n" across reads */
    bool answered;
};

struct run {
    struct jn_worker w;
    struct jn_listener_rt listener;
    int peer;                 /* the client's end of the socketpair */
    const uint8_t *in;        /* frames not yet written */
    size_t in_len, piece;
    bool half_close;
    uint64_t skew;            /* added to the clock: makes timers due */
    enum up_answer answer;
    bool big_body;
    struct upconn up[MAX_UPCONNS];
    size_t nup;
};

static int listen_upstream(unsigned *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* Opens the fake upstream and the log sinks; FUZZ_TRACE (any value) sends
 * the error and access logs to stderr. Returns the upstream's port. */
static unsigned fuzz_setup(void)
{
    unsigned port;
    bool trace = getenv("FUZZ_TRACE") != NULL || getenv("FUZZ_H2_TRACE") != NULL;
    devnull = trace ? 2 : open("/dev/null", O_WRONLY | O_CLOEXEC);
    upstream_listen_fd = listen_upstream(&port);
    if (devnull < 0 || upstream_listen_fd < 0 ||
        jn_log_open(trace ? "stderr" : "/dev/null", JN_LOG_DEBUG) != 0) {
        fprintf(stderr, FUZZ_NAME ": set-up failed: %s\n", strerror(errno));
        abort();
    }
    memset(big, 'b', sizeof(big));
    return port;
}

/* Loads a configuration the target needs, or aborts with its errors. */
static struct jn_config *fuzz_config(const char *yaml, size_t len)
{
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_buffer(FUZZ_NAME ".yaml", yaml, len, &errs);
    if (cfg == NULL) {
        for (size_t k = 0; k < errs.count; k++)
            fprintf(stderr, "%s\n", errs.msgs[k]);
        abort();
    }
    jn_cfg_errors_free(&errs);
    return cfg;
}

/* The generation a worker starts with, as worker.c's gen_new makes it (but
 * without the shared health state: its counters would outlive the input). */
static struct jn_gen *gen_new(struct jn_worker *w, struct jn_config *cfg)
{
    struct jn_gen *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->ups = calloc(cfg->nupstreams, sizeof(*g->ups))) == NULL)
        abort();
    g->worker = w;
    g->users = 1;
    jn_config_ref(cfg);
    g->cfg = cfg;
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (jn_upstream_rt_init(&g->ups[i], &cfg->upstreams[i], NULL, &w->loop,
                                cfg->timeouts.upstream_idle, &w->upconn_garbage) != 0)
            abort();
    return g;
}

/* The parts of worker_init that a worker without listening sockets needs. */
static void worker_init(struct run *r, struct jn_config *cfg, bool json)
{
    struct jn_worker *w = &r->w;
    w->access_fd = devnull;
    w->access_json = json;
    jn_buf_pool_init(&w->bufs, 256);
    if (jn_loop_init(&w->loop) != 0)
        abort();
    w->loop.data = w;
    w->gen = gen_new(w, cfg);
    r->listener = (struct jn_listener_rt){ .io = { .fd = -1 }, .name = "plain", .worker = w };
}

/* As worker_destroy and the end of worker_main: everything goes back. */
static void worker_destroy(struct jn_worker *w)
{
    jn_clients_close_all(w);
    jn_clients_collect(w);
    jn_upconn_collect(&w->upconn_garbage);
    jn_access_log_flush(w);
    jn_gen_release(w->gen);
    jn_upconn_collect(&w->upconn_garbage);
    jn_tcp_worker_destroy(w);
    jn_stream_cache_destroy(w);
    jn_buf_release(&w->bufs, &w->access_buf);
    jn_buf_pool_destroy(&w->bufs);
    jn_loop_destroy(&w->loop);
}

/* ---- the fake upstream ---- */

static void upstream_answer(struct run *r, struct upconn *u)
{
    static const char chunked_head[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n";
    size_t body_len = r->big_body ? sizeof(big) : 5;
    char head[160], chunk[32];
    int n = 0;
    u->answered = true;
    switch (r->answer) {
    case UP_LENGTH:
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: keep-alive\r\n"
                     "Set-Cookie: a=b\r\n\r\n", body_len);
        break;
    case UP_CHUNKED:
        n = snprintf(head, sizeof(head), "%s", chunked_head);
        break;
    case UP_CLOSE:
        n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        break;
    case UP_SILENT:
        return; /* only a timer ends this one (504) */
    }
    /* The socket buffer takes all of this at once: nothing was sent yet. */
    if (send(u->fd, head, (size_t)n, MSG_NOSIGNAL) < 0)
        return;
    if (r->answer == UP_CHUNKED) {
        n = snprintf(chunk, sizeof(chunk), "%zx\r\n", body_len);
        send(u->fd, chunk, (size_t)n, MSG_NOSIGNAL);
    }
    send(u->fd, big, body_len, MSG_NOSIGNAL);
    if (r->answer == UP_CHUNKED)
        send(u->fd, "\r\n0\r\n\r\n", 7, MSG_NOSIGNAL);
    if (r->answer == UP_CLOSE)
        shutdown(u->fd, SHUT_WR);
}

/* Reads what Junction sent each upstream connection; a complete request
 * head is answered. Returns true when anything happened. */
static bool upstream_serve(struct run *r)
{
    bool progress = false;
    int fd;
    while (r->nup < MAX_UPCONNS && (fd = accept4(upstream_listen_fd, NULL, NULL,
                                                 SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        r->up[r->nup++] = (struct upconn){ .fd = fd };
        progress = true;
    }
    for (size_t i = 0; i < r->nup; i++) {
        struct upconn *u = &r->up[i];
        char buf[4096 + 3];
        ssize_t n;
        while ((n = recv(u->fd, buf + 3, sizeof(buf) - 3, 0)) > 0) {
            progress = true;
            memcpy(buf, u->tail, 3);
            /* Each head end is answered (a keep-alive connection carries
             * the next request), except after a close-delimited answer. */
            bool head_end = memmem(buf, (size_t)n + 3, "\r\n\r\n", 4) != NULL;
            if (head_end && !(u->answered && r->answer == UP_CLOSE))
                upstream_answer(r, u);
            memcpy(u->tail, buf + n, 3);
        }
    }
    return progress;
}

/* ---- driving the worker ---- */

/* Writes the next piece of the input; then, when it is all written, the
 * half-close if asked. Returns true when anything was written. */
static bool feed(struct run *r)
{
    if (r->in_len == 0) {
        if (r->half_close) {
            r->half_close = false;
            shutdown(r->peer, SHUT_WR);
            return true;
        }
        return false;
    }
    size_t k = r->piece ? JN_MIN(r->piece, r->in_len) : r->in_len;
    ssize_t n = send(r->peer, r->in, k, MSG_NOSIGNAL);
    if (n <= 0)
        return false; /* full, or Junction closed: try again after a pass, or drop */
    r->in += n;
    r->in_len -= (size_t)n;
    return true;
}

/* What jn_loop_run does once, without waiting, plus the worker's on_idle. */
static bool loop_pass(struct run *r)
{
    struct jn_loop *l = &r->w.loop;
    struct epoll_event evs[64];
    int n = epoll_wait(l->epfd, evs, 64, 0);
    l->now_ms = jn_clock_ms() + r->skew;
    for (int i = 0; i < n; i++) {
        struct jn_io *io = evs[i].data.ptr;
        io->cb(l, io, evs[i].events);
    }
    bool fired = false;
    while (l->nheap > 0 && l->heap[0]->when_ms <= l->now_ms) {
        struct jn_timer *t = l->heap[0];
        jn_timer_stop(l, t);
        t->cb(l, t);
        fired = true;
    }
    jn_h2_run_deferred(&r->w);
    jn_clients_collect(&r->w);
    jn_upconn_collect(&r->w.upconn_garbage);
    jn_access_log_flush(&r->w);
    return n > 0 || fired;
}

/* Drops what Junction wrote to the client, so that it never blocks. */
static bool drain_peer(struct run *r)
{
    char buf[16384];
    bool progress = false;
    while (recv(r->peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        progress = true;
    return progress;
}

/* Runs until two passes in a row change nothing: on a socketpair and on
 * loopback every readiness is there by the time the syscall returns. */
static void settle(struct run *r)
{
    int quiet = 0;
    for (int i = 0; quiet < 2; i++) {
        if (i == MAX_PASSES) {
            fprintf(stderr, FUZZ_NAME ": the connection never settles (busy loop)\n");
            abort();
        }
        bool progress = feed(r);
        progress |= loop_pass(r);
        progress |= drain_peer(r);
        progress |= upstream_serve(r);
        quiet = progress ? 0 : quiet + 1;
    }
}

/* Starts a run of one input on cfg: the worker, the client connection
 * (after first, the bytes a client sends before anything else, e.g. the
 * HTTP/2 preface; may be empty), then settles; with timers, the clock
 * jumps past every deadline a few times. Tears everything down. */
static void fuzz_run(struct jn_config *cfg, const uint8_t *in, size_t len, size_t piece,
                     const char *first, bool half_close, enum up_answer answer, bool big_body,
                     bool json, bool timers)
{
    struct run *r = calloc(1, sizeof(*r));
    int sv[2];
    if (r == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    worker_init(r, cfg, json);
    r->peer = sv[1];
    r->in = in;
    r->in_len = len;
    r->piece = piece;
    r->half_close = half_close;
    r->answer = answer;
    r->big_body = big_body;
    size_t n = strlen(first);
    if (n > 0 && send(r->peer, first, n, MSG_NOSIGNAL) != (ssize_t)n)
        abort();
    struct sockaddr_storage addr = { .ss_family = AF_INET };
    ((struct sockaddr_in *)&addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    jn_client_accept(&r->w, &r->listener, sv[0], &addr);
    settle(r);
    for (int i = 0; i < 3 && timers; i++) {
        r->skew += 4 * 3600 * 1000ull;
        settle(r);
    }
    worker_destroy(&r->w);
    close(r->peer);
    for (size_t i = 0; i < r->nup; i++)
        close(r->up[i].fd);
    free(r);
}

#endif
