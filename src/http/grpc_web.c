/* gRPC-Web translation: content types on the way in and out, and the
 * trailers frame at the end of the response body. */
#include "http/grpc_web.h"

#include <string.h>

#include "http/stream.h"

#define GRPC_WEB "application/grpc-web"
#define GRPC "application/grpc"

static bool starts_with(struct jn_slice v, const char *p)
{
    size_t n = strlen(p);
    return v.len >= n && strncasecmp(v.ptr, p, n) == 0;
}

/* "application/grpc-web-text" (base64) is not handled yet: it is passed on
 * untouched, and the upstream refuses it. */
bool jn_grpc_web_request(struct jn_stream *s, struct jn_fields *f)
{
    struct jn_slice ct = jn_http_field_get(f->v, f->n, "content-type");
    if (ct.ptr == NULL || !starts_with(ct, GRPC_WEB) || starts_with(ct, GRPC_WEB "-text"))
        return false;
    size_t rest = ct.len - strlen(GRPC_WEB);
    char *v = jn_arena_alloc(&s->arena, strlen(GRPC) + rest + 1);
    if (v == NULL)
        return false;
    memcpy(v, GRPC, strlen(GRPC));
    memcpy(v + strlen(GRPC), ct.ptr + strlen(GRPC_WEB), rest);
    v[strlen(GRPC) + rest] = '\0';
    jn_fields_set(f, (struct jn_slice){ "content-type", 12 },
                  (struct jn_slice){ v, strlen(GRPC) + rest });
    jn_fields_remove(f, "x-grpc-web"); /* the browser's marker, not the server's business */
    return true;
}

void jn_grpc_web_response(struct jn_stream *s, struct jn_fields *f)
{
    struct jn_slice ct = jn_http_field_get(f->v, f->n, "content-type");
    size_t rest = ct.ptr != NULL && starts_with(ct, GRPC) ? ct.len - strlen(GRPC) : 0;
    char *v = jn_arena_alloc(&s->arena, strlen(GRPC_WEB) + rest + 1);
    if (v == NULL)
        return;
    memcpy(v, GRPC_WEB, strlen(GRPC_WEB));
    if (rest > 0)
        memcpy(v + strlen(GRPC_WEB), ct.ptr + strlen(GRPC), rest);
    jn_fields_set(f, (struct jn_slice){ "content-type", 12 },
                  (struct jn_slice){ v, strlen(GRPC_WEB) + rest });
    jn_fields_remove(f, "content-length");
}

size_t jn_grpc_web_trailers(const struct jn_stream *s, char *out, size_t cap)
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
