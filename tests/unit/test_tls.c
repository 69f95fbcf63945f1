/* Unit tests of TLS (src/tls/tls.c, src/config/load_tls.c): the SNI name
 * matching that chooses a certificate, and the tls: section's errors that
 * need no certificate file. Certificates themselves are exercised end to end
 * by tests/integration/test_tls.py. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "tls/tls.h"

Test(tls_name, exact_names_match_ignoring_case)
{
    cr_expect(jn_tls_name_match("a.test", "a.test"));
    cr_expect(jn_tls_name_match("a.test", "A.TEST"));
    cr_expect(jn_tls_name_match("WWW.Example.com", "www.example.COM"));
    cr_expect_not(jn_tls_name_match("a.test", "b.test"));
    cr_expect_not(jn_tls_name_match("a.test", "a.test."));
    cr_expect_not(jn_tls_name_match("a.test", "x.a.test"));
}

Test(tls_name, a_wildcard_covers_exactly_one_label)
{
    cr_expect(jn_tls_name_match("*.b.test", "x.b.test"));
    cr_expect(jn_tls_name_match("*.b.test", "X.B.Test"));
    cr_expect_not(jn_tls_name_match("*.b.test", "y.x.b.test"));
    cr_expect_not(jn_tls_name_match("*.b.test", "b.test"));
    cr_expect_not(jn_tls_name_match("*.b.test", ".b.test"));
    cr_expect_not(jn_tls_name_match("*.b.test", "xb.test"));
    cr_expect_not(jn_tls_name_match("*.b.test", "x.c.test"));
}

Test(tls_name, a_star_elsewhere_is_only_a_character)
{
    cr_expect_not(jn_tls_name_match("x*.b.test", "xy.b.test"));
    cr_expect(jn_tls_name_match("x*.b.test", "x*.b.test"));
    cr_expect_not(jn_tls_name_match("*", "a"));
}

static bool load_fails_with(const char *tls_section, const char *want)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "listeners:\n  - name: l\n    address: 127.0.0.1:1\n%s\n",
             tls_section);
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = jn_config_load_buffer("t.yaml", yaml, strlen(yaml), &errs);
    bool found = false;
    for (size_t i = 0; i < errs.count; i++) {
        if (strstr(errs.msgs[i], want) != NULL)
            found = true;
        else
            fprintf(stderr, "  | %s\n", errs.msgs[i]);
    }
    jn_config_unref(cfg);
    jn_cfg_errors_free(&errs);
    return cfg == NULL && found;
}

Test(tls_config, section_errors_are_reported_with_their_position)
{
    cr_expect(load_fails_with("    tls: { certificates: [] }",
                              "t.yaml:4:26: certificates: at least one certificate is required"));
    cr_expect(load_fails_with("    tls: { min_version: \"1.2\" }",
                              "missing required key 'certificates'"));
    cr_expect(load_fails_with("    tls: { certificates: [ { cert: x.crt } ] }",
                              "missing required key 'key'"));
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      min_version: \"1.1\"",
                              "t.yaml:6:20: min_version: invalid value '1.1'"));
    cr_expect(load_fails_with("    tls: { certificates: [ { cert: /nonexistent/x.crt, key: k } ] }",
                              "t.yaml:4:36: tls: cannot read /nonexistent/x.crt"));
}

Test(tls_config, client_certificate_errors_are_reported_with_their_position)
{
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      verify_client: optional",
                              "t.yaml:6:22: verify_client: needs client_ca"));
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      client_subject_header: X-Client-Subject",
                              "t.yaml:6:30: client_subject_header: needs client_ca"));
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      client_ca: ca.pem\n      verify_client: sometimes",
                              "t.yaml:7:22: verify_client: invalid value 'sometimes' "
                              "(expected one of: required, optional)"));
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      client_ca: ca.pem\n      client_subject_header: \"X Subject\"",
                              "t.yaml:7:30: client_subject_header: 'X Subject' is not a valid "
                              "header name"));
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      client_ca: /nonexistent/ca.pem",
                              "t.yaml:6:18: tls: cannot read /nonexistent/ca.pem"));
}

Test(tls_config, ticket_key_rotation_is_a_bounded_duration)
{
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      ticket_key_rotation: 500ms",
                              "t.yaml:6:28: ticket_key_rotation: '500ms' is out of range"));
    cr_expect(load_fails_with("    tls:\n      certificates: [ { cert: x.crt, key: x.key } ]\n"
                              "      ticket_key_rotation: 12",
                              "t.yaml:6:28: ticket_key_rotation: invalid duration '12'"));
}

/* ---- an upstream's tls: section (load_tls.c, tls_client.c) ---- */

/* An upstream u whose tls: line is line 5 (the section starts at column 10). */
#define UPSTREAM_TLS(section)                                                                      \
    "listeners:\n  - { name: l, address: 127.0.0.1:1 }\n"                                          \
    "upstreams:\n  u:\n    tls: " section "\n    servers: [ { address: 127.0.0.1:2 } ]\n"

/* The system's bundle: a CA file that OpenSSL loads, present wherever the
 * build dependencies are (ca-certificates). */
#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

