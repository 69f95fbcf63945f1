/* A JWKS fetched from a URL (http:// or https://) by a background thread
 * of the jwt policy: at start, every refresh period, and when a request
 * names a key it does not know (at most once per min_refresh). Workers read
 * the current set with a reference; requests may wait for a fetch in
 * progress and are then told on their own loop. */
#ifndef JN_POLICY_JWKS_FETCH_H
#define JN_POLICY_JWKS_FETCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/loop.h"
#include "policy/jwks.h"

struct jn_tls_client;

/* A request waiting for the fetch in progress. Embedded in a heap object
 * its owner frees in task.done (or in jn_jwks_source_unwait's caller). */
struct jn_jwks_waiter {
    struct jn_task task; /* task.loop and task.done set by the owner */
    struct jn_jwks_waiter *next;
    bool listed;         /* under the source's lock: still on its list */
};

struct jn_jwks_source {
    /* Settings, fixed at load. */
    char *url;            /* snapshot arena: for logs */
    bool https;
    char *host;           /* snapshot arena: to connect to and name (SNI, Host) */
    char *port;
    char *authority;      /* "host:port" for Host and the TLS client */
    char *path;           /* with the query */
    uint64_t refresh_ms, min_refresh_ms, timeout_ms;
    struct jn_cfg_upstream_tls tls;  /* verify, ca */
    struct jn_tls_client *tls_client; /* owned (https) */
    /* Shared state, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct jn_jwks *keys;   /* one reference held; NULL before the first fetch */
    atomic_uint_fast64_t keys_id; /* keys->id, read without the lock; 0: none */
    struct jn_jwks_waiter *waiters;
    bool fetching, wanted, stopping, started;
    uint64_t last_attempt_ms; /* monotonic; 0: never */
    int stop_fd;            /* eventfd: wakes a fetch in progress to stop */
    pthread_t thread;
};

/* Parses url into src and sets its defaults. Returns NULL, or why not. */
const char *jn_jwks_source_init(struct jn_jwks_source *src, char *url);
/* Starts the thread, which fetches at once. Returns 0 or JN_EIO. */
int jn_jwks_source_start(struct jn_jwks_source *src);
/* Stops and joins the thread, frees the keys and the TLS context. */
void jn_jwks_source_free(struct jn_jwks_source *src);
/* The current set with a reference the caller drops (jn_jwks_unref), or NULL. */
struct jn_jwks *jn_jwks_source_get(struct jn_jwks_source *src);
/* The id of the current set (0: none yet), without the lock: a token
 * verified with a set of another id must be verified again. */
uint64_t jn_jwks_source_id(struct jn_jwks_source *src);
/* A request met an unknown key: when a fetch is running, or may start now
 * (min_refresh since the last one), queues w to be posted to w->task.loop
 * once it ends and returns true; otherwise returns false. w NULL: just asks
 * for the fetch when allowed. */
bool jn_jwks_source_wait(struct jn_jwks_source *src, struct jn_jwks_waiter *w);
/* Takes w off the list. Returns true when it was there (the caller frees
 * it), false when it is posted already (its done will run). */
bool jn_jwks_source_unwait(struct jn_jwks_source *src, struct jn_jwks_waiter *w);

#endif
