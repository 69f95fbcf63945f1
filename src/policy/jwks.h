/* JSON Web Keys (RFC 7517) for the jwt policy: a key set read from JWKS
 * JSON (a file, or fetched by jwks_fetch.c) into OpenSSL keys, shared by the
 * worker threads with a reference count, and the JOSE algorithms (RFC 7518)
 * the keys verify. Only jwt.c and its helpers include this header. */
#ifndef JN_POLICY_JWKS_H
#define JN_POLICY_JWKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evp_pkey_st;

/* The JWS algorithms, as bits of an allowed set. */
enum jn_jwt_alg {
    JN_JWT_HS256, JN_JWT_HS384, JN_JWT_HS512,
    JN_JWT_RS256, JN_JWT_RS384, JN_JWT_RS512,
    JN_JWT_PS256, JN_JWT_PS384, JN_JWT_PS512,
    JN_JWT_ES256, JN_JWT_ES384, JN_JWT_ES512,
    JN_JWT_EDDSA,
    JN_JWT_NALGS,
};

/* The key types a JWK may have (kty, and crv for EC and OKP). */
enum jn_jwk_kind {
    JN_JWK_OCT,   /* an HMAC secret */
    JN_JWK_RSA,
    JN_JWK_P256,  /* EC keys, one kind per curve: ES256 needs P-256 */
    JN_JWK_P384,
    JN_JWK_P521,
    JN_JWK_OKP,   /* Ed25519 or Ed448 (EdDSA) */
};

struct jn_jwk {
    char *kid;                /* owned; NULL when the key has none */
    int alg;                  /* the JWK's own alg (enum jn_jwt_alg), -1 when absent */
    enum jn_jwk_kind kind;
    struct evp_pkey_st *pkey; /* owned: public keys */
    unsigned char *secret;    /* owned: oct keys */
    size_t secret_len;
};

/* An immutable key set. Readers hold a reference while they verify. */
struct jn_jwks {
    atomic_uint refs;
    uint64_t id; /* unique in the process, never 0: names the set (token caches) */
    size_t n;
    struct jn_jwk keys[];
};

/* The algorithm named name ("RS256", "EdDSA"), or -1 (also for "none"). */
int jn_jwt_alg_find(const char *name, size_t len);
const char *jn_jwt_alg_name(int alg);
/* The key kind alg verifies with. */
enum jn_jwk_kind jn_jwt_alg_kind(int alg);

/* Decodes base64url without padding (RFC 7515 section 2) into out (room
 * for len * 3 / 4 bytes). Returns the decoded length, or -1 when in holds a
 * byte outside the alphabet, padding, or an impossible length. */
long jn_base64url_decode(const char *in, size_t len, unsigned char *out);

/* Parses a JWKS document ({"keys": [...]}, or one JWK object). Keys of a
 * type or use it cannot verify with (use: enc, kty it does not know) are
 * skipped; a malformed key of a known type is an error. Returns a set with
 * one reference, or NULL with a message in err (no usable key is an error). */
struct jn_jwks *jn_jwks_parse(const char *json, size_t len, char *err, size_t errcap);
/* A set of one oct key without kid: the raw secret of secret_file. */
struct jn_jwks *jn_jwks_from_secret(const unsigned char *secret, size_t len);
void jn_jwks_ref(struct jn_jwks *set);
/* Drops a reference; the last one frees the set. NULL is fine. */
void jn_jwks_unref(struct jn_jwks *set);

/* Converts a JOSE ECDSA signature (r || s, each half bytes) to DER for
 * OpenSSL. Returns the DER length written to der (room for cap bytes), or
 * -1 when sig is not 2 * half bytes or der is too small. */
long jn_jose_ecdsa_to_der(const unsigned char *sig, size_t len, size_t half, unsigned char *der,
                          size_t cap);

#endif
