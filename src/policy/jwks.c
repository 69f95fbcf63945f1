/* JSON Web Keys: JWKS documents into OpenSSL 3 keys (RSA from n and e, EC
 * from crv, x and y, Ed25519/Ed448 from x, HMAC secrets from k), the JOSE
 * algorithm table, base64url and the JOSE ECDSA signature format. */
#include "policy/jwks.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWK_FIELD_MAX 1024 /* decoded bytes of one key field: RSA 8192 bits is 1024 */
#define RSA_MIN_BITS 2048  /* RFC 7518 3.3: smaller RSA keys must not be used */

static const struct {
    const char *name;
    enum jn_jwk_kind kind;
} algs[JN_JWT_NALGS] = {
    [JN_JWT_HS256] = { "HS256", JN_JWK_OCT },  [JN_JWT_HS384] = { "HS384", JN_JWK_OCT },
    [JN_JWT_HS512] = { "HS512", JN_JWK_OCT },  [JN_JWT_RS256] = { "RS256", JN_JWK_RSA },
    [JN_JWT_RS384] = { "RS384", JN_JWK_RSA },  [JN_JWT_RS512] = { "RS512", JN_JWK_RSA },
    [JN_JWT_PS256] = { "PS256", JN_JWK_RSA },  [JN_JWT_PS384] = { "PS384", JN_JWK_RSA },
    [JN_JWT_PS512] = { "PS512", JN_JWK_RSA },  [JN_JWT_ES256] = { "ES256", JN_JWK_P256 },
    [JN_JWT_ES384] = { "ES384", JN_JWK_P384 }, [JN_JWT_ES512] = { "ES512", JN_JWK_P521 },
    [JN_JWT_EDDSA] = { "EdDSA", JN_JWK_OKP },
};

int jn_jwt_alg_find(const char *name, size_t len)
{
    for (int i = 0; i < JN_JWT_NALGS; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0)
            return i;
    return -1;
}

const char *jn_jwt_alg_name(int alg)
{
    return alg >= 0 && alg < JN_JWT_NALGS ? algs[alg].name : "?";
}

enum jn_jwk_kind jn_jwt_alg_kind(int alg)
{
    return algs[alg].kind;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

long jn_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* The bits left over must be zero: one encoding per byte string. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)n;
}

long jn_jose_ecdsa_to_der(const unsigned char *sig, size_t len, size_t half, unsigned char *der,
                          size_t cap)
{
    if (len != 2 * half)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    long out = -1;
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    int n = i2d_ECDSA_SIG(es, NULL);
    if (n > 0 && (size_t)n <= cap) {
        unsigned char *p = der;
        out = i2d_ECDSA_SIG(es, &p);
    }
    ECDSA_SIG_free(es); /* frees r and s */
    return out;
}

