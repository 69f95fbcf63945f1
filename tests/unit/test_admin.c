/* Unit tests of the admin API's pure helpers (src/admin/api.c: path
 * decoding, the token check) and of the configuration's redaction and token
 * trimming (src/config/load_json.c, load_admin.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "admin/api.h"
#include "config/config.h"

static long decode(const char *in, char *out, size_t cap)
{
    return jn_admin_pct_decode(in, strlen(in), out, cap);
}

Test(admin_path, percent_decoding)
{
    char out[64];
    cr_assert_eq(decode("127.0.0.1%3A9002", out, sizeof(out)), 14);
    cr_assert_str_eq(out, "127.0.0.1:9002");
    cr_assert_eq(decode("%5b%3A%3a1%5D%3a80", out, sizeof(out)), 8);
    cr_assert_str_eq(out, "[::1]:80");
    cr_assert_eq(decode("plain", out, sizeof(out)), 5);
    cr_assert_eq(decode("", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "");
}

Test(admin_path, bad_escapes_are_refused)
{
    char out[64];
    cr_assert_eq(decode("%", out, sizeof(out)), -1);
    cr_assert_eq(decode("%4", out, sizeof(out)), -1);
    cr_assert_eq(decode("a%zz", out, sizeof(out)), -1);
    cr_assert_eq(decode("a%00b", out, sizeof(out)), -1, "NUL would cut the name");
    cr_assert_eq(decode("a%2Fb", out, sizeof(out)), -1, "a slash is never inside a segment");
    cr_assert_eq(decode("abcd", out, 4), -1, "no room for the NUL");
    cr_assert_eq(decode("abc", out, 4), 3);
}

static int split(const char *target, struct jn_admin_path *p)
{
    return jn_admin_split_path((struct jn_slice){ target, strlen(target) }, p);
}

Test(admin_path, splitting)
{
    struct jn_admin_path p;
    cr_assert_eq(split("/", &p), 0);
    cr_assert_eq(p.n, 0);
    cr_assert_eq(split("/status?x=1/2", &p), 0);
    cr_assert_eq(p.n, 1);
    cr_assert_str_eq(p.seg[0], "status");
    cr_assert_eq(split("/upstreams/app/servers/127.0.0.1%3A80", &p), 0);
    cr_assert_eq(p.n, 4);
    cr_assert_str_eq(p.seg[1], "app");
    cr_assert_str_eq(p.seg[3], "127.0.0.1:80");
    cr_assert_eq(split("/a/b/c/d/e", &p), JN_ETOOBIG);
    cr_assert_eq(split("", &p), JN_EINVAL);
    cr_assert_eq(split("status", &p), JN_EINVAL);
    cr_assert_eq(split("//status", &p), JN_EINVAL);
    cr_assert_eq(split("/status/", &p), JN_EINVAL);
    cr_assert_eq(split("/a%2f", &p), JN_EINVAL);
    cr_assert_eq(split("?x", &p), JN_EINVAL);
}

static bool token_ok(const char *auth, const char *token)
{
    return jn_admin_token_ok((struct jn_slice){ auth, auth ? strlen(auth) : 0 }, token,
                             token ? strlen(token) : 0);
}

Test(admin_token, bearer_and_exact_token)
{
    cr_assert(token_ok("Bearer s3cret", "s3cret"));
    cr_assert(token_ok("bearer s3cret", "s3cret"));
    cr_assert(token_ok("BEARER s3cret", "s3cret"));
    cr_assert_not(token_ok("Bearer s3cre", "s3cret"));
    cr_assert_not(token_ok("Bearer s3cret2", "s3cret"));
    cr_assert_not(token_ok("Bearer S3cret", "s3cret"));
    cr_assert_not(token_ok("Bearer  s3cret", "s3cret"));
    cr_assert_not(token_ok("Basic s3cret", "s3cret"));
    cr_assert_not(token_ok("s3cret", "s3cret"));
    cr_assert_not(token_ok("Bearer ", "s3cret"));
    cr_assert_not(token_ok(NULL, "s3cret"));
    cr_assert_not(token_ok("Bearer s3cret", NULL), "no token configured: nothing matches");
}

static bool secret(const char *a, const char *b, const char *c, const char *d)
{
    const char *keys[4] = { a, b, c, d };
    size_t n = d ? 4 : c ? 3 : b ? 2 : 1;
    return jn_cfg_is_secret(keys, n);
}

Test(config_redact, secret_bearing_keys)
{
    cr_assert(secret("upstreams", "app", "sticky", "secret"));
    cr_assert(secret("consumers", NULL, "api_keys", NULL) == false);
    const char *key[] = { "consumers", NULL, "api_keys", NULL, "key" };
    cr_assert(jn_cfg_is_secret(key, 5));
    const char *sha[] = { "consumers", NULL, "api_keys", NULL, "sha256" };
    cr_assert(jn_cfg_is_secret(sha, 5));
    cr_assert(secret("consumers", NULL, "basic", "password_hash"));
    cr_assert(secret("routes", NULL, "token", NULL));
    cr_assert(secret("match", "headers", "Authorization", NULL));
    cr_assert(secret("request_headers", "set", "X-Api-Key", NULL));
    cr_assert(secret("response_headers", "add", "Set-Cookie", NULL));
    cr_assert(secret("match", "query", "access_token", NULL));
}

Test(config_redact, ordinary_keys_are_shown)
{
    cr_assert_not(secret("policies", NULL, "rate_limit", "key"), "a limit's key is its kind");
    cr_assert_not(secret("listeners", NULL, "tls", "certificates"));
    const char *tls_key[] = { "listeners", NULL, "tls", "certificates", NULL, "key" };
    cr_assert_not(jn_cfg_is_secret(tls_key, 6), "a key file's path is fine to show");
    cr_assert_not(secret("request_headers", "set", "X-Plain", NULL));
    cr_assert_not(secret("admin", "token_file", NULL, NULL));
    cr_assert_not(secret("jwt", "secret_file", NULL, NULL));
    cr_assert_not(jn_cfg_is_secret(NULL, 0));
}

Test(config_token, trailing_newline_dropped)
{
    cr_assert_eq(jn_cfg_token_trim("abc\n", 4), 3);
    cr_assert_eq(jn_cfg_token_trim("abc\r\n", 5), 3);
    cr_assert_eq(jn_cfg_token_trim("abc", 3), 3);
    cr_assert_eq(jn_cfg_token_trim("abc\n\n", 5), 4, "only one newline");
    cr_assert_eq(jn_cfg_token_trim("\n", 1), 0);
    cr_assert_eq(jn_cfg_token_trim("", 0), 0);
}

static struct jn_config *load(const char *yaml)
{
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_buffer("t.yaml", yaml, strlen(yaml), &errs);
    for (size_t i = 0; i < errs.count; i++)
        cr_log_error("%s", errs.msgs[i]);
    jn_cfg_errors_free(&errs);
    return cfg;
}

Test(config_json, document_as_json_with_types_and_redaction)
{
    struct jn_config *cfg = load("workers: 2\n"
                                 "listeners: [ { name: p, address: '127.0.0.1:1' } ]\n"
                                 "upstreams:\n"
                                 "  a:\n"
                                 "    sticky: { cookie: c, secret: TOPSECRET }\n"
                                 "    servers: &s [ { address: 127.0.0.1:2, drain: true } ]\n"
                                 "  b: { servers: *s }\n");
    cr_assert_not_null(cfg);
    cr_assert_not_null(cfg->json);
    cr_assert_null(strstr(cfg->json, "TOPSECRET"));
    cr_assert_str_eq(cfg->json,
                     "{\"workers\":2,\"listeners\":[{\"name\":\"p\",\"address\":\"127.0.0.1:1\"}],"
                     "\"upstreams\":{\"a\":{\"sticky\":{\"cookie\":\"c\",\"secret\":\"<redacted>\"},"
                     "\"servers\":[{\"address\":\"127.0.0.1:2\",\"drain\":true}]},"
                     "\"b\":{\"servers\":[{\"address\":\"127.0.0.1:2\",\"drain\":true}]}}}");
    jn_config_unref(cfg);
}

Test(config_admin, loopback_without_token_loads)
{
    struct jn_config *cfg = load("listeners: [ { name: p, address: '127.0.0.1:1' } ]\n"
                                 "admin: { address: 127.0.0.1:9901 }\n");
    cr_assert_not_null(cfg);
    cr_assert(cfg->admin.enabled);
    cr_assert_null(cfg->admin.token);
    jn_config_unref(cfg);
    cfg = load("listeners: [ { name: p, address: '127.0.0.1:1' } ]\n"
               "admin: { address: '[::1]:9901' }\n");
    cr_assert_not_null(cfg);
    jn_config_unref(cfg);
}

Test(config_admin, non_loopback_without_token_is_refused)
{
    struct jn_cfg_errors errs = { 0 };
    const char *y = "listeners: [ { name: p, address: '127.0.0.1:1' } ]\n"
                    "admin: { address: ':9901' }\n";
    cr_assert_null(jn_config_load_buffer("t.yaml", y, strlen(y), &errs));
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.msgs[0], "t.yaml:2:19: admin:") != NULL, "%s", errs.msgs[0]);
    jn_cfg_errors_free(&errs);
}
