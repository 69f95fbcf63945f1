/* JSON Web Tokens (RFC 7519) in compact JWS form: decoding untrusted
 * bytes, verifying the signature against a key set with the algorithm
 * pinned by configuration and by the key, and checking the registered
 * claims. No I/O and no global state: the jwt policy and the fuzzer use it. */
#ifndef JN_POLICY_JWT_TOKEN_H
#define JN_POLICY_JWT_TOKEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/jwks.h"

#define JN_JWT_MAX_LEN 16384 /* bytes of a token; longer ones are refused */

/* A decoded token; owns its JSON and signature. */
struct jn_jwt {
    int alg;                /* enum jn_jwt_alg */
    const char *kid;        /* borrowed from header; NULL when absent */
    json_t *header;         /* owned */
    json_t *claims;         /* owned: the payload, an object */
    const char *signed_part; /* borrowed from the token: "header.payload" */
    size_t signed_len;
    unsigned char *sig;     /* owned */
    size_t sig_len;
};

/* What the claims must say. */
struct jn_jwt_rules {
    const char *issuer;       /* NULL: iss not checked */
    char *const *audiences;   /* aud must name one of them; NULL/0: not checked */
    size_t naudiences;
    uint64_t leeway_s;        /* clock skew allowed on exp and nbf */
    bool require_exp;         /* a token without exp is refused */
};

/* Results, each with a short message (jn_jwt_error). */
enum jn_jwt_result {
    JN_JWT_OK = 0,
    JN_JWT_MALFORMED,     /* not three base64url parts of JSON objects */
    JN_JWT_ALG_REFUSED,   /* alg not among the allowed ones (none always) */
    JN_JWT_UNKNOWN_KEY,   /* kid names no key of the set */
    JN_JWT_NO_KEY,        /* no key of the set fits the algorithm */
    JN_JWT_BAD_SIGNATURE,
    JN_JWT_EXPIRED,
    JN_JWT_NOT_YET_VALID,
    JN_JWT_NO_EXP,
    JN_JWT_BAD_ISSUER,
    JN_JWT_BAD_AUDIENCE,
    JN_JWT_BAD_CLAIM,     /* exp, nbf, iss or aud of the wrong type */
};

/* A static message for people: "token expired", "bad signature". */
const char *jn_jwt_error(enum jn_jwt_result r);

/* Decodes token (len bytes) into t: splits it, decodes the header (alg must
 * be a known algorithm allowed by the bit set allowed, typ if present must
 * be JWT), the claims (an object) and the signature. On success the caller
 * frees t with jn_jwt_free; on error t holds nothing to free. */
enum jn_jwt_result jn_jwt_decode(const char *token, size_t len, uint32_t allowed,
                                 struct jn_jwt *t);
void jn_jwt_free(struct jn_jwt *t);

/* Verifies t's signature with the keys of set: with a kid, the keys of that
 * kid; without, every key whose type fits t->alg. A key verifies only the
 * algorithms of its type, and only its own alg when it names one. */
enum jn_jwt_result jn_jwt_verify(const struct jn_jwt *t, const struct jn_jwks *set);

/* Checks exp, nbf, iss and aud at now (seconds since the epoch). */
enum jn_jwt_result jn_jwt_check_claims(const json_t *claims, const struct jn_jwt_rules *rules,
                                       int64_t now);

#endif
