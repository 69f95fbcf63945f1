/* Unit tests of which requests are forwarded as WebSocket handshakes
 * (src/http/upgrade.c: jn_upgrade_is_websocket, jn_upgrade_add_fields). */
#include <criterion/criterion.h>
#include <string.h>

#include "http/h1/h1_parse.h"
#include "http/upgrade.h"

static bool websocket(const char *head)
{
    static const struct jn_h1_limits lim = {256, 1024, 16};
    struct jn_h1_header hdrs[16];
    struct jn_h1_scan scan = {0};
    struct jn_h1_message m;
    int rc = jn_h1_parse_request(head, strlen(head), &lim, hdrs, 16, &scan, &m);
    cr_assert_gt(rc, 0, "%s", head);
    return jn_upgrade_is_websocket(&m);
}

Test(upgrade, websocket_handshake_is_recognised)
{
    cr_expect(websocket("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                        "Upgrade: websocket\r\n\r\n"));
}

Test(upgrade, tokens_are_case_insensitive_and_listed)
{
    cr_expect(websocket("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, UPGRADE\r\n"
                        "Upgrade: foo/2, WebSocket \r\n\r\n"));
    cr_expect(websocket("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n"
                        "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"));
}

Test(upgrade, other_protocols_and_incomplete_handshakes_are_not)
{
    cr_expect_not(websocket("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                            "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"));
    cr_expect_not(websocket("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"));
    cr_expect_not(websocket("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n"));
    cr_expect_not(websocket("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocketx\r\n\r\n"));
}

Test(upgrade, only_http11_get_without_body)
{
    cr_expect_not(websocket("GET / HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocket\r\n\r\n"));
    cr_expect_not(websocket("POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocket\r\n\r\n"));
    cr_expect_not(websocket("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocket\r\nContent-Length: 3\r\n\r\n"));
}

Test(upgrade, fields_are_added_back)
{
    struct jn_http_field v[2];
    struct jn_fields f = {v, 0, 2};
    cr_assert_eq(jn_upgrade_add_fields(&f), 0);
    cr_expect_eq(f.n, 2);
    cr_expect(jn_slice_ieq(v[0].name, "connection") && jn_slice_ieq(v[0].value, "upgrade"));
    cr_expect(jn_slice_ieq(v[1].name, "upgrade") && jn_slice_ieq(v[1].value, "websocket"));
    struct jn_fields full = {v, 1, 1};
    cr_expect_eq(jn_upgrade_add_fields(&full), JN_ETOOBIG);
}
