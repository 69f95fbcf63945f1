/* Session persistence (sticky: { cookie, ttl }), independent of the
 * balancing algorithm: a cookie names the server that answered a client's
 * first request, and later requests carrying it go back there while it is
 * usable. The cookie's value is a keyed hash of the server's identity, so it
 * does not reveal the server's address. */
#ifndef JN_BALANCE_STICKY_H
#define JN_BALANCE_STICKY_H

#include <stddef.h>

#include "config/config.h"
#include "core/common.h"

#define JN_STICKY_TOKEN_LEN 16 /* hex digits */

/* Writes server's cookie value (JN_STICKY_TOKEN_LEN hex digits and a NUL). */
void jn_sticky_token(const struct jn_cfg_upstream *up, size_t server,
                     char out[JN_STICKY_TOKEN_LEN + 1]);

/* The server whose token is value, or -1. tokens holds up->nservers tokens
 * made by jn_sticky_token. */
int jn_sticky_find(const struct jn_cfg_upstream *up, const char (*tokens)[JN_STICKY_TOKEN_LEN + 1],
                   struct jn_slice value);

/* Writes the Set-Cookie value for server into out (cap bytes); returns its
 * length, or 0 when it does not fit. */
size_t jn_sticky_set_cookie(const struct jn_cfg_upstream *up, const char *token, char *out,
                            size_t cap);

#endif
