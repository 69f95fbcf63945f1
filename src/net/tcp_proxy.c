/* The L4 TCP proxy: server choice with connect retries, the PROXY protocol
 * header, and the relay of both directions through pipes with splice(2).
 *
 * Each direction (a "flow") moves bytes socket -> pipe -> socket. splice
 * hands the kernel's socket buffers to the pipe and on to the other socket
 * without copying them into Junction, and it costs the same two system calls
 * per chunk as recv + send would, so it is used for every tunnel; a worker
 * keeps empty pipes for the next tunnels so that a short connection does not
 * pay for creating them. A full pipe is the backpressure: the source is not
 * read until the destination takes bytes, so a slow side holds at most one
 * pipe's worth in Junction, whatever the size of the transfer. */
#include "net/tcp_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "balance/hash_key.h"
#include "balance/upstream.h"
#include "core/common.h"
#include "core/log.h"
#include "health/state.h"
#include "net/proxy_protocol.h"
#include "server/worker.h"

/* Connect attempts per client connection, whatever retries.attempts says. */
#define JN_TCP_MAX_TRIES 16
/* Bytes a flow moves per turn before other connections get theirs. */
#ifndef JN_TCP_BUDGET /* overridable to measure other values */
#define JN_TCP_BUDGET (1u << 20)
#endif
/* Pipes start at the kernel's default size (64 KiB), which is plenty for
 * requests and answers. A direction that keeps a pipe busy gets it grown to
 * JN_TCP_PIPE_BULK: on loopback that halves the CPU time per GiB, because
 * each system call moves four times the bytes. Not every pipe is made that
 * big because the kernel counts pipe capacity per user: past
 * fs.pipe-user-pages-soft (64 MiB) an unprivileged user gets 8 KiB pipes,
 * so large pipes are kept for the transfers that use them. */
#ifndef JN_TCP_PIPE_BULK
#define JN_TCP_PIPE_BULK (1u << 20) /* fs.pipe-max-size's default */
#endif
#define JN_TCP_PIPE_DEFAULT (64u << 10)
/* A direction that moved this many pipefuls is a bulk transfer. */
#define JN_TCP_BULK_PIPEFULS 4

/* One direction of a tunnel. */
struct jn_tcp_flow {
    int pipe[2];    /* owned: read and write ends; -1 until bytes first move */
    size_t cap;     /* the pipe's capacity */
    size_t queued;  /* bytes in the pipe */
    uint64_t moved; /* bytes that went through, until the pipe is grown */
    bool grown;     /* grown to JN_TCP_PIPE_BULK, or tried to */
    bool eof;       /* the source has sent everything */
    bool shut;      /* ... and the end was passed on (shutdown of the destination) */
};

struct jn_tunnel {
    struct jn_io io;                  /* the client's socket */
    struct jn_timer timer;            /* tunnel_idle, re-armed lazily from last_active */
    struct jn_worker *worker;         /* borrowed */
    struct jn_gen *gen;               /* one use held until the tunnel closes */
    struct jn_upstream_rt *up;        /* borrowed from gen */
    const struct jn_cfg_listener *listener; /* borrowed from gen->cfg */
    struct jn_upconn *uc;             /* owned: the server side; NULL between tries */
    struct jn_upwait wait;            /* queued for a slot on server (limits.max_pending) */
    int server;                       /* index in up->cfg->servers: the one chosen last */
    int tried[JN_TCP_MAX_TRIES];      /* servers chosen, in order (server is the last) */
    uint32_t ntried;
    uint64_t hash;                    /* the client's hash key (hashing balancers) */
    bool has_hash;
    bool can_read, can_write;         /* the client's readiness not yet consumed */
    bool connected;                   /* to the server; relaying */
    bool counted;                     /* in up->in_flight[server] (from the choice on) */
    bool closed;
    bool queued_again;                /* on the worker's again list */
    struct jn_tcp_flow to_server, to_client;
    char header[JN_PROXY_PROTOCOL_MAX]; /* PROXY protocol header, sent before any byte */
    size_t header_len, header_sent;
    uint64_t last_active;             /* ms: when a byte last moved */
    char peer[48];                    /* the client's address as text */
    struct jn_tunnel *prev, *next;    /* the worker's list; next is also the garbage link */
    struct jn_tunnel *next_again;
};

