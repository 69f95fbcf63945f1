/* Consistent hashing with a Maglev lookup table (Eisenbud et al., NSDI 2016):
 * every slot of a prime-sized table names a server, each server filling
 * slots along its own permutation of the table. A request's key picks a
 * slot. Adding or removing one of N servers changes about 1/N of the slots,
 * and a server's permutation derives from its address alone, so the others
 * keep their places. An optional bound on load sends a request whose server
 * is too busy to the next different server along the table. */
#include <stdlib.h>
#include <string.h>

#include "balance/hash_key.h"
#include "balance/lb_maglev.h"

#define JN_MAGLEV_DEFAULT_SIZE 65537

struct maglev_state {
    const struct jn_cfg_upstream *up; /* borrowed from the configuration snapshot */
    uint32_t size;                    /* slots, a prime */
    uint32_t *slot;                   /* owned: size entries, server indexes */
};

/* Where server i starts in the table and how far it steps: two independent
 * hashes of its address, the skip in 1..size-1 so that (size prime) the
 * walk visits every slot once. */
static void maglev_permutation(const char *address, uint32_t size, uint32_t *offset,
                               uint32_t *skip)
{
    size_t len = strlen(address);
    uint64_t h = jn_hash_bytes(address, len);
    *offset = (uint32_t)(h % size);
    *skip = (uint32_t)(((h >> 32) ^ jn_hash_bytes(&h, sizeof(h))) % (size - 1)) + 1;
}

/* Takes server i's next free slot along its permutation. */
static void maglev_take(struct maglev_state *s, uint32_t i, const uint32_t *offset,
                        const uint32_t *skip, uint32_t *next)
{
    uint32_t c;
    do {
        c = (uint32_t)(((uint64_t)offset[i] + (uint64_t)next[i] * skip[i]) % s->size);
        next[i]++;
    } while (s->slot[c] != UINT32_MAX);
    s->slot[c] = i;
}

/* Fills the table in rounds; in each round a server of weight w takes w
 * slots, so shares follow the weights. */
static int maglev_build(struct maglev_state *s)
{
    size_t n = s->up->nservers;
    uint32_t *offset = calloc(n, sizeof(*offset)), *skip = calloc(n, sizeof(*skip));
    uint32_t *next = calloc(n, sizeof(*next));
    int rc = -1;
    if (offset == NULL || skip == NULL || next == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        maglev_permutation(s->up->servers[i].address, s->size, &offset[i], &skip[i]);
    memset(s->slot, 0xff, (size_t)s->size * sizeof(*s->slot));
    uint32_t filled = 0;
    while (filled < s->size) {
        for (uint32_t i = 0; i < n && filled < s->size; i++) {
            uint32_t w = s->up->servers[i].weight ? s->up->servers[i].weight : 1;
            for (uint32_t t = 0; t < w && filled < s->size; t++, filled++)
                maglev_take(s, i, offset, skip, next);
        }
    }
    rc = 0;
out:
    free(offset);
    free(skip);
    free(next);
    return rc;
}

static void maglev_destroy(void *state)
{
    struct maglev_state *s = state;
    if (s != NULL)
        free(s->slot);
    free(s);
}

static void *maglev_create(const struct jn_cfg_upstream *up)
{
    struct maglev_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->up = up;
    s->size = up->hash_table_size >= 7 ? up->hash_table_size : JN_MAGLEV_DEFAULT_SIZE;
    s->slot = malloc((size_t)s->size * sizeof(*s->slot));
    if (s->slot == NULL || up->nservers == 0 || maglev_build(s) != 0) {
        maglev_destroy(s);
        return NULL;
    }
    return s;
}

/* The most requests server i may hold in flight under the bounded load:
 * its weighted share of ceil((total + 1) * factor / 100), where total counts
 * the usable servers. The shares add up to more than total, so some usable
 * server is always under its bound. With equal weights this is
 * ceil((total + 1) * factor / 100 / n_usable). */
static uint64_t maglev_bound(const struct maglev_state *s, size_t i, uint32_t factor,
                             uint64_t total, uint64_t weights)
{
    uint64_t w = s->up->servers[i].weight ? s->up->servers[i].weight : 1;
    uint64_t num = (total + 1) * factor * w;
    uint64_t den = 100 * weights;
    return (num + den - 1) / den;
}

/* Walks the table from start to the first usable server under its bound
 * (any usable server when factor is 0). Returns -1 when none is found. */
static int maglev_walk(const struct maglev_state *s, const struct jn_lb_ctx *ctx, uint32_t start,
                       uint32_t factor, uint64_t total, uint64_t weights)
{
    uint32_t last = UINT32_MAX; /* a server just refused: skip its run of slots */
    for (uint32_t k = 0; k < s->size; k++) {
        uint32_t i = s->slot[(uint32_t)(((uint64_t)start + k) % s->size)];
        if (i == last || !jn_lb_usable(ctx, i))
            continue;
        if (factor == 0 || ctx->in_flight[i] < maglev_bound(s, i, factor, total, weights))
            return (int)i;
        last = i;
    }
    return -1;
}

static int maglev_pick(void *state, const struct jn_lb_ctx *ctx)
{
    struct maglev_state *s = state;
    /* Like the other balancers, a NULL ctx (or no load figures) is allowed. */
    bool loads = ctx != NULL && ctx->in_flight != NULL;
    uint32_t factor = loads ? s->up->hash_balance_factor : 0;
    uint64_t total = 0, weights = 0;
    /* Without a bound the sums are not needed: one usable server (usually
     * the first looked at) proves the walk below ends. */
    for (size_t i = 0; factor == 0 && weights == 0 && i < s->up->nservers; i++)
        weights = jn_lb_usable(ctx, i);
    for (size_t i = 0; factor != 0 && i < s->up->nservers; i++) {
        if (!jn_lb_usable(ctx, i))
            continue;
        total += loads ? ctx->in_flight[i] : 0;
        weights += s->up->servers[i].weight ? s->up->servers[i].weight : 1;
    }
    if (weights == 0)
        return -1;
    /* Without a key (a caller that computed none) slot 0 still gives every
     * request the same server, which is the least surprising fallback. */
    uint32_t start = ctx != NULL && ctx->has_hash ? (uint32_t)(ctx->hash % s->size) : 0;
    int pick = maglev_walk(s, ctx, start, factor, total, weights);
    /* Only when a usable server owns no slot (a table too small for the
     * pool) can every slot be refused: then the bound yields. */
    if (pick < 0 && factor != 0)
        pick = maglev_walk(s, ctx, start, 0, total, weights);
    return pick;
}

const struct jn_lb_ops jn_lb_consistent_hash = {
    .name = "consistent_hash",
    .create = maglev_create,
    .pick = maglev_pick,
    .destroy = maglev_destroy,
};

const struct jn_lb_ops jn_lb_ip_hash = {
    .name = "ip_hash",
    .create = maglev_create,
    .pick = maglev_pick,
    .destroy = maglev_destroy,
};

bool jn_lb_hashes(const char *name)
{
    return strcmp(name, jn_lb_consistent_hash.name) == 0 || strcmp(name, jn_lb_ip_hash.name) == 0;
}
