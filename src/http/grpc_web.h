/* gRPC-Web to gRPC: requests with Content-Type
 * application/grpc-web[+proto|+json...] are sent to an HTTP/2 upstream as
 * application/grpc[...], and the response's trailers come back to the
 * client as the last frame of the body (flag 0x80), as Envoy's grpc_web
 * filter does. application/grpc-web-text[+...] is the same with both
 * bodies in base64. Recognised by content type alone. See docs/http2.md. */
#ifndef JN_HTTP_GRPC_WEB_H
#define JN_HTTP_GRPC_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "http/fields.h"
#include "http/h1/h1_parse.h"

struct jn_stream;

/* If f is a gRPC-Web request, rewrites its content type for gRPC and
 * returns 1 (binary) or 2 (text), else 0. */
int jn_grpc_web_request(struct jn_stream *s, struct jn_fields *f);
/* Text: decodes the base64 request bytes appended to s->req_out after
 * offset from, in place (a partial quantum is kept for the next call).
 * Returns 0, or JN_EINVAL on bytes that are not base64. */
int jn_grpc_web_decode(struct jn_stream *s, size_t from);
/* Text: encodes the raw response bytes at the tail of s->resp_in (whole
 * quanta, or everything once the upstream ended). Returns 0 or JN_ENOMEM. */
int jn_grpc_web_encode(struct jn_stream *s);
/* True when m (a response head) is gRPC's (application/grpc...). */
bool jn_grpc_web_is_grpc(const struct jn_h1_message *m);
/* Rewrites a gRPC response's content type (and drops its length, since a
 * frame is added) for a gRPC-Web client. */
void jn_grpc_web_response(struct jn_stream *s, struct jn_fields *f);
/* The trailers frame of s's response (grpc-status and the rest, as
 * "name:value\r\n" lines) in out, in base64 for text; returns its length,
 * 0 when it does not fit. */
size_t jn_grpc_web_trailers(const struct jn_stream *s, char *out, size_t cap);

#endif
