/* PROXY protocol headers, versions 1 (a text line) and 2 (binary). */
#include "net/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Version 2 starts with this signature, chosen never to begin a valid
 * request of another protocol. */
static const char v2_signature[12] = "\r\n\r\n\0\r\nQUIT\n";

enum { V2_PROXY = 0x21, V2_TCP4 = 0x11, V2_TCP6 = 0x21, V2_UNSPEC = 0x00 };

static bool same_family(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    return a->ss_family == b->ss_family &&
           (a->ss_family == AF_INET || a->ss_family == AF_INET6);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static const void *addr_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return &((const struct sockaddr_in *)ss)->sin_addr;
}

/* "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n" */
static size_t v1_header(const struct sockaddr_storage *client,
                        const struct sockaddr_storage *local, char *out, size_t cap)
{
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    int n;
    if (!same_family(client, local) ||
        inet_ntop(client->ss_family, addr_of(client), src, sizeof(src)) == NULL ||
        inet_ntop(local->ss_family, addr_of(local), dst, sizeof(dst)) == NULL)
        n = snprintf(out, cap, "PROXY UNKNOWN\r\n");
    else
        n = snprintf(out, cap, "PROXY %s %s %s %u %u\r\n",
                     client->ss_family == AF_INET6 ? "TCP6" : "TCP4", src, dst,
                     (unsigned)port_of(client), (unsigned)port_of(local));
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Signature, version and command, family, length, then the addresses and
 * ports in network byte order. */
static size_t v2_header(const struct sockaddr_storage *client,
                        const struct sockaddr_storage *local, char *out)
{
    unsigned char *p = (unsigned char *)out;
    size_t alen = 0;
    memcpy(p, v2_signature, sizeof(v2_signature));
    p[12] = V2_PROXY;
    p[13] = V2_UNSPEC;
    if (same_family(client, local)) {
        alen = client->ss_family == AF_INET6 ? 16 : 4;
        p[13] = client->ss_family == AF_INET6 ? V2_TCP6 : V2_TCP4;
        memcpy(p + 16, addr_of(client), alen);
        memcpy(p + 16 + alen, addr_of(local), alen);
        uint16_t ports[2] = { htons(port_of(client)), htons(port_of(local)) };
        memcpy(p + 16 + 2 * alen, ports, sizeof(ports));
    }
    size_t body = alen ? 2 * alen + 4 : 0;
    p[14] = (unsigned char)(body >> 8);
    p[15] = (unsigned char)(body & 0xff);
    return 16 + body;
}

size_t jn_proxy_protocol_header(enum jn_proxy_protocol v, const struct sockaddr_storage *client,
                                const struct sockaddr_storage *local, char *out, size_t cap)
{
    if (cap < JN_PROXY_PROTOCOL_MAX)
        return 0;
    if (v == JN_PROXY_PROTOCOL_V1)
        return v1_header(client, local, out, cap);
    if (v == JN_PROXY_PROTOCOL_V2)
        return v2_header(client, local, out);
    return 0;
}
