/* The PROXY protocol (HAProxy's specification, versions 1 and 2): a header
 * sent to the server before any client byte, telling it who the client is. */
#ifndef JN_NET_PROXY_PROTOCOL_H
#define JN_NET_PROXY_PROTOCOL_H

#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"

/* The longest header: a version 1 line may take 107 bytes plus a NUL while
 * it is formatted; version 2 for IPv6 is 16 + 36 bytes. */
#define JN_PROXY_PROTOCOL_MAX 108

/* Writes the header of version v for a TCP connection from client to local
 * (the address the client connected to) into out, which holds cap bytes.
 * Addresses of different or unknown families give the "UNKNOWN" (v1) or
 * unspecified-family (v2) form, which servers accept and ignore. Returns the
 * header's length, or 0 when v is none or cap is below JN_PROXY_PROTOCOL_MAX. */
size_t jn_proxy_protocol_header(enum jn_proxy_protocol v, const struct sockaddr_storage *client,
                                const struct sockaddr_storage *local, char *out, size_t cap);

#endif
