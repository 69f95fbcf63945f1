/* The proxy: routes a stream, runs its filters, and relays it to an
 * upstream server or answers it locally. */
#ifndef JN_HTTP_PROXY_H
#define JN_HTTP_PROXY_H

#include "http/h1/h1_parse.h"
#include "http/stream.h"

/* Creates and starts the stream for a parsed request head on c (views into
 * c->in). On return the head bytes may be consumed from c->in. */
void jn_proxy_start(struct jn_client *c, const struct jn_h1_message *msg);
/* A new stream on c, its client side spoken by front (jn_front_h1, or an
 * HTTP/2 connection's). Returns NULL when out of memory. */
struct jn_stream *jn_stream_new(struct jn_client *c, const struct jn_front_ops *front);
/* Starts s for its request head m (views valid during the call): routing,
 * filters, then a local answer or the upstream. */
void jn_proxy_run(struct jn_stream *s, const struct jn_h1_message *m);
/* Answers s's request m with an error before it is routed (a head that
 * broke a limit): status and msg as jn_stream_respond_error. */
void jn_proxy_reject(struct jn_stream *s, const struct jn_h1_message *m, uint16_t status,
                     const char *msg);
/* The request body's framing was bad (*err says how), or the body passed
 * s->req_body.limit: 400 (413) when the response has not begun, else the
 * exchange is cut. Returns -1. */
int jn_proxy_bad_body(struct jn_stream *s, const char *err);
/* Decimal form of v in the stream's arena (Content-Length values). */
struct jn_slice jn_stream_u64(struct jn_stream *s, uint64_t v);
/* Makes all progress possible on the stream; may end it. */
void jn_proxy_drive(struct jn_stream *s);
/* Ends s on a client-side timeout or error: answers 408 if nothing was sent. */
void jn_proxy_client_timeout(struct jn_stream *s);
/* Ends s where it stands without freeing it: its upstream connection is
 * released (closed unless the exchange was complete) and it is logged. */
void jn_stream_settle(struct jn_stream *s);
/* Frees a stream and what it holds (upstream connection closed, not pooled). */
void jn_stream_free(struct jn_stream *s);
/* Frees the worker's cache of unused streams. */
void jn_stream_cache_destroy(struct jn_worker *w);

/* Writes a complete local response with a JSON error body
 * {"error": msg, "request_id": id} to out (the body left out, its length
 * kept, when answering HEAD). */
void jn_write_error(struct jn_buf *out, uint16_t status, const char *msg, const char *request_id,
                    bool close, bool head);
/* Answers s locally with a JSON error; a request body left unread makes
 * the connection close (filters that return JN_FILTER_RESPOND use it too). */
void jn_stream_respond_error(struct jn_stream *s, uint16_t status, const char *msg);
/* The same with extra response fields, copied before this returns. */
void jn_stream_respond_error_with(struct jn_stream *s, uint16_t status, const char *msg,
                                  const struct jn_http_field *extra, size_t nextra);
/* Called by jn_chain_resume: walks the rest of the chain with the held head,
 * then goes to the upstream or answers, and wakes the client side. */
void jn_proxy_resume(struct jn_stream *s);
/* Fills id (at least 33 bytes) with a new random request id. */
void jn_request_id_new(struct jn_worker *w, char *id, size_t size);

#endif
