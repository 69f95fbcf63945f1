/* Worker threads: start-up, the accept path, configuration generations and
 * graceful shutdown. */
#include "server/worker.h"
#include "server/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "http/access_log.h"
#include "http/h1/h1_server.h"
#include "http/h2/h2_client.h"
#include "http/h2/h2_server.h"
#include "http/proxy.h"
#include "net/listener.h"

static struct jn_worker *workers;
static uint32_t nworkers;
static _Atomic uint32_t running;
static _Atomic int phase; /* 0 run, 1 drain, 2 stop now */

static struct jn_gen *gen_new(struct jn_worker *w, struct jn_config *cfg)
{
    struct jn_gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->ups = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*g->ups));
    if (g->ups == NULL) {
        free(g);
        return NULL;
    }
    g->worker = w;
    g->users = 1;
    jn_config_ref(cfg);
    g->cfg = cfg;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        if (jn_upstream_rt_init(&g->ups[i], &cfg->upstreams[i], jn_pool_of(cfg, i), &w->loop,
                                cfg->timeouts.upstream_idle, &w->upconn_garbage) != 0) {
            g->users = 0;
            jn_gen_release(g);
            return NULL;
        }
    }
    return g;
}

static void gen_destroy(struct jn_gen *g)
{
    for (size_t i = 0; i < g->cfg->nupstreams; i++)
        if (g->ups[i].cfg != NULL)
            jn_upstream_rt_destroy(&g->ups[i]);
    free(g->ups);
    jn_config_unref(g->cfg);
    free(g);
}

/* Makes g the worker's current generation (on the worker's thread). */
static void gen_link(struct jn_worker *w, struct jn_gen *g)
{
    g->live = true;
    g->prev = NULL;
    g->next = w->gens;
    if (w->gens != NULL)
        w->gens->prev = g;
    w->gens = g;
    w->gen = g;
}

void jn_gen_release(struct jn_gen *g)
{
    if (g->users > 0 && --g->users > 0)
        return;
    if (!g->live) { /* never put in service */
        gen_destroy(g);
        return;
    }
    struct jn_worker *w = g->worker;
    if (g->prev != NULL)
        g->prev->next = g->next;
    else
        w->gens = g->next;
    if (g->next != NULL)
        g->next->prev = g->prev;
    g->live = false;
    g->next = w->gen_garbage;
    w->gen_garbage = g;
}

static void gens_collect(struct jn_worker *w)
{
    while (w->gen_garbage != NULL) {
        struct jn_gen *g = w->gen_garbage;
        w->gen_garbage = g->next;
        gen_destroy(g);
    }
}

static void accept_event(struct jn_loop *loop, struct jn_io *io, uint32_t events)
{
    struct jn_listener_rt *l = io->data;
    struct jn_worker *w = l->worker;
    if (io->fd < 0) /* retired by a reload earlier in this batch */
        return;
    for (int i = 0; i < 64 && !w->draining; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            jn_log(JN_LOG_ERR, "listener %s: accept failed: %s", l->name, strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (w->gen->cfg->listeners[l->index].protocol == JN_PROTO_TCP)
            jn_tcp_accept(w, l, fd, &peer);
        else
            jn_client_accept(w, l, fd, &peer);
    }
    /* More may be pending: edge-triggered, so come back on the next pass. */
    jn_loop_wake(loop);
}

static void listener_close(struct jn_worker *w, struct jn_listener_rt *l)
{
    if (l->io.fd < 0)
        return;
    jn_io_del(&w->loop, &l->io);
    close(l->io.fd);
    l->io.fd = -1;
}

static void close_listeners(struct jn_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i] != NULL)
            listener_close(w, w->listeners[i]);
}

static void listener_free(struct jn_listener_rt *l)
{
    if (l->io.fd >= 0)
        close(l->io.fd);
    free(l->name);
    free(l);
}

/* A listener of cfg for w with a socket of its own, not yet watched.
 * Returns NULL with err filled on failure. */
