/* Extraction and hashing of the request key for the hashing balancers. */
#include "balance/hash_key.h"

#include <string.h>

#include "core/common.h"
#include "http/query.h"

#define JN_FNV_OFFSET 0xcbf29ce484222325ULL
#define JN_FNV_PRIME 0x100000001b3ULL

/* FNV-1a alone mixes its last bytes poorly into the high bits; this
 * multiply-xorshift finaliser spreads every input bit over the whole word. */
static uint64_t jn_hash_finish(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t jn_fnv_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * JN_FNV_PRIME;
}

uint64_t jn_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = JN_FNV_OFFSET;
    for (size_t i = 0; i < len; i++)
        h = jn_fnv_byte(h, p[i]);
    return jn_hash_finish(h);
}

/* The decoded value hashed as it is decoded: no buffer, no length limit. */
static uint64_t jn_form_hash(const char *enc, size_t len)
{
    uint64_t h = JN_FNV_OFFSET;
    for (size_t i = 0; i < len;)
        h = jn_fnv_byte(h, jn_form_byte(enc, len, &i));
    return jn_hash_finish(h);
}

/* The first query parameter called name; false when there is none. */
static bool jn_hash_query(struct jn_slice q, const char *name, uint64_t *out)
{
    struct jn_slice v;
    if (!jn_query_find(q, name, strlen(name), &v))
        return false;
    *out = jn_form_hash(v.ptr, v.len);
    return true;
}

static struct jn_slice jn_trim(const char *p, size_t len)
{
    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    return (struct jn_slice){ p, len };
}

/* Looks for "name=value" among the "; "-separated pairs of one Cookie field. */
static bool jn_cookie_in(struct jn_slice v, const char *name, struct jn_slice *value)
{
    size_t nlen = strlen(name), i = 0;
    while (i < v.len) {
        const char *p = v.ptr + i;
        const char *semi = memchr(p, ';', v.len - i);
        size_t plen = semi ? (size_t)(semi - p) : v.len - i;
        const char *eq = memchr(p, '=', plen);
        if (eq != NULL) {
            struct jn_slice n = jn_trim(p, (size_t)(eq - p));
            /* Cookie names are case-sensitive (RFC 6265). */
            if (n.len == nlen && memcmp(n.ptr, name, nlen) == 0) {
                *value = jn_trim(eq + 1, plen - (size_t)(eq - p) - 1);
                return true;
            }
        }
        i += plen + 1;
    }
    return false;
}

/* A request may carry several Cookie fields (HTTP/2 splits them): all count. */
bool jn_request_cookie(const struct jn_http_request *req, const char *name, struct jn_slice *value)
{
    for (size_t i = 0; i < req->nfields; i++)
        if (jn_slice_ieq(req->fields[i].name, "cookie") &&
            jn_cookie_in(req->fields[i].value, name, value))
            return true;
    return false;
}

static bool jn_hash_cookie(const struct jn_http_request *req, const char *name, uint64_t *out)
{
    struct jn_slice value;
    if (!jn_request_cookie(req, name, &value))
        return false;
    *out = jn_hash_bytes(value.ptr, value.len);
    return true;
}

static bool jn_has_prefix(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

bool jn_hash_key(const char *hash_key, const struct jn_http_request *req, const char *client_ip,
                 uint64_t *out)
{
    const char *name;
    bool found = false;
    if (strcmp(hash_key, "path") == 0) {
        *out = jn_hash_bytes(req->path.ptr, req->path.len);
        found = true;
    } else if (jn_has_prefix(hash_key, "header:", &name)) {
        struct jn_slice v = jn_http_field_get(req->fields, req->nfields, name);
        if (v.ptr != NULL) {
            *out = jn_hash_bytes(v.ptr, v.len);
            found = true;
        }
    } else if (jn_has_prefix(hash_key, "cookie:", &name)) {
        found = jn_hash_cookie(req, name, out);
    } else if (jn_has_prefix(hash_key, "query:", &name)) {
        found = jn_hash_query(req->query, name, out);
    } else {
        /* client_ip: hashed below, and "found" (it always exists). */
        *out = jn_hash_bytes(client_ip, strlen(client_ip));
        return true;
    }
    if (!found)
        *out = jn_hash_bytes(client_ip, strlen(client_ip));
    return found;
}
