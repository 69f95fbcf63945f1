/* Metrics: counters kept per worker thread (each written by its own thread
 * only, so no lock and no shared cache line on the request path), summed
 * when read, and shown in the Prometheus text format (GET /metrics) and as
 * the JSON the dashboard draws (GET /stats). See docs/operations.md. */
#ifndef JN_ADMIN_METRICS_H
#define JN_ADMIN_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jn_config;
struct jn_stream;
struct jn_client;

/* Names get a counter slot the first time a snapshot carries them, and keep
 * it for the life of the process: counters survive reloads. Past these many
 * names of one kind, new names share one "_other" slot. */
#define JN_METRICS_MAX_ROUTES 1024
#define JN_METRICS_MAX_UPSTREAMS 256
#define JN_METRICS_MAX_LISTENERS 64
#define JN_METRICS_MAX_POLICIES 2048 /* (route, policy) pairs */

/* Gives every route, upstream, listener and route policy of cfg its slot
 * (stored in the snapshot: metrics_slot fields). Called once by the
 * configuration loader for every snapshot that loads. Thread-safe. */
void jn_metrics_assign(struct jn_config *cfg);

/* ---- recording: on the thread that owns the object, nothing shared ---- */

/* A stream began (in-flight gauge of its listener, request start time). */
void jn_metrics_stream_start(struct jn_stream *s);
/* The stream's response status is final: requests, durations. Once. */
void jn_metrics_stream_done(struct jn_stream *s);
/* The stream is freed (in-flight gauge). */
void jn_metrics_stream_free(struct jn_stream *s);
/* A server was picked for s: the upstream latency starts. */
void jn_metrics_upstream_start(struct jn_stream *s);
/* The upstream's response head arrived (upstream latency). */
void jn_metrics_upstream_head(struct jn_stream *s);
/* A request was retried on another server of its upstream. */
void jn_metrics_retry(struct jn_stream *s);
/* A request was refused by its upstream's limits: (max_connections with
 * no queue, or a full queue, or its queue_timeout). */
void jn_metrics_limit_rejected(struct jn_stream *s);
/* The policy running on s answered it with status (jn_policy_reject). */
void jn_metrics_policy_rejected(struct jn_stream *s, uint16_t status);

/* Client connections of HTTP listeners. */
void jn_metrics_conn_open(struct jn_client *c);
void jn_metrics_conn_close(struct jn_client *c);
void jn_metrics_conn_bytes(struct jn_client *c, uint64_t in, uint64_t out);
void jn_metrics_tls_handshake(struct jn_client *c, bool ok);
/* A request head the parser refused before it became a stream (400, 414,
 * 431...): counted under no route, method OTHER. */
void jn_metrics_conn_rejected(struct jn_client *c, uint16_t status);

/* ---- reading: any thread ---- */

/* The Prometheus text exposition format 0.0.4 for the current snapshot's
 * names. Returns a malloc'd string (length in *len), or NULL when out of
 * memory. The caller frees it. */
char *jn_metrics_render(size_t *len);
/* The GET /stats document (docs/operations.md); a new reference, NULL when
 * out of memory. */
json_t *jn_metrics_stats_json(void);
/* The same for the names of cfg (NULL: no names), for tests and tools. */
char *jn_metrics_render_config(const struct jn_config *cfg, size_t *len);
json_t *jn_metrics_stats_json_config(const struct jn_config *cfg);

#endif
