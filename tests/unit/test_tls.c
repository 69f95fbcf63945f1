/* Unit tests of TLS (src/tls/tls.c, src/config/load_tls.c): the SNI name
 * matching that chooses a certificate, and the tls: section's errors that
 * need no certificate file. Certificates themselves are exercised end to end
 * by tests/integration/test_tls.py. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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
