/* HTTP/1.1 head serialisation and hop-by-hop field removal. */
#include "http/h1/h1_write.h"

#include <stdio.h>

#define MAX_CONNECTION_TOKENS 16

/* Collects the comma-separated tokens of every Connection field. */
static size_t connection_tokens(const struct jn_fields *f, struct jn_slice *tok, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (!jn_slice_ieq(f->v[i].name, "connection"))
            continue;
        const char *p = f->v[i].value.ptr, *end = p + f->v[i].value.len;
        while (p < end && n < max) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p > s)
                tok[n++] = (struct jn_slice){ s, (size_t)(p - s) };
        }
    }
    return n;
}

static bool is_hop_by_hop(struct jn_slice name, const struct jn_slice *tok, size_t ntok)
{
    static const char *const fixed[] = { "connection", "keep-alive", "te", "trailer",
                                         "transfer-encoding", "upgrade", "proxy-connection",
                                         "content-length" };
    for (size_t i = 0; i < JN_ARRAY_LEN(fixed); i++)
        if (jn_slice_ieq(name, fixed[i]))
            return true;
    for (size_t i = 0; i < ntok; i++)
        if (jn_slice_ieq_slice(name, tok[i]))
            return true;
    return false;
}

void jn_h1_strip_hop_by_hop(struct jn_fields *f)
{
    struct jn_slice tok[MAX_CONNECTION_TOKENS];
    size_t ntok = connection_tokens(f, tok, MAX_CONNECTION_TOKENS);
    size_t j = 0;
    for (size_t i = 0; i < f->n; i++)
        if (!is_hop_by_hop(f->v[i].name, tok, ntok))
            f->v[j++] = f->v[i];
    f->n = j;
}

static int put_fields(struct jn_buf *out, const struct jn_fields *f)
{
    int rc = 0;
    for (size_t i = 0; i < f->n && rc == 0; i++) {
        rc |= jn_buf_put(out, f->v[i].name.ptr, f->v[i].name.len);
        rc |= jn_buf_put(out, ": ", 2);
        rc |= jn_buf_put(out, f->v[i].value.ptr, f->v[i].value.len);
        rc |= jn_buf_put(out, "\r\n", 2);
    }
    rc |= jn_buf_put(out, "\r\n", 2);
    return rc ? JN_ENOMEM : 0;
}

int jn_h1_write_request_head(struct jn_buf *out, struct jn_slice method, struct jn_slice path,
                             struct jn_slice query, const struct jn_fields *f)
{
    int rc = jn_buf_put(out, method.ptr, method.len);
    rc |= jn_buf_put(out, " ", 1);
    rc |= jn_buf_put(out, path.ptr, path.len);
    if (query.len > 0) {
        rc |= jn_buf_put(out, "?", 1);
        rc |= jn_buf_put(out, query.ptr, query.len);
    }
    rc |= jn_buf_put(out, " HTTP/1.1\r\n", 11);
    return rc ? JN_ENOMEM : put_fields(out, f);
}

int jn_h1_write_response_head(struct jn_buf *out, uint16_t status, const struct jn_fields *f)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03u %s\r\n", status, jn_http_reason(status));
    if (jn_buf_put(out, line, (size_t)n) != 0)
        return JN_ENOMEM;
    return put_fields(out, f);
}

const char *jn_http_reason(uint16_t status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}
