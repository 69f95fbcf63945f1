/* Unit tests of CIDR parsing and matching (net/cidr.c) and of how a route's
 * policy chain is built from the top-level and route policies: lists
 * (config/load_policy.c): order, replacement in place, disabled. */
#include <criterion/criterion.h>
#include <string.h>

#include "config/config.h"
#include "net/cidr.h"
#include "policy/chain.h"

static struct jn_cidr cidr(const char *s)
{
    struct jn_cidr c;
    const char *err = NULL;
    cr_assert(jn_cidr_parse(s, &c, &err), "%s: %s", s, err);
    return c;
}

static struct jn_ip ip(const char *s)
{
    struct jn_ip a;
    cr_assert(jn_ip_parse(s, strlen(s), &a), "%s", s);
    return a;
}

Test(cidr, ipv4_ranges_match_their_addresses_only)
{
    struct jn_cidr c = cidr("10.1.0.0/16");
    struct jn_ip in = ip("10.1.255.7"), out = ip("10.2.0.1");
    cr_expect(jn_cidr_match(&c, &in));
    cr_expect_not(jn_cidr_match(&c, &out));
    struct jn_cidr odd = cidr("192.168.1.128/25");
    struct jn_ip a = ip("192.168.1.129"), b = ip("192.168.1.127");
    cr_expect(jn_cidr_match(&odd, &a));
    cr_expect_not(jn_cidr_match(&odd, &b));
    struct jn_cidr all = cidr("0.0.0.0/0");
    cr_expect(jn_cidr_match(&all, &b));
}

Test(cidr, ipv6_and_mapped_ipv4)
{
    struct jn_cidr c = cidr("2001:db8::/32");
    struct jn_ip in = ip("2001:db8:1::5"), out = ip("2001:db9::1"), v4 = ip("10.0.0.1");
    cr_expect(jn_cidr_match(&c, &in));
    cr_expect_not(jn_cidr_match(&c, &out));
    cr_expect_not(jn_cidr_match(&c, &v4));
    /* ::ffff:10.0.0.1 is the IPv4 address it carries, in rules and in peers. */
    struct jn_ip mapped = ip("::ffff:10.0.0.1");
    cr_expect_eq(mapped.family, 4);
    struct jn_cidr ten = cidr("10.0.0.0/8");
    cr_expect(jn_cidr_match(&ten, &mapped));
    struct jn_cidr mapped_rule = cidr("::ffff:10.0.0.0/104");
    cr_expect_eq(mapped_rule.bits, 8);
    cr_expect(jn_cidr_match(&mapped_rule, &v4));
    struct jn_ip bracketed = ip("[::1]");
    struct jn_cidr one = cidr("::1");
    cr_expect(jn_cidr_match(&one, &bracketed));
}

Test(cidr, bad_ranges_say_why)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        { "10.0.0.1/8", "host bits set (write the network address)" },
        { "10.0.0.0/33", "prefix length out of range" },
        { "::/129", "prefix length out of range" },
        { "10.0.0.0/", "invalid prefix length" },
        { "10.0.0.0/1x", "invalid prefix length" },
        { "10.0.0.0/0008", "invalid prefix length" },
        { "nonsense", "invalid address" },
        { "10.0.0", "invalid address" },
        { "::ffff:10.0.0.0/64", "prefix length out of range for an IPv4-mapped address" },
        { "", "invalid address" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct jn_cidr c;
        const char *err = NULL;
        cr_expect_not(jn_cidr_parse(bad[i].text, &c, &err), "%s", bad[i].text);
        cr_expect_str_eq(err ? err : "", bad[i].why, "%s", bad[i].text);
    }
}

static const char head[] = "listeners: [ { name: l, address: 127.0.0.1:8080 } ]\n"
                           "upstreams: { u: { servers: [ { address: 127.0.0.1:9000 } ] } }\n";

static struct jn_config *load(const char *body, struct jn_cfg_errors *errs)
{
    char text[4096];
    snprintf(text, sizeof(text), "%s%s", head, body);
    return jn_config_load_buffer("t.yaml", text, strlen(text), errs);
}

/* The chain of route r as "name:allow-first-range" items, route_headers last. */
static void chain_names(const struct jn_cfg_route *r, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < r->nchain; i++) {
        strncat(out, r->chain[i]->ops->name, cap - strlen(out) - 1);
        if (r->chain[i]->pos.line)
            snprintf(out + strlen(out), cap - strlen(out), "@%u", r->chain[i]->pos.line);
        strncat(out, i + 1 < r->nchain ? " " : "", cap - strlen(out) - 1);
    }
}

Test(policy_chain, inherited_first_then_own_replaced_in_place_and_disabled)
{
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = load("policies:\n"                                /* 3 */
                                 "  - ip_filter: { deny: [10.0.0.0/8] }\n"    /* 4 */
                                 "  - ip_filter: { deny: [10.1.0.0/16] }\n"   /* 5 */
                                 "routes:\n"                                  /* 6 */
                                 "  - name: plain\n"                          /* 7 */
                                 "    match: { path_prefix: /a }\n"
                                 "    upstream: u\n"
                                 "  - name: replaced\n"                       /* 10 */
                                 "    match: { path_prefix: /b }\n"
                                 "    upstream: u\n"
                                 "    policies:\n"
                                 "      - ip_filter: { allow: [\"::1\"] }\n"      /* 14 */
                                 "      - ip_filter: { allow: [\"::2\"] }\n"      /* 15 */
                                 "      - ip_filter: { allow: [\"::3\"] }\n"      /* 16 */
                                 "  - name: off\n"
                                 "    match: { path_prefix: /c }\n"
                                 "    upstream: u\n"
                                 "    policies:\n"
                                 "      - ip_filter: { disabled: true }\n",
                                 &errs);
    for (size_t i = 0; i < errs.count; i++)
        cr_log_error("%s", errs.msgs[i]);
    cr_assert_not_null(cfg);
    char got[256];
    chain_names(&cfg->routes[0], got, sizeof(got));
    cr_expect_str_eq(got, "ip_filter@4 ip_filter@5 route_headers");
    chain_names(&cfg->routes[1], got, sizeof(got));
    cr_expect_str_eq(got, "ip_filter@14 ip_filter@15 ip_filter@16 route_headers");
    /* The first inherited one goes; the second stays. */
    chain_names(&cfg->routes[2], got, sizeof(got));
    cr_expect_str_eq(got, "ip_filter@5 route_headers");
    jn_config_unref(cfg);
    jn_cfg_errors_free(&errs);
}

Test(policy_chain, too_many_policies_on_a_route_is_an_error)
{
    char body[4096] = "routes:\n  - name: r\n    match: { path_prefix: / }\n    upstream: u\n"
                      "    policies:\n";
    for (int i = 0; i < JN_MAX_CHAIN; i++)
        strcat(body, "      - ip_filter: { deny: [10.0.0.0/8] }\n");
    struct jn_cfg_errors errs = { 0 };
    cr_expect_null(load(body, &errs));
    cr_expect_eq(errs.count, 1);
    cr_expect(errs.count && strstr(errs.msgs[0], "policies: at most 31 items") != NULL, "%s",
              errs.count ? errs.msgs[0] : "");
    jn_cfg_errors_free(&errs);
}
