/* Parsers for the scalar formats of the configuration: durations, sizes and
 * listen/server addresses. Strict on purpose: a typo must fail the load, not
 * turn into a surprising value. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "config/config.h"
#include "core/common.h"

/* Reads the leading decimal digits of s into *out. Returns the number of
 * digits read, 0 when there are none or the value overflows uint64_t. No sign
 * and no white space are accepted, unlike strtoull. */
static size_t jn_parse_digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return i;
}

static int jn_scale(uint64_t v, uint64_t unit, uint64_t *out)
{
    if (v > UINT64_MAX / unit)
        return JN_EINVAL;
    *out = v * unit;
    return JN_OK;
}

/* Reads "<digits><unit>" in milliseconds, or in microseconds when micro is
 * set (the only case where the "us" unit is known). */
static int jn_parse_duration_in(const char *s, bool micro, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t ms; /* 0: microseconds only */
    } units[] = {
        {"us", 0}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
    };
    uint64_t v;
    size_t n;
    if (s == NULL || (n = jn_parse_digits(s, &v)) == 0)
        return JN_EINVAL;
    /* A bare number is refused: "30" could mean seconds or milliseconds. */
    for (size_t i = 0; i < JN_ARRAY_LEN(units); i++) {
        if (strcmp(s + n, units[i].suffix) != 0)
            continue;
        if (!micro)
            return units[i].ms != 0 ? jn_scale(v, units[i].ms, out) : JN_EINVAL;
        if (units[i].ms == 0) {
            *out = v;
            return JN_OK;
        }
        return jn_scale(v, units[i].ms * 1000, out);
    }
    return JN_EINVAL;
}

int jn_parse_duration(const char *s, uint64_t *out_ms)
{
    return jn_parse_duration_in(s, false, out_ms);
}

int jn_parse_duration_us(const char *s, uint64_t *out_us)
{
    return jn_parse_duration_in(s, true, out_us);
}

int jn_parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    size_t n;
    if (s == NULL || (n = jn_parse_digits(s, &v)) == 0)
        return JN_EINVAL;
    if (s[n] == '\0') {
        *out = v;
        return JN_OK;
    }
    if (s[n + 1] != '\0')
        return JN_EINVAL;
    switch (jn_lower(s[n])) {
    case 'k':
        return jn_scale(v, 1ull << 10, out);
    case 'm':
        return jn_scale(v, 1ull << 20, out);
    case 'g':
        return jn_scale(v, 1ull << 30, out);
    default:
        return JN_EINVAL;
    }
}

/* Parses the port after the colon: 1..65535, digits only. */
static int jn_parse_port(const char *s, uint16_t *port, const char **err)
{
    uint64_t v;
    size_t n = jn_parse_digits(s, &v);
    if (n == 0 || n > 5 || s[n] != '\0' || v == 0 || v > 65535) {
        *err = "port must be a number from 1 to 65535";
        return JN_EINVAL;
    }
    *port = (uint16_t)v;
    return JN_OK;
}

static int jn_parse_v6(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **err)
{
    const char *close = strchr(s, ']');
    char host[INET6_ADDRSTRLEN + 1];
    size_t hlen = close ? (size_t)(close - s - 1) : 0;
    if (close == NULL || hlen >= sizeof(host)) {
        *err = "invalid IPv6 address (expected \"[v6-address]:port\")";
        return JN_EINVAL;
    }
    memcpy(host, s + 1, hlen);
    host[hlen] = '\0';
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
        *err = "invalid IPv6 address";
        return JN_EINVAL;
    }
    if (close[1] != ':') {
        *err = "missing port (expected \"[v6-address]:port\")";
        return JN_EINVAL;
    }
    uint16_t port;
    if (jn_parse_port(close + 2, &port, err) != JN_OK)
        return JN_EINVAL;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof(*sin6);
    return JN_OK;
}

static int jn_parse_v4(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **err)
{
    const char *colon = strrchr(s, ':');
    char host[INET_ADDRSTRLEN + 1];
    if (colon == NULL) {
        *err = "missing port (expected \"host:port\")";
        return JN_EINVAL;
    }
    if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
        *err = "IPv6 addresses need brackets, as in \"[::1]:8080\"";
        return JN_EINVAL;
    }
    size_t hlen = (size_t)(colon - s);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    if (hlen == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (hlen == 9 && strncmp(s, "localhost", 9) == 0) {
        /* The only name resolved: resolving others at load time would make
         * the snapshot depend on DNS answers that change under it. */
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        if (hlen >= sizeof(host))
            hlen = sizeof(host) - 1; /* too long to be valid; inet_pton says so */
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1 || hlen != (size_t)(colon - s)) {
            *err = "host must be a numeric IP address or \"localhost\"";
            return JN_EINVAL;
        }
    }
    uint16_t port;
    if (jn_parse_port(colon + 1, &port, err) != JN_OK)
        return JN_EINVAL;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof(*sin);
    return JN_OK;
}

int jn_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **err)
{
    const char *unused;
    if (err == NULL)
        err = &unused;
    memset(ss, 0, sizeof(*ss));
    *len = 0;
    if (s == NULL || s[0] == '\0') {
        *err = "empty address";
        return JN_EINVAL;
    }
    if (s[0] == '[')
        return jn_parse_v6(s, ss, len, err);
    return jn_parse_v4(s, ss, len, err);
}

bool jn_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}
