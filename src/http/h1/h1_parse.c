/* HTTP/1.1 request and response heads (RFC 9112): an incremental search for the
 * end of the header section, then one strict pass over the complete head. */
#include "http/h1/h1_parse.h"

#include <limits.h>

#include "http/h1/h1_chars.h"

/* Everything one parse of a head needs; lives on the caller's stack. */
struct jn_h1_ctx {
    const char *buf; /* borrowed from the caller for the length of one call */
    size_t pos;      /* next byte of the head to parse */
    size_t end;      /* just past the empty line that ends the head */
    const struct jn_h1_limits *lim;
    struct jn_h1_message *msg;
    size_t max_fields;
    bool response;
    /* what the fields said, kept for the framing decision at the end */
    bool has_length;
    bool has_coding; /* a Transfer-Encoding field was present */
    bool last_chunked;
    size_t ncodings;
    size_t nchunked;
    size_t nhost;
    bool conn_close;
    bool conn_keep_alive;
    bool conn_upgrade;
    bool has_upgrade;
};

/* Records why a message is rejected. Responses always map to 502: whatever
 * is wrong with an upstream's answer, the client sees a bad gateway. */
static int jn_h1_fail(struct jn_h1_ctx *cx, int rc, uint16_t status, const char *why)
{
    cx->msg->error_status = cx->response ? 502 : status;
    cx->msg->error = why;
    return rc;
}

bool jn_h1_is_token(struct jn_slice s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!jn_h1_is_tchar((unsigned char)s.ptr[i]))
            return false;
    return true;
}

