/* The shared counter table of the limit policies: shards with a lock each,
 * chained hashing on 128-bit keyed hashes, a fixed capacity with eviction,
 * and the exact algorithms (sliding log, GCRA) that run on one entry. */
#include "policy/limit_table.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/common.h"

#define NONE UINT32_MAX
#define MAX_SHARDS 64u
#define MIN_SHARD_KEYS 16u /* fewer shards for a small table */
#define EVICT_SAMPLE 16u   /* entries looked at before evicting the least recently used */

struct slot {
    struct jn_limit_key key;
    uint64_t last_used; /* the clock, at the last apply */
    uint32_t next;      /* next slot of the bucket's chain, NONE at its end */
    struct jn_limit_entry e;
};

struct shard {
    _Alignas(64) pthread_mutex_t lock; /* one cache line apart from the next shard's */
    struct slot *slots;                /* owned: n used of cap allocated, at most max */
    uint32_t n, cap, max;
    uint32_t *buckets; /* owned: mask + 1 chain heads */
    uint32_t mask;
    uint32_t hand; /* where the next eviction starts looking */
    uint64_t evicted, evicted_live, log_slots;
};

struct jn_limit_table {
    uint64_t seed[4]; /* SipHash keys of the two halves of a key */
    jn_limit_clock_fn *clock;
    void *clock_arg;
    uint32_t max_keys;
    uint32_t nshards; /* a power of two */
    struct shard *shards; /* owned, aligned */
};

static uint64_t monotonic_ns(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * JN_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein) ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                                 \
        v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                                 \
    } while (0)

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len)
{
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k0, v1 = UINT64_C(0x646f72616e646f6d) ^ k1;
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k0, v3 = UINT64_C(0x7465646279746573) ^ k1;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = whole; i < len; i++)
        b |= (uint64_t)in[i] << (8 * (i - whole));
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

struct jn_limit_key jn_limit_key(const struct jn_limit_table *t, char tag, const void *data,
                                 size_t len)
{
    uint64_t salt = (uint64_t)(unsigned char)tag;
    return (struct jn_limit_key){ { siphash(t->seed[0] ^ salt, t->seed[1], data, len),
                                    siphash(t->seed[2] ^ salt, t->seed[3], data, len) } };
}

/* ---- the table ---- */

struct jn_limit_table *jn_limit_table_new(uint32_t max_keys, jn_limit_clock_fn *clock,
                                          void *clock_arg)
{
    struct jn_limit_table *t = calloc(1, sizeof(*t));
    if (t == NULL || max_keys == 0)
        goto fail;
    if (getrandom(t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed)) {
        /* Without the kernel's entropy the table still works; only its
         * resistance to chosen collisions is weaker. */
        uint64_t now = monotonic_ns(NULL);
        for (size_t i = 0; i < 4; i++)
            t->seed[i] = siphash(now, (uint64_t)(uintptr_t)t, (const uint8_t *)&i, sizeof(i));
    }
    t->clock = clock != NULL ? clock : monotonic_ns;
    t->clock_arg = clock_arg;
    t->max_keys = max_keys;
    t->nshards = 1;
    while (t->nshards < MAX_SHARDS && max_keys / (t->nshards * 2) >= MIN_SHARD_KEYS)
        t->nshards *= 2;
    t->shards = aligned_alloc(_Alignof(struct shard), t->nshards * sizeof(struct shard));
    if (t->shards == NULL)
        goto fail;
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct shard *sh = &t->shards[i];
        *sh = (struct shard){ .max = max_keys / t->nshards + (i < max_keys % t->nshards) };
        pthread_mutex_init(&sh->lock, NULL);
    }
    return t;
fail:
    free(t);
    return NULL;
}

void jn_limit_table_free(struct jn_limit_table *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct shard *sh = &t->shards[i];
        for (uint32_t j = 0; j < sh->n; j++)
            free(sh->slots[j].e.log);
        free(sh->slots);
        free(sh->buckets);
        pthread_mutex_destroy(&sh->lock);
    }
    free(t->shards);
    free(t);
}

