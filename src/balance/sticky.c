/* Sticky-session cookies: tokens, lookup and the Set-Cookie value. */
#include "balance/sticky.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "balance/hash_key.h"

/* The server is known by its address (its identity), hashed with the
 * secret, or with the upstream's name when none is set: instances sharing a
 * configuration agree on the tokens, so a client keeps its server whichever
 * instance it reaches. */
void jn_sticky_token(const struct jn_cfg_upstream *up, size_t server,
                     char out[JN_STICKY_TOKEN_LEN + 1])
{
    const char *key = up->sticky.secret != NULL ? up->sticky.secret : up->name;
    const char *addr = up->servers[server].address;
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s\n%s\n%s", key, up->name, addr);
    size_t len = n < 0 ? 0 : JN_MIN((size_t)n, sizeof(buf) - 1);
    uint64_t h = jn_hash_bytes(buf, len);
    /* A second round over the first keeps short keys from being undone by
     * inverting one FNV pass. */
    h ^= jn_hash_bytes(&h, sizeof(h)) + jn_hash_bytes(key, strlen(key));
    snprintf(out, JN_STICKY_TOKEN_LEN + 1, "%016" PRIx64, h);
}

int jn_sticky_find(const struct jn_cfg_upstream *up, const char (*tokens)[JN_STICKY_TOKEN_LEN + 1],
                   struct jn_slice value)
{
    if (value.len != JN_STICKY_TOKEN_LEN)
        return -1;
    for (size_t i = 0; i < up->nservers; i++)
        if (memcmp(tokens[i], value.ptr, JN_STICKY_TOKEN_LEN) == 0)
            return (int)i;
    return -1;
}

size_t jn_sticky_set_cookie(const struct jn_cfg_upstream *up, const char *token, char *out,
                            size_t cap)
{
    int n;
    if (up->sticky.ttl > 0)
        n = snprintf(out, cap, "%s=%s; Path=/; Max-Age=%" PRIu64 "; HttpOnly; SameSite=Lax",
                     up->sticky.cookie, token, (up->sticky.ttl + 999) / 1000);
    else
        n = snprintf(out, cap, "%s=%s; Path=/; HttpOnly; SameSite=Lax", up->sticky.cookie, token);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
