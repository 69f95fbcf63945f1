/* HTTP/1.1 Upgrade to WebSocket (RFC 6455 over RFC 9110 section 7.8): which
 * requests keep their Upgrade on the way upstream, the 101 answer, and the
 * byte tunnel that the connection becomes after it. See docs/proxying.md. */
#ifndef JN_HTTP_UPGRADE_H
#define JN_HTTP_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/fields.h"
#include "http/h1/h1_parse.h"
#include "http/stream.h"

/* True when m is a WebSocket handshake that Junction forwards as one: an
 * HTTP/1.1 GET without a body, whose Connection lists "upgrade" and whose
 * Upgrade lists "websocket" (both case-insensitive). Any other Upgrade (h2c
 * included) is dropped with the hop-by-hop fields. Reads m's header views. */
bool jn_upgrade_is_websocket(const struct jn_h1_message *m);
/* Adds "Connection: Upgrade" and "Upgrade: websocket" to a request or
 * response whose hop-by-hop fields were removed. Returns 0 or JN_ETOOBIG. */
int jn_upgrade_add_fields(struct jn_fields *f);
/* The upstream answered s's handshake with 101 (m, head_len bytes at the
 * start of s->resp_in). Forwards the 101 head to the client and turns s
 * into a tunnel (phase JN_STREAM_TUNNEL); a 101 to anything but websocket
 * fails the attempt with 502 instead. Returns 1 (progress) or -1 when s ended. */
int jn_upgrade_start(struct jn_stream *s, const struct jn_h1_message *m, size_t head_len);
/* Moves every byte that can move between the client and the upstream, in
 * both directions; closes the connection (and s with it) when both
 * directions ended or either side failed. */
void jn_upgrade_drive(struct jn_stream *s);

#endif