static uint32_t find(const struct shard *sh, struct jn_limit_key key)
{
    if (sh->buckets == NULL)
        return NONE;
    uint32_t i = sh->buckets[key.h[1] & sh->mask];
    while (i != NONE && (sh->slots[i].key.h[0] != key.h[0] || sh->slots[i].key.h[1] != key.h[1]))
        i = sh->slots[i].next;
    return i;
}

static void link_slot(struct shard *sh, uint32_t i)
{
    uint32_t *head = &sh->buckets[sh->slots[i].key.h[1] & sh->mask];
    sh->slots[i].next = *head;
    *head = i;
}

static void unlink_slot(struct shard *sh, uint32_t i)
{
    uint32_t *p = &sh->buckets[sh->slots[i].key.h[1] & sh->mask];
    while (*p != i)
        p = &sh->slots[*p].next;
    *p = sh->slots[i].next;
}

/* Doubles the slots (up to max) and rehashes into as many buckets. */
static int grow(struct shard *sh)
{
    uint32_t cap = sh->cap == 0 ? JN_MIN(8u, sh->max) : JN_MIN(sh->cap * 2, sh->max);
    uint32_t nb = 1;
    while (nb < cap)
        nb *= 2;
    struct slot *slots = realloc(sh->slots, (size_t)cap * sizeof(*slots));
    if (slots == NULL)
        return JN_ENOMEM;
    sh->slots = slots;
    uint32_t *buckets = malloc((size_t)nb * sizeof(*buckets));
    if (buckets == NULL)
        return JN_ENOMEM;
    free(sh->buckets);
    sh->buckets = buckets;
    sh->cap = cap;
    sh->mask = nb - 1;
    memset(buckets, 0xff, (size_t)nb * sizeof(*buckets));
    for (uint32_t i = 0; i < sh->n; i++)
        link_slot(sh, i);
    return 0;
}

/* The slot to give up for a new key: the first fully expired one from the
 * hand on, else the least recently used of the sample; never one in use
 * (which makes the search go on, around the whole shard at worst). */
static uint32_t victim(struct shard *sh, uint64_t now)
{
    uint32_t best = NONE;
    for (uint32_t k = 0; k < sh->n; k++) {
        uint32_t i = (sh->hand + k) % sh->n;
        const struct slot *sl = &sh->slots[i];
        if (sl->e.expires <= now) {
            best = i;
            break;
        }
        if (sl->e.expires != UINT64_MAX &&
            (best == NONE || sl->last_used < sh->slots[best].last_used))
            best = i;
        if (k + 1 >= EVICT_SAMPLE && best != NONE)
            break;
    }
    if (best != NONE)
        sh->hand = (best + 1) % sh->n;
    return best;
}

/* A fresh slot for key: a new one, or an evicted one. */
static uint32_t insert(struct shard *sh, struct jn_limit_key key, uint64_t now, int *err)
{
    uint32_t i;
    if (sh->n == sh->cap && sh->cap < sh->max && (*err = grow(sh)) != 0)
        return NONE;
    if (sh->n < sh->cap) {
        i = sh->n++;
    } else {
        if ((i = victim(sh, now)) == NONE) {
            *err = JN_ETOOBIG;
            return NONE;
        }
        struct slot *old = &sh->slots[i];
        sh->evicted++;
        sh->evicted_live += old->e.expires > now;
        sh->log_slots -= old->e.log_cap;
        free(old->e.log);
        unlink_slot(sh, i);
    }
    sh->slots[i] = (struct slot){ .key = key };
    link_slot(sh, i);
    return i;
}

