/* Choosing and reaching an upstream server for a stream: the pick (sticky
 * cookie, then the balancer), the connection (pooled, new, or queued at a
 * server's connection limit), and what happens when an attempt fails
 * (passive health, retries on another server, the error for the client).
 * Internal to the proxy (proxy.c drives the relay). */
#ifndef JN_HTTP_PROXY_UPSTREAM_H
#define JN_HTTP_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "http/stream.h"

/* Picks s's server: a sticky cookie naming a usable server wins, else the
 * balancer (with the request's hash key). Reads the request's fields, so
 * only while jn_proxy_start runs. Returns -1 when no server is usable. */
int jn_proxy_pick(struct jn_stream *s);
/* Gives s a connection to s->server (JN_UPCONN_* flags), queues it at the
 * server's connection limit, or answers it with an error. */
void jn_proxy_connect(struct jn_stream *s, int flags);
/* Closes s's upstream connection, if any, without pooling it. */
void jn_proxy_drop_upconn(struct jn_stream *s);
/* An attempt failed with outcome o: replays, retries elsewhere, or answers
 * status (or cuts the client off when the response had begun). */
void jn_proxy_upstream_fail(struct jn_stream *s, uint16_t status, const char *why,
                            enum jn_outcome o);
/* True once s's connection is established; false while it is not yet, or
 * when it failed (then handled by jn_proxy_upstream_fail). */
bool jn_proxy_check_connected(struct jn_stream *s);
/* Reports a response status to passive health; retries the request when
 * retry_on lists the status. Returns true when it was retried. */
bool jn_proxy_judge_response(struct jn_stream *s, uint16_t status);

#endif
