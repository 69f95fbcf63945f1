/* The client side of a stream, whichever protocol carries it: an HTTP/1.1
 * connection (h1/h1_front.c) or one stream of an HTTP/2 connection
 * (h2/h2_server.c). The proxy builds protocol-neutral responses and calls
 * these to deliver them, so it never writes a status line or a frame. */
#ifndef JN_HTTP_FRONT_H
#define JN_HTTP_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/fields.h"
#include "http/h1/h1_parse.h"

struct jn_client;
struct jn_stream;

struct jn_front_ops {
    /* Sends a whole response made by Junction: f holds the fields without
     * framing, body is sent unless the request was HEAD. Sets s->status,
     * s->bytes_sent and ends the exchange (phase DONE). */
    void (*respond)(struct jn_stream *s, uint16_t status, struct jn_fields *f, const char *body,
                    size_t len);
    /* The client waits for a 100 Continue before its body: send it. */
    void (*continue_100)(struct jn_stream *s);
    /* Sends the head of a relayed response. f holds the upstream's fields
     * without hop-by-hop ones; m gives the upstream's body framing. Sets up
     * s->resp_body. */
    void (*response_head)(struct jn_stream *s, uint16_t status, struct jn_fields *f,
                          const struct jn_h1_message *m);
    /* Where response body bytes go (already in the client's framing). */
    struct jn_buf *(*body_out)(struct jn_stream *s);
    /* Moves request body bytes from the client to s->req_out. Returns 1 on
     * progress, 0 when stalled, -1 when the stream ended. */
    int (*pump_request)(struct jn_stream *s);
    /* Hands buffered output to the client. Returns 1 when bytes left, 0
     * otherwise, JN_EIO when the client is gone. */
    int (*flush)(struct jn_stream *s);
    /* True while response bytes wait in a buffer the stream must keep. */
    bool (*pending)(const struct jn_stream *s);
    /* True while s, carried by c, may still be used after a call that can
     * end it; must not read s when it may be freed. */
    bool (*alive)(const struct jn_client *c, const struct jn_stream *s);
    /* Ends the exchange at once, without a response (HTTP/1: the connection
     * closes; HTTP/2: the stream is reset). s may be freed (see alive). */
    void (*abort)(struct jn_stream *s);
    /* The exchange is over and logged: HTTP/1 frees s and goes on with the
     * connection; HTTP/2 frees it when the stream closes. */
    void (*done)(struct jn_stream *s);
    /* Something happened to s outside the client's own events (the
     * upstream, a queue): make all progress possible. */
    void (*wake)(struct jn_stream *s);
    /* The client side made progress, or is waiting on the client: re-arms
     * the client's inactivity timer. */
    void (*touch)(struct jn_stream *s);
};

extern const struct jn_front_ops jn_front_h1;

#endif
