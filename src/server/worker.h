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
};

struct jn_listener_rt {
    struct jn_io io;
    const char *name;     /* borrowed from the generation that opened it */
    int index;            /* position in cfg->listeners */
    struct jn_worker *worker;
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
    struct jn_listener_rt *listeners; /* owned array */
    size_t nlisteners;
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

#endif
