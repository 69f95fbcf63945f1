/* What the limit policies count a request by: the `key:` setting and the
 * table key it gives for a request (docs/policies.md, rate_limit). */
#include <string.h>

#include "config/load.h"
#include "http/fields.h"
#include "http/stream.h"
#include "policy/limit_table.h"

#define HEADER_PREFIX "header:"

void jn_limit_set_by(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct jn_limit_by *by = (struct jn_limit_by *)((char *)obj + key->offset);
    const char *s = jn_ld_scalar(ld, value, key->name, "a string");
    size_t plen = strlen(HEADER_PREFIX);
    if (s == NULL)
        return;
    if (strcmp(s, "client_ip") == 0)
        *by = (struct jn_limit_by){ JN_LIMIT_BY_CLIENT_IP, NULL };
    else if (strcmp(s, "consumer") == 0)
        *by = (struct jn_limit_by){ JN_LIMIT_BY_CONSUMER, NULL };
    else if (strcmp(s, "route") == 0)
        *by = (struct jn_limit_by){ JN_LIMIT_BY_ROUTE, NULL };
    else if (strncmp(s, HEADER_PREFIX, plen) == 0 && jn_ld_is_token(s + plen, strlen(s + plen)))
        *by = (struct jn_limit_by){ JN_LIMIT_BY_HEADER,
                                    jn_ld_strdup(ld, s + plen, strlen(s + plen)) };
    else
        jn_ld_error(ld, value, "%s: %s is not one of client_ip, consumer, route, header:NAME",
                    key->name, jn_ld_quote(ld, s, strlen(s)));
}

struct jn_limit_key jn_limit_key_of(const struct jn_limit_table *t, const struct jn_limit_by *by,
                                    const struct jn_stream *s, const struct jn_fields *f)
{
    /* The tags keep the kinds apart: a consumer named 10.0.0.1 is not the
     * address 10.0.0.1. */
    switch (by->kind) {
    case JN_LIMIT_BY_CONSUMER:
        if (s->consumer != NULL)
            return jn_limit_key(t, 'c', s->consumer->name, strlen(s->consumer->name));
        break;
    case JN_LIMIT_BY_HEADER: {
        struct jn_slice v = jn_http_field_get(f->v, f->n, by->header);
        if (v.ptr != NULL)
            return jn_limit_key(t, 'h', v.ptr, v.len);
        break;
    }
    case JN_LIMIT_BY_ROUTE:
        return jn_limit_key(t, 'r', s->route->name, strlen(s->route->name));
    case JN_LIMIT_BY_CLIENT_IP:
        break;
    }
    return jn_limit_key(t, 'i', s->client_ip, strlen(s->client_ip));
}
