/* gRPC-Web translation: content types on the way in and out, and the
 * trailers frame at the end of the response body. */
#include "http/grpc_web.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/stream.h"

#define GRPC_WEB "application/grpc-web"
#define GRPC "application/grpc"

static bool starts_with(struct jn_slice v, const char *p)
{
    size_t n = strlen(p);
    return v.len >= n && strncasecmp(v.ptr, p, n) == 0;
}

int jn_grpc_web_request(struct jn_stream *s, struct jn_fields *f)
{
    struct jn_slice ct = jn_http_field_get(f->v, f->n, "content-type");
    if (ct.ptr == NULL || !starts_with(ct, GRPC_WEB))
        return 0;
    int kind = starts_with(ct, GRPC_WEB "-text") ? 2 : 1;
    size_t skip = strlen(kind == 2 ? GRPC_WEB "-text" : GRPC_WEB);
    size_t rest = ct.len - skip;
    char *v = jn_arena_alloc(&s->arena, strlen(GRPC) + rest + 1);
    if (v == NULL)
        return 0;
    memcpy(v, GRPC, strlen(GRPC));
    memcpy(v + strlen(GRPC), ct.ptr + skip, rest);
    v[strlen(GRPC) + rest] = '\0';
    jn_fields_set(f, (struct jn_slice){"content-type", 12},
                  (struct jn_slice){v, strlen(GRPC) + rest});
    jn_fields_remove(f, "x-grpc-web"); /* the browser's marker, not the server's business */
    return kind;
}

bool jn_grpc_web_is_grpc(const struct jn_h1_message *m)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (jn_slice_ieq(m->headers[i].name, "content-type"))
            return starts_with(m->headers[i].value, GRPC);
    return false;
}

void jn_grpc_web_response(struct jn_stream *s, struct jn_fields *f)
{
    struct jn_slice ct = jn_http_field_get(f->v, f->n, "content-type");
    size_t rest = ct.ptr != NULL && starts_with(ct, GRPC) ? ct.len - strlen(GRPC) : 0;
    const char *web = s->grpc_web == 2 ? GRPC_WEB "-text" : GRPC_WEB;
    size_t wlen = strlen(web);
    char *v = jn_arena_alloc(&s->arena, wlen + rest + 1);
    if (v == NULL)
        return;
    memcpy(v, web, wlen);
    if (rest > 0)
        memcpy(v + wlen, ct.ptr + strlen(GRPC), rest);
    jn_fields_set(f, (struct jn_slice){"content-type", 12}, (struct jn_slice){v, wlen + rest});
    jn_fields_remove(f, "content-length");
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encodes n bytes (padding the last quantum) into out; returns its length. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    return o;
}

static int b64_value(unsigned char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p != NULL ? (int)(p - b64) : -1;
}

int jn_grpc_web_decode(struct jn_stream *s, size_t from)
{
    struct jn_buf *b = &s->req_out;
    char *p = b->data + b->start + from;
    size_t n = jn_buf_len(b) - from, o = 0;
    /* Output never overtakes input: a quantum of 4 characters gives at
     * most 3 bytes, and the characters of a quantum begun in an earlier
     * call are kept in s->gw_quantum, not in the buffer. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r' || c == '\n')
            continue;
        if (c != '=' && b64_value(c) < 0)
            return JN_EINVAL;
        s->gw_quantum[s->gw_nq++] = (char)c;
        if (s->gw_nq < 4)
            continue;
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s->gw_quantum[k] == '=' ? 0 : b64_value((unsigned char)s->gw_quantum[k]);
        if (v[0] < 0 || v[1] < 0 || s->gw_quantum[0] == '=' || s->gw_quantum[1] == '=')
            return JN_EINVAL;
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        p[o++] = (char)(x >> 16);
        if (s->gw_quantum[2] != '=')
            p[o++] = (char)(x >> 8);
        if (s->gw_quantum[2] != '=' && s->gw_quantum[3] != '=')
            p[o++] = (char)x;
        s->gw_nq = 0;
    }
    b->end = b->start + from + o;
    return s->req_body.done && s->gw_nq != 0 ? JN_EINVAL : 0;
}

int jn_grpc_web_encode(struct jn_stream *s)
{
    struct jn_buf *b = &s->resp_in;
    size_t raw = jn_buf_len(b) - s->gw_encoded;
    size_t take = s->upstream_eof ? raw : raw / 3 * 3;
    if (take == 0)
        return 0;
    size_t enc = (take + 2) / 3 * 4;
    unsigned char *tmp = malloc(take);
    if (tmp == NULL)
        return JN_ENOMEM;
    size_t at = b->start + s->gw_encoded;
    memcpy(tmp, b->data + at, take);
    size_t keep = raw - take; /* bytes of an unfinished quantum, kept raw at the end */
    char rest[3];
    memcpy(rest, b->data + at + take, keep);
    b->end = at;
    if (jn_buf_grow(b, jn_buf_len(b) + enc + keep) != 0) {
        free(tmp);
        return JN_ENOMEM;
    }
    at = b->end;
    b->end += b64_encode(tmp, take, b->data + at);
    memcpy(b->data + b->end, rest, keep);
    b->end += keep;
    s->gw_encoded += enc;
    free(tmp);
    return 0;
}

static size_t binary_trailers(const struct jn_stream *s, char *out, size_t cap)
{
    size_t at = 5;
    for (size_t i = 0; i < s->ntrailers; i++) {
        const struct jn_http_field *t = &s->trailers[i];
        if (at + t->name.len + t->value.len + 3 > cap)
            return 0;
        /* gRPC-Web wants lower-case names; HTTP/2 already has them so. */
        memcpy(out + at, t->name.ptr, t->name.len);
        at += t->name.len;
        out[at++] = ':';
        memcpy(out + at, t->value.ptr, t->value.len);
        at += t->value.len;
        out[at++] = '\r';
        out[at++] = '\n';
    }
    size_t len = at - 5;
    out[0] = (char)0x80; /* a trailers frame, uncompressed */
    out[1] = (char)(len >> 24);
    out[2] = (char)(len >> 16);
    out[3] = (char)(len >> 8);
    out[4] = (char)len;
    return at;
}

size_t jn_grpc_web_trailers(const struct jn_stream *s, char *out, size_t cap)
{
    if (s->grpc_web != 2)
        return binary_trailers(s, out, cap);
    char frame[12288]; /* made in binary first, then its base64 goes to out */
    size_t n = binary_trailers(s, frame, sizeof(frame));
    if (n == 0 || (n + 2) / 3 * 4 > cap)
        return 0;
    return b64_encode((const unsigned char *)frame, n, out);
}
