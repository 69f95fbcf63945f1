/* Per-worker runtime of an upstream pool: the balancer instance, requests in
 * flight per server, and the idle keep-alive connections to each server.
 * Owned by one worker's configuration generation; never shared across threads. */
#ifndef JN_BALANCE_UPSTREAM_H
#define JN_BALANCE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "balance/balance.h"
#include "balance/sticky.h"
#include "config/config.h"
#include "core/loop.h"
#include "health/state.h"
#include "net/transport.h"

struct jn_upstream_rt;

/* A connection to an upstream server, busy with one request or idle in a pool. */
struct jn_h2up_sess;

struct jn_upconn {
    struct jn_io io;
    struct jn_transport tp;     /* plain, or TLS when the upstream has tls: (tp.ssl owned) */
    struct jn_timer timer;      /* connect, response or idle deadline */
    struct jn_upstream_rt *up;  /* borrowed: the pool it belongs to */
    uint32_t server;            /* index in up->cfg->servers */
    bool connected;             /* ready for the request: TCP connected, TLS handshake over */
    bool tcp_connected;         /* TCP connected (the TLS handshake may still run) */
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

/* A request waiting for a connection to a server at its max_connections
 * (limits:). Embedded in its owner; ready() runs when a slot may be free,
 * expired() when queue_timeout passes first. */
struct jn_upwait {
    struct jn_upwait *next, *prev;
    struct jn_timer timer;
    struct jn_upstream_rt *up;   /* borrowed; NULL when neither queued nor waking */
    uint32_t server;
    bool waking;                 /* out of the queue, ready() about to run */
    uint64_t deadline;           /* ms (loop clock) the wait ends; 0 before the first wait */
    void (*ready)(struct jn_upwait *w);
    void (*expired)(struct jn_upwait *w);
};

struct jn_upstream_server_rt {
    struct jn_upconn *idle; /* owned: idle connections, most recent first */
    struct ssl_session_st *tls_session; /* owned: the server's last TLS session, or NULL */
    uint32_t nidle;
    struct jn_upwait *wait_head, *wait_tail; /* borrowed: queued requests, oldest first */
    struct jn_h2up_sess *h2; /* owned: HTTP/2 sessions to the server (http/h2/h2_client.c) */
    /* Response-head latency as this worker saw it, a time-decayed moving
     * average for operators (admin API); latency_at_us 0 = no sample yet. */
    double latency_ewma_us;
    uint64_t latency_at_us;
};

struct jn_upstream_rt {
    const struct jn_cfg_upstream *cfg; /* borrowed from the snapshot */
    const struct jn_lb_ops *lb;
    void *lb_state;                     /* owned */
    struct jn_upstream_server_rt *servers; /* owned, cfg->nservers entries */
    uint32_t *in_flight;                /* owned: requests in flight per server, this worker */
    bool *usable;                       /* owned: per server: not draining, down or ejected */
    uint32_t *weight;                   /* owned: per server, weight x 10 scaled by slow start */
    struct jn_pool_state *shared;       /* borrowed: process-wide server state */
    uint64_t seen_version;              /* shared->version when usable/weight were computed */
    uint64_t valid_until;               /* ms: usable/weight must be recomputed from then */
    struct jn_loop *loop;               /* borrowed: the worker's loop */
    uint64_t rng;                       /* random state for the balancer, never 0 */
    uint64_t idle_timeout_ms;
    struct jn_upconn **garbage;         /* borrowed: the worker's deferred-free list */
    uint32_t nwaiting;                  /* requests queued on any server, this worker */
    uint32_t uncounted;                 /* requests not yet added to the shared budget */
    char (*sticky)[JN_STICKY_TOKEN_LEN + 1]; /* owned: cookie value per server; NULL = off */
};

/* Frees the HTTP/2 sessions of a server, when the pool goes (set by the
 * HTTP/2 client, which the balance layer does not know). */
void jn_upstream_set_h2_free_hook(void (*hook)(struct jn_upstream_server_rt *s));

/* Sets up rt for cfg in a worker. Returns 0 or JN_ENOMEM. */
int jn_upstream_rt_init(struct jn_upstream_rt *rt, const struct jn_cfg_upstream *cfg,
                        struct jn_loop *loop, uint64_t idle_timeout_ms, struct jn_upconn **garbage);
/* Closes idle connections and frees what rt owns. */
void jn_upstream_rt_destroy(struct jn_upstream_rt *rt);

/* Picks a server; returns its index or -1 when none is usable. hash is the
 * request's hash key for hashing balancers (jn_hash_key), NULL when none. */
int jn_upstream_pick(struct jn_upstream_rt *rt, const uint64_t *hash);

/* True when server may take a request now (sticky sessions ask). */
bool jn_upstream_usable(struct jn_upstream_rt *rt, uint32_t server);

/* Like jn_upstream_pick, but never one of the ntried servers in tried (a
 * retry); returns -1 when no other server is usable. */
int jn_upstream_pick_other(struct jn_upstream_rt *rt, const uint64_t *hash, const int *tried,
                           size_t ntried);

/* Counts a request for the retry budget. Requests are added to the shared
 * count in batches, so the request path does not touch a shared cache line
 * each time. */
void jn_upstream_count_request(struct jn_upstream_rt *rt);
/* True when the retry budget allows one more retry (then counted). */
bool jn_upstream_retry_allowed(struct jn_upstream_rt *rt);

/* Records the response-head latency of one exchange with server (now_us
 * from jn_clock_us): the balancer hears it when it learns from latency
 * (ewma), and the server's moving average for operators moves. */
void jn_upstream_observe(struct jn_upstream_rt *rt, uint32_t server, uint64_t latency_us,
                         uint64_t now_us);

/* Records how an exchange with server ended (passive health). */
void jn_upstream_report(struct jn_upstream_rt *rt, uint32_t server, enum jn_outcome o);

enum { JN_UPCONN_VERIFY = 1, JN_UPCONN_FRESH = 2 };

/* Sets *out to an idle connection to server, or to a new connection being
 * established (connected == false), and returns 0. Returns JN_ETOOBIG when
 * the server is at its max_connections with nothing idle, or JN_EIO with
 * *err set when the socket could not even be created. Idle connections that
 * the server closed are dropped as soon as their close event arrives; with
 * JN_UPCONN_VERIFY a non-blocking peek also checks the one handed out (for
 * requests that could not be replayed if it turned out dead); with
 * JN_UPCONN_FRESH the connection is always a new one. */
int jn_upconn_get(struct jn_upstream_rt *rt, uint32_t server, int flags, struct jn_upconn **out,
                  const char **err);

/* Queues w for a connection to server. Returns 0, or JN_ETOOBIG when the
 * server's max_pending is reached (the caller answers 503). w must start
 * zeroed; a w queued again (woken, but the slot was taken) keeps its place
 * at the head and its first deadline. */
int jn_upwait_start(struct jn_upstream_rt *rt, uint32_t server, struct jn_upwait *w);
/* Leaves the queue (no-op when w is not queued). */
void jn_upwait_cancel(struct jn_upwait *w);
/* Wakes queued requests whose server has room again (after another worker
 * freed a connection). */
void jn_upstream_kick(struct jn_upstream_rt *rt);
/* Called (from any worker) when a connection slot frees while requests are
 * queued somewhere: wakes every worker, which then runs jn_upstream_kick. */
void jn_upstream_set_kick_hook(void (*hook)(void));
/* Settles a connection being established, once it has shown readiness:
 * connects, then runs the TLS handshake when the upstream has tls:. Returns
 * 1 when it is ready (uc->connected set), 0 while it is not yet, or -1 when
 * the connect or the handshake failed, with *why saying how (a static
 * string; uc->tcp_connected tells that the handshake failed). */
int jn_upconn_finish_connect(struct jn_upconn *uc, const char **why);
/* Reads from the server into b through the connection's transport, and
 * keeps can_read/can_write in step with it. Returns as the transport's read. */
ssize_t jn_upconn_read(struct jn_upconn *uc, struct jn_buf *b);
/* Writes b to the server through the transport, likewise. Returns as the
 * transport's write. */
ssize_t jn_upconn_write(struct jn_upconn *uc, struct jn_buf *b);
/* Puts a connection whose exchange completed cleanly back into its pool,
 * or closes it when the pool is full. */
void jn_upconn_release(struct jn_upconn *uc);
/* Closes a connection (deferred free: safe inside its own event handler). */
void jn_upconn_close(struct jn_upconn *uc);
/* Ends an exchange on uc: its timer stops, then the connection goes back
 * to the pool when reusable (jn_upconn_release), else is closed. */
void jn_upconn_finish(struct jn_upconn *uc, bool reusable);
/* Frees closed connections; called by the worker after each batch of events. */
void jn_upconn_collect(struct jn_upconn **garbage);

#endif