static struct jn_listener_rt *listener_open(struct jn_worker *w, const struct jn_config *cfg,
                                            size_t i, char *err, size_t errlen)
{
    const struct jn_cfg_listener *lc = &cfg->listeners[i];
    struct jn_listener_rt *l = calloc(1, sizeof(*l));
    char *name = strdup(lc->name);
    if (l == NULL || name == NULL) {
        free(l);
        free(name);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *why = NULL;
    int fd = jn_listen(&lc->addr, lc->addrlen, &why);
    if (fd < 0) {
        snprintf(err, errlen, "listener %s: cannot listen on %s: %s", lc->name, lc->address, why);
        free(name);
        free(l);
        return NULL;
    }
    *l = (struct jn_listener_rt){ .io = { fd, accept_event, l }, .name = name, .index = (int)i,
                                  .addr = lc->addr, .addrlen = lc->addrlen, .worker = w };
    return l;
}

static void on_wake(struct jn_loop *loop)
{
    struct jn_worker *w = loop->data;
    int p = atomic_load(&phase);
    if (p >= 1 && !w->draining) {
        w->draining = true;
        close_listeners(w);
        jn_clients_drain(w);
    }
    /* A tunnel has no request boundary to stop at: it runs on through the
     * drain and is cut at the forced stage, like HAProxy's hard-stop. */
    if (p >= 2) {
        jn_clients_close_all(w);
        jn_tcp_close_all(w);
    }
    jn_tcp_resume(w);
    /* A connection slot freed elsewhere, or a request waits elsewhere for
     * a server this worker holds idle connections to; requests queued in
     * an old generation wait as well. */
    for (struct jn_gen *g = w->gens; g != NULL; g = g->next)
        for (size_t i = 0; i < g->cfg->nupstreams; i++)
            jn_upstream_kick(&g->ups[i]);
    /* Accept may have stopped early to keep the loop fair. */
    for (size_t i = 0; !w->draining && i < w->nlisteners; i++)
        accept_event(loop, &w->listeners[i]->io, EPOLLIN);
}

static void on_idle(struct jn_loop *loop)
{
    struct jn_worker *w = loop->data;
    jn_h2_run_deferred(w); /* first: it may close connections, which collect frees */
    jn_clients_collect(w);
    jn_tcp_collect(w);
    gens_collect(w); /* before upconn_collect: it closes idle connections */
    jn_upconn_collect(&w->upconn_garbage);
    jn_access_log_flush(w);
    if (w->draining && w->nclients == 0 && w->tcp.ntunnels == 0)
        jn_loop_stop(loop);
}

static void *worker_main(void *arg)
{
    struct jn_worker *w = arg;
    jn_loop_run(&w->loop);
    jn_clients_close_all(w);
    jn_tcp_close_all(w);
    jn_clients_collect(w);
    jn_tcp_collect(w);
    gens_collect(w);
    jn_upconn_collect(&w->upconn_garbage);
    jn_access_log_flush(w);
    atomic_fetch_sub(&running, 1);
    return NULL;
}

static int open_access_log(struct jn_config *cfg, int *fd)
{
    const char *p = cfg->access_log.path;
    if (strcmp(p, "none") == 0)
        *fd = -1;
    else if (strcmp(p, "stdout") == 0)
        *fd = 1;
    else if (strcmp(p, "stderr") == 0)
        *fd = 2;
    else if ((*fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0) {
        jn_log(JN_LOG_ERR, "access log %s: %s", p, strerror(errno));
        return JN_EIO;
    }
    return 0;
}

static int worker_init(struct jn_worker *w, int id, struct jn_config *cfg, int access_fd)
{
    w->id = id;
    w->access_fd = access_fd;
    w->access_json = cfg->access_log.format == JN_LOGFMT_JSON;
    jn_buf_pool_init(&w->bufs, 256);
    if (jn_loop_init(&w->loop) != 0)
        return JN_EIO;
    w->loop.data = w;
    w->loop.on_wake = on_wake;
    w->loop.on_idle = on_idle;
    struct jn_gen *g = gen_new(w, cfg);
    if (g != NULL)
        gen_link(w, g);
    w->listeners = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*w->listeners));
    if (w->gen == NULL || w->listeners == NULL)
        return JN_ENOMEM;
    w->nlisteners = cfg->nlisteners;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        char err[256];
        w->listeners[i] = listener_open(w, cfg, i, err, sizeof(err));
        if (w->listeners[i] == NULL) {
            jn_log(JN_LOG_ERR, "%s", err);
            return JN_EIO;
        }
        if (jn_io_add(&w->loop, &w->listeners[i]->io, EPOLLIN) != 0)
            return JN_EIO;
    }
    return 0;
}

