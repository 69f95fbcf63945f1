/* Request-target normalisation (RFC 3986 section 6.2.2): one pass that splits
 * the target, decodes what may be decoded and resolves dot-segments, so that
 * every spelling of a path reaches routing and policies as one string. */
#include "http/path.h"

/* Character classes of RFC 3986 section 2 and 3.3. */
enum {
    JN_URI_UNRESERVED = 1, /* ALPHA DIGIT - . _ ~ */
    JN_URI_PCHAR = 2,      /* unreserved, sub-delims, ':' and '@' (pct-encoded aside) */
    JN_URI_HOST = 4,       /* what an absolute-form authority may hold here */
};

static unsigned jn_uri_class(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return JN_URI_UNRESERVED | JN_URI_PCHAR | JN_URI_HOST;
    if (c == '\0')
        return 0;
    if (strchr("-._~", c) != NULL)
        return JN_URI_UNRESERVED | JN_URI_PCHAR | JN_URI_HOST;
    if (strchr("!$&'()*+,;=:", c) != NULL) /* sub-delims and ':' */
        return JN_URI_PCHAR | JN_URI_HOST;
    if (c == '@') /* userinfo in an http URI is an error (RFC 9110 section 4.2.4) */
        return JN_URI_PCHAR;
    if (c == '[' || c == ']')
        return JN_URI_HOST;
    return 0;
}

