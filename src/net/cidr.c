/* IP addresses and CIDR ranges: parsing and matching. */
#include "net/cidr.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool jn_ip_parse(const char *s, size_t len, struct jn_ip *out)
{
    char buf[64];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->a) == 1) {
        out->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out->a) != 1)
        return false;
    out->family = 6;
    if (memcmp(out->a, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(out->a, out->a + 12, 4);
        memset(out->a + 4, 0, 12);
        out->family = 4;
    }
    return true;
}

/* Keeps the first bits of a, clears the rest; true when nothing changed. */
static bool mask(uint8_t *a, unsigned bits)
{
    bool clean = true;
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        uint8_t m = (uint8_t)(keep == 0 ? 0 : 0xff << (8 - keep));
        clean &= (a[i] & ~m) == 0;
        a[i] &= m;
    }
    return clean;
}

bool jn_cidr_parse(const char *s, struct jn_cidr *out, const char **err)
{
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    if (!jn_ip_parse(s, len, &out->ip)) {
        *err = "invalid address";
        return false;
    }
    bool v6_text = memchr(s, ':', len) != NULL;
    unsigned max = v6_text ? 128 : 32;
    unsigned bits = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        bits = 0;
        if (*p == '\0' || strlen(p) > 3)
            bits = 999;
        for (; *p && bits != 999; p++)
            bits = *p >= '0' && *p <= '9' ? bits * 10 + (unsigned)(*p - '0') : 999;
        if (bits > max) {
            *err = bits == 999 ? "invalid prefix length" : "prefix length out of range";
            return false;
        }
    }
    /* ::ffff:a.b.c.d/N was turned into IPv4: a /96 or longer is an IPv4 range. */
    if (v6_text && out->ip.family == 4) {
        if (bits < 96) {
            *err = "prefix length out of range for an IPv4-mapped address";
            return false;
        }
        bits -= 96;
    }
    out->bits = (uint8_t)bits;
    if (!mask(out->ip.a, bits)) {
        *err = "host bits set (write the network address)";
        return false;
    }
    return true;
}

bool jn_cidr_match(const struct jn_cidr *c, const struct jn_ip *ip)
{
    if (c->ip.family != ip->family)
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->ip.a, ip->a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (ip->a[full] & m) == c->ip.a[full];
}

bool jn_cidr_any(const struct jn_cidr *v, size_t n, const struct jn_ip *ip)
{
    for (size_t i = 0; i < n; i++)
        if (jn_cidr_match(&v[i], ip))
            return true;
    return false;
}