static void worker_destroy(struct jn_worker *w)
{
    close_listeners(w);
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i] != NULL)
            listener_free(w->listeners[i]);
    free(w->listeners);
    while (w->retired != NULL) {
        struct jn_listener_rt *next = w->retired->next_retired;
        listener_free(w->retired);
        w->retired = next;
    }
    if (w->gen != NULL)
        jn_gen_release(w->gen);
    gens_collect(w);
    jn_upconn_collect(&w->upconn_garbage);
    jn_tcp_worker_destroy(w);
    jn_stream_cache_destroy(w);
    jn_buf_release(&w->bufs, &w->access_buf);
    jn_buf_pool_destroy(&w->bufs);
    jn_loop_destroy(&w->loop);
}

static void wake_every_worker(void)
{
    for (uint32_t i = 0; i < nworkers; i++)
        jn_loop_wake(&workers[i].loop);
}

int jn_workers_start(struct jn_config *cfg, uint32_t n)
{
    int access_fd;
    if (open_access_log(cfg, &access_fd) != 0)
        return JN_EIO;
    workers = calloc(n, sizeof(*workers));
    if (workers == NULL)
        return JN_ENOMEM;
    nworkers = n;
    /* Every socket is opened before any thread starts: a listener that
     * cannot be opened stops start-up with nothing half running. */
    for (uint32_t i = 0; i < n; i++) {
        if (worker_init(&workers[i], (int)i, cfg, access_fd) != 0) {
            for (uint32_t j = 0; j <= i; j++)
                worker_destroy(&workers[j]);
            free(workers);
            workers = NULL;
            return JN_EIO;
        }
    }
    jn_upstream_set_kick_hook(wake_every_worker);
    jn_h2up_init();
    for (uint32_t i = 0; i < n; i++) {
        atomic_fetch_add(&running, 1);
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            atomic_fetch_sub(&running, 1);
            jn_log(JN_LOG_ERR, "cannot start worker thread %u", i);
            nworkers = i;
            jn_workers_shutdown();
            return JN_EIO;
        }
    }
    return 0;
}

static void wake_all(int p)
{
    atomic_store(&phase, p);
    for (uint32_t i = 0; i < nworkers; i++)
        jn_loop_wake(&workers[i].loop);
}

void jn_workers_shutdown(void)
{
    if (workers == NULL)
        return;
    uint64_t drain_ms = workers[0].gen->cfg->timeouts.drain;
    wake_all(1);
    uint64_t deadline = jn_clock_ms() + drain_ms;
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    while (atomic_load(&running) > 0 && jn_clock_ms() < deadline)
        nanosleep(&pause, NULL);
    if (atomic_load(&running) > 0) {
        jn_log(JN_LOG_WARN, "drain timeout: closing remaining connections");
        wake_all(2);
    }
    int access_fd = workers[0].access_fd;
    for (uint32_t i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        worker_destroy(&workers[i]);
    }
    if (access_fd > 2)
        close(access_fd);
    free(workers);
    workers = NULL;
}

/* One jn_workers_run_each call on one worker: fn runs on its thread, the
 * caller waits for done. */
