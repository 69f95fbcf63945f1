/* SHA-256 for the request path (API keys, credential caches): OpenSSL's
 * one-shot SHA256() fetches the algorithm and allocates a context on every
 * call, which costs more than hashing a short key; this keeps one fetched
 * algorithm per process and one context per thread. */
#ifndef JN_TLS_DIGEST_H
#define JN_TLS_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* Writes the SHA-256 of data[0, len) to out. Returns 0, or JN_ENOMEM when
 * OpenSSL could not set up (out is then zeroed: callers treat it as no match). */
int jn_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
