/* Active health checks: one thread, with its own event loop, runs one
 * checker per upstream that has `health:`; each checker probes every server
 * of its pool on the interval (an HTTP GET, or a bare connect with
 * `type: tcp`) and hands verdicts to the shared state that every worker
 * reads. Workers never run checks, so a pool is probed once per interval
 * whatever the number of threads. */
#ifndef JN_HEALTH_CHECK_H
#define JN_HEALTH_CHECK_H

#include "config/config.h"

/* Starts the health thread when some upstream of cfg has checks (after
 * jn_pools_create). Returns 0 or a JN_E* code. */
int jn_health_start(const struct jn_config *cfg);
/* Stops the thread and frees the checkers (no-op when none run). */
void jn_health_stop(void);

#endif
