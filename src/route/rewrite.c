/* Upstream paths: what a route's strip_prefix and rewrite make of the
 * normalised request path before it is sent on. */
#include "route/router.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <limits.h>
#include <pcre2.h>

/* A bounded writer into the caller's buffer; one byte is kept for the NUL. */
struct jn_rw_out {
    char *ptr; /* borrowed from the caller */
    size_t cap;
    size_t len;
    bool overflow;
};

static void jn_rw_put(struct jn_rw_out *o, const char *s, size_t n)
{
    if (o->overflow || n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(o->ptr + o->len, s, n);
    o->len += n;
}

/* strip_prefix on a segment boundary: "/catalog" takes "/catalog/items" to
 * "/items" and "/catalog" to "", and leaves "/catalogue" alone. A trailing
 * slash in the prefix changes nothing: "/catalog/" strips like "/catalog". */
static struct jn_slice jn_rw_strip(const char *prefix, struct jn_slice path)
{
    if (prefix == NULL)
        return path;
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    if (n == 0 || path.len < n || memcmp(path.ptr, prefix, n) != 0)
        return path;
    if (path.len > n && path.ptr[n] != '/')
        return path;
    return (struct jn_slice){path.ptr + n, path.len - n};
}

/* Expands "$0".."$9" (a group that did not take part is empty) and "$$".
 * The router rejects other uses of '$' at load; should one reach here it is
 * copied as it stands. */
static void jn_rw_expand(struct jn_rw_out *o, const char *tmpl, struct jn_slice subject,
                         const size_t *ov)
{
    for (size_t i = 0; tmpl[i] != '\0'; i++) {
        char d = tmpl[i + 1];
        if (tmpl[i] != '$' || d == '\0') {
            jn_rw_put(o, tmpl + i, 1);
            continue;
        }
        i++;
        if (d >= '0' && d <= '9') {
            size_t start = ov[2 * (d - '0')], end = ov[2 * (d - '0') + 1];
            if (start != PCRE2_UNSET && start <= end && end <= subject.len)
                jn_rw_put(o, subject.ptr + start, end - start);
        } else if (d == '$') {
            jn_rw_put(o, "$", 1);
        } else {
            jn_rw_put(o, tmpl + i - 1, 2);
        }
    }
}

/* Replaces the first match of the rewrite pattern, keeping what is around it
 * (pcre2_substitute's semantics); no match leaves the path as it is. */
static void jn_rw_rewrite(struct jn_rw_out *o, const struct jn_cfg_rewrite *rw, struct jn_slice p)
{
    const size_t *ov;
    if (rw->regex == NULL || !jn_route_regex_match(rw->regex, p, &ov) || ov[0] > ov[1] ||
        ov[1] > p.len) {
        jn_rw_put(o, p.ptr, p.len);
        return;
    }
    size_t start = ov[0], end = ov[1];
    jn_rw_put(o, p.ptr, start);
    jn_rw_expand(o, rw->replace != NULL ? rw->replace : "", p, ov);
    jn_rw_put(o, p.ptr + end, p.len - end);
}

int jn_route_upstream_path(const struct jn_cfg_route *route, struct jn_slice path, char *out,
                           size_t cap)
{
    struct jn_slice p = jn_rw_strip(route->strip_prefix, path);
    if (p.len == 0)
        p = JN_SLICE_LIT("/");
    struct jn_rw_out o = {out, cap, 0, false};
    jn_rw_rewrite(&o, &route->rewrite, p);
    if (o.overflow)
        return JN_ETOOBIG;
    /* A template such as "$1" may drop the leading slash; an upstream needs
     * an origin-form target. */
    if (o.len == 0 || out[0] != '/') {
        if (o.len + 1 >= cap)
            return JN_ETOOBIG;
        memmove(out + 1, out, o.len);
        out[0] = '/';
        o.len++;
    }
    if (o.len > INT_MAX)
        return JN_ETOOBIG;
    out[o.len] = '\0';
    return (int)o.len;
}