static void tunnel_drive(struct jn_tunnel *t);
static bool tunnel_connect(struct jn_tunnel *t);

static struct jn_loop *loop_of(const struct jn_tunnel *t)
{
    return &t->worker->loop;
}

/* The single place where a tunnel tells the upstream's shared server state
 * how a server did (passive health, outlier ejection). */
static void tcp_report(struct jn_tunnel *t, uint32_t server, enum jn_outcome o)
{
    jn_upstream_report(t->up, server, o);
}

/* ---- pipes ---- */

static void pipe_set_cap(struct jn_tcp_flow *f)
{
    int cap = fcntl(f->pipe[1], F_GETPIPE_SZ);
    f->cap = cap > 0 ? (size_t)cap : JN_TCP_PIPE_DEFAULT;
}

static int pipe_take(struct jn_tcp_worker *tw, struct jn_tcp_flow *f)
{
    if (tw->npipes > 0) {
        tw->npipes--;
        f->pipe[0] = tw->pipes[tw->npipes][0];
        f->pipe[1] = tw->pipes[tw->npipes][1];
    } else if (pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        jn_log(JN_LOG_ERR, "tcp proxy: cannot create a pipe: %s; tunnel closed", strerror(errno));
        f->pipe[0] = f->pipe[1] = -1;
        return JN_EIO;
    }
    pipe_set_cap(f);
    return 0;
}

/* Called as bytes go through: a busy direction gets the bulk pipe size.
 * Failing (over the user's pipe allowance) keeps the size it has. */
static void pipe_maybe_grow(struct jn_tcp_flow *f, size_t n)
{
    if (f->grown)
        return;
    f->moved += n;
    if (f->moved < (uint64_t)JN_TCP_BULK_PIPEFULS * f->cap)
        return;
    f->grown = true;
    if (fcntl(f->pipe[1], F_SETPIPE_SZ, (int)JN_TCP_PIPE_BULK) > 0)
        pipe_set_cap(f);
}

/* An empty pipe goes back to the cache, at the default size again so that
 * the cache does not hold the user's pipe allowance; one with bytes in it is
 * closed. */
static void pipe_give(struct jn_tcp_worker *tw, struct jn_tcp_flow *f)
{
    if (f->pipe[0] < 0)
        return;
    if (f->queued == 0 && tw->npipes < JN_TCP_PIPE_CACHE &&
        (f->cap <= JN_TCP_PIPE_DEFAULT ||
         fcntl(f->pipe[1], F_SETPIPE_SZ, (int)JN_TCP_PIPE_DEFAULT) > 0)) {
        tw->pipes[tw->npipes][0] = f->pipe[0];
        tw->pipes[tw->npipes][1] = f->pipe[1];
        tw->npipes++;
    } else {
        close(f->pipe[0]);
        close(f->pipe[1]);
    }
    f->pipe[0] = f->pipe[1] = -1;
}

/* ---- relaying ---- */

/* The destination failed (reset, or closed for reading): what this direction
 * still holds can never be delivered, so it ends here, bytes dropped. The
 * other direction goes on, so that an answer the failed side sent before it
 * went away still reaches its peer. */
static void flow_abort(struct jn_tcp_flow *f)
{
    if (f->pipe[0] >= 0) {
        close(f->pipe[0]);
        close(f->pipe[1]);
        f->pipe[0] = f->pipe[1] = -1;
    }
    f->queued = 0;
    f->eof = f->shut = true;
}

