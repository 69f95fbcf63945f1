/* The layout of the per-thread counters, shared by the recording side
 * (metrics_count.c) and the readers (metrics.c). Nothing outside src/admin
 * includes it. */
#ifndef JN_ADMIN_METRICS_COUNT_H
#define JN_ADMIN_METRICS_COUNT_H

#include <stdatomic.h>
#include <stdint.h>

#include "admin/metrics.h"

#define JN_M_METHODS 10 /* the standard methods, then OTHER */
#define JN_M_CLASSES 5  /* 1xx..5xx */
#define JN_M_BUCKETS 14 /* finite histogram bounds; +Inf is one more */
#define JN_M_CODES 12   /* policy rejection statuses, the last for any other */

/* Slots past the named ones. */
#define JN_M_ROUTE_OTHER JN_METRICS_MAX_ROUTES
#define JN_M_ROUTE_NONE (JN_METRICS_MAX_ROUTES + 1) /* no route matched (404, early 400) */
#define JN_M_ROUTE_SLOTS (JN_METRICS_MAX_ROUTES + 2)
#define JN_M_UPSTREAM_OTHER JN_METRICS_MAX_UPSTREAMS
#define JN_M_LISTENER_OTHER JN_METRICS_MAX_LISTENERS
#define JN_M_POLICY_OTHER JN_METRICS_MAX_POLICIES

extern const char *const jn_metrics_methods[JN_M_METHODS];
extern const uint64_t jn_metrics_bounds_us[JN_M_BUCKETS];
extern const char *const jn_metrics_bounds_text[JN_M_BUCKETS]; /* the same, in seconds */
extern const uint16_t jn_metrics_codes[JN_M_CODES - 1];

/* Buckets are not cumulative here (one increment per observation);
 * readers add them up. Their sum is the count. */
struct jn_mhist {
    _Atomic uint64_t bucket[JN_M_BUCKETS + 1];
    _Atomic uint64_t sum_us;
};

struct jn_mroute {
    _Atomic uint64_t requests[JN_M_METHODS][JN_M_CLASSES];
    struct jn_mhist duration; /* whole exchange */
    struct jn_mhist upstream; /* server picked -> response head */
};

struct jn_mlistener {
    _Atomic uint64_t in_flight;   /* streams; a gauge: up and down on this thread */
    _Atomic uint64_t connections; /* open; a gauge */
    _Atomic uint64_t accepted;
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t tls_ok, tls_failed;
};

struct jn_mupstream {
    _Atomic uint64_t retries;
    _Atomic uint64_t limit_rejections;
};

/* One thread's counters. Written by that thread only; read by any. Blocks
 * are never freed (threads of a process that exited still counted). */
struct jn_mthread {
    struct jn_mthread *next;                          /* immutable once published */
    struct jn_mroute *_Atomic routes[JN_M_ROUTE_SLOTS]; /* owned, made on first use */
    _Atomic uint64_t (*_Atomic policies)[JN_M_CODES];   /* owned, JN_METRICS_MAX_POLICIES + 1 */
    struct jn_mlistener listeners[JN_METRICS_MAX_LISTENERS + 1];
    struct jn_mupstream upstreams[JN_METRICS_MAX_UPSTREAMS + 1];
};

/* The newest thread block; walk ->next for the others. */
struct jn_mthread *jn_metrics_threads(void);

static inline uint64_t jn_m_load(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