struct run_each {
    struct jn_task task;
    struct jn_worker *w;
    void (*fn)(struct jn_worker *w, void *arg);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void run_each_done(struct jn_task *t)
{
    struct run_each *r = (struct run_each *)t;
    r->fn(r->w, r->arg);
    pthread_mutex_lock(&r->lock);
    r->done = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void jn_workers_run_each(void (*fn)(struct jn_worker *w, void *arg), void *arg)
{
    for (uint32_t i = 0; i < nworkers && atomic_load(&phase) == 0; i++) {
        struct run_each r = { .task = { .done = run_each_done, .loop = &workers[i].loop },
                              .w = &workers[i], .fn = fn, .arg = arg };
        pthread_mutex_init(&r.lock, NULL);
        pthread_cond_init(&r.cond, NULL);
        jn_loop_post(&workers[i].loop, &r.task);
        pthread_mutex_lock(&r.lock);
        while (!r.done)
            pthread_cond_wait(&r.cond, &r.lock);
        pthread_mutex_unlock(&r.lock);
        pthread_cond_destroy(&r.cond);
        pthread_mutex_destroy(&r.lock);
    }
}

/* ---- reload: putting a new snapshot in service ---- */

/* What one worker switches to, made ready by jn_workers_swap on its own
 * thread so that the worker's part cannot fail. */
struct swap {
    struct jn_task task;
    struct jn_worker *w;
    struct jn_gen *gen;                 /* owned until switched to */
    struct jn_listener_rt **listeners;  /* owned until switched to: kept and fresh ones */
    char **names;                       /* owned: new name of each kept listener (NULL: fresh) */
    size_t n;
    int access_fd;
    bool access_json;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    uint32_t *pending;                  /* workers not yet switched */
};

static struct jn_listener_rt *find_listener(struct jn_worker *w, const struct jn_cfg_listener *lc)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct jn_listener_rt *l = w->listeners[i];
        if (l != NULL && l->io.fd >= 0 && jn_sockaddr_equal(&l->addr, &lc->addr))
            return l;
    }
    return NULL;
}

static bool is_kept(const struct swap *sw, const struct jn_listener_rt *l)
{
    for (size_t i = 0; i < sw->n; i++)
        if (sw->listeners[i] == l)
            return true;
    return false;
}

/* A connection on a listener that is gone ends after its request, as in a
 * graceful stop. */
static void drain_clients_of(struct jn_worker *w, const struct jn_listener_rt *l)
{
    struct jn_client *c = w->clients;
    while (c != NULL) {
        struct jn_client *next = c->next;
        if (c->listener == l)
            jn_client_drain(c);
        c = next;
    }
}

static void swap_free(struct swap *sw)
{
    for (size_t i = 0; sw->names != NULL && sw->listeners != NULL && i < sw->n; i++) {
        if (sw->names[i] != NULL)
            free(sw->names[i]);
        else if (sw->listeners[i] != NULL)
            listener_free(sw->listeners[i]); /* fresh: never watched */
    }
    free(sw->names);
    free(sw->listeners);
    if (sw->gen != NULL) {
        sw->gen->users = 1;
        jn_gen_release(sw->gen);
    }
}

/* Upstream connections idle in the old snapshot serve the new one. */
static void adopt_idle(struct jn_gen *to, struct jn_gen *from)
{
    for (size_t i = 0; i < to->cfg->nupstreams; i++) {
        const struct jn_cfg_upstream *up = jn_cfg_find_upstream(from->cfg, to->cfg->upstreams[i].name);
        if (up != NULL)
            jn_upstream_adopt_idle(&to->ups[i], &from->ups[up->index]);
    }
}

static void swap_done(struct jn_task *t)
{
    struct swap *sw = (struct swap *)t;
    struct jn_worker *w = sw->w;
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct jn_listener_rt *l = w->listeners[i];
        if (l == NULL || is_kept(sw, l))
            continue;
        listener_close(w, l);
        l->index = -1;
        l->next_retired = w->retired;
        w->retired = l;
        drain_clients_of(w, l);
    }
    for (size_t i = 0; i < sw->n; i++) {
        struct jn_listener_rt *l = sw->listeners[i];
        l->index = (int)i;
        if (sw->names[i] != NULL) { /* kept */
            free(l->name);
            l->name = sw->names[i];
            sw->names[i] = NULL;
        } else if (jn_io_add(&w->loop, &l->io, EPOLLIN) != 0) {
            jn_log(JN_LOG_ERR, "listener %s: cannot watch its socket: %s", l->name,
                   strerror(errno));
        }
    }
    free(w->listeners);
    w->listeners = sw->listeners;
    w->nlisteners = sw->n;
    sw->listeners = NULL;
    sw->n = 0;
    if (sw->access_fd != w->access_fd) {
        jn_access_log_flush(w); /* lines of the old file go to it */
        w->access_fd = sw->access_fd;
    }
    w->access_json = sw->access_json;
    struct jn_gen *old = w->gen;
    gen_link(w, sw->gen);
    sw->gen = NULL;
    adopt_idle(w->gen, old);
    jn_gen_release(old);
    jn_loop_wake(&w->loop); /* accepts what waits on fresh sockets */
    pthread_mutex_lock(sw->lock);
    if (--*sw->pending == 0)
        pthread_cond_signal(sw->cond);
    pthread_mutex_unlock(sw->lock);
}