/* Pipe -> destination. Returns bytes moved or 0. */
static ssize_t flow_out(struct jn_tcp_flow *f, int dst, bool *dst_writable)
{
    if (f->queued == 0 || !*dst_writable)
        return 0;
    ssize_t n = splice(f->pipe[0], NULL, dst, NULL, f->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        f->queued -= (size_t)n;
        return n;
    }
    if (n < 0 && errno == EAGAIN)
        *dst_writable = false;
    else if (!(n < 0 && errno == EINTR))
        flow_abort(f);
    return 0;
}

/* Source -> pipe. Returns bytes moved, 0, or JN_EIO when no pipe could be
 * had; sets f->eof at the source's end. back is the other direction, the
 * one writing to src. */
static ssize_t flow_in(struct jn_tcp_worker *tw, struct jn_tcp_flow *f, int src,
                       bool *src_readable, struct jn_tcp_flow *back)
{
    if (f->eof || !*src_readable)
        return 0;
    if (f->pipe[0] < 0 && pipe_take(tw, f) != 0)
        return JN_EIO;
    if (f->queued >= f->cap)
        return 0;
    ssize_t n = splice(src, NULL, f->pipe[1], NULL, f->cap - f->queued,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        f->queued += (size_t)n;
        pipe_maybe_grow(f, (size_t)n);
        return n;
    }
    /* EAGAIN means an empty socket or a full pipe (a pipe holds a limited
     * number of buffers, so it can be full below its byte capacity). Only
     * with the pipe empty is it surely the socket; otherwise readiness is
     * kept and the read is tried again once the pipe drained (HAProxy does
     * the same). */
    if (n < 0 && errno == EAGAIN) {
        if (f->queued == 0)
            *src_readable = false;
    } else if (n == 0) {
        f->eof = true; /* the source's end: the other direction may go on */
    } else if (errno != EINTR) {
        /* A reset: the kernel hands out every byte received before it
         * first, and those still go on to the destination. Nothing can
         * reach the reset socket any more, so the other direction ends
         * too (else the tunnel would wait for tunnel_idle). */
        f->eof = true;
        flow_abort(back);
    }
    return 0;
}

/* Moves what can move from src to dst, at most *budget bytes (decreased).
 * Passes the source's end on once the pipe is empty. Returns bytes moved, or
 * JN_EIO when no pipe could be had. */
static ssize_t flow_pump(struct jn_tcp_worker *tw, struct jn_tcp_flow *f, int src,
                         bool *src_readable, int dst, bool *dst_writable, size_t *budget,
                         struct jn_tcp_flow *back)
{
    ssize_t total = 0;
    while (*budget > 0) {
        ssize_t out = flow_out(f, dst, dst_writable);
        ssize_t in = flow_in(tw, f, src, src_readable, back);
        if (in < 0)
            return JN_EIO;
        if (out == 0 && in == 0)
            break;
        total += out + in;
        *budget -= JN_MIN(*budget, (size_t)(out + in));
    }
    if (f->eof && f->queued == 0 && !f->shut) {
        shutdown(dst, SHUT_WR);
        f->shut = true;
    }
    return total;
}

/* ---- the end ---- */

/* Closes the server side, if any; the tunnel still counts on its server. */
static void drop_server(struct jn_tunnel *t)
{
    jn_upwait_cancel(&t->wait);
    if (t->uc != NULL) {
        jn_upconn_close(t->uc);
        t->uc = NULL;
    }
}

static void unqueue_again(struct jn_tcp_worker *tw, struct jn_tunnel *t)
{
    if (!t->queued_again)
        return;
    for (struct jn_tunnel **p = &tw->again; *p != NULL; p = &(*p)->next_again) {
        if (*p == t) {
            *p = t->next_again;
            break;
        }
    }
    t->queued_again = false;
}

