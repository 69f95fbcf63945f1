/* HTTP/1.1 serialisation of protocol-neutral heads, and the hop-by-hop rules
 * (RFC 9110 section 7.6.1) applied before a head crosses the proxy. */
#ifndef JN_HTTP_H1_WRITE_H
#define JN_HTTP_H1_WRITE_H

#include "core/buf.h"
#include "http/fields.h"

/* Removes Connection and every field it names, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-Connection and Content-Length (framing is
 * re-applied by the writer of the other side). */
void jn_h1_strip_hop_by_hop(struct jn_fields *f);

/* Writes "METHOD target HTTP/1.1", the fields and the blank line. Returns 0 or JN_ENOMEM. */
int jn_h1_write_request_head(struct jn_buf *out, struct jn_slice method, struct jn_slice path,
                             struct jn_slice query, const struct jn_fields *f);
/* Writes a status line, the fields and the blank line. Returns 0 or JN_ENOMEM. */
int jn_h1_write_response_head(struct jn_buf *out, uint16_t status, const struct jn_fields *f);

/* The standard reason phrase of a status code ("Not Found"), "" if unknown. */
const char *jn_http_reason(uint16_t status);

#endif
