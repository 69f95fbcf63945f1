/* Load-balancing algorithms: each is a small table of functions in its own
 * file (lb_*.c), registered in balance.c. A balancer instance lives in one
 * worker thread, so picking a server needs no lock. */
#ifndef JN_BALANCE_BALANCE_H
#define JN_BALANCE_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* What a balancer may look at to choose (later: a hash key). */
struct jn_lb_ctx {
    const uint32_t *in_flight; /* borrowed: per-server requests in flight, this worker */
    const bool *usable;        /* borrowed: per server; NULL = every server usable */
    const uint32_t *weight;    /* borrowed: effective weights (slow start); NULL = configured */
    uint64_t *rng;             /* borrowed: the worker's random state (jn_lb_random) */
    uint64_t now_us; /* monotonic us, for balancers that observe latency; 0 = unknown */
    uint64_t hash; /* the request's hash key, valid when has_hash */
    bool has_hash;
};

/* A fast per-thread pseudo-random number (xorshift64*); *state must not be 0.
 * Balancers need spread, not secrecy. */
static inline uint64_t jn_lb_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline bool jn_lb_usable(const struct jn_lb_ctx *ctx, size_t i)
{
    return ctx == NULL || ctx->usable == NULL || ctx->usable[i];
}

/* Server i's weight for this pick: the configured one, or the effective one
 * (configured x 10, scaled down while a server slow-starts). Only ratios
 * between servers matter, so the two scales never mix within one pick. */
static inline uint32_t jn_lb_weight(const struct jn_lb_ctx *ctx, const struct jn_cfg_server *sv,
                                    size_t i)
{
    return ctx != NULL && ctx->weight != NULL ? ctx->weight[i] : sv[i].weight;
}

/* The state of algorithms that need nothing but the upstream itself. */
struct jn_lb_plain {
    const struct jn_cfg_upstream *up; /* borrowed from the configuration snapshot */
};
void *jn_lb_plain_create(const struct jn_cfg_upstream *up);
void jn_lb_plain_destroy(void *state);

/* Draws two distinct usable servers at random into *a and *b and returns
 * true; with one usable server sets *a to it (or -1 with none) and returns
 * false. The shared first step of p2c and ewma. */
bool jn_lb_two_choices(const struct jn_lb_ctx *ctx, size_t n, int *a, int *b);

/* True when server a carries less load than b for their weights:
 * in_flight(a) / weight(a) < in_flight(b) / weight(b), without division. */
static inline bool jn_lb_lighter(uint32_t in_a, uint32_t w_a, uint32_t in_b, uint32_t w_b)
{
    return (uint64_t)in_a * w_b < (uint64_t)in_b * w_a;
}

struct jn_lb_ops {
    const char *name;
    /* Creates per-worker state for up. Returns NULL when memory runs out. */
    void *(*create)(const struct jn_cfg_upstream *up);
    /* Returns the index of the chosen server in up->servers, or -1 when none is usable. */
    int (*pick)(void *state, const struct jn_lb_ctx *ctx);
    void (*destroy)(void *state);
    /* Optional: the server answered the response head latency_us after the
     * request was sent (now_us is a monotonic clock). NULL = not interested. */
    void (*observe)(void *state, int server, uint64_t latency_us, uint64_t now_us);
};

/* True when name is a registered algorithm (used by the configuration loader). */
bool jn_lb_known(const char *name);
/* Returns the algorithm's table, or NULL. */
const struct jn_lb_ops *jn_lb_find(const char *name);

extern const struct jn_lb_ops jn_lb_round_robin;
extern const struct jn_lb_ops jn_lb_least_conn;
extern const struct jn_lb_ops jn_lb_p2c;
extern const struct jn_lb_ops jn_lb_random_weighted;
extern const struct jn_lb_ops jn_lb_ewma;

#endif
