/* The counters of rate_limit and concurrency_limit: a table of per-key state
 * shared by every worker thread, split into shards that each have their own
 * lock (no global lock), with a fixed capacity (idle keys are evicted), and
 * the exact algorithms that run on an entry under its shard's lock: the
 * sliding log, the token bucket (GCRA) and the in-flight counter
 * (docs/policies.md, rate_limit). Times are nanoseconds of a monotonic
 * clock; the clock is read under the lock, so the times an entry sees never
 * go backwards. */
#ifndef JN_POLICY_LIMIT_TABLE_H
#define JN_POLICY_LIMIT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define JN_NS_PER_S UINT64_C(1000000000)

/* A key as the table stores it: a 128-bit keyed hash (SipHash-2-4 with a
 * random key per table) of the key's text, so that every entry has the same
 * size whatever the key, and no one can aim collisions at a shard. */
struct jn_limit_key {
    uint64_t h[2];
};

/* The state an algorithm keeps for one key. A new entry is all zero. */
struct jn_limit_entry {
    /* From this instant on the state is as good as a fresh one: the table
     * evicts such entries first. UINT64_MAX: in use, never evicted. */
    uint64_t expires;
    uint64_t value; /* token bucket: its TAT; concurrency: requests in flight */
    uint64_t *log;  /* sliding log: pass times, a ring of log_cap (malloc, the table frees it) */
    uint32_t log_cap, log_head, log_len;
};

typedef uint64_t jn_limit_clock_fn(void *arg);

struct jn_limit_table;

/* Makes a table that holds at most max_keys keys (>= 1). clock (NULL: the
 * monotonic clock) is read under a shard's lock for every operation; tests
 * inject their own. Returns NULL when memory runs out. */
struct jn_limit_table *jn_limit_table_new(uint32_t max_keys, jn_limit_clock_fn *clock,
                                          void *clock_arg);
void jn_limit_table_free(struct jn_limit_table *t);

/* The table's key for the text tag:data (tag separates kinds of keys: an
 * address and a consumer of the same name never share a counter). */
struct jn_limit_key jn_limit_key(const struct jn_limit_table *t, char tag, const void *data,
                                 size_t len);

/* Runs fn on the entry of key with its shard locked, and returns what fn
 * returned. now is the clock, read under the lock. When the key has no
 * entry: with create, a zeroed one is made (evicting another when the table
 * is full: a fully expired one first, else the least recently used of a
 * small sample; never one that is in use); without create, fn is not run
 * and 1 is returned. Returns JN_ENOMEM, or JN_ETOOBIG when every entry of the
 * key's shard is in use. */
typedef int jn_limit_fn(struct jn_limit_entry *e, uint64_t now, void *arg);
int jn_limit_table_apply(struct jn_limit_table *t, struct jn_limit_key key, bool create,
                         jn_limit_fn *fn, void *arg);

struct jn_limit_stats {
    uint64_t keys;         /* entries held now */
    uint64_t capacity;     /* max_keys */
    uint64_t evicted;      /* entries evicted to make room */
    uint64_t evicted_live; /* ...of which had not expired (that key started afresh) */
    uint64_t log_slots;    /* sliding-log timestamps allocated, over all entries */
};
void jn_limit_table_stats(struct jn_limit_table *t, struct jn_limit_stats *out);
/* The table's clock, read now (no lock). */
uint64_t jn_limit_table_now(const struct jn_limit_table *t);

/* ---- what a request is counted by (limit_key.c) ---- */

struct jn_ld;
struct jn_ld_key;
struct jn_stream;
struct jn_fields;

enum jn_limit_by_kind {
    JN_LIMIT_BY_CLIENT_IP, /* the client address (trusted_proxies) */
    JN_LIMIT_BY_CONSUMER,  /* the consumer's name, else the client address */
    JN_LIMIT_BY_HEADER,    /* a request header's value, else the client address */
    JN_LIMIT_BY_ROUTE,     /* the route's name: one counter per route */
};

struct jn_limit_by {
    enum jn_limit_by_kind kind;
    const char *header; /* JN_LIMIT_BY_HEADER: the name, in the snapshot */
};

/* A jn_ld_set_fn for `key:` (client_ip, consumer, route or header:NAME),
 * writing the struct jn_limit_by at key->offset. The default is client_ip
 * (all zero). */
void jn_limit_set_by(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj);
/* The table's key of the request s (with its request fields f). */
struct jn_limit_key jn_limit_key_of(const struct jn_limit_table *t, const struct jn_limit_by *by,
                                    const struct jn_stream *s, const struct jn_fields *f);

/* ---- the algorithms, each on one entry (run them from a jn_limit_fn) ---- */

struct jn_limit_result {
    bool allowed;
    uint64_t remaining; /* after this request was counted; 0 when refused */
    uint64_t reset_at;  /* when the quota is whole again, if nothing else comes */
    uint64_t retry_at;  /* refused: the earliest instant a request can pass */
};

/* The largest limit the sliding log accepts (one timestamp per request). */
#define JN_LIMIT_LOG_MAX 100000u

/* Sliding log: a request passes when fewer than limit passed within the
 * window before it (now - t < window), so no window of that length ever
 * holds more than limit passes. Returns 0 or JN_ENOMEM (the ring could not
 * grow; nothing was counted). */
int jn_limit_sliding_log(struct jn_limit_entry *e, uint64_t now, uint32_t limit, uint64_t window,
                         struct jn_limit_result *r);
/* Token bucket as GCRA: a bucket of burst tokens that refills one token every
 * interval nanoseconds; a request takes one token or is refused. Over any
 * span d, at most burst + d / interval pass. */
void jn_limit_token_bucket(struct jn_limit_entry *e, uint64_t now, uint64_t interval,
                           uint32_t burst, struct jn_limit_result *r);
/* The refill interval of limit per window, rounded up to the nanosecond (so
 * never faster than asked). */
uint64_t jn_limit_interval(uint64_t window, uint32_t limit);

#endif
