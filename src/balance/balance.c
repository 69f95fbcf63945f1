/* The registry of load-balancing algorithms: adding one is one line here. */
#include "balance/balance.h"
#include "balance/lb_maglev.h"

#include <stdlib.h>
#include <string.h>

static const struct jn_lb_ops *const registry[] = {
    &jn_lb_round_robin,
    &jn_lb_least_conn,
    &jn_lb_p2c,
    &jn_lb_random_weighted,
    &jn_lb_consistent_hash,
    &jn_lb_ip_hash,
    &jn_lb_ewma,
};

const struct jn_lb_ops *jn_lb_find(const char *name)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

bool jn_lb_known(const char *name)
{
    return jn_lb_find(name) != NULL;
}

/* The k-th usable server (0-based), or -1. */
static int nth_usable(const struct jn_lb_ctx *ctx, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++)
        if (jn_lb_usable(ctx, i) && k-- == 0)
            return (int)i;
    return -1;
}

bool jn_lb_two_choices(const struct jn_lb_ctx *ctx, size_t n, int *a, int *b)
{
    size_t usable = 0;
    for (size_t i = 0; i < n; i++)
        usable += jn_lb_usable(ctx, i);
    if (usable <= 1) {
        *a = nth_usable(ctx, n, 0);
        return false;
    }
    size_t ka = jn_lb_random(ctx->rng) % usable;
    size_t kb = jn_lb_random(ctx->rng) % (usable - 1);
    if (kb >= ka)
        kb++; /* two distinct draws */
    *a = nth_usable(ctx, n, ka);
    *b = nth_usable(ctx, n, kb);
    return true;
}

void *jn_lb_plain_create(const struct jn_cfg_upstream *up)
{
    struct jn_lb_plain *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->up = up;
    return s;
}

void jn_lb_plain_destroy(void *state)
{
    free(state);
}