/* Makes w's switch ready: the generation, kept sockets and fresh ones. */
static int swap_prepare(struct swap *sw, struct jn_worker *w, struct jn_config *cfg, char *err,
                        size_t errlen)
{
    sw->w = w;
    sw->n = cfg->nlisteners;
    sw->listeners = calloc(sw->n ? sw->n : 1, sizeof(*sw->listeners));
    sw->names = calloc(sw->n ? sw->n : 1, sizeof(*sw->names));
    sw->gen = gen_new(w, cfg);
    if (sw->listeners == NULL || sw->names == NULL || sw->gen == NULL) {
        snprintf(err, errlen, "out of memory");
        return JN_ENOMEM;
    }
    for (size_t i = 0; i < sw->n; i++) {
        const struct jn_cfg_listener *lc = &cfg->listeners[i];
        struct jn_listener_rt *kept = find_listener(w, lc);
        if (kept != NULL && !is_kept(sw, kept)) {
            sw->listeners[i] = kept;
            if ((sw->names[i] = strdup(lc->name)) == NULL) {
                sw->listeners[i] = NULL;
                snprintf(err, errlen, "out of memory");
                return JN_ENOMEM;
            }
        } else if ((sw->listeners[i] = listener_open(w, cfg, i, err, errlen)) == NULL) {
            return JN_EIO;
        }
    }
    return 0;
}

int jn_workers_swap(struct jn_config *cfg, char *err, size_t errlen)
{
    if (nworkers == 0) /* none started (tools, the admin API's fuzz target) */
        return 0;
    struct swap *sw = calloc(nworkers, sizeof(*sw));
    if (sw == NULL) {
        snprintf(err, errlen, "out of memory");
        return JN_ENOMEM;
    }
    int rc = 0;
    const struct jn_config *old = workers[0].gen->cfg;
    int access_fd = workers[0].access_fd;
    bool reopen = strcmp(old->access_log.path, cfg->access_log.path) != 0;
    if (reopen && open_access_log(cfg, &access_fd) != 0) {
        snprintf(err, errlen, "access log %s: %s", cfg->access_log.path, strerror(errno));
        free(sw);
        return JN_EIO;
    }
    for (uint32_t i = 0; i < nworkers && rc == 0; i++)
        rc = swap_prepare(&sw[i], &workers[i], cfg, err, errlen);
    if (rc != 0) {
        for (uint32_t i = 0; i < nworkers; i++)
            swap_free(&sw[i]);
        if (reopen && access_fd > 2)
            close(access_fd);
        free(sw);
        return rc;
    }
    int old_fd = workers[0].access_fd;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    uint32_t pending = nworkers;
    for (uint32_t i = 0; i < nworkers; i++) {
        sw[i].task = (struct jn_task){ .done = swap_done, .loop = &workers[i].loop };
        sw[i].access_fd = access_fd;
        sw[i].access_json = cfg->access_log.format == JN_LOGFMT_JSON;
        sw[i].lock = &lock;
        sw[i].cond = &cond;
        sw[i].pending = &pending;
        jn_loop_post(&workers[i].loop, &sw[i].task);
    }
    pthread_mutex_lock(&lock);
    while (pending > 0)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (uint32_t i = 0; i < nworkers; i++)
        swap_free(&sw[i]);
    free(sw);
    if (reopen && old_fd > 2)
        close(old_fd); /* every worker has written its last line to it */
    return 0;
}

size_t jn_workers_listen_fds(int *out, size_t max)
{
    size_t n = 0;
    for (uint32_t i = 0; i < nworkers; i++)
        for (size_t k = 0; k < workers[i].nlisteners && n < max; k++)
            if (workers[i].listeners[k] != NULL && workers[i].listeners[k]->io.fd >= 0)
                out[n++] = workers[i].listeners[k]->io.fd;
    return n;
}
