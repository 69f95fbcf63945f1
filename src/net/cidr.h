/* IP addresses and CIDR ranges (IPv4 and IPv6), as trusted_proxies and the
 * ip_filter policy use them. An IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * is taken as the IPv4 address it carries, so one rule covers both. */
#ifndef JN_NET_CIDR_H
#define JN_NET_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jn_ip {
    uint8_t family; /* 4 or 6; 0 = none */
    uint8_t a[16];  /* network order; IPv4 in the first 4 bytes */
};

struct jn_cidr {
    struct jn_ip ip; /* host bits cleared */
    uint8_t bits;    /* prefix length */
};

/* Parses a textual address ("10.0.0.1", "::1", "[::1]"). Returns false when
 * it is not one. */
bool jn_ip_parse(const char *s, size_t len, struct jn_ip *out);
/* "10.0.0.0/8", "2001:db8::/32", or a single address (a /32 or /128).
 * Returns false with *err set ("invalid address", "prefix length out of
 * range", "host bits set") when it is not one. */
bool jn_cidr_parse(const char *s, struct jn_cidr *out, const char **err);
bool jn_cidr_match(const struct jn_cidr *c, const struct jn_ip *ip);
/* True when any of n ranges holds ip. */
bool jn_cidr_any(const struct jn_cidr *v, size_t n, const struct jn_ip *ip);

#endif