static void tunnel_close(struct jn_tunnel *t)
{
    if (t->closed)
        return;
    struct jn_worker *w = t->worker;
    struct jn_tcp_worker *tw = &w->tcp;
    t->closed = true;
    drop_server(t);
    if (t->counted)
        t->up->in_flight[t->server]--;
    jn_timer_stop(&w->loop, &t->timer);
    jn_io_del(&w->loop, &t->io);
    close(t->io.fd);
    pipe_give(tw, &t->to_server);
    pipe_give(tw, &t->to_client);
    unqueue_again(tw, t);
    if (t->prev)
        t->prev->next = t->next;
    else
        tw->tunnels = t->next;
    if (t->next)
        t->next->prev = t->prev;
    tw->ntunnels--;
    t->next = tw->garbage;
    tw->garbage = t;
    jn_gen_release(t->gen);
}

/* ---- connecting ---- */

static const char *server_name(const struct jn_tunnel *t, int server)
{
    return t->up->cfg->servers[server].address;
}

/* The tunnel counts on server from its choice on (queued or connecting
 * included), so that least_conn and p2c see it. */
static void choose(struct jn_tunnel *t, int server)
{
    if (t->counted)
        t->up->in_flight[t->server]--;
    t->server = server;
    t->up->in_flight[server]++;
    t->counted = true;
    t->tried[t->ntried++] = server;
}

/* A connect failed: logged and reported, its connection dropped. Returns
 * true when another server may be tried: retry attempts left, connect
 * failures listed in retry_on, and the pool's retry budget willing (as for
 * HTTP requests; docs/health.md). Nothing was sent, so it is always safe. */
static bool connect_failed_may_retry(struct jn_tunnel *t, const char *why)
{
    const struct jn_cfg_retries *r = &t->up->cfg->retries;
    jn_log(JN_LOG_WARN, "tcp listener %s: upstream %s: connect to %s failed: %s (client %s)",
           t->listener->name, t->up->cfg->name, server_name(t, t->server), why, t->peer);
    tcp_report(t, (uint32_t)t->server, JN_OUT_CONNECT);
    drop_server(t);
    if (t->ntried > r->attempts || t->ntried >= JN_TCP_MAX_TRIES || !(r->on & JN_RETRY_CONNECT))
        return false;
    return jn_upstream_retry_allowed(t->up);
}

static void server_event(struct jn_upconn *uc)
{
    tunnel_drive(uc->owner);
}

/* Only the connect has a deadline on the server's timer; once relaying,
 * the tunnel's own idle timer watches both sides. */
static void server_timeout(struct jn_upconn *uc)
{
    struct jn_tunnel *t = uc->owner;
    if (connect_failed_may_retry(t, "connect timeout") && tunnel_connect(t))
        tunnel_drive(t);
    else
        tunnel_close(t);
}

static void attach(struct jn_tunnel *t, struct jn_upconn *uc)
{
    t->uc = uc;
    uc->owner = t;
    uc->on_event = server_event;
    uc->on_timeout = server_timeout;
    jn_timer_set(loop_of(t), &uc->timer, t->gen->cfg->timeouts.upstream_connect);
}

enum jn_try { JN_TRY_STARTED, JN_TRY_NEXT, JN_TRY_STOP };

static void wait_ready(struct jn_upwait *w);
static void wait_expired(struct jn_upwait *w);

/* The chosen server is at its max_connections: the connection waits for a
 * slot when the pool's queue (limits.max_pending) has room, else it is
 * closed at once, as an HTTP request would get 503. */
static enum jn_try wait_for_slot(struct jn_tunnel *t)
{
    t->wait.ready = wait_ready;
    t->wait.expired = wait_expired;
    if (t->up->cfg->limits.max_pending > 0 &&
        jn_upwait_start(t->up, (uint32_t)t->server, &t->wait) == 0)
        return JN_TRY_STARTED;
    jn_log(JN_LOG_WARN, "tcp listener %s: upstream %s: server %s: connection limit reached "
                        "(client %s)",
           t->listener->name, t->up->cfg->name, server_name(t, t->server), t->peer);
    return JN_TRY_STOP;
}