/* A base64url member of a JWK, decoded into out (JWK_FIELD_MAX bytes). */
static long member_bytes(json_t *jwk, const char *name, unsigned char *out, char *err,
                         size_t errcap)
{
    json_t *v = json_object_get(jwk, name);
    const char *text = json_string_value(v);
    size_t len = json_string_length(v);
    long n = -1;
    if (text != NULL && len > 0 && len / 4 * 3 <= JWK_FIELD_MAX - 3)
        n = jn_base64url_decode(text, len, out);
    if (n <= 0)
        snprintf(err, errcap, "\"%s\" must be a non-empty base64url string", name);
    return n;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *rsa_key(json_t *jwk, char *err, size_t errcap)
{
    unsigned char n[JWK_FIELD_MAX], e[JWK_FIELD_MAX];
    long nlen = member_bytes(jwk, "n", n, err, errcap);
    long elen = nlen > 0 ? member_bytes(jwk, "e", e, err, errcap) : -1;
    if (elen <= 0)
        return NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    EVP_PKEY *pkey = NULL;
    if (bld != NULL && bn != NULL && be != NULL && BN_num_bits(bn) < RSA_MIN_BITS) {
        snprintf(err, errcap, "RSA key of %d bits: at least %d are required", BN_num_bits(bn),
                 RSA_MIN_BITS);
    } else if (bld != NULL && bn != NULL && be != NULL &&
               OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
               OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1) {
        pkey = from_params("RSA", bld);
        if (pkey == NULL)
            snprintf(err, errcap, "invalid RSA key");
    } else {
        snprintf(err, errcap, "out of memory");
    }
    BN_free(bn);
    BN_free(be);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* A public key OpenSSL accepts to build may still be a point off its curve. */
static bool public_check(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *ec_key(json_t *jwk, enum jn_jwk_kind kind, char *err, size_t errcap)
{
    static const char *const groups[] = { "P-256", "P-384", "P-521" };
    static const size_t sizes[] = { 32, 48, 66 };
    size_t i = kind - JN_JWK_P256, size = sizes[i];
    unsigned char x[JWK_FIELD_MAX], y[JWK_FIELD_MAX], point[1 + 2 * 66];
    long xlen = member_bytes(jwk, "x", x, err, errcap);
    long ylen = xlen > 0 ? member_bytes(jwk, "y", y, err, errcap) : -1;
    if (ylen <= 0)
        return NULL;
    /* RFC 7518 6.2.1.2 wants full-length coordinates, but some encoders
     * drop leading zero bytes: they are put back (the point is checked). */
    if ((size_t)xlen > size || (size_t)ylen > size) {
        snprintf(err, errcap, "%s coordinates must be %zu bytes", groups[i], size);
        return NULL;
    }
    memset(point, 0, sizeof(point));
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1 + size - (size_t)xlen, x, (size_t)xlen);
    memcpy(point + 1 + 2 * size - (size_t)ylen, y, (size_t)ylen);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, groups[i], 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size) == 1)
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (pkey != NULL && !public_check(pkey)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    if (pkey == NULL)
        snprintf(err, errcap, "invalid %s key (not a point of the curve)", groups[i]);
    return pkey;
}

static EVP_PKEY *okp_key(json_t *jwk, char *err, size_t errcap)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    unsigned char x[JWK_FIELD_MAX];
    int type = crv == NULL ? 0 : strcmp(crv, "Ed25519") == 0 ? EVP_PKEY_ED25519
                             : strcmp(crv, "Ed448") == 0     ? EVP_PKEY_ED448
                                                             : 0;
    if (type == 0) {
        snprintf(err, errcap, "OKP key: crv must be Ed25519 or Ed448");
        return NULL;
    }
    long xlen = member_bytes(jwk, "x", x, err, errcap);
    if (xlen <= 0)
        return NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(type, NULL, x, (size_t)xlen);
    if (pkey == NULL)
        snprintf(err, errcap, "invalid %s key", crv);
    return pkey;
}

