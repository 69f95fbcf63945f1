/* The health thread: probes, their deadlines and the pass/fail streaks. */
#include "health/check.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "core/loop.h"
#include "health/state.h"
#include "http/h1/h1_parse.h"
#include "net/transport.h"
#include "tls/tls.h"
#include "tls/tls_client.h"

#define PROBE_REQ_MAX 1024
#define PROBE_RESP_MAX 4096 /* a probe reads the response head, not the body */
#define PROBE_HEADERS 64

/* One server's probe: idle between intervals, else one exchange in flight. */
struct probe {
    struct jn_io io;               /* fd -1 between probes */
    struct jn_transport tp;        /* plain, or TLS when the upstream has tls: (tp.ssl owned) */
    struct ssl_session_st *session; /* owned: resumed by the next probe; NULL = none */
    struct jn_timer timer;         /* next probe, or the running probe's deadline */
    struct jn_pool_state *pool;    /* borrowed */
    size_t server;
    bool running;
    bool connected;
    char req[PROBE_REQ_MAX];
    size_t req_len, req_sent;
    char resp[PROBE_RESP_MAX];
    size_t resp_len;
};

static struct jn_loop loop;
static pthread_t thread;
static struct probe *probes; /* owned */
static size_t nprobes;
static bool started;

static const struct jn_cfg_health *health_of(const struct probe *p)
{
    return &p->pool->cfg->health;
}

static void end_probe(struct probe *p, bool pass, const char *why)
{
    const struct jn_cfg_health *h = health_of(p);
    if (p->io.fd >= 0) {
        jn_io_del(&loop, &p->io);
        jn_tls_conn_shutdown(&p->tp);
        jn_tls_conn_free(&p->tp);
        close(p->io.fd);
        p->io.fd = -1;
    }
    p->running = false;
    struct jn_server_state *st = &p->pool->servers[p->server];
    if (pass) {
        atomic_store(&st->check_fails, 0);
        if (atomic_fetch_add(&st->check_passes, 1) + 1 >= h->healthy_threshold)
            jn_pool_set_checked(p->pool, p->server, true, jn_clock_ms());
    } else {
        atomic_store(&st->check_passes, 0);
        uint32_t fails = atomic_fetch_add(&st->check_fails, 1) + 1;
        if (fails == h->unhealthy_threshold)
            jn_log(JN_LOG_INFO, "upstream %s: server %s: health check failed %u times: %s",
                   p->pool->cfg->name, p->pool->cfg->servers[p->server].address, fails, why);
        if (fails >= h->unhealthy_threshold)
            jn_pool_set_checked(p->pool, p->server, false, jn_clock_ms());
    }
    jn_timer_set(&loop, &p->timer, h->interval);
}

static bool status_expected(const struct jn_cfg_health *h, unsigned status)
{
    if (h->nexpect_status == 0)
        return status >= 200 && status < 400;
    for (size_t i = 0; i < h->nexpect_status; i++)
        if (h->expect_status[i] == status)
            return true;
    return false;
}

/* Judges the response once its head is in, parsed by the same strict
 * parser as proxied responses. Returns false while it is incomplete. */
static bool judge(struct probe *p, bool eof)
{
    struct jn_h1_limits lim = { PROBE_RESP_MAX, PROBE_RESP_MAX, PROBE_HEADERS };
    struct jn_h1_header hdrs[PROBE_HEADERS];
    struct jn_h1_scan scan = { 0 };
    struct jn_h1_message m;
    int rc = jn_h1_parse_response(p->resp, p->resp_len, &lim, hdrs, PROBE_HEADERS, &scan, false,
                                  &m);
    if (rc == JN_EAGAIN && !eof && p->resp_len < sizeof(p->resp) - 1)
        return false;
    if (rc < 0) {
        end_probe(p, false, rc == JN_EAGAIN ? "incomplete response" : "invalid response");
        return true;
    }
    char why[64];
    snprintf(why, sizeof(why), "status %u", m.status);
    end_probe(p, status_expected(health_of(p), m.status), why);
    return true;
}

/* The TLS handshake of a check to a tls: upstream, as a worker's (the
 * same verification): a server that fails it fails the check. Returns true
 * once it is over. */
static bool probe_handshake(struct probe *p)
{
    const char *why = NULL;
    int rc = jn_tls_client_handshake(&p->tp, &why);
    if (rc == 0)
        return true;
    if (rc == JN_EAGAIN)
        return false; /* every readiness edge tries again */
    const char *verify = jn_tls_client_verify_error(&p->tp);
    char msg[256];
    snprintf(msg, sizeof(msg), "TLS %s: %s",
             verify != NULL ? "certificate verify failed" : "handshake failed",
             verify != NULL ? verify : why);
    end_probe(p, false, msg);
    return false;
}

/* Connected, and through the TLS handshake when there is one. Returns false
 * while waiting, or when the probe ended. */
static bool probe_connected(struct probe *p)
{
    if (!p->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(p->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            end_probe(p, false, strerror(err));
            return false;
        }
        p->connected = true;
    }
    if (p->tp.handshaking && !probe_handshake(p))
        return false;
    if (health_of(p)->tcp) {
        end_probe(p, true, NULL); /* with tls:, the handshake passed too */
        return false;
    }
    return true;
}

