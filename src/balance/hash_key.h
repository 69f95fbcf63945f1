/* The request key that hashing balancers (consistent_hash, ip_hash) place on
 * their ring: which part of a request to hash, and a strong 64-bit hash of it. */
#ifndef JN_BALANCE_HASH_KEY_H
#define JN_BALANCE_HASH_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/msg.h"

/* A 64-bit hash of len bytes: FNV-1a, then a finaliser so that keys that
 * differ in one byte land far apart in every bit (Maglev uses the low bits
 * for the slot and the high bits elsewhere). */
uint64_t jn_hash_bytes(const void *data, size_t len);

/* Hashes the part of req that hash_key names ("client_ip", "path",
 * "header:NAME", "cookie:NAME", "query:NAME"; the loader checked the syntax)
 * into *out. The first header field, cookie or query parameter of that name
 * counts; a query parameter's name and value are form-decoded first.
 * When the request lacks it, *out is the hash of client_ip instead, so that
 * such requests still spread (by client) rather than all landing on one
 * server; returns false in that case, true when the named part was hashed.
 * req->fields must be valid (they are during jn_proxy_start). */
bool jn_hash_key(const char *hash_key, const struct jn_http_request *req, const char *client_ip,
                 uint64_t *out);

/* The value of the first cookie called name (case-sensitive) in req's
 * Cookie fields; false when there is none. */
bool jn_request_cookie(const struct jn_http_request *req, const char *name, struct jn_slice *value);

#endif
