/* Unit tests of the jwt policy's helpers: base64url, the JOSE ECDSA
 * signature format, JWKS parsing, token decoding and the claim checks
 * (src/policy/jwks.c, src/policy/jwt_token.c). Signatures themselves are
 * checked end to end by tests/integration/test_jwt.py. */
#include <criterion/criterion.h>
#include <openssl/ecdsa.h>
#include <string.h>

#include "policy/jwks.h"
#include "policy/jwt_token.h"

static long decode(const char *in, unsigned char *out)
{
    return jn_base64url_decode(in, strlen(in), out);
}

Test(jwt, base64url_decodes_without_padding)
{
    unsigned char out[64];
    cr_assert_eq(decode("", out), 0);
    cr_assert_eq(decode("YQ", out), 1);
    cr_assert_eq(out[0], 'a');
    cr_assert_eq(decode("YWI", out), 2);
    cr_assert_eq(memcmp(out, "ab", 2), 0);
    cr_assert_eq(decode("YWJj", out), 3);
    cr_assert_eq(memcmp(out, "abc", 3), 0);
    cr_assert_eq(decode("-_8", out), 2); /* the URL alphabet: 0xfb 0xff */
    cr_assert_eq(out[0], 0xfb);
    cr_assert_eq(out[1], 0xff);
}

Test(jwt, base64url_refuses_padding_other_alphabets_and_bad_lengths)
{
    unsigned char out[64];
    cr_assert_eq(decode("YQ==", out), -1);
    cr_assert_eq(decode("+/8", out), -1);
    cr_assert_eq(decode("Y", out), -1);    /* 6 bits are no byte */
    cr_assert_eq(decode("YR", out), -1);   /* non-zero bits left over: a second encoding of 'a' */
    cr_assert_eq(decode("YW\nI", out), -1);
}

Test(jwt, jose_ecdsa_signature_becomes_der)
{
    unsigned char sig[64], der[80];
    memset(sig, 0, 32);
    sig[31] = 1; /* r = 1 */
    memset(sig + 32, 0xff, 32); /* s = 2^256 - 1: needs a leading zero in DER */
    long n = jn_jose_ecdsa_to_der(sig, 64, 32, der, sizeof(der));
    cr_assert_gt(n, 0);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, n);
    cr_assert_not_null(es);
    cr_assert(BN_is_one(ECDSA_SIG_get0_r(es)));
    cr_assert_eq(BN_num_bytes(ECDSA_SIG_get0_s(es)), 32);
    ECDSA_SIG_free(es);
    cr_assert_eq(jn_jose_ecdsa_to_der(sig, 63, 32, der, sizeof(der)), -1);
    cr_assert_eq(jn_jose_ecdsa_to_der(sig, 64, 32, der, 8), -1);
}

/* A P-256 public key and an HMAC secret (RFC 7515 appendix A.3 and A.1). */
static const char jwks[] =
    "{\"keys\": ["
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75"
    "aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"enc\",\"x\":\"!\",\"y\":\"!\"},"
    "{\"kty\":\"dunno\"}"
    "]}";

Test(jwt, jwks_parse_keeps_signing_keys_and_skips_the_rest)
{
    char err[200];
    struct jn_jwks *set = jn_jwks_parse(jwks, strlen(jwks), err, sizeof(err));
    cr_assert_not_null(set, "%s", err);
    cr_assert_eq(set->n, 2);
    cr_assert_str_eq(set->keys[0].kid, "ec");
    cr_assert_eq(set->keys[0].kind, JN_JWK_P256);
    cr_assert_eq(set->keys[1].kind, JN_JWK_OCT);
    cr_assert_eq(set->keys[1].secret_len, 64);
    jn_jwks_unref(set);
}

Test(jwt, jwks_parse_reports_bad_keys)
{
    static const char *const bad[] = {
        "{",
        "[]",
        "{\"keys\": []}",
        "{\"keys\": [{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",      /* 8 bits */
        "{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}",
        "{\"keys\": [{\"kty\":\"oct\",\"k\":\"\"}]}",
        "{\"keys\": [{\"kty\":\"oct\",\"k\":\"AQAB\",\"kid\":1}]}",
        "{\"keys\": [{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AQAB\"}]}",
        "{\"keys\": [{\"kty\":\"oct\",\"k\":\"AQAB\"}], \"keys\": []}", /* duplicate member */
    };
    char err[200];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct jn_jwks *set = jn_jwks_parse(bad[i], strlen(bad[i]), err, sizeof(err));
        cr_assert_null(set, "%s was accepted", bad[i]);
        cr_assert_gt(strlen(err), 0);
    }
}