/* Decodes the two hex digits after in[i] == '%'. Returns 0..255 or -1. */
static int jn_pct_value(const char *in, size_t len, size_t i)
{
    if (len - i < 3)
        return -1;
    int hi = jn_hex_digit_value((unsigned char)in[i + 1]);
    int lo = jn_hex_digit_value((unsigned char)in[i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi * 16 + lo;
}

/* State of one normalisation: input path, output buffer, options. */
struct jn_norm {
    const char *in; /* borrowed: the path part of the target, starting with '/' */
    size_t len;
    size_t i;  /* next input byte */
    char *out; /* borrowed: the caller's buffer */
    size_t olen;
    const struct jn_path_opts *opts;
    const char *err;
};

enum jn_unit { JN_UNIT_DATA, JN_UNIT_SEP, JN_UNIT_END, JN_UNIT_ERR };

static const char jn_hex_upper[] = "0123456789ABCDEF";

/* Consumes one "%XX" at n->i and writes its normal form. A decoded "%2F" is a
 * separator: decoding it as data would let "%2F..%2F" hide a dot-segment. */
static enum jn_unit jn_norm_escape(struct jn_norm *n)
{
    int v = jn_pct_value(n->in, n->len, n->i);
    if (v < 0) {
        n->err = "invalid percent-encoding in path";
        return JN_UNIT_ERR;
    }
    if (v == 0) {
        n->err = "encoded NUL in path";
        return JN_UNIT_ERR;
    }
    n->i += 3;
    if (jn_uri_class((unsigned char)v) & JN_URI_UNRESERVED) {
        n->out[n->olen++] = (char)v;
        return JN_UNIT_DATA;
    }
    if (v == '/') {
        if (n->opts->escaped_slashes == JN_SLASH_DECODE)
            return JN_UNIT_SEP;
        if (n->opts->escaped_slashes == JN_SLASH_REJECT) {
            n->err = "encoded slash in path";
            return JN_UNIT_ERR;
        }
    }
    n->out[n->olen++] = '%';
    n->out[n->olen++] = jn_hex_upper[v >> 4];
    n->out[n->olen++] = jn_hex_upper[v & 15];
    return JN_UNIT_DATA;
}

/* Consumes one unit of input: a byte of segment data, or a separator. */
static enum jn_unit jn_norm_next(struct jn_norm *n)
{
    if (n->i == n->len)
        return JN_UNIT_END;
    char c = n->in[n->i];
    if (c == '/') {
        n->i++;
        return JN_UNIT_SEP;
    }
    if (c == '%')
        return jn_norm_escape(n);
    if (!(jn_uri_class((unsigned char)c) & JN_URI_PCHAR)) {
        n->err = "invalid character in path";
        return JN_UNIT_ERR;
    }
    n->out[n->olen++] = c;
    n->i++;
    return JN_UNIT_DATA;
}

/* Ends the segment written at out[start..olen). The output always ends with
 * '/' between segments, so ".." only has to cut back to the previous '/'. */
static void jn_norm_end_segment(struct jn_norm *n, size_t start, bool separator)
{
    const char *seg = n->out + start;
    size_t seglen = n->olen - start;
    if (seglen == 1 && seg[0] == '.') {
        n->olen = start;
    } else if (seglen == 2 && seg[0] == '.' && seg[1] == '.') {
        n->olen = start;
        if (n->olen > 1) { /* never above "/" */
            size_t j = n->olen - 1;
            while (j > 0 && n->out[j - 1] != '/')
                j--;
            n->olen = j;
        }
    } else if (seglen == 0 && (n->opts->merge_slashes || !separator)) {
        /* an empty segment adds nothing: the '/' before it is already there */
    } else if (separator) {
        n->out[n->olen++] = '/';
    }
}

/* Normalises a path that starts with '/'. The output is never longer than the
 * input: every byte written stands for at least one byte consumed. */
static int jn_norm_path(struct jn_norm *n)
{
    n->out[0] = '/';
    n->olen = 1;
    n->i = 1;
    size_t start = 1;
    for (;;) {
        enum jn_unit u = jn_norm_next(n);
        if (u == JN_UNIT_DATA)
            continue;
        if (u == JN_UNIT_ERR)
            return JN_EINVAL;
        jn_norm_end_segment(n, start, u == JN_UNIT_SEP);
        if (u == JN_UNIT_END)
            break;
        start = n->olen;
    }
    n->out[n->olen] = '\0';
    return 0;
}

/* The query is passed on raw, but it must still be a valid RFC 3986 query:
 * an upstream must not be handed bytes the path would have been refused for. */
static int jn_check_query(struct jn_slice q, const char **err)
{
    for (size_t i = 0; i < q.len; i++) {
        unsigned char c = (unsigned char)q.ptr[i];
        if (c == '%') {
            if (jn_pct_value(q.ptr, q.len, i) < 0) {
                *err = "invalid percent-encoding in query";
                return JN_EINVAL;
            }
            i += 2;
        } else if (c != '/' && c != '?' && !(jn_uri_class(c) & JN_URI_PCHAR)) {
            *err = "invalid character in query";
            return JN_EINVAL;
        }
    }
    return 0;
}

static bool jn_has_prefix_icase(struct jn_slice s, const char *prefix, size_t n)
{
    if (s.len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (jn_lower(s.ptr[i]) != prefix[i])
            return false;
    return true;
}

/* Splits "http://authority/rest" into the authority and the rest (which may
 * be empty or start with '?'). Returns 0 or JN_EINVAL. */
static int jn_split_absolute(struct jn_slice target, struct jn_slice *authority,
                             struct jn_slice *rest, const char **err)
{
    size_t skip;
    if (jn_has_prefix_icase(target, "http://", 7))
        skip = 7;
    else if (jn_has_prefix_icase(target, "https://", 8))
        skip = 8;
    else {
        *err = target.len == 1 && target.ptr[0] == '*' ? "asterisk-form target not allowed"
                                                       : "request-target is not a path";
        return JN_EINVAL;
    }
    size_t end = skip;
    while (end < target.len && target.ptr[end] != '/' && target.ptr[end] != '?') {
        if (!(jn_uri_class((unsigned char)target.ptr[end]) & JN_URI_HOST)) {
            *err = "invalid character in authority";
            return JN_EINVAL;
        }
        end++;
    }
    if (end == skip) {
        *err = "empty authority";
        return JN_EINVAL;
    }
    *authority = (struct jn_slice){target.ptr + skip, end - skip};
    *rest = (struct jn_slice){target.ptr + end, target.len - end};
    return 0;
}

int jn_path_normalize(struct jn_slice target, const struct jn_path_opts *opts, char *out,
                      struct jn_slice *path, struct jn_slice *query, struct jn_slice *authority,
                      const char **err)
{
    *authority = (struct jn_slice){NULL, 0};
    if (target.len == 0) {
        *err = "empty request-target";
        return JN_EINVAL;
    }
    if (memchr(target.ptr, '#', target.len) != NULL) {
        *err = "fragment in request-target";
        return JN_EINVAL;
    }
    struct jn_slice rest = target;
    if (target.ptr[0] != '/' && jn_split_absolute(target, authority, &rest, err) < 0)
        return JN_EINVAL;
    const char *qmark = rest.len ? memchr(rest.ptr, '?', rest.len) : NULL;
    size_t plen = qmark ? (size_t)(qmark - rest.ptr) : rest.len;
    *query = qmark ? (struct jn_slice){qmark + 1, rest.len - plen - 1}
                   : (struct jn_slice){rest.ptr + rest.len, 0};
    if (jn_check_query(*query, err) < 0)
        return JN_EINVAL;
    if (plen == 0) { /* "http://host" or "http://host?q": the path is "/" */
        out[0] = '/';
        out[1] = '\0';
        *path = (struct jn_slice){out, 1};
        return 0;
    }
    struct jn_norm n = {.in = rest.ptr, .len = plen, .out = out, .opts = opts};
    if (jn_norm_path(&n) < 0) {
        *err = n.err;
        return JN_EINVAL;
    }
    *path = (struct jn_slice){out, n.olen};
    return 0;
}