/* The kind of a JWK from kty and crv; false for a type it skips. */
static bool jwk_kind(json_t *jwk, enum jn_jwk_kind *kind)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    if (kty == NULL)
        return false;
    if (strcmp(kty, "oct") == 0)
        *kind = JN_JWK_OCT;
    else if (strcmp(kty, "RSA") == 0)
        *kind = JN_JWK_RSA;
    else if (strcmp(kty, "OKP") == 0)
        *kind = JN_JWK_OKP;
    else if (strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-256") == 0)
        *kind = JN_JWK_P256;
    else if (strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-384") == 0)
        *kind = JN_JWK_P384;
    else if (strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-521") == 0)
        *kind = JN_JWK_P521;
    else
        return false;
    return true;
}

/* Fills k from one JWK. Returns 1 when read, 0 when skipped, -1 on error. */
static int read_jwk(json_t *jwk, struct jn_jwk *k, char *err, size_t errcap)
{
    if (!json_is_object(jwk)) {
        snprintf(err, errcap, "a key must be an object");
        return -1;
    }
    const char *use = json_string_value(json_object_get(jwk, "use"));
    if ((use != NULL && strcmp(use, "sig") != 0) || !jwk_kind(jwk, &k->kind))
        return 0;
    json_t *alg = json_object_get(jwk, "alg"), *kid = json_object_get(jwk, "kid");
    k->alg = -1;
    if (alg != NULL) {
        const char *name = json_string_value(alg);
        k->alg = name != NULL ? jn_jwt_alg_find(name, json_string_length(alg)) : -1;
        if (k->alg < 0 || jn_jwt_alg_kind(k->alg) != k->kind)
            return 0; /* an algorithm this key type cannot verify with here */
    }
    if (kid != NULL && !json_is_string(kid)) {
        snprintf(err, errcap, "\"kid\" must be a string");
        return -1;
    }
    unsigned char secret[JWK_FIELD_MAX];
    long slen;
    switch (k->kind) {
    case JN_JWK_OCT:
        if ((slen = member_bytes(jwk, "k", secret, err, errcap)) <= 0 ||
            (k->secret = malloc((size_t)slen)) == NULL)
            return -1;
        memcpy(k->secret, secret, (size_t)slen);
        k->secret_len = (size_t)slen;
        break;
    case JN_JWK_RSA:
        k->pkey = rsa_key(jwk, err, errcap);
        break;
    case JN_JWK_OKP:
        k->pkey = okp_key(jwk, err, errcap);
        break;
    default:
        k->pkey = ec_key(jwk, k->kind, err, errcap);
        break;
    }
    if (k->kind != JN_JWK_OCT && k->pkey == NULL)
        return -1;
    if (kid != NULL && (k->kid = strdup(json_string_value(kid))) == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    return 1;
}

static struct jn_jwks *set_new(size_t n)
{
    static atomic_uint_fast64_t last_id;
    struct jn_jwks *set = calloc(1, sizeof(*set) + n * sizeof(set->keys[0]));
    if (set != NULL) {
        atomic_init(&set->refs, 1);
        set->id = atomic_fetch_add_explicit(&last_id, 1, memory_order_relaxed) + 1;
    }
    return set;
}

static void key_free(struct jn_jwk *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    if (k->secret != NULL)
        OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
}

struct jn_jwks *jn_jwks_parse(const char *json, size_t len, char *err, size_t errcap)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errcap, "invalid JSON at line %d: %s", jerr.line, jerr.text);
        return NULL;
    }
    json_t *list = json_object_get(root, "keys"), *one = NULL;
    if (list == NULL && json_object_get(root, "kty") != NULL)
        one = root; /* a single JWK */
    else if (!json_is_array(list)) {
        snprintf(err, errcap, "expected an object with a \"keys\" list");
        json_decref(root);
        return NULL;
    }
    size_t n = one != NULL ? 1 : json_array_size(list);
    struct jn_jwks *set = set_new(n);
    if (set == NULL) {
        snprintf(err, errcap, "out of memory");
        json_decref(root);
        return NULL;
    }
    char why[160];
    for (size_t i = 0; i < n; i++) {
        int rc = read_jwk(one != NULL ? one : json_array_get(list, i), &set->keys[set->n], why,
                          sizeof(why));
        if (rc < 0) {
            snprintf(err, errcap, "key %zu: %s", i + 1, why);
            key_free(&set->keys[set->n]);
            goto fail;
        }
        if (rc == 1)
            set->n++;
        else
            key_free(&set->keys[set->n]), memset(&set->keys[set->n], 0, sizeof(set->keys[0]));
    }
    if (set->n == 0) {
        snprintf(err, errcap, "no key usable for signatures (kty oct, RSA, EC or OKP)");
        goto fail;
    }
    json_decref(root);
    return set;
fail:
    json_decref(root);
    jn_jwks_unref(set);
    return NULL;
}

struct jn_jwks *jn_jwks_from_secret(const unsigned char *secret, size_t len)
{
    struct jn_jwks *set = set_new(1);
    if (set == NULL || (set->keys[0].secret = malloc(len ? len : 1)) == NULL) {
        free(set);
        return NULL;
    }
    memcpy(set->keys[0].secret, secret, len);
    set->keys[0].secret_len = len;
    set->keys[0].kind = JN_JWK_OCT;
    set->keys[0].alg = -1;
    set->n = 1;
    return set;
}

void jn_jwks_ref(struct jn_jwks *set)
{
    atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
}

void jn_jwks_unref(struct jn_jwks *set)
{
    if (set == NULL || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < set->n; i++)
        key_free(&set->keys[i]);
    free(set);
}
