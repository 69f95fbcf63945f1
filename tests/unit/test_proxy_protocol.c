/* Unit tests of the PROXY protocol headers (src/net/proxy_protocol.c):
 * every byte of both versions, for IPv4, IPv6 and mixed families. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/proxy_protocol.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    inet_pton(AF_INET, ip, &sin->sin_addr);
    return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &sin6->sin6_addr);
    return ss;
}

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

Test(proxy_protocol, v1_tcp4_line)
{
    struct sockaddr_storage c = v4("192.0.2.1", 56324), l = v4("198.51.100.1", 443);
    char out[JN_PROXY_PROTOCOL_MAX];
    size_t n = jn_proxy_protocol_header(JN_PROXY_PROTOCOL_V1, &c, &l, out, sizeof(out));
    const char *want = "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n";
    cr_assert_eq(n, strlen(want));
    cr_expect(memcmp(out, want, n) == 0);
}

Test(proxy_protocol, v1_longest_tcp6_line_fits)
{
    const char *ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
    struct sockaddr_storage c = v6(ip, 65535), l = v6(ip, 65534);
    char out[JN_PROXY_PROTOCOL_MAX];
    size_t n = jn_proxy_protocol_header(JN_PROXY_PROTOCOL_V1, &c, &l, out, sizeof(out));
    char want[160];
    snprintf(want, sizeof(want), "PROXY TCP6 %s %s 65535 65534\r\n", ip, ip);
    cr_assert_eq(n, strlen(want));
    cr_expect(n <= 107, "the specification's limit");
    cr_expect(memcmp(out, want, n) == 0);
}

Test(proxy_protocol, v1_mixed_families_are_unknown)
{
    struct sockaddr_storage c = v4("192.0.2.1", 1), l = v6("::1", 2);
    char out[JN_PROXY_PROTOCOL_MAX];
    size_t n = jn_proxy_protocol_header(JN_PROXY_PROTOCOL_V1, &c, &l, out, sizeof(out));
    cr_assert_eq(n, strlen("PROXY UNKNOWN\r\n"));
    cr_expect(memcmp(out, "PROXY UNKNOWN\r\n", n) == 0);
}

Test(proxy_protocol, v2_tcp4_binary)
{
    struct sockaddr_storage c = v4("192.0.2.1", 0x1234), l = v4("198.51.100.1", 443);
    unsigned char out[JN_PROXY_PROTOCOL_MAX];
    size_t n = jn_proxy_protocol_header(JN_PROXY_PROTOCOL_V2, &c, &l, (char *)out, sizeof(out));
    const unsigned char tail[] = {0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 1, 198, 51, 100, 1,
                                  0x12, 0x34, 0x01, 0xbb};
    cr_assert_eq(n, 28);
    cr_expect(memcmp(out, sig, 12) == 0);
    cr_expect(memcmp(out + 12, tail, sizeof(tail)) == 0);
}

Test(proxy_protocol, v2_tcp6_binary)
{
    struct sockaddr_storage c = v6("2001:db8::1", 80), l = v6("::1", 8443);
    unsigned char out[JN_PROXY_PROTOCOL_MAX];
    size_t n = jn_proxy_protocol_header(JN_PROXY_PROTOCOL_V2, &c, &l, (char *)out, sizeof(out));
    cr_assert_eq(n, 16 + 36);
    cr_expect(memcmp(out, sig, 12) == 0);
    cr_expect_eq(out[12], 0x21);
    cr_expect_eq(out[13], 0x21);
    cr_expect_eq(out[14], 0);
    cr_expect_eq(out[15], 36);
    cr_expect(memcmp(out + 16, &((struct sockaddr_in6 *)&c)->sin6_addr, 16) == 0);
    cr_expect(memcmp(out + 32, &((struct sockaddr_in6 *)&l)->sin6_addr, 16) == 0);
    const unsigned char ports[] = {0x00, 0x50, 0x20, 0xfb};
    cr_expect(memcmp(out + 48, ports, 4) == 0);
}

Test(proxy_protocol, v2_unknown_family_has_no_addresses)
{
    struct sockaddr_storage c = v4("192.0.2.1", 1), l = {0};
    unsigned char out[JN_PROXY_PROTOCOL_MAX];
    size_t n = jn_proxy_protocol_header(JN_PROXY_PROTOCOL_V2, &c, &l, (char *)out, sizeof(out));
    cr_assert_eq(n, 16);
    cr_expect_eq(out[13], 0x00);
    cr_expect_eq(out[14] | out[15], 0);
}

Test(proxy_protocol, none_or_small_buffer_writes_nothing)
{
    struct sockaddr_storage c = v4("192.0.2.1", 1), l = v4("192.0.2.2", 2);
    char out[JN_PROXY_PROTOCOL_MAX];
    cr_expect_eq(jn_proxy_protocol_header(JN_PROXY_PROTOCOL_NONE, &c, &l, out, sizeof(out)), 0);
    cr_expect_eq(jn_proxy_protocol_header(JN_PROXY_PROTOCOL_V1, &c, &l, out, 20), 0);
}
