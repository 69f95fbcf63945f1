/* The proxy: routes a stream, runs its filters, and relays it to an
 * upstream server or answers it locally. */
#ifndef JN_HTTP_PROXY_H
#define JN_HTTP_PROXY_H

#include "http/h1/h1_parse.h"
#include "http/stream.h"

/* Creates and starts the stream for a parsed request head on c (views into
 * c->in). On return the head bytes may be consumed from c->in. */
void jn_proxy_start(struct jn_client *c, const struct jn_h1_message *msg);
/* Makes all progress possible on the stream; may end it. */
void jn_proxy_drive(struct jn_stream *s);
/* Ends s on a client-side timeout or error: answers 408 if nothing was sent. */
void jn_proxy_client_timeout(struct jn_stream *s);
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
/* Fills id (at least 33 bytes) with a new random request id. */
void jn_request_id_new(struct jn_worker *w, char *id, size_t size);

#endif
