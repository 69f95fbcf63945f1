/* Per-worker upstream pools: server choice and keep-alive connection reuse. */
#include "balance/upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"
#include "tls/tls.h"
#include "tls/tls_client.h"

/* Recomputes this worker's view of which servers are usable and their
 * effective weights from the configuration and the shared state. */
static void refresh(struct jn_upstream_rt *rt, uint64_t now)
{
    const struct jn_cfg_upstream *cfg = rt->cfg;
    uint64_t until = UINT64_MAX;
    if (rt->shared != NULL)
        rt->seen_version = atomic_load_explicit(&rt->shared->version, memory_order_acquire);
    for (size_t i = 0; i < cfg->nservers; i++) {
        bool ok = !cfg->servers[i].drain;
        uint32_t ramp = 1000;
        if (rt->shared != NULL) {
            ok = ok && jn_server_usable(rt->shared, i, now, &until);
            ramp = jn_server_ramp(rt->shared, i, now, &until);
        }
        rt->usable[i] = ok;
        rt->weight[i] = JN_MAX(cfg->servers[i].weight * ramp / 100, 1u);
    }
    rt->valid_until = until;
}

/* One relaxed load and one comparison on the request path. */
static void maybe_refresh(struct jn_upstream_rt *rt)
{
    uint64_t now = jn_loop_now(rt->loop);
    if (now >= rt->valid_until ||
        (rt->shared != NULL &&
         atomic_load_explicit(&rt->shared->version, memory_order_relaxed) != rt->seen_version))
        refresh(rt, now);
}

int jn_upstream_rt_init(struct jn_upstream_rt *rt, const struct jn_cfg_upstream *cfg,
                        struct jn_pool_state *shared, struct jn_loop *loop,
                        uint64_t idle_timeout_ms, struct jn_upconn **garbage)
{
    *rt = (struct jn_upstream_rt){ .cfg = cfg, .loop = loop, .idle_timeout_ms = idle_timeout_ms,
                                   .garbage = garbage };
    /* Seeded from the pool's address and the clock: workers draw apart. */
    rt->rng = ((uint64_t)(uintptr_t)rt ^ (jn_clock_ms() << 20)) | 1;
    rt->lb = jn_lb_find(cfg->balance);
    if (rt->lb == NULL)
        rt->lb = &jn_lb_round_robin;
    size_t n = cfg->nservers ? cfg->nservers : 1;
    rt->servers = calloc(n, sizeof(*rt->servers));
    rt->in_flight = calloc(n, sizeof(*rt->in_flight));
    rt->usable = calloc(n, sizeof(*rt->usable));
    rt->weight = calloc(n, sizeof(*rt->weight));
    rt->lb_state = rt->lb->create(cfg);
    rt->shared = shared;
    if (cfg->sticky.cookie != NULL && (rt->sticky = calloc(n, sizeof(*rt->sticky))) != NULL)
        for (size_t i = 0; i < cfg->nservers; i++)
            jn_sticky_token(cfg, i, rt->sticky[i]);
    if (rt->servers == NULL || rt->in_flight == NULL || rt->usable == NULL ||
        rt->weight == NULL || rt->lb_state == NULL ||
        (cfg->sticky.cookie != NULL && rt->sticky == NULL)) {
        jn_upstream_rt_destroy(rt);
        return JN_ENOMEM;
    }
    refresh(rt, jn_clock_ms());
    return 0;
}

static void (*h2_free_hook)(struct jn_upstream_server_rt *s);

void jn_upstream_set_h2_free_hook(void (*hook)(struct jn_upstream_server_rt *s))
{
    h2_free_hook = hook;
}

void jn_upstream_rt_destroy(struct jn_upstream_rt *rt)
{
    for (size_t i = 0; rt->servers != NULL && i < rt->cfg->nservers; i++) {
        if (rt->servers[i].h2 != NULL && h2_free_hook != NULL)
            h2_free_hook(&rt->servers[i]);
        /* Deferred, like every close: an event for one of them may still
         * be waiting in the current batch. */
        while (rt->servers[i].idle != NULL)
            jn_upconn_close(rt->servers[i].idle);
        jn_tls_session_free(rt->servers[i].tls_session);
        rt->servers[i].tls_session = NULL;
    }
    if (rt->lb_state != NULL)
        rt->lb->destroy(rt->lb_state);
    free(rt->servers);
    free(rt->in_flight);
    free(rt->usable);
    free(rt->weight);
    free(rt->sticky);
    rt->sticky = NULL;
    rt->usable = NULL;
    rt->weight = NULL;
    rt->servers = NULL;
    rt->in_flight = NULL;
    rt->lb_state = NULL;
}