static struct jn_slice jn_h1_trim(struct jn_slice s)
{
    while (s.len > 0 && jn_h1_is_ows((unsigned char)s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && jn_h1_is_ows((unsigned char)s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* ---- finding the end of the head ---------------------------------------- */

/* RFC 9112 2.2: a server SHOULD ignore at least one empty line before a
 * request line, because some clients send a stray CRLF after a body. One is
 * skipped. Returns its length (0..2), JN_EAGAIN or JN_EINVAL. */
static int jn_h1_skip_empty_line(struct jn_h1_ctx *cx, size_t len)
{
    if (cx->response || len == 0)
        return 0;
    if (cx->buf[0] == '\n')
        return 1;
    if (cx->buf[0] != '\r')
        return 0;
    if (len < 2)
        return JN_EAGAIN;
    if (cx->buf[1] != '\n')
        return jn_h1_fail(cx, JN_EINVAL, 400, "bare CR");
    return 2;
}

static int jn_h1_start_line_too_long(struct jn_h1_ctx *cx)
{
    if (cx->response)
        return jn_h1_fail(cx, JN_ETOOBIG, 502, "status line too long");
    return jn_h1_fail(cx, JN_ETOOBIG, 414, "request line too long");
}

/* A CR must be followed by LF. Returns 1 when the CR at i is the last byte
 * so far (its LF may be in the next read), 0 when it is fine, or JN_EINVAL. */
static int jn_h1_check_cr(struct jn_h1_ctx *cx, size_t i, size_t len)
{
    if (i + 1 == len)
        return 1;
    if (cx->buf[i + 1] != '\n')
        return jn_h1_fail(cx, JN_EINVAL, 400, "bare CR");
    return 0;
}

/* First phase of the search: the start line's LF. An over-long line is
 * refused as soon as its bytes pass the limit, without waiting for the LF;
 * a CR is never counted, as it is either the line's end or refused. */
static int jn_h1_find_start_line(struct jn_h1_ctx *cx, size_t len, struct jn_h1_scan *scan)
{
    size_t i = JN_MAX(scan->scanned, cx->pos);

    for (; i < len; i++) {
        if (cx->buf[i] == '\r') {
            int rc = jn_h1_check_cr(cx, i, len);
            if (rc < 0)
                return rc;
            if (rc > 0)
                break;
            continue;
        }
        if (cx->buf[i] == '\n') {
            scan->line_end = i + 1;
            return 0;
        }
        if (i - cx->pos >= cx->lim->max_request_line)
            return jn_h1_start_line_too_long(cx);
    }
    scan->scanned = i;
    return JN_EAGAIN;
}

/* Second phase: the empty line after the field lines. Returns the length of
 * the whole head, JN_EAGAIN, or an error. */
static int jn_h1_find_empty_line(struct jn_h1_ctx *cx, size_t len, struct jn_h1_scan *scan)
{
    const char *b = cx->buf;
    size_t start = scan->line_end;
    size_t cap = (size_t)INT_MAX; /* the head's length is returned as an int */
    size_t limit = cx->lim->max_header_size > cap - JN_MIN(start, cap)
                       ? cap
                       : start + cx->lim->max_header_size;
    size_t stop = JN_MIN(len, limit);
    size_t i = JN_MAX(scan->scanned, start);

    for (; i < stop; i++) {
        if (b[i] == '\r') {
            int rc = jn_h1_check_cr(cx, i, len);
            if (rc < 0)
                return rc;
            if (rc > 0)
                break;
            continue;
        }
        /* i - 1 >= start - 1, the start line's LF, so i - 2 is in bounds
         * whenever b[i - 1] is a CR */
        if (b[i] == '\n' && (b[i - 1] == '\n' || (b[i - 1] == '\r' && b[i - 2] == '\n')))
            return (int)(i + 1);
    }
    scan->scanned = i;
    if (len > limit)
        return jn_h1_fail(cx, JN_ETOOBIG, 431, "header section too large");
    return JN_EAGAIN;
}

/* Looks for the empty line ending the head, resuming where the last call on
 * this message stopped, so that each byte is looked at once however the input
 * is split. Bare CRs and over-long start lines are refused as soon as they are
 * seen rather than when the head completes. Returns the head's length,
 * JN_EAGAIN, or an error. */
static int jn_h1_find_head(struct jn_h1_ctx *cx, size_t len, struct jn_h1_scan *scan)
{
    int start = jn_h1_skip_empty_line(cx, len);
    if (start < 0)
        return start;
    cx->pos = (size_t)start;
    if (scan->scanned > len || scan->line_end > len) /* not the buffer seen before */
        *scan = (struct jn_h1_scan){ 0 };
    if (scan->line_end == 0) {
        int rc = jn_h1_find_start_line(cx, len, scan);
        if (rc < 0)
            return rc;
    }
    return jn_h1_find_empty_line(cx, len, scan);
}

/* Cuts the next line out of the head, without its LF or CRLF. The search
 * above guarantees that every line of the head ends with an LF. */
static struct jn_slice jn_h1_next_line(struct jn_h1_ctx *cx)
{
    const char *p = cx->buf + cx->pos;
    const char *lf = memchr(p, '\n', cx->end - cx->pos);
    size_t n = lf ? (size_t)(lf - p) : cx->end - cx->pos;
    cx->pos += lf ? n + 1 : n;
    return (struct jn_slice){ p, (n > 0 && p[n - 1] == '\r') ? n - 1 : n };
}

/* ---- start lines -------------------------------------------------------- */

/* Only HTTP/1.0 and HTTP/1.1; the name is case-sensitive (RFC 9112 2.3). */
static bool jn_h1_parse_version(const char *p, size_t n, uint8_t *minor)
{
    if (n != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
        return false;
    *minor = (uint8_t)(p[7] - '0');
    return true;
}

/* uri-host and port bytes (RFC 3986): unreserved, pct-encoded, sub-delims,
 * ':' and the brackets of an IP literal. */
static bool jn_h1_is_host_byte(unsigned char c)
{
    static const char extra[] = "-._~%!$&'()*+,;=:[]";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && memchr(extra, c, sizeof(extra) - 1) != NULL;
}

static bool jn_h1_is_host(struct jn_slice s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!jn_h1_is_host_byte((unsigned char)s.ptr[i]))
            return false;
    return true;
}

/* authority-form (RFC 9112 3.2.3): host ":" port, the port mandatory. */
static bool jn_h1_is_authority_form(struct jn_slice t)
{
    size_t colon = t.len;
    while (colon > 0 && t.ptr[colon - 1] != ':')
        colon--;
    if (colon <= 1 || colon == t.len || !jn_h1_is_host((struct jn_slice){ t.ptr, colon - 1 }))
        return false;
    for (size_t i = colon; i < t.len; i++)
        if (t.ptr[i] < '0' || t.ptr[i] > '9')
            return false;
    return true;
}

/* absolute-form starts with a scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":". */
static bool jn_h1_has_scheme(struct jn_slice t)
{
    size_t i = 0;
    while (i < t.len) {
        char c = jn_lower(t.ptr[i]);
        bool alpha = c >= 'a' && c <= 'z';
        if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')))
            break;
        i++;
    }
    return i > 0 && i < t.len && t.ptr[i] == ':';
}

/* RFC 9112 3.2: the target's form must suit the method, so that later stages
 * never meet "GET foo" or "CONNECT /". */
static int jn_h1_check_target_form(struct jn_h1_ctx *cx)
{
    struct jn_slice t = cx->msg->target;
    struct jn_slice m = cx->msg->method;

    if (jn_slice_eq(m, JN_SLICE_LIT("CONNECT"))) {
        if (!jn_h1_is_authority_form(t))
            return jn_h1_fail(cx, JN_EINVAL, 400, "CONNECT needs a host:port target");
        return 0;
    }
    if (t.len == 1 && t.ptr[0] == '*') {
        if (!jn_slice_eq(m, JN_SLICE_LIT("OPTIONS")))
            return jn_h1_fail(cx, JN_EINVAL, 400, "asterisk target needs OPTIONS");
        return 0;
    }
    if (t.ptr[0] == '/' || jn_h1_has_scheme(t))
        return 0;
    return jn_h1_fail(cx, JN_EINVAL, 400, "invalid request target form");
}

/* Scans the request target up to the next SP. Returns its end, or 0 with
 * the error recorded (a target is never empty at position 0). */
static size_t jn_h1_scan_target(struct jn_h1_ctx *cx, const char *p, size_t i, size_t n)
{
    for (; i < n && p[i] != ' '; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '#') {
            jn_h1_fail(cx, JN_EINVAL, 400, "fragment in request target");
            return 0;
        }
        if (c < 0x21 || c > 0x7e) {
            jn_h1_fail(cx, JN_EINVAL, 400, "invalid byte in request target");
            return 0;
        }
    }
    return i;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3), with
 * exactly one SP between the parts: anything looser invites smuggling. */
static int jn_h1_parse_request_line(struct jn_h1_ctx *cx)
{
    struct jn_h1_message *msg = cx->msg;
    struct jn_slice line = jn_h1_next_line(cx);
    const char *p = line.ptr;
    size_t n = line.len, i = 0;

    if (n == 0)
        return jn_h1_fail(cx, JN_EINVAL, 400, "empty request line");
    while (i < n && jn_h1_is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return jn_h1_fail(cx, JN_EINVAL, 400, "invalid method");
    msg->method = (struct jn_slice){ p, i };
    size_t t = ++i;
    if (i < n && p[i] == ' ')
        return jn_h1_fail(cx, JN_EINVAL, 400, "more than one space in request line");
    i = jn_h1_scan_target(cx, p, i, n);
    if (i == 0)
        return JN_EINVAL;
    if (i == t)
        return jn_h1_fail(cx, JN_EINVAL, 400, "missing request target");
    if (i == n)
        return jn_h1_fail(cx, JN_EINVAL, 400, "missing HTTP version");
    msg->target = (struct jn_slice){ p + t, i - t };
    i++;
    if (i < n && p[i] == ' ')
        return jn_h1_fail(cx, JN_EINVAL, 400, "more than one space in request line");
    if (!jn_h1_parse_version(p + i, n - i, &msg->version_minor))
        return jn_h1_fail(cx, JN_EINVAL, 400, "invalid HTTP version");
    return jn_h1_check_target_form(cx);
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ]. The one
 * leniency: "HTTP/1.1 200" without the second SP, which servers send and
 * which cannot be misread. */
static int jn_h1_parse_status_line(struct jn_h1_ctx *cx)
{
    struct jn_h1_message *msg = cx->msg;
    struct jn_slice line = jn_h1_next_line(cx);
    const char *p = line.ptr;
    unsigned status = 0;

    if (line.len < 8 || !jn_h1_parse_version(p, 8, &msg->version_minor))
        return jn_h1_fail(cx, JN_EINVAL, 502, "invalid HTTP version");
    if (line.len < 12 || p[8] != ' ' || (line.len > 12 && p[12] != ' '))
        return jn_h1_fail(cx, JN_EINVAL, 502, "invalid status line");
    for (size_t i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return jn_h1_fail(cx, JN_EINVAL, 502, "invalid status code");
        status = status * 10 + (unsigned)(p[i] - '0');
    }
    if (status < 100 || status > 599)
        return jn_h1_fail(cx, JN_EINVAL, 502, "invalid status code");
    msg->status = (uint16_t)status;
    size_t from = line.len > 12 ? 13 : 12;
    for (size_t i = from; i < line.len; i++)
        if (!jn_h1_is_value_byte((unsigned char)p[i]))
            return jn_h1_fail(cx, JN_EINVAL, 502, "control character in reason phrase");
    msg->reason = (struct jn_slice){ p + from, line.len - from };
    return 0;
}

/* ---- header fields ------------------------------------------------------ */

static const char *jn_h1_name_error(unsigned char c)
{
    if (jn_h1_is_ows(c))
        return "whitespace before colon";
    if (c == 0)
        return "NUL in header name";
    if (c < 0x20 || c == 0x7f)
        return "control character in header name";
    return "invalid header name";
}

static const char *jn_h1_value_error(unsigned char c)
{
    if (c == 0)
        return "NUL in header value";
    return "control character in header value";
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 5). */
static int jn_h1_parse_field(struct jn_h1_ctx *cx, struct jn_slice line, struct jn_h1_header *h)
{
    const unsigned char *p = (const unsigned char *)line.ptr;
    size_t i = 0;

    /* obs-fold: RFC 9112 5.2 lets a server reject it, and joining lines
     * would break zero-copy views. */
    if (jn_h1_is_ows(p[0]))
        return jn_h1_fail(cx, JN_EINVAL, 400, "obsolete line folding");
    while (i < line.len && jn_h1_is_tchar(p[i]))
        i++;
    if (i == line.len)
        return jn_h1_fail(cx, JN_EINVAL, 400, "header line without colon");
    if (p[i] != ':')
        return jn_h1_fail(cx, JN_EINVAL, 400, jn_h1_name_error(p[i]));
    if (i == 0)
        return jn_h1_fail(cx, JN_EINVAL, 400, "empty header name");
    h->name = (struct jn_slice){ line.ptr, i };
    h->value = jn_h1_trim((struct jn_slice){ line.ptr + i + 1, line.len - i - 1 });
    for (size_t k = 0; k < h->value.len; k++) {
        unsigned char c = (unsigned char)h->value.ptr[k];
        if (!jn_h1_is_value_byte(c))
            return jn_h1_fail(cx, JN_EINVAL, 400, jn_h1_value_error(c));
    }
    return 0;
}

/* RFC 9112 6.3: a second Content-Length, even an equal one, or a list, is
 * refused outright: an intermediary that picks one value lets another pick
 * the other. */
static int jn_h1_note_length(struct jn_h1_ctx *cx, struct jn_slice v)
{
    uint64_t n = 0;

    if (cx->has_length)
        return jn_h1_fail(cx, JN_EINVAL, 400, "duplicate Content-Length");
    cx->has_length = true;
    if (v.len == 0)
        return jn_h1_fail(cx, JN_EINVAL, 400, "empty Content-Length");
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c < '0' || c > '9')
            return jn_h1_fail(cx, JN_EINVAL, 400, "Content-Length is not a number");
        if (n > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
            return jn_h1_fail(cx, JN_EINVAL, 400, "Content-Length too large");
        n = n * 10 + (uint64_t)(c - '0');
    }
    cx->msg->content_length = n;
    return 0;
}

/* Takes the list element (RFC 9110 5.6.1) that starts at v[i], OWS trimmed
 * and possibly empty. Returns the index of the comma ending it, or v.len. */
static size_t jn_h1_list_elem(struct jn_slice v, size_t i, struct jn_slice *elem)
{
    size_t j = i;
    while (j < v.len && v.ptr[j] != ',')
        j++;
    *elem = jn_h1_trim((struct jn_slice){ v.ptr + i, j - i });
    return j;
}

/* Transfer-Encoding lists from several fields add up, in order. Empty
 * elements and parameters are refused here rather than skipped: nothing
 * legitimate sends them and they are a classic way to split parsers. */
static int jn_h1_note_codings(struct jn_h1_ctx *cx, struct jn_slice v)
{
    struct jn_slice e;

    cx->has_coding = true;
    for (size_t i = 0;; i++) {
        i = jn_h1_list_elem(v, i, &e);
        if (!jn_h1_is_token(e))
            return jn_h1_fail(cx, JN_EINVAL, 400, "invalid Transfer-Encoding");
        cx->last_chunked = jn_slice_ieq(e, "chunked");
        cx->nchunked += cx->last_chunked;
        cx->ncodings++;
        if (i == v.len)
            return 0;
    }
}

static int jn_h1_note_connection(struct jn_h1_ctx *cx, struct jn_slice v)
{
    struct jn_slice e;

    for (size_t i = 0;; i++) {
        i = jn_h1_list_elem(v, i, &e);
        if (e.len > 0 && !jn_h1_is_token(e))
            return jn_h1_fail(cx, JN_EINVAL, 400, "invalid Connection");
        cx->conn_close |= jn_slice_ieq(e, "close");
        cx->conn_keep_alive |= jn_slice_ieq(e, "keep-alive");
        cx->conn_upgrade |= jn_slice_ieq(e, "upgrade");
        if (i == v.len)
            return 0;
    }
}

/* Remembers what the fields that decide framing and routing said. */
static int jn_h1_note_field(struct jn_h1_ctx *cx, const struct jn_h1_header *h)
{
    struct jn_h1_message *msg = cx->msg;

    if (jn_slice_ieq(h->name, "content-length"))
        return jn_h1_note_length(cx, h->value);
    if (jn_slice_ieq(h->name, "transfer-encoding"))
        return jn_h1_note_codings(cx, h->value);
    if (jn_slice_ieq(h->name, "connection"))
        return jn_h1_note_connection(cx, h->value);
    if (jn_slice_ieq(h->name, "upgrade"))
        cx->has_upgrade = true;
    if (cx->response)
        return 0;
    if (jn_slice_ieq(h->name, "host")) {
        if (++cx->nhost > 1)
            return jn_h1_fail(cx, JN_EINVAL, 400, "duplicate Host");
        msg->host = h->value;
    } else if (jn_slice_ieq(h->name, "expect")) {
        msg->expect_continue |= jn_slice_ieq(h->value, "100-continue");
    }
    return 0;
}

static int jn_h1_parse_fields(struct jn_h1_ctx *cx)
{
    struct jn_h1_message *msg = cx->msg;

    for (;;) {
        struct jn_slice line = jn_h1_next_line(cx);
        if (line.len == 0)
            return 0; /* the empty line that ends the head */
        if (msg->nheaders == cx->max_fields)
            return jn_h1_fail(cx, JN_ETOOBIG, 431, "too many header fields");
        struct jn_h1_header *h = &msg->headers[msg->nheaders];
        int rc = jn_h1_parse_field(cx, line, h);
        if (rc == 0)
            rc = jn_h1_note_field(cx, h);
        if (rc < 0)
            return rc;
        msg->nheaders++;
    }
}

/* ---- framing ------------------------------------------------------------ */

/* RFC 9112 6.1 and 6.3. Only "chunked" alone is supported: another coding
 * under it would have to be forwarded untouched or decoded, and neither is
 * worth the risk for a gateway. */
static int jn_h1_check_codings(struct jn_h1_ctx *cx)
{
    if (!cx->has_coding)
        return 0;
    if (cx->has_length)
        return jn_h1_fail(cx, JN_EINVAL, 400, "both Content-Length and Transfer-Encoding");
    if (cx->msg->version_minor == 0)
        return jn_h1_fail(cx, JN_EINVAL, 400, "Transfer-Encoding in an HTTP/1.0 message");
    if (!cx->last_chunked)
        return jn_h1_fail(cx, JN_EINVAL, 400, "chunked is not the final transfer coding");
    if (cx->nchunked > 1)
        return jn_h1_fail(cx, JN_EINVAL, 400, "chunked applied more than once");
    if (cx->ncodings > 1)
        return jn_h1_fail(cx, JN_ENOTSUP, 501, "unsupported transfer coding");
    return 0;
}

static void jn_h1_set_connection(struct jn_h1_ctx *cx)
{
    struct jn_h1_message *msg = cx->msg;

    if (msg->version_minor == 1)
        msg->keep_alive = !cx->conn_close;
    else
        msg->keep_alive = cx->conn_keep_alive && !cx->conn_close;
    msg->upgrade = cx->conn_upgrade && cx->has_upgrade;
}

static int jn_h1_finish_request(struct jn_h1_ctx *cx)
{
    struct jn_h1_message *msg = cx->msg;

    if (cx->nhost == 0 && msg->version_minor == 1)
        return jn_h1_fail(cx, JN_EINVAL, 400, "missing Host");
    if (!jn_h1_is_host(msg->host))
        return jn_h1_fail(cx, JN_EINVAL, 400, "invalid Host");
    int rc = jn_h1_check_codings(cx);
    if (rc < 0)
        return rc;
    if (cx->has_coding)
        msg->body = JN_H1_BODY_CHUNKED;
    else if (cx->has_length && msg->content_length > 0)
        msg->body = JN_H1_BODY_LENGTH;
    else
        msg->body = JN_H1_BODY_NONE;
    jn_h1_set_connection(cx);
    return 0;
}

/* RFC 9112 6.3, in its order of precedence. */
static int jn_h1_finish_response(struct jn_h1_ctx *cx, bool head_request)
{
    struct jn_h1_message *msg = cx->msg;
    uint16_t status = msg->status;

    int rc = jn_h1_check_codings(cx);
    if (rc < 0)
        return rc;
    if (head_request || status < 200 || status == 204 || status == 304)
        msg->body = JN_H1_BODY_NONE;
    else if (cx->has_coding)
        msg->body = JN_H1_BODY_CHUNKED;
    else if (cx->has_length)
        msg->body = msg->content_length > 0 ? JN_H1_BODY_LENGTH : JN_H1_BODY_NONE;
    else
        msg->body = JN_H1_BODY_CLOSE;
    jn_h1_set_connection(cx);
    if (msg->body == JN_H1_BODY_CLOSE)
        msg->keep_alive = false; /* the close is what ends the body */
    return 0;
}

/* ---- entry points ------------------------------------------------------- */

static void jn_h1_begin(struct jn_h1_ctx *cx, const char *buf, const struct jn_h1_limits *lim,
                        struct jn_h1_header *headers, size_t max, struct jn_h1_message *msg,
                        bool response)
{
    *cx = (struct jn_h1_ctx){ 0 };
    cx->buf = buf;
    cx->lim = lim;
    cx->msg = msg;
    cx->max_fields = JN_MIN(lim->max_headers, max);
    cx->response = response;
    *msg = (struct jn_h1_message){ 0 };
    msg->headers = headers;
}

int jn_h1_parse_request(const char *buf, size_t len, const struct jn_h1_limits *lim,
                        struct jn_h1_header *headers, size_t max, struct jn_h1_scan *scan,
                        struct jn_h1_message *msg)
{
    struct jn_h1_ctx cx;

    jn_h1_begin(&cx, buf, lim, headers, max, msg, false);
    int rc = jn_h1_find_head(&cx, len, scan);
    if (rc < 0)
        return rc;
    cx.end = (size_t)rc;
    rc = jn_h1_parse_request_line(&cx);
    if (rc == 0)
        rc = jn_h1_parse_fields(&cx);
    if (rc == 0)
        rc = jn_h1_finish_request(&cx);
    if (rc < 0)
        return rc;
    msg->header_bytes = cx.end;
    return (int)cx.end;
}

int jn_h1_parse_response(const char *buf, size_t len, const struct jn_h1_limits *lim,
                         struct jn_h1_header *headers, size_t max, struct jn_h1_scan *scan,
                         bool head_request, struct jn_h1_message *msg)
{
    struct jn_h1_ctx cx;

    jn_h1_begin(&cx, buf, lim, headers, max, msg, true);
    int rc = jn_h1_find_head(&cx, len, scan);
    if (rc < 0)
        return rc;
    cx.end = (size_t)rc;
    rc = jn_h1_parse_status_line(&cx);
    if (rc == 0)
        rc = jn_h1_parse_fields(&cx);
    if (rc == 0)
        rc = jn_h1_finish_response(&cx, head_request);
    if (rc < 0)
        return rc;
    msg->header_bytes = cx.end;
    return (int)cx.end;
}
