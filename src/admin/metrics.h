/* STUB (helper "metrics" provides the real one): Prometheus text and the
 * dashboard's counters. */
#ifndef JN_ADMIN_METRICS_H
#define JN_ADMIN_METRICS_H

#include <jansson.h>
#include <stddef.h>

/* The Prometheus text exposition; malloc'd (caller frees), *len its size. */
char *jn_metrics_render(size_t *len);
/* The GET /stats object; a new reference. */
json_t *jn_metrics_stats_json(void);

#endif