/* The ES256 example token of RFC 7515 appendix A.3. */
static const char es256_token[] =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
    "cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

Test(jwt, rfc7515_es256_example_verifies_with_its_key)
{
    char err[200];
    struct jn_jwks *set = jn_jwks_parse(jwks, strlen(jwks), err, sizeof(err));
    cr_assert_not_null(set);
    struct jn_jwt t;
    cr_assert_eq(jn_jwt_decode(es256_token, strlen(es256_token), 1u << JN_JWT_ES256, &t),
                 JN_JWT_OK);
    cr_assert_eq(t.alg, JN_JWT_ES256);
    cr_assert_null(t.kid);
    cr_assert_eq(jn_jwt_verify(&t, set), JN_JWT_OK);
    /* The claims: exp 1300819380 is long gone. */
    struct jn_jwt_rules rules = { .issuer = "joe", .require_exp = true };
    cr_assert_eq(jn_jwt_check_claims(t.claims, &rules, 1300819379), JN_JWT_OK);
    cr_assert_eq(jn_jwt_check_claims(t.claims, &rules, 1300819380), JN_JWT_EXPIRED);
    rules.leeway_s = 30;
    cr_assert_eq(jn_jwt_check_claims(t.claims, &rules, 1300819400), JN_JWT_OK);
    rules.issuer = "ann";
    cr_assert_eq(jn_jwt_check_claims(t.claims, &rules, 1300819379), JN_JWT_BAD_ISSUER);
    jn_jwt_free(&t);
    /* One bit of the payload changed. */
    char copy[sizeof(es256_token)];
    memcpy(copy, es256_token, sizeof(copy));
    copy[30] = copy[30] == 'A' ? 'B' : 'A';
    if (jn_jwt_decode(copy, strlen(copy), 1u << JN_JWT_ES256, &t) == JN_JWT_OK) {
        cr_assert_eq(jn_jwt_verify(&t, set), JN_JWT_BAD_SIGNATURE);
        jn_jwt_free(&t);
    }
    jn_jwks_unref(set);
}

Test(jwt, decode_refuses_none_unlisted_algorithms_and_junk)
{
    struct jn_jwt t;
    /* {"alg":"none"} . {} . (empty) */
    const char *none = "eyJhbGciOiJub25lIn0.e30.";
    cr_assert_eq(jn_jwt_decode(none, strlen(none), ~0u, &t), JN_JWT_ALG_REFUSED);
    cr_assert_eq(jn_jwt_decode(es256_token, strlen(es256_token), 1u << JN_JWT_RS256, &t),
                 JN_JWT_ALG_REFUSED);
    static const char *const junk[] = { "", "a", "a.b", "a.b.c.d", "e30.e30.AAAA",
                                        "eyJhbGciOjF9.e30.AAAA" /* alg: 1 */ };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        cr_assert_eq(jn_jwt_decode(junk[i], strlen(junk[i]), ~0u, &t), JN_JWT_MALFORMED, "%s",
                     junk[i]);
}

Test(jwt, audience_may_be_a_string_or_a_list)
{
    char *auds[] = { "api", "web" };
    struct jn_jwt_rules rules = { .audiences = auds, .naudiences = 2 };
    json_t *c = json_pack("{s:s}", "aud", "web");
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 0), JN_JWT_OK);
    json_decref(c);
    c = json_pack("{s:[s,s]}", "aud", "x", "api");
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 0), JN_JWT_OK);
    json_decref(c);
    c = json_pack("{s:[s,i]}", "aud", "x", 1);
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 0), JN_JWT_BAD_AUDIENCE);
    json_decref(c);
    c = json_pack("{}");
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 0), JN_JWT_BAD_AUDIENCE);
    rules.require_exp = true;
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 0), JN_JWT_NO_EXP);
    json_decref(c);
    c = json_pack("{s:i, s:s}", "nbf", 100, "exp", "never");
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 0), JN_JWT_BAD_CLAIM);
    json_decref(c);
    c = json_pack("{s:i, s:i}", "nbf", 100, "exp", 200);
    rules.naudiences = 0;
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 50), JN_JWT_NOT_YET_VALID);
    cr_assert_eq(jn_jwt_check_claims(c, &rules, 100), JN_JWT_OK);
    json_decref(c);
}
