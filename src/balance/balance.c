/* The registry of load-balancing algorithms: adding one is one line here. */
#include "balance/balance.h"

#include <string.h>

static const struct jn_lb_ops *const registry[] = {
    &jn_lb_round_robin,
    &jn_lb_least_conn,
    &jn_lb_p2c,
    &jn_lb_random_weighted,
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
