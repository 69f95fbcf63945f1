/* key_auth: names the consumer by an API key in a header (X-API-Key) or,
 * when configured, a query parameter. Keys are kept as SHA-256 digests in
 * one table built at load (policy/key_table.h), and the credential is
 * stripped before the request goes upstream unless hide_credentials is
 * false. */
#include <string.h>

#include "config/load.h"
#include "http/query.h"
#include "http/stream.h"
#include "policy/chain.h"
#include "policy/key_table.h"

struct key_auth {
    char *header;          /* field name; default X-API-Key */
    char *query;           /* parameter name, NULL: keys in the query are not read */
    bool hide_credentials; /* strip the credential before forwarding (default) */
    struct jn_key_table keys;
};

static void set_header(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct key_auth *k = obj;
    char *s = jn_ld_nonempty(ld, value, key->name, "a header name");
    if (s != NULL && !jn_ld_is_token(s, strlen(s)))
        jn_ld_error(ld, value, "header: %s is not a valid header name",
                    jn_ld_quote(ld, s, strlen(s)));
    else if (s != NULL)
        k->header = s;
}

static void set_query(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct key_auth *k = obj;
    char *s = jn_ld_nonempty(ld, value, key->name, "a query parameter name");
    if (s != NULL) {
        k->query = s;
        jn_ld_secret_param(ld, s);
    }
}

static const struct jn_ld_key keys[] = {
    JN_LD_KEY("header", set_header, 0),
    JN_LD_KEY("query", set_query, 0),
    JN_LD_KEY("hide_credentials", jn_ld_set_bool, offsetof(struct key_auth, hide_credentials)),
};
static const struct jn_ld_table table = JN_LD_TABLE("key_auth", keys);

static void free_conf(void *conf)
{
    struct key_auth *k = conf;
    jn_key_table_free(&k->keys);
}

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct key_auth *k = jn_ld_calloc(ld, 1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->header = "X-API-Key";
    k->hide_credentials = true;
    size_t before = ld->nerrors;
    if (!jn_ld_is_null(value) && !jn_ld_map(ld, value, &table, k, NULL))
        return NULL;
    if (ld->nerrors != before)
        return NULL;
    if (jn_key_table_init(&k->keys, ld->cfg->consumers, ld->cfg->nconsumers) != 0) {
        jn_key_table_free(&k->keys);
        jn_ld_oom(ld);
        return NULL;
    }
    return k;
}

/* The key in the query parameter, decoded into s->arena; empty when none. */
static struct jn_slice query_key(struct jn_stream *s, const char *name)
{
    struct jn_slice raw;
    if (!jn_query_find(s->req.query, name, strlen(name), &raw) || raw.len == 0)
        return (struct jn_slice){ NULL, 0 };
    char *out = jn_arena_alloc(&s->arena, raw.len);
    if (out == NULL)
        return (struct jn_slice){ NULL, 0 };
    size_t len = 0;
    for (size_t i = 0; i < raw.len;)
        out[len++] = (char)jn_form_byte(raw.ptr, raw.len, &i);
    return (struct jn_slice){ out, len };
}

static const struct jn_http_field challenge[] = {
    { JN_SLICE_LIT("WWW-Authenticate"), JN_SLICE_LIT("Key realm=\"junction\"") },
};

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    (void)state;
    const struct key_auth *k = conf;
    struct jn_slice key = jn_http_field_get(fields->v, fields->n, k->header);
    if (key.len == 0 && k->query != NULL)
        key = query_key(s, k->query); /* a copy: the query is rewritten below */
    /* The access log leaves the parameter out whatever happens (the
     * snapshot's secret_params); here it is kept from the upstream. */
    if (k->query != NULL && k->hide_credentials &&
        !jn_query_hide(&s->arena, &s->req.query, k->query))
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    if (key.len == 0)
        return jn_policy_reject(s, 401, "API key required", challenge, 1);
    const struct jn_cfg_consumer *c = jn_key_table_find(&k->keys, key.ptr, key.len);
    if (c == NULL)
        return jn_policy_reject(s, 401, "invalid API key", challenge, 1);
    s->consumer = c;
    if (k->hide_credentials)
        jn_fields_remove(fields, k->header);
    return JN_FILTER_CONTINUE;
}

const struct jn_policy_ops jn_policy_key_auth = {
    .name = "key_auth",
    .parse = parse,
    .free = free_conf,
    .on_request = on_request,
};
