/* JSON Web Tokens: decoding, signature verification with OpenSSL 3 EVP and
 * the registered claims. Every byte of a token is untrusted. */
#include "policy/jwt_token.h"

#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"

const char *jn_jwt_error(enum jn_jwt_result r)
{
    static const char *const text[] = {
        [JN_JWT_OK] = "ok",
        [JN_JWT_MALFORMED] = "malformed token",
        [JN_JWT_ALG_REFUSED] = "algorithm not allowed",
        [JN_JWT_UNKNOWN_KEY] = "unknown key",
        [JN_JWT_NO_KEY] = "no key for the algorithm",
        [JN_JWT_BAD_SIGNATURE] = "bad signature",
        [JN_JWT_EXPIRED] = "token expired",
        [JN_JWT_NOT_YET_VALID] = "token not yet valid",
        [JN_JWT_NO_EXP] = "token has no expiry",
        [JN_JWT_BAD_ISSUER] = "wrong issuer",
        [JN_JWT_BAD_AUDIENCE] = "wrong audience",
        [JN_JWT_BAD_CLAIM] = "invalid claim",
    };
    return r < JN_ARRAY_LEN(text) ? text[r] : "invalid token";
}

/* Decodes one base64url part into a fresh buffer (*out, owned by the caller). */
static long part_bytes(const char *p, size_t len, unsigned char **out)
{
    *out = malloc(len / 4 * 3 + 3);
    if (*out == NULL)
        return -1;
    long n = jn_base64url_decode(p, len, *out);
    if (n < 0) {
        free(*out);
        *out = NULL;
    }
    return n;
}

/* A base64url part holding a JSON object. */
static json_t *part_json(const char *p, size_t len)
{
    unsigned char *bytes;
    long n = part_bytes(p, len, &bytes);
    if (n <= 0) {
        free(bytes);
        return NULL;
    }
    json_t *v = json_loadb((const char *)bytes, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(bytes);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* The header's alg (allowed by the configuration) and kid. */
static enum jn_jwt_result read_header(struct jn_jwt *t, uint32_t allowed)
{
    json_t *alg = json_object_get(t->header, "alg"), *kid = json_object_get(t->header, "kid");
    json_t *typ = json_object_get(t->header, "typ"), *crit = json_object_get(t->header, "crit");
    if (!json_is_string(alg) || (kid != NULL && !json_is_string(kid)) ||
        (typ != NULL && !json_is_string(typ)))
        return JN_JWT_MALFORMED;
    /* Extensions it does not understand must make it refuse (RFC 7515 4.1.11). */
    if (crit != NULL)
        return JN_JWT_MALFORMED;
    if (typ != NULL && strcasecmp(json_string_value(typ), "JWT") != 0 &&
        strcasecmp(json_string_value(typ), "at+jwt") != 0)
        return JN_JWT_MALFORMED;
    t->alg = jn_jwt_alg_find(json_string_value(alg), json_string_length(alg));
    if (t->alg < 0 || (allowed & (1u << t->alg)) == 0)
        return JN_JWT_ALG_REFUSED; /* "none" is never a known algorithm */
    t->kid = kid != NULL ? json_string_value(kid) : NULL;
    return JN_JWT_OK;
}

enum jn_jwt_result jn_jwt_decode(const char *token, size_t len, uint32_t allowed,
                                 struct jn_jwt *t)
{
    memset(t, 0, sizeof(*t));
    if (len == 0 || len > JN_JWT_MAX_LEN)
        return JN_JWT_MALFORMED;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return JN_JWT_MALFORMED;
    enum jn_jwt_result r = JN_JWT_MALFORMED;
    t->header = part_json(token, (size_t)(dot1 - token));
    if (t->header == NULL || (r = read_header(t, allowed)) != JN_JWT_OK)
        goto fail;
    r = JN_JWT_MALFORMED;
    t->claims = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (t->claims == NULL)
        goto fail;
    long n = part_bytes(dot2 + 1, len - (size_t)(dot2 + 1 - token), &t->sig);
    if (n <= 0)
        goto fail;
    t->sig_len = (size_t)n;
    t->signed_part = token;
    t->signed_len = (size_t)(dot2 - token);
    return JN_JWT_OK;
fail:
    jn_jwt_free(t);
    return r;
}

void jn_jwt_free(struct jn_jwt *t)
{
    json_decref(t->header);
    json_decref(t->claims);
    free(t->sig);
    memset(t, 0, sizeof(*t));
}

static const EVP_MD *alg_md(int alg)
{
    switch (alg) {
    case JN_JWT_HS256: case JN_JWT_RS256: case JN_JWT_PS256: case JN_JWT_ES256:
        return EVP_sha256();
    case JN_JWT_HS384: case JN_JWT_RS384: case JN_JWT_PS384: case JN_JWT_ES384:
        return EVP_sha384();
    case JN_JWT_HS512: case JN_JWT_RS512: case JN_JWT_PS512: case JN_JWT_ES512:
        return EVP_sha512();
    default:
        return NULL; /* EdDSA hashes internally */
    }
}

static bool verify_hmac(const struct jn_jwt *t, const struct jn_jwk *k)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(alg_md(t->alg), k->secret, (int)k->secret_len, (const unsigned char *)t->signed_part,
             t->signed_len, mac, &len) == NULL)
        return false;
    return len == t->sig_len && CRYPTO_memcmp(mac, t->sig, len) == 0;
}