static int pick_now(struct jn_upstream_rt *rt, const uint64_t *hash)
{
    struct jn_lb_ctx ctx = { .in_flight = rt->in_flight, .usable = rt->usable,
                             .weight = rt->weight, .rng = &rt->rng,
                             .now_us = rt->lb->observe != NULL ? jn_clock_us() : 0,
                             .hash = hash != NULL ? *hash : 0, .has_hash = hash != NULL };
    return rt->lb->pick(rt->lb_state, &ctx);
}

/* Time constant of the operators' average when the upstream sets none
 * (configurations built in code); the loader's ewma.decay default is the same. */
#define LATENCY_DECAY_US 10000000.0

void jn_upstream_observe(struct jn_upstream_rt *rt, uint32_t server, uint64_t latency_us,
                         uint64_t now_us)
{
    if (rt->lb->observe != NULL)
        rt->lb->observe(rt->lb_state, (int)server, latency_us, now_us);
    struct jn_upstream_server_rt *s = &rt->servers[server];
    double sample = (double)latency_us;
    if (s->latency_at_us == 0) {
        s->latency_ewma_us = sample;
    } else {
        /* Weighted by time, not by count: the average reflects the last
         * few decay periods whatever the request rate. */
        double decay = rt->cfg->ewma_decay > 0 ? (double)rt->cfg->ewma_decay * 1000.0
                                               : LATENCY_DECAY_US;
        double elapsed = now_us > s->latency_at_us ? (double)(now_us - s->latency_at_us) : 0.0;
        double w = exp(-elapsed / decay);
        s->latency_ewma_us = s->latency_ewma_us * w + sample * (1.0 - w);
    }
    s->latency_at_us = now_us > 0 ? now_us : 1;
}

int jn_upstream_pick(struct jn_upstream_rt *rt, const uint64_t *hash)
{
    maybe_refresh(rt);
    return pick_now(rt, hash);
}

bool jn_upstream_usable(struct jn_upstream_rt *rt, uint32_t server)
{
    maybe_refresh(rt);
    return rt->usable[server];
}

int jn_upstream_pick_other(struct jn_upstream_rt *rt, const uint64_t *hash, const int *tried,
                           size_t ntried)
{
    maybe_refresh(rt);
    /* The tried servers are hidden for this one pick; the next refresh or
     * this restore brings them back. */
    bool saved[16];
    size_t n = JN_MIN(ntried, JN_ARRAY_LEN(saved));
    for (size_t k = 0; k < n; k++) {
        saved[k] = rt->usable[tried[k]];
        rt->usable[tried[k]] = false;
    }
    int pick = pick_now(rt, hash);
    for (size_t k = n; k-- > 0;)
        rt->usable[tried[k]] = saved[k];
    return pick;
}

#define BUDGET_BATCH 32 /* requests a worker counts before adding them to the pool's */

static void flush_count(struct jn_upstream_rt *rt)
{
    if (rt->shared != NULL && rt->uncounted > 0)
        jn_pool_count_requests(rt->shared, rt->uncounted, jn_loop_now(rt->loop));
    rt->uncounted = 0;
}

void jn_upstream_count_request(struct jn_upstream_rt *rt)
{
    if (++rt->uncounted >= BUDGET_BATCH)
        flush_count(rt);
}

bool jn_upstream_retry_allowed(struct jn_upstream_rt *rt)
{
    flush_count(rt);
    return rt->shared == NULL || jn_pool_retry_allowed(rt->shared, jn_loop_now(rt->loop));
}

void jn_upstream_report(struct jn_upstream_rt *rt, uint32_t server, enum jn_outcome o)
{
    if (rt->shared == NULL || !rt->cfg->outlier.enabled)
        return; /* only passive health listens */
    uint64_t v = atomic_load_explicit(&rt->shared->version, memory_order_relaxed);
    jn_pool_report(rt->shared, server, o, jn_loop_now(rt->loop));
    /* An ejection made here is seen by this worker's very next pick. */
    if (atomic_load_explicit(&rt->shared->version, memory_order_relaxed) != v)
        rt->valid_until = 0;
}

/* A pooled connection is only handed out when a peek shows the server has
 * neither closed it nor sent stray bytes: such a connection is never reused. */