/* Opens a connection to the chosen server. */
static enum jn_try try_server(struct jn_tunnel *t)
{
    struct jn_upconn *uc = NULL;
    const char *err = NULL;
    int rc = jn_upconn_get(t->up, (uint32_t)t->server, JN_UPCONN_FRESH, &uc, &err);
    if (rc == JN_ETOOBIG)
        return wait_for_slot(t);
    if (rc != 0) {
        /* No socket: this process is short of descriptors or memory,
         * which another server would not change. */
        jn_log(JN_LOG_ERR, "tcp listener %s: upstream %s: connect to %s failed: %s",
               t->listener->name, t->up->cfg->name, server_name(t, t->server), err);
        return JN_TRY_STOP;
    }
    attach(t, uc);
    if (uc->error == 0)
        return JN_TRY_STARTED;
    /* Refused at once: on to the next server without waiting for an event. */
    return connect_failed_may_retry(t, strerror(uc->error)) ? JN_TRY_NEXT : JN_TRY_STOP;
}

/* Chooses a server not tried yet and connects to it, as many times as
 * connects fail at once and retries allow. Returns true when a connection
 * is on its way (or waits for a slot); false when the tunnel was closed. */
static bool tunnel_connect(struct jn_tunnel *t)
{
    const uint64_t *hash = t->has_hash ? &t->hash : NULL;
    for (;;) {
        int s = t->ntried == 0 ? jn_upstream_pick(t->up, hash)
                               : jn_upstream_pick_other(t->up, hash, t->tried, t->ntried);
        if (s < 0) {
            jn_log(JN_LOG_WARN, "tcp listener %s: upstream %s: no %sserver available for "
                                "client %s; connection closed",
                   t->listener->name, t->up->cfg->name, t->ntried ? "other " : "", t->peer);
            break;
        }
        choose(t, s);
        enum jn_try r = try_server(t);
        if (r == JN_TRY_STARTED)
            return true;
        if (r == JN_TRY_STOP)
            break;
    }
    tunnel_close(t);
    return false;
}

static struct jn_tunnel *tunnel_of_wait(struct jn_upwait *w)
{
    return (struct jn_tunnel *)((char *)w - offsetof(struct jn_tunnel, wait));
}

/* A slot may be free on the server the tunnel waits for: try again (and
 * queue again should another worker have taken it). */
static void wait_ready(struct jn_upwait *w)
{
    struct jn_tunnel *t = tunnel_of_wait(w);
    enum jn_try r = try_server(t);
    if (r == JN_TRY_NEXT && !tunnel_connect(t))
        return;
    if (r == JN_TRY_STOP)
        tunnel_close(t);
    else
        tunnel_drive(t);
}

static void wait_expired(struct jn_upwait *w)
{
    struct jn_tunnel *t = tunnel_of_wait(w);
    jn_log(JN_LOG_WARN, "tcp listener %s: upstream %s: server %s: queue timeout (client %s)",
           t->listener->name, t->up->cfg->name, server_name(t, t->server), t->peer);
    tunnel_close(t);
}

/* True once the connect to the server completed; a failed one moves on to
 * the next server (or closes the tunnel). */
static bool check_connected(struct jn_tunnel *t)
{
    struct jn_upconn *uc = t->uc;
    if (uc == NULL)
        return false;
    const char *why = NULL;
    int rc = jn_upconn_finish_connect(uc, &why);
    if (rc < 0) {
        if (!connect_failed_may_retry(t, why))
            tunnel_close(t);
        else if (tunnel_connect(t))
            tunnel_drive(t);
    }
    if (rc <= 0)
        return false;
    t->connected = true;
    uc->can_read = true; /* the server may have spoken first */
    jn_timer_stop(loop_of(t), &uc->timer);
    tcp_report(t, (uint32_t)t->server, JN_OUT_OK);
    t->last_active = jn_loop_now(loop_of(t));
    jn_timer_set(loop_of(t), &t->timer, t->gen->cfg->timeouts.tunnel_idle);
    return true;
}

