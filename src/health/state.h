/* Process-wide state of each upstream server, shared by every worker and the
 * health thread: the active checker's verdict, passive (outlier) ejection,
 * when the server last came back (slow start), and its open connections
 * (limits). Only atomics; no lock. A worker keeps its own view of which
 * servers are usable and refreshes it when the pool's version moves or a
 * time it computed passes, so the request path reads one atomic per pick. */
#ifndef JN_HEALTH_STATE_H
#define JN_HEALTH_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A server's connection slots (limits:): its connections and the requests
 * waiting for one, counted across every worker and every snapshot in use,
 * so that a reload or a runtime change does not open another
 * max_connections. Shared by the pool states of the same upstream name and
 * server address (jn_pools_create), freed with the last. */
struct jn_server_slots {
    _Atomic uint32_t connections;     /* open to it from every worker, idle ones included */
    _Atomic uint32_t pending;         /* requests waiting for a connection to it */
    _Atomic uint32_t refs;            /* pool states sharing it */
};

struct jn_server_state {
    _Atomic bool check_down;          /* the active checker says down */
    /* The checker's consecutive passes and failures: here, not in the
     * checker, so that they go on across snapshots (it restarts with each). */
    _Atomic uint32_t check_passes, check_fails;
    _Atomic uint32_t failures;        /* consecutive failed requests (outlier) */
    _Atomic uint64_t ejected_until;   /* ms (jn_clock_ms); 0 = not ejected */
    _Atomic uint32_t ejections;       /* ejections in a row: the time doubles with each */
    _Atomic uint64_t back_since;      /* ms it last became usable again; 0 = since start */
    struct jn_server_slots *slots;    /* owned with other snapshots' states of the server */
    _Atomic uint64_t ejections_total; /* every ejection since the state was made (metrics) */
};

struct jn_pool_state {
    const struct jn_cfg_upstream *cfg; /* borrowed from the snapshot that created it */
    struct jn_server_state *servers;   /* owned, cfg->nservers entries */
    _Atomic uint64_t version;          /* bumped whenever a server's usability changes */
    _Atomic uint32_t nejected;         /* servers ejected now (max_ejected_percent) */
    /* Retry budget: requests and retries in the current and previous window. */
    _Atomic uint64_t window;           /* index of the current window (ms / window length) */
    _Atomic uint32_t requests[2], retries[2];
};

/* What happened to one request (or TCP connection) on a server. */
enum jn_outcome {
    JN_OUT_OK,       /* answered with a status outlier: does not count as failure */
    JN_OUT_CONNECT,  /* connect refused, failed or timed out */
    JN_OUT_RESET,    /* the connection failed before the response ended */
    JN_OUT_TIMEOUT,  /* no response in time */
    JN_OUT_STATUS,   /* answered with a status that outlier: failure_status names */
    JN_OUT_LOCAL,    /* Junction's own failure (out of memory): says nothing of the server */
};

/* Creates the shared state of every upstream of cfg (cfg->pools, freed with
 * cfg). What prev (the snapshot cfg replaces, or NULL) knows of a server of
 * the same upstream name and address is carried over. Returns 0 or
 * JN_ENOMEM. */
int jn_pools_create(struct jn_config *cfg, const struct jn_config *prev);
/* The shared state of cfg->upstreams[index] (what the admin API and metrics
 * read, and each worker's pool runtime points to). */
struct jn_pool_state *jn_pool_of(const struct jn_config *cfg, size_t index);

/* True when server i may take requests at now_ms: not checked down, not
 * ejected. Sets *until to the time this answer may change by itself (an
 * ejection ending), or leaves it. */
bool jn_server_usable(struct jn_pool_state *p, size_t i, uint64_t now_ms, uint64_t *until);

/* Records an outcome; may eject the server (outlier) and bump the version. */
void jn_pool_report(struct jn_pool_state *p, size_t server, enum jn_outcome o, uint64_t now_ms);

/* The active checker's verdict; logs and bumps the version when it changes. */
void jn_pool_set_checked(struct jn_pool_state *p, size_t server, bool up, uint64_t now_ms);

/* Retry budget: counts n requests; asks for one retry (true = allowed, counted). */
void jn_pool_count_requests(struct jn_pool_state *p, uint32_t n, uint64_t now_ms);
bool jn_pool_retry_allowed(struct jn_pool_state *p, uint64_t now_ms);

/* Slow start: the share of its weight (1/1000ths, 100..1000) server i gets at
 * now_ms; sets *until to when the ramp next moves (or leaves it when done). */
uint32_t jn_server_ramp(struct jn_pool_state *p, size_t i, uint64_t now_ms, uint64_t *until);

#endif
