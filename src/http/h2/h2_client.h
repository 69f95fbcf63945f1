/* HTTP/2 to upstreams (protocol: h2c | h2): a few nghttp2 client sessions
 * per server and worker, each carrying many streams. A proxy stream sent
 * to such an upstream gets one upstream stream; its request and response
 * move through the same buffers (s->req_out, s->resp_in) as over HTTP/1.1,
 * unframed. See docs/http2.md. */
#ifndef JN_HTTP_H2_CLIENT_H
#define JN_HTTP_H2_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health/state.h"
#include "http/fields.h"
#include "http/h1/h1_parse.h"

struct jn_stream;

/* Copies s's request for the upstream: method, authority, path and query,
 * and the fields of f (after forwarding fields), lower-cased and without
 * connection-specific ones. Returns 0 or JN_ENOMEM. */
int jn_h2up_prepare(struct jn_stream *s, const struct jn_fields *f, struct jn_slice path,
                    struct jn_slice query);
/* Sends the prepared request to s->server: on a session with room, or a new
 * one. Failures go through jn_proxy_upstream_fail, at once or later. */
void jn_h2up_start(struct jn_stream *s);
/* New request body bytes in s->req_out, or its end: let them go. */
void jn_h2up_push(struct jn_stream *s);
/* The proxy took n bytes out of s->resp_in: the window opens by as much. */
void jn_h2up_consumed(struct jn_stream *s, size_t n);
/* Why the upstream stream failed, or NULL; *status and *o say how to answer. */
const char *jn_h2up_error(const struct jn_stream *s, uint16_t *status, enum jn_outcome *o);
/* The response head, once it came: true with its status, fields and body
 * framing in m (LENGTH, CLOSE, or NONE when the stream ended with it). */
bool jn_h2up_head(struct jn_stream *s, uint16_t *status, struct jn_h1_message *m);
/* True while s has a stream on an upstream session. */
bool jn_h2up_attached(const struct jn_stream *s);
/* Lets go of the upstream stream (reset when the exchange did not end). */
void jn_h2up_release(struct jn_stream *s);
/* Installs the hook that frees sessions with their pool. */
void jn_h2up_init(void);

#endif
