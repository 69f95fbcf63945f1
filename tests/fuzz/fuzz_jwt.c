/* libFuzzer target for the jwt policy's readers of untrusted bytes: the
 * token decoder, signature verification and claim checks over a fixed key
 * set (RSA, P-256, Ed25519 and an HMAC secret), and the JWKS parser (a
 * jwks_url answer is untrusted too). Input: the first byte picks the reader
 * (even: a token, odd: a JWKS document); the rest is its input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/jwks.h"
#include "policy/jwt_token.h"

static const char jwks_json[] =
    "{\"keys\": [{\"kty\": \"RSA\", \"key_ops\": [\"verify\"], \"n\": \"5z-Q-WN8bEJIiYXlWi16V8t"
    "LASEQ9s9xIcDz5sVHy-wsQwChY-6oPKPEozFkrzwm3V7WzgqJy1Mg-_OwDwqlDa49DusRt85Vpy0dxgoDQo51N4f2E"
    "tYccYB0VsG2E4ZAS1uR_j2EJnjwU7hvxKKhEL0BuF4YfcIc0x6LsLd2CzxCif2aG2z78_bmp4CtLa2oylYlO5CMEzt"
    "xORzWhrOEVDsRSPXH7zI-Rk_Vh0rLRE6rPTXj4GZAqxNcbpcPrnkAhhfvn5IOQwb-VHfwR1PXdKFkHjnz_CbybK-P7"
    "U-Qmcv9pe_m3WmQNYlDt1_w4K3b9TsCFLS2Dea5xzORcJ9bhQ\", \"e\": \"AQAB\", \"kid\": \"r\"}, {\""
    "kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"XHycbqmPQP2oW06-mQh5ysQT6GXQLh5JOQifgpRQBgI\","
    " \"y\": \"fVPZ7aGOI6CqTrjR2LD-P9woRFzM9uuSwWMWW9Oicz4\", \"kid\": \"e\"}, {\"x\": \"r4yiRs"
    "Ud9A54x3d9UDXLDZlQ1LsxgQafQ4jEvUY-qxY\", \"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": "
    "\"d\"}, {\"k\": \"ZnV6emluZyBzZWNyZXQgZnV6emluZyBzZWNyZXQhISE\", \"kty\": \"oct\", \"kid\""
    ": \"h\"}]}";

static struct jn_jwks *fixed;

static void token(const char *p, size_t len)
{
    static char *const audiences[] = { "api" };
    const struct jn_jwt_rules rules = { .issuer = "https://i", .audiences = audiences,
                                        .naudiences = 1, .leeway_s = 30, .require_exp = true };
    struct jn_jwt t;
    if (jn_jwt_decode(p, len, (1u << JN_JWT_NALGS) - 1, &t) != JN_JWT_OK)
        return;
    if (t.signed_part != p || t.signed_len >= len || t.alg < 0 || t.alg >= JN_JWT_NALGS)
        abort();
    enum jn_jwt_result r = jn_jwt_verify(&t, fixed);
    enum jn_jwt_result c = jn_jwt_check_claims(t.claims, &rules, 1700000000);
    if (jn_jwt_error(r) == NULL || jn_jwt_error(c) == NULL)
        abort();
    jn_jwt_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (fixed == NULL && (fixed = jn_jwks_parse(jwks_json, strlen(jwks_json), err,
                                                sizeof(err))) == NULL)
        abort();
    if (size < 1)
        return 0;
    /* A copy so that ASan sees any read past the end. */
    char *copy = malloc(size - 1 + 1);
    memcpy(copy, data + 1, size - 1);
    if (data[0] % 2 == 0) {
        token(copy, size - 1);
    } else {
        struct jn_jwks *set = jn_jwks_parse(copy, size - 1, err, sizeof(err));
        if (set != NULL && set->n == 0)
            abort();
        jn_jwks_unref(set);
    }
    free(copy);
    return 0;
}