static struct jn_config *upstream_tls_load(const char *yaml, struct jn_cfg_errors *errs)
{
    return jn_config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

/* Loads yaml, which must fail with exactly one error, starting with want. */
static void upstream_tls_error(const char *yaml, const char *want)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = upstream_tls_load(yaml, &errs);
    cr_expect_null(cfg, "loaded but should not have:\n%s", yaml);
    cr_expect_eq(errs.count, 1, "%zu errors for:\n%s", errs.count, yaml);
    bool found = errs.count > 0 && strncmp(errs.msgs[0], want, strlen(want)) == 0;
    cr_expect(found, "no error starting with \"%s\"", want);
    for (size_t i = 0; !found && i < errs.count; i++)
        fprintf(stderr, "  | %s\n", errs.msgs[i]);
    jn_config_unref(cfg);
    jn_cfg_errors_free(&errs);
}

static struct jn_config *upstream_tls_ok(const char *yaml)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = upstream_tls_load(yaml, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "  | %s\n", errs.msgs[i]);
    cr_assert_not_null(cfg);
    jn_cfg_errors_free(&errs);
    return cfg;
}

Test(upstream_tls_config, an_upstream_without_tls_is_plain)
{
    const char *yaml = "listeners:\n  - { name: l, address: 127.0.0.1:1 }\n"
                       "upstreams:\n  u: { servers: [ { address: 127.0.0.1:2 } ] }\n";
    struct jn_config *cfg = upstream_tls_ok(yaml);
    cr_expect_null(cfg->upstreams[0].tls);
    jn_config_unref(cfg);
}

Test(upstream_tls_config, an_empty_section_verifies_with_the_system_store)
{
    struct jn_config *cfg = upstream_tls_ok(UPSTREAM_TLS("{}"));
    const struct jn_cfg_upstream_tls *tls = cfg->upstreams[0].tls;
    cr_assert_not_null(tls);
    cr_expect(tls->verify);
    cr_expect_null(tls->ca);
    cr_expect_null(tls->sni);
    cr_expect_null(tls->cert);
    cr_expect_null(tls->key);
    cr_expect_not_null(tls->client);
    jn_config_unref(cfg);
}

Test(upstream_tls_config, every_value_is_read)
{
    struct jn_config *cfg =
        upstream_tls_ok(UPSTREAM_TLS("{ verify: false, ca: " SYSTEM_CA ", sni: api.internal }"));
    const struct jn_cfg_upstream_tls *tls = cfg->upstreams[0].tls;
    cr_assert_not_null(tls);
    cr_expect_not(tls->verify);
    cr_expect_str_eq(tls->ca, SYSTEM_CA);
    cr_expect_str_eq(tls->sni, "api.internal");
    cr_expect_not_null(tls->client);
    jn_config_unref(cfg);
}

Test(upstream_tls_config, errors_are_reported_with_their_position)
{
    upstream_tls_error(UPSTREAM_TLS("{ verify: maybe }"),
                       "t.yaml:5:20: verify: expected true or false, got 'maybe'");
    upstream_tls_error(UPSTREAM_TLS("{ sni: 10.0.0.1 }"),
                       "t.yaml:5:17: sni: '10.0.0.1' is an IP address");
    upstream_tls_error(UPSTREAM_TLS("{ sni: \"a b.test\" }"),
                       "t.yaml:5:17: sni: 'a b.test' must be a host name");
    upstream_tls_error(UPSTREAM_TLS("{ sni: \"a..test\" }"),
                       "t.yaml:5:17: sni: 'a..test' labels (between dots)");
    upstream_tls_error(UPSTREAM_TLS("{ ca: \"\" }"), "t.yaml:5:16: ca: must not be empty");
    upstream_tls_error(UPSTREAM_TLS("{ ca: /nonexistent/ca.pem }"),
                       "t.yaml:5:16: tls: cannot read /nonexistent/ca.pem");
    upstream_tls_error(UPSTREAM_TLS("{ cert: c.pem }"), "t.yaml:5:12: cert: needs key");
    upstream_tls_error(UPSTREAM_TLS("{ key: k.pem }"), "t.yaml:5:12: key: needs cert");
    upstream_tls_error(UPSTREAM_TLS("{ cert: /nonexistent/c.pem, key: /nonexistent/k.pem }"),
                       "t.yaml:5:18: tls: cannot read /nonexistent/c.pem");
    upstream_tls_error(UPSTREAM_TLS("{ certificates: [] }"),
                       "t.yaml:5:12: unknown key 'certificates' in tls");
    upstream_tls_error(UPSTREAM_TLS("[]"), "t.yaml:5:10: tls: expected a mapping");
}

Test(upstream_tls_config, a_ca_file_that_is_not_pem_is_refused)
{
    char path[] = "/tmp/jn-test-ca-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    char yaml[512], want[256];
    snprintf(yaml, sizeof(yaml), UPSTREAM_TLS("{ ca: %s }"), path);
    snprintf(want, sizeof(want), "t.yaml:5:16: tls: cannot load CA file %s", path);
    upstream_tls_error(yaml, want);
    unlink(path);
}

Test(upstream_tls_config, a_tcp_listener_refuses_an_upstream_with_tls)
{
    upstream_tls_error("listeners:\n"
                       "  - { name: t, address: 127.0.0.1:1, protocol: tcp, upstream: u }\n"
                       "upstreams:\n"
                       "  u: { tls: {}, servers: [ { address: 127.0.0.1:2 } ] }\n",
                       "t.yaml:2:63: upstream: 'u' has tls:, which a tcp listener does not speak");
}
