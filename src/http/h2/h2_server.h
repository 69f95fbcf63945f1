/* HTTP/2 on the client side (RFC 9113), framing and HPACK by libnghttp2:
 * one server session per connection, each stream turned into the same
 * protocol-neutral stream an HTTP/1.1 request becomes. See docs/http2.md. */
#ifndef JN_HTTP_H2_SERVER_H
#define JN_HTTP_H2_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct jn_client;
struct jn_h2_conn;
struct jn_worker;

/* The client preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
#define JN_H2_PREFACE_LEN 24
/* 1 when p starts with the whole preface, 0 when it cannot be one, JN_EAGAIN
 * when the n bytes so far are a beginning of it. */
int jn_h2_preface(const char *p, size_t n);

/* Turns c into an HTTP/2 connection (after ALPN h2, or a preface seen in
 * c->in, which is left there for the session to read). Returns 0 or
 * JN_ENOMEM. */
int jn_h2_start(struct jn_client *c);
/* Makes all progress possible: frames in, streams driven, frames out. */
void jn_h2_drive(struct jn_client *c);
/* The connection's timer fired. */
void jn_h2_timeout(struct jn_client *c);
/* Graceful shutdown: GOAWAY; streams already begun go on to their end. */
void jn_h2_shutdown(struct jn_client *c);
/* Drives the connections whose streams were woken during the event batch
 * (before the batch's closed connections are freed). */
void jn_h2_run_deferred(struct jn_worker *w);
/* Frees the session and every stream (the connection is closing). */
void jn_h2_free(struct jn_client *c);

#endif