/* Sends what is left of the PROXY protocol header. Returns 0 when it is all
 * sent, JN_EAGAIN while the socket is full, JN_EIO on failure. */
static int send_header(struct jn_tunnel *t)
{
    struct jn_upconn *uc = t->uc;
    while (t->header_sent < t->header_len) {
        if (!uc->can_write)
            return JN_EAGAIN;
        ssize_t n = send(uc->io.fd, t->header + t->header_sent, t->header_len - t->header_sent,
                         MSG_NOSIGNAL);
        if (n > 0)
            t->header_sent += (size_t)n;
        else if (n < 0 && errno == EAGAIN)
            uc->can_write = false;
        else if (!(n < 0 && errno == EINTR))
            return JN_EIO;
    }
    return 0;
}

static void queue_again(struct jn_tunnel *t)
{
    struct jn_tcp_worker *tw = &t->worker->tcp;
    if (t->queued_again)
        return;
    t->queued_again = true;
    t->next_again = tw->again;
    tw->again = t;
    jn_loop_wake(loop_of(t));
}

/* Moves everything that can move, both ways; closes the tunnel when both
 * directions are finished or a socket failed. */
static void tunnel_drive(struct jn_tunnel *t)
{
    if (t->closed || (!t->connected && !check_connected(t)))
        return;
    struct jn_tcp_worker *tw = &t->worker->tcp;
    struct jn_upconn *uc = t->uc;
    size_t up_budget = JN_TCP_BUDGET, down_budget = JN_TCP_BUDGET;
    int hdr = send_header(t);
    ssize_t up = hdr != 0 ? 0
                          : flow_pump(tw, &t->to_server, t->io.fd, &t->can_read, uc->io.fd,
                                      &uc->can_write, &up_budget, &t->to_client);
    ssize_t down = flow_pump(tw, &t->to_client, uc->io.fd, &uc->can_read, t->io.fd,
                             &t->can_write, &down_budget, &t->to_server);
    if (hdr == JN_EIO || up < 0 || down < 0 || (t->to_server.shut && t->to_client.shut)) {
        tunnel_close(t);
        return;
    }
    if (up > 0 || down > 0)
        t->last_active = jn_loop_now(loop_of(t));
    if (up_budget == 0 || down_budget == 0)
        queue_again(t);
}

/* ---- events ---- */

static void client_event(struct jn_loop *loop, struct jn_io *io, uint32_t events)
{
    struct jn_tunnel *t = io->data;
    if (t->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        t->can_read = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        t->can_write = true;
    /* Reset before a server was reached: nobody is left to relay for. (A
     * half-close is not that: its bytes still go to the server.) */
    if (!t->connected && (events & (EPOLLHUP | EPOLLERR))) {
        tunnel_close(t);
        return;
    }
    tunnel_drive(t);
}

static void idle_timeout(struct jn_loop *loop, struct jn_timer *timer)
{
    struct jn_tunnel *t = timer->data;
    uint64_t idle = t->gen->cfg->timeouts.tunnel_idle;
    uint64_t quiet = jn_loop_now(loop) - t->last_active;
    /* Moving a heap entry on every byte would cost more than this check. */
    if (quiet < idle) {
        jn_timer_set(loop, timer, idle - quiet);
        return;
    }
    jn_log(JN_LOG_DEBUG, "tcp listener %s: client %s: tunnel idle for %llu ms; closed",
           t->listener->name, t->peer, (unsigned long long)quiet);
    tunnel_close(t);
}

/* ---- the worker's side ---- */

/* The client's address as text, its hash key, and the PROXY header. */
static void describe_client(struct jn_tunnel *t, int fd, const struct sockaddr_storage *peer)
{
    const void *a = peer->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)peer)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)peer)->sin_addr;
    if (inet_ntop(peer->ss_family, a, t->peer, sizeof(t->peer)) == NULL)
        t->peer[0] = '\0';
    if (t->up->cfg->hash_key != NULL) {
        /* The loader allows client_ip only; jn_hash_key then reads no
         * request, and a client lands where its HTTP requests would. */
        static const struct jn_http_request none;
        jn_hash_key(t->up->cfg->hash_key, &none, t->peer, &t->hash);
        t->has_hash = true;
    }
    if (t->listener->proxy_protocol != JN_PROXY_PROTOCOL_NONE) {
        struct sockaddr_storage local;
        socklen_t len = sizeof(local);
        if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
            local.ss_family = AF_UNSPEC; /* sent as "unknown": the server still hears */
        t->header_len = jn_proxy_protocol_header(t->listener->proxy_protocol, peer, &local,
                                                 t->header, sizeof(t->header));
    }
}