static bool verify_pkey(const struct jn_jwt *t, const struct jn_jwk *k)
{
    static const size_t ec_half[] = { [JN_JWT_ES256] = 32, [JN_JWT_ES384] = 48,
                                      [JN_JWT_ES512] = 66 };
    unsigned char der[2 * 66 + 16];
    const unsigned char *sig = t->sig;
    size_t sig_len = t->sig_len;
    if (t->alg >= JN_JWT_ES256 && t->alg <= JN_JWT_ES512) {
        long n = jn_jose_ecdsa_to_der(t->sig, t->sig_len, ec_half[t->alg], der, sizeof(der));
        if (n < 0)
            return false;
        sig = der;
        sig_len = (size_t)n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, &pctx, alg_md(t->alg), NULL, k->pkey) == 1;
    if (ok && t->alg >= JN_JWT_PS256 && t->alg <= JN_JWT_PS512)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)t->signed_part,
                                t->signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* The key may verify this token's algorithm: its type, and its own alg. */
static bool key_fits(const struct jn_jwk *k, int alg)
{
    return k->kind == jn_jwt_alg_kind(alg) && (k->alg < 0 || k->alg == alg);
}

enum jn_jwt_result jn_jwt_verify(const struct jn_jwt *t, const struct jn_jwks *set)
{
    bool kid_seen = false, fitting = false;
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        const struct jn_jwk *k = &set->keys[i];
        if (t->kid != NULL && (k->kid == NULL || strcmp(k->kid, t->kid) != 0))
            continue;
        kid_seen = true;
        if (!key_fits(k, t->alg))
            continue;
        fitting = true;
        bool ok = k->kind == JN_JWK_OCT ? verify_hmac(t, k) : verify_pkey(t, k);
        if (ok)
            return JN_JWT_OK;
    }
    if (t->kid != NULL && !kid_seen)
        return JN_JWT_UNKNOWN_KEY;
    return fitting ? JN_JWT_BAD_SIGNATURE : JN_JWT_NO_KEY;
}

static bool audience_ok(const json_t *aud, const struct jn_jwt_rules *rules)
{
    for (size_t i = 0; i < rules->naudiences; i++) {
        if (json_is_string(aud) && strcmp(json_string_value(aud), rules->audiences[i]) == 0)
            return true;
        size_t j;
        json_t *v;
        json_array_foreach (aud, j, v)
            if (json_is_string(v) && strcmp(json_string_value(v), rules->audiences[i]) == 0)
                return true;
    }
    return false;
}

enum jn_jwt_result jn_jwt_check_claims(const json_t *claims, const struct jn_jwt_rules *rules,
                                       int64_t now)
{
    const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    const json_t *iss = json_object_get(claims, "iss"), *aud = json_object_get(claims, "aud");
    double leeway = (double)rules->leeway_s, t = (double)now;
    if ((exp != NULL && !json_is_number(exp)) || (nbf != NULL && !json_is_number(nbf)))
        return JN_JWT_BAD_CLAIM;
    if (exp == NULL && rules->require_exp)
        return JN_JWT_NO_EXP;
    /* RFC 7519 4.1.4: the current time must be before exp. */
    if (exp != NULL && !(t < json_number_value(exp) + leeway))
        return JN_JWT_EXPIRED;
    if (nbf != NULL && !(t + leeway >= json_number_value(nbf)))
        return JN_JWT_NOT_YET_VALID;
    if (rules->issuer != NULL &&
        (!json_is_string(iss) || strcmp(json_string_value(iss), rules->issuer) != 0))
        return JN_JWT_BAD_ISSUER;
    if (rules->naudiences > 0 && !audience_ok(aud, rules))
        return JN_JWT_BAD_AUDIENCE;
    return JN_JWT_OK;
}
