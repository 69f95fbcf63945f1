/* A worker thread: its own event loop, its own SO_REUSEPORT listening sockets,
 * its own buffer pool and upstream pools, and its own view of the current
 * configuration generation. Nothing on the request path is shared. */
#ifndef JN_SERVER_WORKER_H
#define JN_SERVER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "balance/upstream.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/loop.h"
#include "net/tcp_proxy.h"

struct jn_client;
struct jn_stream;

/* One worker's view of one configuration snapshot. Requests hold it, so an
 * old generation lives until its last request ends, then is freed. */
struct jn_gen {
    struct jn_config *cfg;         /* one reference held */
    struct jn_upstream_rt *ups;    /* owned: one per cfg->upstreams */
    uint32_t users;                /* streams using it, plus 1 while current */
    struct jn_worker *worker;      /* borrowed */
    /* The worker's live generations (current and old ones still in use),
     * then, once unused, its garbage: freed after the event batch, since
     * the last user may end inside an event of something the generation
     * owns (an HTTP/2 upstream session driving its streams). */
    struct jn_gen *next, *prev;
    bool live;                     /* on the worker's live list */
};

/* One worker's listening socket. It lives as long as its worker, through
 * reloads: a listener the new configuration keeps (same address) keeps its
 * socket and gets the new index and name; one it drops is closed and
 * retired (its connections drain), never freed before the worker, since
 * connections point to it. */
struct jn_listener_rt {
    struct jn_io io;      /* fd -1 once closed */
    char *name;           /* owned: the listener's name in the current configuration */
    int index;            /* position in w->gen->cfg->listeners; -1 once retired */
    struct sockaddr_storage addr; /* what the socket is bound to: a reload's match key */
    socklen_t addrlen;
    struct jn_worker *worker;
    struct jn_listener_rt *next_retired;
};

/* Per-thread counters, summed by readers (admin API later). */
struct jn_worker_stats {
    uint64_t requests;
    uint64_t connections;
    uint64_t errors_4xx, errors_5xx;
};

struct jn_worker {
    int id;
    pthread_t thread;
    struct jn_loop loop;
    struct jn_buf_pool bufs;
    struct jn_gen *gen;            /* current generation */
    struct jn_gen *gens;           /* live generations, newest first (gen among them) */
    struct jn_gen *gen_garbage;    /* unused generations, freed after the event batch */
    struct jn_listener_rt **listeners; /* owned: one per cfg listener, in its order */
    size_t nlisteners;
    struct jn_listener_rt *retired;    /* owned: listeners a reload closed */
    struct jn_client *clients;     /* open client connections (for draining) */
    struct jn_client *client_garbage; /* closed, freed after the event batch */
    struct jn_client *h2_deferred; /* HTTP/2 connections to drive once the batch is over */
    struct jn_upconn *upconn_garbage;
    size_t nclients;
    struct jn_tcp_worker tcp;      /* tunnels of tcp listeners, cached pipes */
    struct jn_stream *stream_free; /* owned: streams kept for reuse */
    size_t nstream_free;
    bool draining;
    int access_fd;                 /* -1 = none */
    bool access_json;
    struct jn_buf access_buf;      /* lines waiting for one write per batch */
    struct jn_worker_stats stats;
    uint32_t rng;                  /* per-thread request-id generator state */
    uint64_t rng_seq;
};

/* Opens listeners and starts n workers on cfg. Returns 0 or a JN_E* code
 * (nothing left running on error). */
int jn_workers_start(struct jn_config *cfg, uint32_t n);
/* Asks every worker to stop accepting and drain; waits up to the drain
 * timeout, then stops them. */
void jn_workers_shutdown(void);

void jn_gen_release(struct jn_gen *gen);

/* Puts cfg in service on every worker (a reload or a runtime change):
 * listening sockets whose address stays are kept as they are, new ones are
 * opened, dropped ones closed (their connections finish their request and
 * close); new requests use cfg, those in flight finish on their snapshot.
 * Every socket is opened first: on failure nothing changed, and err says why.
 * Returns when every worker has switched. Returns 0 or JN_EIO/JN_ENOMEM. */
int jn_workers_swap(struct jn_config *cfg, char *err, size_t errlen);

/* Writes up to max of the workers' listening fds to out (a binary upgrade
 * hands them over); returns how many. Not during a swap (the runtime's
 * lock: jn_runtime_listen_fds). */
size_t jn_workers_listen_fds(int *out, size_t max);

#endif
