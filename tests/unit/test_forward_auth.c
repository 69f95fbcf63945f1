/* Unit tests of forward_auth's settings (policy/forward_auth.c): what loads,
 * and every error with its position. The exchange itself is tested through
 * the real binary (tests/integration/test_forward_auth.py). */
#include <criterion/criterion.h>
#include <string.h>

#include "config/config.h"
#include "policy/chain.h"

static const char head[] = "listeners: [ { name: l, address: 127.0.0.1:8080 } ]\n"
                           "upstreams:\n"
                           "  u: { servers: [ { address: 127.0.0.1:9000 } ] }\n"
                           "  g: { protocol: h2c, servers: [ { address: 127.0.0.1:9001 } ] }\n"
                           "routes:\n"
                           "  - name: r\n"
                           "    match: { path_prefix: / }\n"
                           "    upstream: u\n"
                           "    policies:\n";

static struct jn_config *load(const char *items, struct jn_cfg_errors *errs)
{
    char text[4096];
    snprintf(text, sizeof(text), "%s%s", head, items);
    return jn_config_load_buffer("t.yaml", text, strlen(text), errs);
}

Test(forward_auth, loads_with_defaults_and_with_every_key)
{
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg =
        load("      - forward_auth: { upstream: u, path: /check }\n"
             "      - forward_auth: { upstream: u, path: \"/c?x=1\", timeout: 250ms,\n"
             "                        copy_request_headers: [Authorization, X-Tenant],\n"
             "                        copy_response_headers: [X-User-Id] }\n",
             &errs);
    for (size_t i = 0; i < errs.count; i++)
        cr_log_error("%s", errs.msgs[i]);
    cr_assert_not_null(cfg);
    const struct jn_cfg_route *r = &cfg->routes[0];
    cr_assert_eq(r->nchain, 3);
    cr_expect_str_eq(r->chain[0]->ops->name, "forward_auth");
    cr_expect_str_eq(r->chain[1]->ops->name, "forward_auth");
    cr_expect_not_null(r->chain[0]->conf);
    jn_config_unref(cfg);
    jn_cfg_errors_free(&errs);
}

Test(forward_auth, every_error_is_reported_with_its_position)
{
    struct jn_cfg_errors errs = { 0 };
    cr_expect_null(load("      - forward_auth: { upstream: nope, path: /check }\n"      /* 10 */
                        "      - forward_auth: { upstream: u, path: \"\" }\n"           /* 11 */
                        "      - forward_auth: { upstream: g, path: check }\n"          /* 12 */
                        "      - forward_auth: { upstream: u, path: \"/a b\" }\n"       /* 13 */
                        "      - forward_auth: { path: /c, copy_request_headers: "
                        "[Host, X-Request-Id] }\n"                                      /* 14 */
                        "      - forward_auth: { upstream: u, path: /c, "
                        "copy_response_headers: [\"a:b\"] }\n"                         /* 15 */
                        "      - forward_auth: { upstream: u, path: /c, timeout: 2h }\n", /* 16 */
                        &errs));
    static const char *const want[] = {
        "t.yaml:10:35: forward_auth: upstream: unknown upstream 'nope'",
        "t.yaml:11:44: forward_auth: path: must not be empty",
        "t.yaml:12:35: forward_auth: upstream 'g' speaks HTTP/2 (protocol:); the authorisation "
        "service must be an http1 upstream",
        "t.yaml:12:44: forward_auth: path: must start with /",
        "t.yaml:13:44: forward_auth: path: must be printable ASCII without spaces or #",
        "t.yaml:14:58: copy_request_headers: 'Host' is a hop-by-hop, framing or Host field, "
        "never copied",
        "t.yaml:14:64: copy_request_headers: 'X-Request-Id' is set by forward_auth itself",
        "t.yaml:14:23: missing required key 'upstream' in forward_auth",
        "t.yaml:15:72: copy_response_headers: 'a:b' is not a valid header name",
        "t.yaml:16:57: timeout: '2h' is out of range (1ms to 3600000ms)",
    };
    for (size_t i = 0; i < errs.count; i++)
        cr_log_info("%s", errs.msgs[i]);
    cr_assert_eq(errs.count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < errs.count; i++)
        cr_expect_str_eq(errs.msgs[i], want[i]);
    jn_cfg_errors_free(&errs);
}
