/* The route's request_headers and response_headers: set, add, remove, with
 * ${variables} in the values. Runs last in every chain, so it sees the
 * request as the policies left it. */
#include <string.h>

#include "http/stream.h"
#include "policy/chain.h"

/* A variable's value may come from the client (a JWT claim): a control
 * character in it could end the field early (CR LF) and smuggle another. */
static bool value_ok(struct jn_slice v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* The value of kv for s: its literal, or its template t expanded into s->arena.
 * Returns false when a variable has no value (or an empty one), holds a
 * control character, or memory ran out: the field is then left out. */
static bool expand(struct jn_stream *s, const struct jn_cfg_kv *kv, const struct jn_cfg_tmpl *t,
                   struct jn_slice *out)
{
    if (t->nparts == 0) {
        *out = (struct jn_slice){kv->value, kv->value_len};
        return true;
    }
    size_t len = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        const struct jn_cfg_tmpl_part *p = &t->parts[i];
        struct jn_slice v = p->var ? jn_stream_var_get(s, p->text, p->len)
                                   : (struct jn_slice){p->text, p->len};
        if (p->var && (v.ptr == NULL || v.len == 0 || !value_ok(v)))
            return false;
        len += v.len;
    }
    char *buf = jn_arena_alloc(&s->arena, len + 1);
    if (buf == NULL)
        return false;
    size_t at = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        const struct jn_cfg_tmpl_part *p = &t->parts[i];
        struct jn_slice v = p->var ? jn_stream_var_get(s, p->text, p->len)
                                   : (struct jn_slice){p->text, p->len};
        memcpy(buf + at, v.ptr, v.len);
        at += v.len;
    }
    buf[at] = '\0';
    *out = (struct jn_slice){buf, at};
    return true;
}

static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){s, strlen(s)};
}

int jn_route_headers_apply(struct jn_stream *s, struct jn_fields *f,
                           const struct jn_cfg_header_ops *ops)
{
    if (!ops->templated)
        return jn_fields_apply(f, ops);
    int rc = 0;
    struct jn_slice v;
    for (size_t i = 0; i < ops->nremove; i++)
        jn_fields_remove(f, ops->remove[i]);
    /* A set without a value removes the field: a client cannot supply
     * X-Consumer itself when no consumer was identified. */
    for (size_t i = 0; i < ops->nset && rc == 0; i++) {
        const struct jn_cfg_kv *kv = &ops->set[i];
        if (expand(s, kv, &ops->set_tmpl[i], &v))
            rc = jn_fields_set(f, cs(kv->name), v);
        else
            jn_fields_remove(f, kv->name);
    }
    for (size_t i = 0; i < ops->nadd && rc == 0; i++)
        if (expand(s, &ops->add[i], &ops->add_tmpl[i], &v))
            rc = jn_fields_add(f, cs(ops->add[i].name), v);
    return rc;
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    (void)conf, (void)state;
    jn_route_headers_apply(s, fields, &s->route->request_headers);
    return JN_FILTER_CONTINUE;
}

static void on_response(struct jn_stream *s, struct jn_http_response *resp,
                        struct jn_fields *fields, void *conf, void **state)
{
    (void)resp, (void)conf, (void)state;
    jn_route_headers_apply(s, fields, &s->route->response_headers);
}

const struct jn_policy_ops jn_policy_route_headers = {
    .name = "route_headers",
    .on_request = on_request,
    .on_response = on_response,
};