static struct jn_tunnel *tunnel_new(struct jn_worker *w, const struct jn_listener_rt *l, int fd)
{
    struct jn_tunnel *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->io = (struct jn_io){ .fd = fd, .cb = client_event, .data = t };
    jn_timer_init(&t->timer, idle_timeout, t);
    t->worker = w;
    t->gen = w->gen;
    t->listener = &t->gen->cfg->listeners[l->index];
    t->up = &t->gen->ups[t->listener->upstream->index];
    t->server = -1;
    t->to_server.pipe[0] = t->to_server.pipe[1] = -1;
    t->to_client.pipe[0] = t->to_client.pipe[1] = -1;
    /* Bytes may be waiting already; they are read once a server is reached. */
    t->can_read = t->can_write = true;
    return t;
}

void jn_tcp_accept(struct jn_worker *w, const struct jn_listener_rt *l, int fd,
                   const struct sockaddr_storage *peer)
{
    struct jn_tcp_worker *tw = &w->tcp;
    struct jn_tunnel *t = tunnel_new(w, l, fd);
    if (t == NULL || jn_io_add(&w->loop, &t->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
        jn_log(JN_LOG_ERR, "listener %s: cannot take a connection: %s", l->name,
               t == NULL ? "out of memory" : "epoll registration failed");
        free(t);
        close(fd);
        return;
    }
    t->gen->users++;
    describe_client(t, fd, peer);
    t->next = tw->tunnels;
    if (tw->tunnels != NULL)
        tw->tunnels->prev = t;
    tw->tunnels = t;
    tw->ntunnels++;
    w->stats.connections++;
    jn_upstream_count_request(t->up); /* what the retry budget is a share of */
    if (tunnel_connect(t))
        tunnel_drive(t);
}

void jn_tcp_resume(struct jn_worker *w)
{
    struct jn_tunnel *t = w->tcp.again;
    w->tcp.again = NULL;
    while (t != NULL) {
        struct jn_tunnel *next = t->next_again;
        t->queued_again = false;
        tunnel_drive(t);
        t = next;
    }
}

void jn_tcp_close_all(struct jn_worker *w)
{
    while (w->tcp.tunnels != NULL)
        tunnel_close(w->tcp.tunnels);
}

void jn_tcp_collect(struct jn_worker *w)
{
    while (w->tcp.garbage != NULL) {
        struct jn_tunnel *t = w->tcp.garbage;
        w->tcp.garbage = t->next;
        free(t);
    }
}

void jn_tcp_worker_destroy(struct jn_worker *w)
{
    struct jn_tcp_worker *tw = &w->tcp;
    while (tw->npipes > 0) {
        tw->npipes--;
        close(tw->pipes[tw->npipes][0]);
        close(tw->pipes[tw->npipes][1]);
    }
}
