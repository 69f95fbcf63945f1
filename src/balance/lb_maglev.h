/* The hashing balancers (lb_maglev.c). Declared here rather than in
 * balance.h so that adding them leaves the shared header alone. */
#ifndef JN_BALANCE_LB_MAGLEV_H
#define JN_BALANCE_LB_MAGLEV_H

#include <stdbool.h>

#include "balance/balance.h"

/* consistent_hash: a Maglev table over the request's hash key (hash_key:). */
extern const struct jn_lb_ops jn_lb_consistent_hash;
/* ip_hash: the same table, keyed by the client's address. */
extern const struct jn_lb_ops jn_lb_ip_hash;

/* True when the algorithm called name places requests by a hash key. */
bool jn_lb_hashes(const char *name);

#endif