static bool still_idle(struct jn_upconn *uc)
{
    char c;
    ssize_t n = recv(uc->io.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* An idle connection is watched so that a server closing it (or sending
 * bytes nobody asked for) takes it out of the pool at once. */
static void idle_event(struct jn_loop *loop, struct jn_io *io, uint32_t events)
{
    struct jn_upconn *uc = io->data;
    if (uc->closed)
        return;
    if (uc->owner != NULL) {
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            uc->can_read = true;
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            uc->hup = true;
        if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            uc->can_write = true;
        uc->on_event(uc);
        return;
    }
    /* Writability edges arrive after the last write of an exchange; only a
     * close or stray bytes from the server end an idle connection. */
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !still_idle(uc))
        jn_upconn_close(uc);
}

static void idle_timeout(struct jn_loop *loop, struct jn_timer *t)
{
    struct jn_upconn *uc = t->data;
    if (uc->owner == NULL)
        jn_upconn_close(uc);
    else
        uc->on_timeout(uc);
}

static void unlink_idle(struct jn_upconn *uc)
{
    struct jn_upstream_server_rt *s = &uc->up->servers[uc->server];
    for (struct jn_upconn **p = &s->idle; *p != NULL; p = &(*p)->next) {
        if (*p == uc) {
            *p = uc->next;
            s->nidle--;
            break;
        }
    }
    uc->next = NULL;
}

static struct jn_upconn *take_idle(struct jn_upstream_rt *rt, uint32_t server, bool verify)
{
    struct jn_upstream_server_rt *s = &rt->servers[server];
    while (s->idle != NULL) {
        struct jn_upconn *uc = s->idle;
        unlink_idle(uc);
        jn_timer_stop(rt->loop, &uc->timer);
        /* A pooled TLS connection was idle: nothing of it is buffered by
         * OpenSSL (the response was read to its end), so the peek says all. */
        if (!verify || still_idle(uc)) {
            uc->can_write = true;
            uc->can_read = false;
            uc->hup = false;
            return uc;
        }
        jn_upconn_close(uc);
    }
    return NULL;
}

static _Atomic(void (*)(void)) kick_hook;
static const char limit_msg[] = "connection limit reached";

void jn_upstream_set_kick_hook(void (*hook)(void))
{
    atomic_store(&kick_hook, hook);
}

/* Takes one of the server's connection slots (every worker counts against
 * max_connections). Returns false when none is free. */
static bool take_slot(struct jn_upstream_rt *rt, uint32_t server)
{
    if (rt->shared == NULL)
        return true;
    _Atomic uint32_t *open = &rt->shared->servers[server].slots->connections;
    uint32_t max = rt->cfg->limits.max_connections;
    if (max == 0) {
        atomic_fetch_add_explicit(open, 1, memory_order_relaxed);
        return true;
    }
    uint32_t n = atomic_load(open);
    do {
        if (n >= max)
            return false;
    } while (!atomic_compare_exchange_weak(open, &n, n + 1));
    return true;
}

static void wake_one(struct jn_upstream_rt *rt, uint32_t server);

static void kick_others(void)
{
    void (*hook)(void) = atomic_load(&kick_hook);
    if (hook != NULL)
        hook();
}

/* Requests queued for server could proceed now: an idle connection here,
 * or slots free. */
static uint32_t room(struct jn_upstream_rt *rt, uint32_t server)
{
    uint32_t open = atomic_load(&rt->shared->servers[server].slots->connections);
    uint32_t max = rt->cfg->limits.max_connections;
    return rt->servers[server].nidle + (open < max ? max - open : 0);
}

/* Idle connections belong to one worker but count against the server's
 * limit in all: while requests wait for the server in some other worker,
 * this one does not keep them. */
static bool others_wait(struct jn_upstream_rt *rt, uint32_t server)
{
    return rt->cfg->limits.max_connections > 0 && rt->servers[server].wait_head == NULL &&
           atomic_load(&rt->shared->servers[server].slots->pending) > 0;
}

/* Gives a slot back; a request queued for it, here or in another worker, is woken. */
static void free_slot(struct jn_upstream_rt *rt, uint32_t server)
{
    if (rt->shared == NULL)
        return;
    struct jn_server_state *st = &rt->shared->servers[server];
    if (rt->cfg->limits.max_connections == 0) {
        atomic_fetch_sub_explicit(&st->slots->connections, 1, memory_order_relaxed);
        return;
    }
    /* Sequentially consistent, paired with jn_upwait_start: either this
     * sees the waiter's pending count, or the waiter sees the free slot. */
    atomic_fetch_sub(&st->slots->connections, 1);
    if (atomic_load(&st->slots->pending) == 0)
        return;
    if (rt->servers[server].wait_head != NULL)
        wake_one(rt, server);
    else
        kick_others();
}

static struct jn_upconn *connect_new(struct jn_upstream_rt *rt, uint32_t server, const char **err)
{
    const struct jn_cfg_server *srv = &rt->cfg->servers[server];
    if (!take_slot(rt, server)) {
        *err = limit_msg;
        return NULL;
    }
    int fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = strerror(errno);
        free_slot(rt, server);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct jn_upconn *uc = calloc(1, sizeof(*uc));
    if (uc == NULL) {
        close(fd);
        free_slot(rt, server);
        *err = "out of memory";
        return NULL;
    }
    uc->io = (struct jn_io){ .fd = fd, .cb = idle_event, .data = uc };
    uc->tp = (struct jn_transport){.ops = &jn_transport_plain, .fd = fd};
    jn_timer_init(&uc->timer, idle_timeout, uc);
    uc->up = rt;
    uc->server = server;
    const struct jn_cfg_upstream_tls *tls = rt->cfg->tls;
    if (tls != NULL && jn_tls_client_start(tls->client, tls, srv->address,
                                           &rt->servers[server].tls_session, &uc->tp) != 0) {
        close(fd);
        free(uc);
        free_slot(rt, server);
        *err = "out of memory";
        return NULL;
    }
    int rc = connect(fd, (const struct sockaddr *)&srv->addr, srv->addrlen);
    if (rc == 0) {
        uc->tcp_connected = true;
        uc->connected = !uc->tp.handshaking;
    } else if (errno != EINPROGRESS) {
        /* The owner sees this as a failed connect on its first pass. */
        uc->error = errno;
        uc->can_write = true;
    }
    if (jn_io_add(rt->loop, &uc->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
        jn_tls_conn_free(&uc->tp);
        close(fd);
        free(uc);
        free_slot(rt, server);
        *err = "epoll registration failed";
        return NULL;
    }
    return uc;
}

int jn_upconn_get(struct jn_upstream_rt *rt, uint32_t server, int flags, struct jn_upconn **out,
                  const char **err)
{
    struct jn_upconn *uc = NULL;
    if (!(flags & JN_UPCONN_FRESH))
        uc = take_idle(rt, server, flags & JN_UPCONN_VERIFY);
    if (uc == NULL && rt->cfg->limits.max_connections > 0 && !(flags & JN_UPCONN_FRESH) &&
        rt->shared != NULL &&
        atomic_load(&rt->shared->servers[server].slots->connections) >= rt->cfg->limits.max_connections)
        return JN_ETOOBIG;
    if (uc == NULL)
        uc = connect_new(rt, server, err);
    /* A new connection (a replay, a TCP tunnel) at the limit takes the
     * place of an idle one here, which it cannot use. */
    if (uc == NULL && *err == limit_msg && rt->servers[server].idle != NULL) {
        jn_upconn_close(rt->servers[server].idle);
        uc = connect_new(rt, server, err);
    }
    *out = uc;
    if (uc != NULL)
        return 0;
    return *err == limit_msg ? JN_ETOOBIG : JN_EIO;
}

/* The TLS handshake after the connect, driven by the same readiness edges;
 * the connect deadline bounds both. */
static int upconn_handshake(struct jn_upconn *uc, const char **why)
{
    int rc = jn_tls_client_handshake(&uc->tp, why);
    if (rc == JN_EAGAIN) {
        if (uc->tp.read_wants_write)
            uc->can_write = false;
        else
            uc->can_read = false;
        return 0;
    }
    if (rc != 0)
        return -1;
    uc->connected = true;
    uc->can_write = true; /* the request goes now; a full socket says EAGAIN */
    return 1;
}

int jn_upconn_finish_connect(struct jn_upconn *uc, const char **why)
{
    if (uc->connected)
        return 1;
    if (!uc->can_write && !uc->can_read)
        return 0;
    if (!uc->tcp_connected) {
        int err = uc->error;
        socklen_t len = sizeof(err);
        if (err == 0 && getsockopt(uc->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            *why = err == ECONNREFUSED ? "connection refused" : strerror(err);
            return -1;
        }
        uc->tcp_connected = true;
    }
    if (uc->tp.handshaking)
        return upconn_handshake(uc, why);
    uc->connected = true;
    return 1;
}

ssize_t jn_upconn_read(struct jn_upconn *uc, struct jn_buf *b)
{
    bool drained = false;
    ssize_t n = uc->tp.ops->read(&uc->tp, b, &drained);
    if (drained && !uc->hup)
        uc->can_read = false;
    if (uc->tp.read_wants_write)
        uc->can_write = false; /* TLS: the read goes on at the next writable edge */
    return n;
}

ssize_t jn_upconn_write(struct jn_upconn *uc, struct jn_buf *b)
{
    ssize_t n = uc->tp.ops->write(&uc->tp, b);
    if (n == JN_EAGAIN && uc->tp.write_wants_read)
        uc->can_read = false; /* TLS: the write goes on at the next readable edge */
    else if (n == JN_EAGAIN)
        uc->can_write = false;
    return n;
}

void jn_upconn_release(struct jn_upconn *uc)
{
    struct jn_upstream_rt *rt = uc->up;
    struct jn_upstream_server_rt *s = &rt->servers[uc->server];
    uc->owner = NULL;
    uc->on_event = NULL;
    /* A connection the server closed, or that holds bytes nobody asked
     * for, would poison the next exchange. */
    if (s->nidle >= rt->cfg->keepalive || !rt->usable[uc->server] || uc->hup ||
        (uc->can_read && !still_idle(uc)) || others_wait(rt, uc->server)) {
        jn_upconn_close(uc);
        return;
    }
    uc->reused = true;
    uc->next = s->idle;
    s->idle = uc;
    s->nidle++;
    jn_timer_set(rt->loop, &uc->timer, rt->idle_timeout_ms);
    if (s->wait_head != NULL)
        wake_one(rt, uc->server); /* it takes this idle connection */
}

/* ---- queueing at max_connections ---- */

static void unlink_wait(struct jn_upwait *w)
{
    struct jn_upstream_rt *rt = w->up;
    struct jn_upstream_server_rt *s = &rt->servers[w->server];
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        s->wait_head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        s->wait_tail = w->prev;
    w->next = w->prev = NULL;
    jn_timer_stop(rt->loop, &w->timer);
    atomic_fetch_sub(&rt->shared->servers[w->server].slots->pending, 1);
    rt->nwaiting--;
}

static void wait_ready(struct jn_loop *loop, struct jn_timer *t)
{
    struct jn_upwait *w = t->data;
    w->up = NULL;
    w->waking = false;
    w->ready(w);
}

/* The waiter runs from the loop, not from inside whoever freed the slot
 * (that may be another request half-way through its own work). */
static void wake_one(struct jn_upstream_rt *rt, uint32_t server)
{
    struct jn_upwait *w = rt->servers[server].wait_head;
    unlink_wait(w);
    w->waking = true;
    jn_timer_init(&w->timer, wait_ready, w);
    jn_timer_set(rt->loop, &w->timer, 0);
}

static void wait_expired(struct jn_loop *loop, struct jn_timer *t)
{
    struct jn_upwait *w = t->data;
    unlink_wait(w);
    w->up = NULL;
    w->expired(w);
}

int jn_upwait_start(struct jn_upstream_rt *rt, uint32_t server, struct jn_upwait *w)
{
    const struct jn_cfg_limits *lim = &rt->cfg->limits;
    _Atomic uint32_t *pending = &rt->shared->servers[server].slots->pending;
    uint32_t n = atomic_load(pending);
    do {
        if (n >= lim->max_pending)
            return JN_ETOOBIG;
    } while (!atomic_compare_exchange_weak(pending, &n, n + 1));
    struct jn_upstream_server_rt *s = &rt->servers[server];
    uint64_t now = jn_loop_now(rt->loop);
    /* A request woken that lost the slot to another goes back to the head
     * of the queue, keeping its first deadline: queue_timeout bounds the
     * whole wait. */
    bool again = w->deadline != 0;
    if (!again)
        w->deadline = now + lim->queue_timeout;
    w->up = rt;
    w->server = server;
    w->waking = false;
    if (again) {
        w->prev = NULL;
        w->next = s->wait_head;
        if (s->wait_head != NULL)
            s->wait_head->prev = w;
        else
            s->wait_tail = w;
        s->wait_head = w;
    } else {
        w->next = NULL;
        w->prev = s->wait_tail;
        if (s->wait_tail != NULL)
            s->wait_tail->next = w;
        else
            s->wait_head = w;
        s->wait_tail = w;
    }
    rt->nwaiting++;
    jn_timer_init(&w->timer, wait_expired, w);
    jn_timer_set(rt->loop, &w->timer, w->deadline > now ? w->deadline - now : 0);
    /* A slot freed between the caller's look and the count above was not
     * offered to anyone: look again. Other workers may hold idle
     * connections to the server: ask them to let them go. */
    if (room(rt, server) > 0)
        wake_one(rt, server);
    else
        kick_others();
    return 0;
}

void jn_upwait_cancel(struct jn_upwait *w)
{
    if (w->up == NULL)
        return;
    if (w->waking)
        jn_timer_stop(w->up->loop, &w->timer);
    else
        unlink_wait(w);
    w->up = NULL;
    w->waking = false;
}

void jn_upstream_kick(struct jn_upstream_rt *rt)
{
    if (rt->cfg->limits.max_connections == 0 || rt->shared == NULL)
        return;
    for (uint32_t i = 0; i < rt->cfg->nservers; i++) {
        struct jn_upstream_server_rt *s = &rt->servers[i];
        /* Waking takes no slot yet: wake as many as there is room for. */
        for (uint32_t n = s->wait_head != NULL ? room(rt, i) : 0; n > 0 && s->wait_head; n--)
            wake_one(rt, i);
        if (s->idle != NULL && others_wait(rt, i))
            jn_upconn_close(s->idle); /* its slot goes to a request waiting elsewhere */
    }
}

void jn_upconn_finish(struct jn_upconn *uc, bool reusable)
{
    jn_timer_stop(uc->up->loop, &uc->timer);
    if (reusable)
        jn_upconn_release(uc);
    else
        jn_upconn_close(uc);
}

void jn_upconn_close(struct jn_upconn *uc)
{
    if (uc->closed)
        return;
    if (uc->owner == NULL)
        unlink_idle(uc);
    jn_timer_stop(uc->up->loop, &uc->timer);
    jn_io_del(uc->up->loop, &uc->io);
    jn_tls_conn_shutdown(&uc->tp); /* close_notify, best effort, before the FIN */
    jn_tls_conn_free(&uc->tp);
    close(uc->io.fd);
    free_slot(uc->up, uc->server);
    uc->closed = true;
    uc->owner = NULL;
    uc->next = *uc->up->garbage;
    *uc->up->garbage = uc;
}

void jn_upconn_collect(struct jn_upconn **garbage)
{
    while (*garbage != NULL) {
        struct jn_upconn *uc = *garbage;
        *garbage = uc->next;
        free(uc);
    }
}

/* Connections made under from's settings suit to when they speak the same
 * protocol through the same TLS context (a runtime change shares it; a
 * reload makes new ones, whose verification may differ). */
static bool same_transport(const struct jn_cfg_upstream *a, const struct jn_cfg_upstream *b)
{
    if (a->protocol != b->protocol || (a->tls == NULL) != (b->tls == NULL))
        return false;
    return a->tls == NULL || a->tls->client == b->tls->client;
}

/* Moves src's idle connections (server k of from) to dst (server i of to).
 * Their slots stay counted: both snapshots share the server's slots, since
 * jn_pools_create matches servers as adoption does (upstream name, then
 * jn_cfg_find_server). */
static void move_idle(struct jn_upstream_rt *to, uint32_t i, struct jn_upstream_rt *from,
                      uint32_t k)
{
    struct jn_upstream_server_rt *src = &from->servers[k], *dst = &to->servers[i];
    while (src->idle != NULL && dst->nidle < to->cfg->keepalive) {
        struct jn_upconn *uc = src->idle;
        unlink_idle(uc);
        uc->up = to;
        uc->server = i;
        uc->next = dst->idle;
        dst->idle = uc;
        dst->nidle++;
    }
    if (dst->tls_session == NULL) {
        dst->tls_session = src->tls_session;
        src->tls_session = NULL;
    }
}

void jn_upstream_adopt_idle(struct jn_upstream_rt *to, struct jn_upstream_rt *from)
{
    bool same = same_transport(to->cfg, from->cfg);
    for (size_t k = 0; k < from->cfg->nservers; k++) {
        long i = jn_cfg_find_server(to->cfg, &from->cfg->servers[k].addr);
        if (i < 0)
            continue;
        /* What operators see of the server goes on. */
        to->servers[i].latency_ewma_us = from->servers[k].latency_ewma_us;
        to->servers[i].latency_at_us = from->servers[k].latency_at_us;
        if (same && !to->cfg->servers[i].drain)
            move_idle(to, (uint32_t)i, from, (uint32_t)k);
    }
}
