/* request_limits: a route's own bounds on what a client may send, stricter
 * than the server's http: limits: the request target's length (414), the
 * number of header fields (431) and the body's size (413, at once for a
 * Content-Length, else counted as the body streams). */
#include <string.h>

#include "config/load.h"
#include "http/stream.h"
#include "policy/chain.h"

struct request_limits {
    uint32_t max_body_size;  /* bytes; 0 = no limit */
    uint32_t max_headers;    /* fields as the client sent them; 0 = no limit */
    uint32_t max_url_length; /* bytes of the target as sent; 0 = no limit */
};

static const struct jn_ld_key keys[] = {
    JN_LD_NUM("max_body_size", jn_ld_set_size32, offsetof(struct request_limits, max_body_size), 0,
              UINT32_MAX),
    JN_LD_NUM("max_headers", jn_ld_set_u32, offsetof(struct request_limits, max_headers), 1,
              100000),
    JN_LD_NUM("max_url_length", jn_ld_set_size32, offsetof(struct request_limits, max_url_length),
              1, UINT32_MAX),
};
static const struct jn_ld_table table = JN_LD_TABLE("request_limits", keys);

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct request_limits *l = jn_ld_calloc(ld, 1, sizeof(*l));
    struct jn_ld_found found[JN_ARRAY_LEN(keys)];
    size_t before = ld->nerrors;
    if (l == NULL || !jn_ld_map(ld, value, &table, l, found) || ld->nerrors != before)
        return NULL;
    bool any = false;
    for (size_t i = 0; i < JN_ARRAY_LEN(keys); i++)
        any |= found[i].key != NULL;
    if (!any) {
        jn_ld_error(ld, value, "request_limits: needs max_body_size, max_headers or "
                               "max_url_length");
        return NULL;
    }
    return l;
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    (void)fields, (void)state;
    const struct request_limits *l = conf;
    if (l->max_url_length != 0 && s->path != NULL && strlen(s->path) > l->max_url_length)
        return jn_policy_reject(s, 414, "uri too long", NULL, 0);
    if (l->max_headers != 0 && s->req_nheaders > l->max_headers)
        return jn_policy_reject(s, 431, "too many request header fields", NULL, 0);
    if (l->max_body_size != 0 && !s->ws_h2) { /* a WebSocket's DATA is no body */
        struct jn_body *b = &s->req_body;
        if (b->in == JN_H1_BODY_LENGTH && b->remaining > l->max_body_size)
            return jn_policy_reject(s, 413, "request body too large", NULL, 0);
        /* A chunked or HTTP/2 body without a length: the pump counts it. */
        if (!b->done && (b->limit == 0 || b->limit > l->max_body_size))
            b->limit = l->max_body_size;
    }
    return JN_FILTER_CONTINUE;
}

const struct jn_policy_ops jn_policy_request_limits = {
    .name = "request_limits",
    .parse = parse,
    .on_request = on_request,
};
