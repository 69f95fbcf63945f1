/* Who the client is: the connection's peer, or, when the peer is one of
 * trusted_proxies, the address that X-Forwarded-For names (docs/policies.md). */
#ifndef JN_HTTP_CLIENT_ADDR_H
#define JN_HTTP_CLIENT_ADDR_H

#include "http/fields.h"

struct jn_stream;

/* Sets s->client_addr and s->client_ip from the peer and f's
 * X-Forwarded-For fields. */
void jn_client_addr_resolve(struct jn_stream *s, const struct jn_fields *f);

#endif
