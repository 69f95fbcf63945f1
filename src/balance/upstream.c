/* Per-worker upstream pools: server choice and keep-alive connection reuse. */
#include "balance/upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"

int jn_upstream_rt_init(struct jn_upstream_rt *rt, const struct jn_cfg_upstream *cfg,
                        struct jn_loop *loop, uint64_t idle_timeout_ms, struct jn_upconn **garbage)
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
    rt->lb_state = rt->lb->create(cfg);
    if (rt->servers == NULL || rt->in_flight == NULL || rt->usable == NULL ||
        rt->lb_state == NULL) {
        jn_upstream_rt_destroy(rt);
        return JN_ENOMEM;
    }
    for (size_t i = 0; i < cfg->nservers; i++)
        rt->usable[i] = !cfg->servers[i].drain;
    return 0;
}

void jn_upstream_rt_destroy(struct jn_upstream_rt *rt)
{
    for (size_t i = 0; rt->servers != NULL && i < rt->cfg->nservers; i++) {
        /* Deferred, like every close: an event for one of them may still
         * be waiting in the current batch. */
        while (rt->servers[i].idle != NULL)
            jn_upconn_close(rt->servers[i].idle);
    }
    if (rt->lb_state != NULL)
        rt->lb->destroy(rt->lb_state);
    free(rt->servers);
    free(rt->in_flight);
    free(rt->usable);
    rt->usable = NULL;
    rt->servers = NULL;
    rt->in_flight = NULL;
    rt->lb_state = NULL;
}

int jn_upstream_pick(struct jn_upstream_rt *rt, const uint64_t *hash)
{
    struct jn_lb_ctx ctx = { .in_flight = rt->in_flight, .usable = rt->usable, .rng = &rt->rng,
                             .hash = hash != NULL ? *hash : 0, .has_hash = hash != NULL };
    return rt->lb->pick(rt->lb_state, &ctx);
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

static struct jn_upconn *connect_new(struct jn_upstream_rt *rt, uint32_t server, const char **err)
{
    const struct jn_cfg_server *srv = &rt->cfg->servers[server];
    int fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = strerror(errno);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct jn_upconn *uc = calloc(1, sizeof(*uc));
    if (uc == NULL) {
        close(fd);
        *err = "out of memory";
        return NULL;
    }
    uc->io = (struct jn_io){ .fd = fd, .cb = idle_event, .data = uc };
    jn_timer_init(&uc->timer, idle_timeout, uc);
    uc->up = rt;
    uc->server = server;
    int rc = connect(fd, (const struct sockaddr *)&srv->addr, srv->addrlen);
    if (rc == 0)
        uc->connected = true;
    else if (errno != EINPROGRESS) {
        /* The owner sees this as a failed connect on its first pass. */
        uc->error = errno;
        uc->can_write = true;
    }
    if (jn_io_add(rt->loop, &uc->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
        close(fd);
        free(uc);
        *err = "epoll registration failed";
        return NULL;
    }
    return uc;
}

struct jn_upconn *jn_upconn_get(struct jn_upstream_rt *rt, uint32_t server, bool verify,
                                const char **err)
{
    struct jn_upconn *uc = take_idle(rt, server, verify);
    if (uc == NULL)
        uc = connect_new(rt, server, err);
    return uc;
}

struct jn_upconn *jn_upconn_get_fresh(struct jn_upstream_rt *rt, uint32_t server, const char **err)
{
    return connect_new(rt, server, err);
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
        (uc->can_read && !still_idle(uc))) {
        jn_upconn_close(uc);
        return;
    }
    uc->reused = true;
    uc->next = s->idle;
    s->idle = uc;
    s->nidle++;
    jn_timer_set(rt->loop, &uc->timer, rt->idle_timeout_ms);
}

void jn_upconn_close(struct jn_upconn *uc)
{
    if (uc->closed)
        return;
    if (uc->owner == NULL)
        unlink_idle(uc);
    jn_timer_stop(uc->up->loop, &uc->timer);
    jn_io_del(uc->up->loop, &uc->io);
    close(uc->io.fd);
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
