/* Load-balancing algorithms: each is a small table of functions in its own
 * file (lb_*.c), registered in balance.c. A balancer instance lives in one
 * worker thread, so picking a server needs no lock. */
#ifndef JN_BALANCE_BALANCE_H
#define JN_BALANCE_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* What a balancer may look at to choose (later: a hash key, in-flight counts). */
struct jn_lb_ctx {
    const uint32_t *in_flight; /* borrowed: per-server requests in flight, this worker */
    const bool *usable;        /* borrowed: per server; NULL = every server usable */
};

struct jn_lb_ops {
    const char *name;
    /* Creates per-worker state for up. Returns NULL when memory runs out. */
    void *(*create)(const struct jn_cfg_upstream *up);
    /* Returns the index of the chosen server in up->servers, or -1 when none is usable. */
    int (*pick)(void *state, const struct jn_lb_ctx *ctx);
    void (*destroy)(void *state);
};

/* True when name is a registered algorithm (used by the configuration loader). */
bool jn_lb_known(const char *name);
/* Returns the algorithm's table, or NULL. */
const struct jn_lb_ops *jn_lb_find(const char *name);

extern const struct jn_lb_ops jn_lb_round_robin;

#endif
