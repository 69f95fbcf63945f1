/* The client address every policy and log uses. Behind trusted proxies,
 * X-Forwarded-For is read from the right: each hop appends the address it
 * saw, so the first address that is not a trusted proxy is the client, and
 * anything left of it is the client's own word (nginx real_ip_recursive,
 * Envoy xff_num_trusted_hops). */
#include "http/client_addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "http/h1/h1_server.h"
#include "http/stream.h"

static bool trusted(const struct jn_config *cfg, const struct jn_ip *ip)
{
    return jn_cidr_any(cfg->trusted_proxies, cfg->ntrusted_proxies, ip);
}

/* The last comma-separated entry of v[0, *len), trimmed; *len moves to
 * before its comma. Returns false when none is left. */
static bool last_entry(const char *v, size_t *len, struct jn_slice *out)
{
    size_t end = *len;
    while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    if (end == 0) {
        *len = 0;
        return false;
    }
    size_t start = end;
    while (start > 0 && v[start - 1] != ',')
        start--;
    *len = start > 0 ? start - 1 : 0;
    size_t b = start;
    while (b < end && (v[b] == ' ' || v[b] == '\t'))
        b++;
    *out = (struct jn_slice){v + b, end - b};
    return true;
}

/* Walks the X-Forwarded-For entries from the right, over every field (the
 * last field holds the nearest hops). Returns true when *ip was replaced. */
static bool from_forwarded(const struct jn_config *cfg, const struct jn_fields *f, struct jn_ip *ip)
{
    bool moved = false;
    for (size_t i = f->n; i-- > 0;) {
        if (!jn_slice_ieq(f->v[i].name, "x-forwarded-for"))
            continue;
        size_t len = f->v[i].value.len;
        struct jn_slice e;
        while (len > 0) {
            if (!last_entry(f->v[i].value.ptr, &len, &e))
                break;
            struct jn_ip next;
            if (e.len == 0 || !jn_ip_parse(e.ptr, e.len, &next))
                return moved; /* garbage: the last trusted hop is the client */
            *ip = next;
            moved = true;
            if (!trusted(cfg, ip))
                return true;
        }
    }
    return moved;
}

static void ip_text(const struct jn_ip *ip, char *out, size_t cap)
{
    if (inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->a, out, (socklen_t)cap) == NULL)
        out[0] = '\0';
}

void jn_client_addr_resolve(struct jn_stream *s, const struct jn_fields *f)
{
    const struct jn_config *cfg = s->gen->cfg;
    const char *peer = s->client->peer;
    size_t n = strlen(peer);
    memcpy(s->client_ip, peer, JN_MIN(n + 1, sizeof(s->client_ip)));
    s->client_ip[sizeof(s->client_ip) - 1] = '\0';
    s->client_addr = s->client->peer_ip;
    if (s->client_addr.family == 0)
        return; /* a unix socket, one day: no address to judge */
    if (cfg->ntrusted_proxies == 0 || !trusted(cfg, &s->client_addr))
        return;
    if (from_forwarded(cfg, f, &s->client_addr))
        ip_text(&s->client_addr, s->client_ip, sizeof(s->client_ip));
}