int jn_limit_table_apply(struct jn_limit_table *t, struct jn_limit_key key, bool create,
                         jn_limit_fn *fn, void *arg)
{
    struct shard *sh = &t->shards[key.h[0] & (t->nshards - 1)];
    int rc = 1;
    pthread_mutex_lock(&sh->lock);
    uint64_t now = t->clock(t->clock_arg);
    uint32_t i = find(sh, key);
    if (i == NONE && create)
        i = insert(sh, key, now, &rc);
    if (i != NONE) {
        struct slot *sl = &sh->slots[i];
        uint32_t before = sl->e.log_cap;
        sl->last_used = now;
        rc = fn(&sl->e, now, arg);
        sh->log_slots += sl->e.log_cap - before;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

void jn_limit_table_stats(struct jn_limit_table *t, struct jn_limit_stats *out)
{
    *out = (struct jn_limit_stats){ .capacity = t->max_keys };
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct shard *sh = &t->shards[i];
        pthread_mutex_lock(&sh->lock);
        out->keys += sh->n;
        out->evicted += sh->evicted;
        out->evicted_live += sh->evicted_live;
        out->log_slots += sh->log_slots;
        pthread_mutex_unlock(&sh->lock);
    }
}

uint64_t jn_limit_table_now(const struct jn_limit_table *t)
{
    return t->clock(t->clock_arg);
}

/* ---- the algorithms ---- */

/* Makes room for one more timestamp: the ring doubles, up to limit. */
static int log_grow(struct jn_limit_entry *e, uint32_t limit)
{
    uint32_t cap = JN_MIN(limit, JN_MAX(4u, e->log_cap * 2));
    uint64_t *ring = malloc((size_t)cap * sizeof(*ring));
    if (ring == NULL)
        return JN_ENOMEM;
    for (uint32_t k = 0; k < e->log_len; k++)
        ring[k] = e->log[(e->log_head + k) % e->log_cap];
    free(e->log);
    e->log = ring;
    e->log_cap = cap;
    e->log_head = 0;
    return 0;
}

int jn_limit_sliding_log(struct jn_limit_entry *e, uint64_t now, uint32_t limit, uint64_t window,
                         struct jn_limit_result *r)
{
    if (e->log_len > 0) {
        uint64_t newest = e->log[(e->log_head + e->log_len - 1) % e->log_cap];
        now = JN_MAX(now, newest); /* the clock never runs back for an entry */
    }
    /* Passes at least a window old no longer count. */
    while (e->log_len > 0 && now - e->log[e->log_head] >= window) {
        e->log_head = (e->log_head + 1) % e->log_cap;
        e->log_len--;
    }
    *r = (struct jn_limit_result){ 0 };
    if (e->log_len < limit) {
        if (e->log_len == e->log_cap && log_grow(e, limit) != 0)
            return JN_ENOMEM;
        e->log[(e->log_head + e->log_len) % e->log_cap] = now;
        e->log_len++;
        r->allowed = true;
        r->remaining = limit - e->log_len;
        r->reset_at = now + window;
    } else {
        /* The oldest pass leaves the window first and frees one place. */
        r->retry_at = e->log[e->log_head] + window;
        r->reset_at = e->log[(e->log_head + e->log_len - 1) % e->log_cap] + window;
    }
    e->expires = r->reset_at;
    return 0;
}

uint64_t jn_limit_interval(uint64_t window, uint32_t limit)
{
    return window / limit + (window % limit != 0);
}

void jn_limit_token_bucket(struct jn_limit_entry *e, uint64_t now, uint64_t interval,
                           uint32_t burst, struct jn_limit_result *r)
{
    /* GCRA: tat is when the bucket is full again; a request may take a token
     * while the bucket is not empty, i.e. tat - now <= (burst - 1) * interval. */
    uint64_t tat = JN_MAX(e->value, now);
    uint64_t tolerance = interval * (burst - 1);
    *r = (struct jn_limit_result){ 0 };
    if (tat - now <= tolerance) {
        tat += interval;
        e->value = tat;
        r->allowed = true;
        r->remaining = (interval * burst - (tat - now)) / interval;
    } else {
        r->retry_at = tat - tolerance;
    }
    r->reset_at = tat;
    e->expires = tat;
}
