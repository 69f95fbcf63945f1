/* Per-worker runtime of an upstream pool: the balancer instance, requests in
 * flight per server, and the idle keep-alive connections to each server.
 * Owned by one worker's configuration generation; never shared across threads. */
#ifndef JN_BALANCE_UPSTREAM_H
#define JN_BALANCE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "balance/balance.h"
#include "config/config.h"
#include "core/loop.h"

struct jn_upstream_rt;

/* A connection to an upstream server, busy with one request or idle in a pool. */
struct jn_upconn {
    struct jn_io io;
    struct jn_timer timer;      /* connect, response or idle deadline */
    struct jn_upstream_rt *up;  /* borrowed: the pool it belongs to */
    uint32_t server;            /* index in up->cfg->servers */
    bool connected;
    bool can_read, can_write;   /* edge-triggered readiness not yet consumed */
    bool hup;                   /* the peer closed or failed: read until EOF, no shortcut */
    bool reused;                /* served an earlier request */
    bool closed;                /* fd closed, waiting for deferred free */
    struct jn_upconn *next;     /* idle list link, or deferred-free link */
    void *owner;                /* borrowed: the stream using it; NULL when idle */
    void (*on_event)(struct jn_upconn *uc);   /* the owner's readiness handler */
    void (*on_timeout)(struct jn_upconn *uc); /* the owner's deadline handler */
    int error;                  /* errno of a connect that failed at once */
};

struct jn_upstream_server_rt {
    struct jn_upconn *idle; /* owned: idle connections, most recent first */
    uint32_t nidle;
};

struct jn_upstream_rt {
    const struct jn_cfg_upstream *cfg; /* borrowed from the snapshot */
    const struct jn_lb_ops *lb;
    void *lb_state;                     /* owned */
    struct jn_upstream_server_rt *servers; /* owned, cfg->nservers entries */
    uint32_t *in_flight;                /* owned: requests in flight per server, this worker */
    bool *usable;                       /* owned: per server, false while draining */
    struct jn_loop *loop;               /* borrowed: the worker's loop */
    uint64_t rng;                       /* random state for the balancer, never 0 */
    uint64_t idle_timeout_ms;
    struct jn_upconn **garbage;         /* borrowed: the worker's deferred-free list */
};

/* Sets up rt for cfg in a worker. Returns 0 or JN_ENOMEM. */
int jn_upstream_rt_init(struct jn_upstream_rt *rt, const struct jn_cfg_upstream *cfg,
                        struct jn_loop *loop, uint64_t idle_timeout_ms, struct jn_upconn **garbage);
/* Closes idle connections and frees what rt owns. */
void jn_upstream_rt_destroy(struct jn_upstream_rt *rt);

/* Picks a server; returns its index or -1 when none is usable. hash is the
 * request's hash key for hashing balancers (jn_hash_key), NULL when none. */
int jn_upstream_pick(struct jn_upstream_rt *rt, const uint64_t *hash);

/* Returns an idle connection to server, or a new connection being
 * established (connected == false); NULL with *err set when the socket could
 * not even be created. Idle connections that the server closed are dropped
 * as soon as their close event arrives; with verify, a non-blocking peek also
 * checks the one handed out (for requests that could not be replayed if it
 * turned out dead). */
struct jn_upconn *jn_upconn_get(struct jn_upstream_rt *rt, uint32_t server, bool verify,
                                const char **err);
/* A new connection, never a pooled one (for a retry). */
struct jn_upconn *jn_upconn_get_fresh(struct jn_upstream_rt *rt, uint32_t server, const char **err);
/* Puts a connection whose exchange completed cleanly back into its pool,
 * or closes it when the pool is full. */
void jn_upconn_release(struct jn_upconn *uc);
/* Closes a connection (deferred free: safe inside its own event handler). */
void jn_upconn_close(struct jn_upconn *uc);
/* Frees closed connections; called by the worker after each batch of events. */
void jn_upconn_collect(struct jn_upconn **garbage);

#endif
