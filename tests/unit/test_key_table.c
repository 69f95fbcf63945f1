/* Unit tests of the API key table (src/policy/key_table.c) and of where the
 * authentication policies' and the consumers' configuration errors are
 * reported. */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "policy/key_table.h"

static void digest_of(const char *key, uint8_t out[32])
{
    SHA256((const unsigned char *)key, strlen(key), out);
}

Test(key_table, finds_each_key_and_misses_the_rest)
{
    uint8_t keys[3][32];
    digest_of("alice-1", keys[0]);
    digest_of("alice-2", keys[1]);
    digest_of("bob", keys[2]);
    struct jn_cfg_consumer c[2] = {
        { .name = "alice", .key_digests = keys, .nkeys = 2 },
        { .name = "bob", .key_digests = keys + 2, .nkeys = 1 },
    };
    struct jn_key_table t;
    cr_assert_eq(jn_key_table_init(&t, c, 2), 0);
    cr_expect_eq(t.nkeys, 3);
    cr_expect_eq(jn_key_table_find(&t, "alice-1", 7), &c[0]);
    cr_expect_eq(jn_key_table_find(&t, "alice-2", 7), &c[0]);
    cr_expect_eq(jn_key_table_find(&t, "bob", 3), &c[1]);
    cr_expect_null(jn_key_table_find(&t, "alice-", 6));
    cr_expect_null(jn_key_table_find(&t, "bob ", 4));
    cr_expect_null(jn_key_table_find(&t, "", 0));
    cr_expect_eq(jn_key_table_find_digest(&t, keys[2]), &c[1]);
    jn_key_table_free(&t);
}

Test(key_table, empty_table_finds_nothing)
{
    struct jn_key_table t;
    cr_assert_eq(jn_key_table_init(&t, NULL, 0), 0);
    cr_expect_null(jn_key_table_find(&t, "x", 1));
    jn_key_table_free(&t);
    cr_expect_null(jn_key_table_find(&t, "x", 1)); /* freed: still safe */
}

/* Many consumers: every key is found (probing wraps and crosses clusters)
 * and keys nobody holds are not, with the table at most half full. */
Test(key_table, many_consumers)
{
    enum { N = 5000, K = 3 };
    static uint8_t keys[N * K][32];
    static struct jn_cfg_consumer c[N];
    char text[32];
    for (size_t i = 0; i < N; i++) {
        for (size_t k = 0; k < K; k++) {
            snprintf(text, sizeof(text), "key-%zu-%zu", i, k);
            digest_of(text, keys[i * K + k]);
        }
        c[i] = (struct jn_cfg_consumer){ .key_digests = keys + i * K, .nkeys = K };
    }
    struct jn_key_table t;
    cr_assert_eq(jn_key_table_init(&t, c, N), 0);
    cr_expect_eq(t.nkeys, N * K);
    cr_expect_geq(t.mask + 1, 2 * N * K);
    for (size_t i = 0; i < N; i++) {
        for (size_t k = 0; k < K; k++) {
            snprintf(text, sizeof(text), "key-%zu-%zu", i, k);
            cr_assert_eq(jn_key_table_find(&t, text, strlen(text)), &c[i], "%s", text);
        }
        snprintf(text, sizeof(text), "key-%zu-%d", i, K);
        cr_assert_null(jn_key_table_find(&t, text, strlen(text)), "%s", text);
    }
    jn_key_table_free(&t);
}

/* A digest held twice (which the loader reports) maps to the first holder. */
Test(key_table, first_holder_of_a_digest_wins)
{
    uint8_t key[1][32];
    digest_of("shared", key[0]);
    struct jn_cfg_consumer c[2] = {
        { .name = "a", .key_digests = key, .nkeys = 1 },
        { .name = "b", .key_digests = key, .nkeys = 1 },
    };
    struct jn_key_table t;
    cr_assert_eq(jn_key_table_init(&t, c, 2), 0);
    cr_expect_eq(t.nkeys, 1);
    cr_expect_eq(jn_key_table_find(&t, "shared", 6), &c[0]);
    jn_key_table_free(&t);
}

/* ---- configuration ---- */

#define AUTH_BASE                                                                                  \
    "listeners:\n  - { name: public, address: 127.0.0.1:8080 }\n"                                  \
    "upstreams: { u: { servers: [ { address: 127.0.0.1:1 } ] } }\n"

static bool has(const struct jn_cfg_errors *errs, const char *prefix)
{
    for (size_t i = 0; i < errs->count; i++)
        if (strncmp(errs->msgs[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

static void expect_errors(const char *yaml, const char *const *want, size_t n)
{
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_buffer("t.yaml", yaml, strlen(yaml), &errs);
    cr_expect_null(cfg);
    jn_config_unref(cfg);
    for (size_t i = 0; i < n; i++) {
        if (!has(&errs, want[i])) {
            for (size_t j = 0; j < errs.count; j++)
                fprintf(stderr, "  | %s\n", errs.msgs[j]);
            cr_expect(false, "no error starting with \"%s\"", want[i]);
        }
    }
    jn_cfg_errors_free(&errs);
}

Test(auth_config, consumer_errors_are_reported_where_written)
{
    static const char yaml[] = AUTH_BASE
        "consumers:\n"
        "  - name: a\n"
        "    api_keys: [ { key: k1 } ]\n"
        "  - name: b\n"
        "    api_keys: [ { key: k1 }, { sha256: \"12zz\" } ]\n"
        "    basic: { username: b, password_hash: \"$1$abc$defghijklmnop\" }\n"
        "routes:\n  - upstream: u\n";
    static const char *const want[] = {
        "t.yaml:7:5: consumer b: API key already used by a",
        "t.yaml:8:30: api_keys: sha256 must be 64 hexadecimal digits",
        "t.yaml:9:12: basic: password_hash must be a bcrypt hash",
    };
    expect_errors(yaml, want, 3);
}

Test(auth_config, policy_errors_are_reported_where_written)
{
    static const char yaml[] = AUTH_BASE
        "routes:\n"
        "  - upstream: u\n"
        "    policies:\n"
        "      - key_auth: { header: \"a b\", hide_credentials: maybe }\n"
        "      - basic_auth: { realm: \"x\\\"y\", cache_size: 0 }\n"
        "      - acl: { allow_groups: [a], deny_groups: [b] }\n"
        "      - acl: { allow_groups: [a, a] }\n";
    static const char *const want[] = {
        "t.yaml:7:29: header: 'a b' is not a valid header name",
        "t.yaml:7:54: hide_credentials: expected true or false",
        "t.yaml:8:30: realm:",
        "t.yaml:8:50: cache_size:",
        "t.yaml:9:14: acl: needs exactly one of allow_groups and deny_groups",
        "t.yaml:10:34: duplicate allow_groups",
    };
    expect_errors(yaml, want, 6);
}

Test(auth_config, defaults_load)
{
    static const char yaml[] = AUTH_BASE
        "consumers: [ { name: a, groups: [g], api_keys: [ { key: k } ] } ]\n"
        "policies: [ { key_auth: {} }, { basic_auth: {} } ]\n"
        "routes:\n  - upstream: u\n    policies: [ { acl: { deny_groups: [x] } } ]\n";
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_buffer("t.yaml", yaml, strlen(yaml), &errs);
    for (size_t j = 0; j < errs.count; j++)
        fprintf(stderr, "  | %s\n", errs.msgs[j]);
    cr_assert_not_null(cfg);
    cr_expect_eq(cfg->routes[0].nchain, 4); /* key_auth, basic_auth, acl, route_headers */
    jn_config_unref(cfg);
    jn_cfg_errors_free(&errs);
}