static void probe_io(struct probe *p)
{
    if (!probe_connected(p))
        return;
    if (p->req_sent < p->req_len) {
        struct jn_buf b = {p->req, sizeof(p->req), p->req_sent, p->req_len};
        ssize_t n = p->tp.ops->write(&p->tp, &b);
        p->req_sent = p->req_len - jn_buf_len(&b);
        if (n == JN_EAGAIN)
            return;
        if (n != 0) {
            end_probe(p, false, "send failed");
            return;
        }
    }
    for (;;) {
        if (p->resp_len >= sizeof(p->resp) - 1) {
            judge(p, true); /* a head this large is judged as it is */
            return;
        }
        struct jn_buf b = {p->resp, sizeof(p->resp) - 1, 0, p->resp_len};
        bool drained;
        ssize_t n = p->tp.ops->read(&p->tp, &b, &drained);
        if (n == JN_EAGAIN)
            return;
        if (n < 0) {
            end_probe(p, false, "receive failed");
            return;
        }
        p->resp_len = b.end;
        p->resp[p->resp_len] = '\0';
        if (judge(p, n == 0))
            return;
    }
}

static void probe_event(struct jn_loop *l, struct jn_io *io, uint32_t events)
{
    struct probe *p = io->data;
    if (p->running)
        probe_io(p);
}

static void probe_start(struct probe *p)
{
    const struct jn_cfg_server *srv = &p->pool->cfg->servers[p->server];
    int fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        /* Out of descriptors says nothing about the server: try later. */
        jn_timer_set(&loop, &p->timer, health_of(p)->interval);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p->io = (struct jn_io){ .fd = fd, .cb = probe_event, .data = p };
    p->tp = (struct jn_transport){.ops = &jn_transport_plain, .fd = fd};
    const struct jn_cfg_upstream_tls *tls = p->pool->cfg->tls;
    if (tls != NULL &&
        jn_tls_client_start(tls->client, tls, srv->address, &p->session, &p->tp) != 0) {
        close(fd);
        p->io.fd = -1;
        jn_timer_set(&loop, &p->timer, health_of(p)->interval); /* out of memory: try later */
        return;
    }
    p->running = true;
    p->connected = false;
    p->req_sent = 0;
    p->resp_len = 0;
    jn_timer_set(&loop, &p->timer, health_of(p)->timeout);
    if (connect(fd, (const struct sockaddr *)&srv->addr, srv->addrlen) != 0 &&
        errno != EINPROGRESS) {
        end_probe(p, false, strerror(errno));
        return;
    }
    if (jn_io_add(&loop, &p->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0)
        end_probe(p, false, "epoll registration failed");
}

static void probe_timer(struct jn_loop *l, struct jn_timer *t)
{
    struct probe *p = t->data;
    if (p->running)
        end_probe(p, false, "timeout");
    else
        probe_start(p);
}

static void build_request(struct probe *p)
{
    const struct jn_cfg_health *h = health_of(p);
    const char *host = h->host != NULL ? h->host : p->pool->cfg->servers[p->server].address;
    int n = snprintf(p->req, sizeof(p->req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: junction-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     h->path != NULL ? h->path : "/", host);
    p->req_len = n > 0 ? JN_MIN((size_t)n, sizeof(p->req) - 1) : 0;
}

static void on_wake(struct jn_loop *l)
{
    jn_loop_stop(l); /* the only reason to wake this loop */
}

static void *health_main(void *arg)
{
    jn_loop_run(&loop);
    return NULL;
}

int jn_health_start(const struct jn_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (cfg->upstreams[i].health.enabled)
            n += cfg->upstreams[i].nservers;
    if (n == 0)
        return 0;
    probes = calloc(n, sizeof(*probes));
    if (probes == NULL || jn_loop_init(&loop) != 0) {
        free(probes);
        probes = NULL;
        return JN_ENOMEM;
    }
    loop.on_wake = on_wake;
    loop.now_ms = jn_clock_ms(); /* timers below count from now, before the loop runs */
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        if (!cfg->upstreams[i].health.enabled)
            continue;
        /* Probes of one pool start spread over its interval, not in a burst. */
        uint64_t step = cfg->upstreams[i].health.interval / cfg->upstreams[i].nservers;
        for (size_t k = 0; k < cfg->upstreams[i].nservers; k++) {
            struct probe *p = &probes[nprobes++];
            p->pool = jn_pool_of(cfg, i);
            p->server = k;
            p->io.fd = -1;
            build_request(p);
            jn_timer_init(&p->timer, probe_timer, p);
            jn_timer_set(&loop, &p->timer, k * step);
        }
    }
    if (pthread_create(&thread, NULL, health_main, NULL) != 0) {
        jn_health_stop();
        return JN_EIO;
    }
    started = true;
    return 0;
}

void jn_health_stop(void)
{
    if (probes == NULL)
        return;
    if (started) {
        jn_loop_wake(&loop);
        pthread_join(thread, NULL);
        started = false;
    }
    for (size_t i = 0; i < nprobes; i++) {
        if (probes[i].io.fd >= 0) {
            jn_tls_conn_free(&probes[i].tp);
            close(probes[i].io.fd);
        }
        jn_tls_session_free(probes[i].session);
    }
    free(probes);
    probes = NULL;
    nprobes = 0;
    jn_loop_destroy(&loop);
}
