/* Routes: matchers, the upstream or direct response they lead to, and the
 * changes made on the way (strip_prefix, rewrite, header operations).
 * Regexes are only checked for presence here; the router compiles them. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/load.h"
#include "core/common.h"

/* Headers whose value the gateway computes from the message framing; a
 * configured one would contradict the body actually sent. */
static bool jn_ld_is_framing(const char *name)
{
    return strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0;
}

/* The variables a header value may name (docs/policies.md); jwt.<claim>
 * names any claim. */
static bool jn_ld_is_variable(const char *s, size_t len)
{
    static const char *const known[] = {"consumer", "client_ip", "request_id"};
    for (size_t i = 0; i < JN_ARRAY_LEN(known); i++)
        if (strlen(known[i]) == len && memcmp(s, known[i], len) == 0)
            return true;
    return len > 4 && memcmp(s, "jwt.", 4) == 0;
}

/* Splits value at its ${name} variables ($${ is a literal ${) into *tmpl.
 * A value without variables gets nparts 0 and stays literal (kv->value,
 * its $${ turned into ${), so that it costs nothing per request. */
static bool jn_ld_template(struct jn_ld *ld, yaml_node_t *v, const char *name, struct jn_cfg_kv *kv,
                           const char *value, struct jn_cfg_tmpl *tmpl)
{
    size_t len = strlen(value), ndollar = 0;
    for (size_t i = 0; i < len; i++)
        ndollar += value[i] == '$';
    char *lit = jn_ld_calloc(ld, len + 1, 1);
    struct jn_cfg_tmpl_part *parts = jn_ld_calloc(ld, 2 * ndollar + 1, sizeof(*parts));
    if (lit == NULL || parts == NULL)
        return false;
    size_t at = 0, from = 0, n = 0, nvars = 0;
    for (size_t i = 0; i < len;) {
        if (strncmp(value + i, "$${", 3) == 0) {
            memcpy(lit + at, "${", 2);
            at += 2;
            i += 3;
            continue;
        }
        if (strncmp(value + i, "${", 2) != 0) {
            lit[at++] = value[i++];
            continue;
        }
        const char *end = strchr(value + i + 2, '}');
        if (end == NULL) {
            jn_ld_error(ld, v, "%s: %s: unterminated ${ (write $${ for a literal ${)", name,
                        kv->name);
            return false;
        }
        const char *var = value + i + 2;
        size_t vlen = (size_t)(end - var);
        if (!jn_ld_is_variable(var, vlen)) {
            /* The value has no control characters (checked before). */
            jn_ld_error(ld, v,
                        "%s: %s: unknown variable ${%.*s} (known: consumer, client_ip, "
                        "request_id, jwt.<claim>; $${ is a literal ${)",
                        name, kv->name, (int)JN_MIN(vlen, (size_t)64), var);
            return false;
        }
        if (at > from)
            parts[n++] = (struct jn_cfg_tmpl_part){lit + from, at - from, false};
        parts[n++] = (struct jn_cfg_tmpl_part){jn_ld_strdup(ld, var, vlen), vlen, true};
        if (parts[n - 1].text == NULL)
            return false;
        nvars++;
        from = at;
        i += 2 + vlen + 1;
    }
    if (at > from)
        parts[n++] = (struct jn_cfg_tmpl_part){lit + from, at - from, false};
    if (nvars == 0) {
        kv->value = lit;
        kv->value_len = at;
        return true;
    }
    *tmpl = (struct jn_cfg_tmpl){parts, n};
    kv->value = jn_ld_strdup(ld, value, len);
    kv->value_len = len;
    return kv->value != NULL;
}

/* Reads one header name (a token) and value into kv; with tmpl, the value
 * may hold ${variables}. */
static bool jn_ld_header(struct jn_ld *ld, yaml_node_t *k, yaml_node_t *v, const char *name,
                         bool framing_ok, struct jn_cfg_kv *kv, struct jn_cfg_tmpl *tmpl)
{
    const char *err;
    char *hname = jn_ld_string(ld, k, name, "a header name");
    if (hname == NULL)
        return false;
    if (!jn_ld_is_token(hname, strlen(hname))) {
        jn_ld_error(ld, k, "%s: invalid header name %s", name,
                    jn_ld_quote(ld, hname, strlen(hname)));
        return false;
    }
    if (!framing_ok && jn_ld_is_framing(hname)) {
        jn_ld_error(ld, k, "%s: %s is computed by the gateway and cannot be configured", name,
                    hname);
        return false;
    }
    /* Scalars only: a value written as 2 or true is the text "2" or "true". */
    const char *value = jn_ld_scalar(ld, v, name, "a header value");
    if (value == NULL)
        return false;
    if ((err = jn_ld_header_value_error(value, strlen(value))) != NULL) {
        jn_ld_error(ld, v, "%s: %s: %s", name, hname, err);
        return false;
    }
    if (tmpl != NULL) {
        *kv = (struct jn_cfg_kv){.name = hname};
        return jn_ld_template(ld, v, name, kv, value, tmpl);
    }
    *kv = (struct jn_cfg_kv){hname, jn_ld_strdup(ld, value, strlen(value)), strlen(value)};
    return kv->value != NULL;
}

/* Reads a mapping of header names to values into an array; with tmpls,
 * values may hold ${variables} (*tmpls: one template per item, and
 * *templated is set when some item has a variable). */
static bool jn_ld_headers(struct jn_ld *ld, yaml_node_t *node, const char *name, bool framing_ok,
                          struct jn_cfg_kv **out, size_t *n, struct jn_cfg_tmpl **tmpls,
                          bool *templated)
{
    if (!jn_ld_expect(ld, node, YAML_MAPPING_NODE, name, "a mapping of header names to values"))
        return false;
    size_t len = jn_ld_map_len(node);
    struct jn_ld_name *names = jn_ld_calloc(ld, len, sizeof(*names));
    struct jn_cfg_kv *kv = jn_ld_calloc(ld, len, sizeof(*kv));
    struct jn_cfg_tmpl *t = tmpls != NULL ? jn_ld_calloc(ld, len, sizeof(*t)) : NULL;
    if (names == NULL || kv == NULL || (tmpls != NULL && t == NULL))
        return false;
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *k, *v;
        jn_ld_map_pair(ld, node, i, &k, &v);
        if (v == NULL)
            break;
        if (!jn_ld_header(ld, k, v, name, framing_ok, &kv[count], t ? &t[count] : NULL))
            continue;
        names[count] = (struct jn_ld_name){kv[count].name, k};
        if (t != NULL && t[count].nparts > 0)
            *templated = true;
        count++;
    }
    /* Header names are case-insensitive: X-A and x-a are the same header. */
    jn_ld_dups(ld, names, count, true, "header");
    *out = count ? kv : NULL;
    *n = count;
    if (tmpls != NULL)
        *tmpls = t;
    return true;
}

bool jn_ld_string_list(struct jn_ld *ld, yaml_node_t *node, const char *name,
                       const char *(*check)(struct jn_ld *, char *), bool nocase, char ***out,
                       size_t *n)
{
    if (!jn_ld_expect(ld, node, YAML_SEQUENCE_NODE, name, "a list"))
        return false;
    size_t len = jn_ld_seq_len(node), count = 0;
    if (len == 0) {
        jn_ld_error(ld, node, "%s: must not be empty (leave it out instead)", name);
        return false;
    }
    struct jn_ld_name *names = jn_ld_calloc(ld, len, sizeof(*names));
    char **items = jn_ld_calloc(ld, len, sizeof(*items));
    if (names == NULL || items == NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = jn_ld_seq_item(ld, node, i);
        char *s = item != NULL ? jn_ld_string(ld, item, name, "a string") : NULL;
        const char *err = s != NULL && check != NULL ? check(ld, s) : NULL;
        if (s == NULL)
            continue;
        if (err != NULL) {
            jn_ld_error(ld, item, "%s: %s %s", name, jn_ld_quote(ld, s, strlen(s)), err);
            continue;
        }
        names[count] = (struct jn_ld_name){s, item};
        items[count++] = s;
    }
    jn_ld_dups(ld, names, count, nocase, name);
    *out = items;
    *n = count;
    return true;
}

static const char *jn_ld_check_method(struct jn_ld *ld, char *s)
{
    if (!jn_ld_is_token(s, strlen(s)))
        return "is not a valid method name";
    for (char *p = s; *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    return NULL;
}

static const char *jn_ld_check_header_name(struct jn_ld *ld, char *s)
{
    return jn_ld_is_token(s, strlen(s)) ? NULL : "is not a valid header name";
}

static const char *jn_ld_check_listener(struct jn_ld *ld, char *s)
{
    for (size_t i = 0; i < ld->cfg->nlisteners; i++) {
        const struct jn_cfg_listener *l = &ld->cfg->listeners[i];
        if (l->name != NULL && strcmp(l->name, s) == 0)
            return l->protocol == JN_PROTO_TCP
                       ? "is a tcp listener (routes serve http listeners; a tcp listener's "
                         "connections go to its upstream)"
                       : NULL;
    }
    return "is not a listener name";
}

static void jn_ld_set_methods(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct jn_cfg_match *m = obj;
    jn_ld_string_list(ld, value, key->name, jn_ld_check_method, false, &m->methods, &m->nmethods);
}

static void jn_ld_set_route_listeners(struct jn_ld *ld, const struct jn_ld_key *key,
                                      yaml_node_t *value, void *obj)
{
    struct jn_cfg_route *r = obj;
    jn_ld_string_list(ld, value, key->name, jn_ld_check_listener, false, &r->listeners,
                      &r->nlisteners);
}

static void jn_ld_set_remove(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                             void *obj)
{
    struct jn_cfg_header_ops *ops = obj;
    jn_ld_string_list(ld, value, key->name, jn_ld_check_header_name, true, &ops->remove,
                      &ops->nremove);
}

static void jn_ld_set_hdr_set(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct jn_cfg_header_ops *ops = obj;
    jn_ld_headers(ld, value, key->name, false, &ops->set, &ops->nset, &ops->set_tmpl,
                  &ops->templated);
}

static void jn_ld_set_hdr_add(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct jn_cfg_header_ops *ops = obj;
    jn_ld_headers(ld, value, key->name, false, &ops->add, &ops->nadd, &ops->add_tmpl,
                  &ops->templated);
}

static void jn_ld_set_match_headers(struct jn_ld *ld, const struct jn_ld_key *key,
                                    yaml_node_t *value, void *obj)
{
    struct jn_cfg_match *m = obj;
    jn_ld_headers(ld, value, key->name, true, &m->headers, &m->nheaders, NULL, NULL);
}

static void jn_ld_set_respond_headers(struct jn_ld *ld, const struct jn_ld_key *key,
                                      yaml_node_t *value, void *obj)
{
    struct jn_cfg_respond *r = obj;
    jn_ld_headers(ld, value, key->name, false, &r->headers, &r->nheaders, NULL, NULL);
}

/* Query parameters are compared after decoding, so any text but NUL is fine. */
static void jn_ld_set_query(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                            void *obj)
{
    struct jn_cfg_match *m = obj;
    if (!jn_ld_expect(ld, value, YAML_MAPPING_NODE, "query", "a mapping of names to values"))
        return;
    size_t len = jn_ld_map_len(value);
    struct jn_ld_name *names = jn_ld_calloc(ld, len, sizeof(*names));
    m->query = jn_ld_calloc(ld, len, sizeof(*m->query));
    if (names == NULL || m->query == NULL)
        return;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *k, *v;
        jn_ld_map_pair(ld, value, i, &k, &v);
        if (v == NULL)
            break;
        char *name = jn_ld_string(ld, k, "query", "a parameter name");
        char *text = jn_ld_string(ld, v, "query", "a parameter value");
        if (name == NULL || text == NULL)
            continue;
        if (name[0] == '\0') {
            jn_ld_error(ld, k, "query: parameter names must not be empty");
            continue;
        }
        names[m->nquery] = (struct jn_ld_name){name, k};
        m->query[m->nquery++] = (struct jn_cfg_kv){name, text, strlen(text)};
    }
    jn_ld_dups(ld, names, m->nquery, false, "query parameter");
}

static void jn_ld_set_host(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                           void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a host name");
    if (s == NULL)
        return;
    /* Hosts are case-insensitive; the router compares lower case. */
    for (char *p = s; *p != '\0'; p++)
        *p = jn_lower(*p);
    const char *err = jn_ld_host_error(s);
    if (err != NULL) {
        jn_ld_error(ld, value, "host: %s: %s", jn_ld_quote(ld, s, strlen(s)), err);
        return;
    }
    ((struct jn_cfg_match *)obj)->host = s;
}

/* A path, path_prefix or strip_prefix: compared with normalised request paths. */
static void jn_ld_set_path(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                           void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a path");
    if (s == NULL)
        return;
    const char *err = jn_ld_path_error(s, &ld->cfg->http);
    if (err != NULL) {
        jn_ld_error(ld, value, "%s: %s: %s", key->name, jn_ld_quote(ld, s, strlen(s)), err);
        return;
    }
    *(char **)((char *)obj + key->offset) = s;
}

static void jn_ld_set_regex(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                            void *obj)
{
    char *s = jn_ld_nonempty(ld, value, key->name, "a regular expression");
    if (s == NULL)
        return;
    *(char **)((char *)obj + key->offset) = s;
}

enum { JN_MATCH_PATH = 1, JN_MATCH_PATH_PREFIX, JN_MATCH_PATH_REGEX };
static const struct jn_ld_key jn_match_keys[] = {
    JN_LD_KEY("host", jn_ld_set_host, 0),
    [JN_MATCH_PATH] = JN_LD_KEY("path", jn_ld_set_path, offsetof(struct jn_cfg_match, path)),
    [JN_MATCH_PATH_PREFIX] =
        JN_LD_KEY("path_prefix", jn_ld_set_path, offsetof(struct jn_cfg_match, path_prefix)),
    [JN_MATCH_PATH_REGEX] =
        JN_LD_KEY("path_regex", jn_ld_set_regex, offsetof(struct jn_cfg_match, path_regex)),
    JN_LD_KEY("methods", jn_ld_set_methods, 0),
    JN_LD_KEY("headers", jn_ld_set_match_headers, 0),
    JN_LD_KEY("query", jn_ld_set_query, 0),
};
static const struct jn_ld_table jn_match_table = JN_LD_TABLE("match", jn_match_keys);

static void jn_ld_set_match(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                            void *obj)
{
    struct jn_ld_found found[JN_ARRAY_LEN(jn_match_keys)];
    const yaml_node_t *first = NULL;
    if (!jn_ld_map(ld, value, &jn_match_table, (char *)obj + key->offset, found))
        return;
    /* One path matcher per route: the router files a route under one of them. */
    for (int k = JN_MATCH_PATH; k <= JN_MATCH_PATH_REGEX; k++) {
        const yaml_node_t *at = found[k].key;
        if (at == NULL)
            continue;
        if (first == NULL)
            first = at;
        else
            jn_ld_error(ld, at, "match: %s cannot be combined with %s (use one path matcher)",
                        jn_match_keys[k].name, (const char *)first->data.scalar.value);
    }
}

static const struct jn_ld_key jn_rewrite_keys[] = {
    JN_LD_REQ("pattern", jn_ld_set_regex, offsetof(struct jn_cfg_rewrite, pattern)),
    JN_LD_REQ("replace", jn_ld_set_string, offsetof(struct jn_cfg_rewrite, replace)),
};
static const struct jn_ld_table jn_rewrite_table = JN_LD_TABLE("rewrite", jn_rewrite_keys);

static void jn_ld_set_rewrite(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct jn_cfg_rewrite *rw = (struct jn_cfg_rewrite *)((char *)obj + key->offset);
    struct jn_ld_found found[JN_ARRAY_LEN(jn_rewrite_keys)];
    if (!jn_ld_map(ld, value, &jn_rewrite_table, rw, found))
        return;
    const char *err =
        rw->replace ? jn_ld_header_value_error(rw->replace, strlen(rw->replace)) : NULL;
    if (err != NULL) {
        jn_ld_error(ld, found[1].value, "replace: must not contain control characters");
        rw->replace = NULL;
    }
}

static const struct jn_ld_key jn_header_ops_keys[] = {
    JN_LD_KEY("set", jn_ld_set_hdr_set, 0),
    JN_LD_KEY("add", jn_ld_set_hdr_add, 0),
    JN_LD_KEY("remove", jn_ld_set_remove, 0),
};
static const struct jn_ld_table jn_request_headers_table =
    JN_LD_TABLE("request_headers", jn_header_ops_keys);
static const struct jn_ld_table jn_response_headers_table =
    JN_LD_TABLE("response_headers", jn_header_ops_keys);

/* The body is sent as is, so it keeps its exact bytes (NUL included). */
static void jn_ld_set_body(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                           void *obj)
{
    struct jn_cfg_respond *r = obj;
    if (!jn_ld_expect(ld, value, YAML_SCALAR_NODE, "body", "a string"))
        return;
    r->body_len = value->data.scalar.length;
    r->body = jn_ld_strdup(ld, (const char *)value->data.scalar.value, r->body_len);
}

static const struct jn_ld_key jn_respond_keys[] = {
    JN_LD_NUM("status", jn_ld_set_u16, offsetof(struct jn_cfg_respond, status), 100, 599),
    JN_LD_KEY("body", jn_ld_set_body, 0),
    JN_LD_KEY("headers", jn_ld_set_respond_headers, 0),
};
static const struct jn_ld_table jn_respond_table = JN_LD_TABLE("respond", jn_respond_keys);

static void jn_ld_set_respond(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct jn_cfg_respond *r = (struct jn_cfg_respond *)((char *)obj + key->offset);
    struct jn_ld_found found[JN_ARRAY_LEN(jn_respond_keys)];
    r->status = 200;
    if (!jn_ld_map(ld, value, &jn_respond_table, r, found))
        return;
    r->enabled = true;
    /* RFC 9110: these statuses never have content; a body would desync the client. */
    bool no_body = r->status < 200 || r->status == 204 || r->status == 304;
    if (no_body && r->body_len > 0)
        jn_ld_error(ld, found[1].value, "body: a %u response cannot have a body",
                    (unsigned)r->status);
}

enum {
    JN_ROUTE_NAME,
    JN_ROUTE_MATCH,
    JN_ROUTE_PRIORITY,
    JN_ROUTE_UPSTREAM,
    JN_ROUTE_RESPOND,
    JN_ROUTE_STRIP_PREFIX,
    JN_ROUTE_REWRITE,
    JN_ROUTE_REQUEST_HEADERS,
    JN_ROUTE_RESPONSE_HEADERS,
    JN_ROUTE_LISTENERS,
    JN_ROUTE_POLICIES,
    JN_ROUTE_NKEYS
};
static const struct jn_ld_key jn_route_keys[] = {
    [JN_ROUTE_NAME] = JN_LD_KEY("name", jn_ld_set_name, offsetof(struct jn_cfg_route, name)),
    [JN_ROUTE_MATCH] = JN_LD_KEY("match", jn_ld_set_match, offsetof(struct jn_cfg_route, match)),
    [JN_ROUTE_PRIORITY] = JN_LD_NUM("priority", jn_ld_set_i32,
                                    offsetof(struct jn_cfg_route, priority), INT32_MIN, INT32_MAX),
    [JN_ROUTE_UPSTREAM] =
        JN_LD_KEY("upstream", jn_ld_set_string, offsetof(struct jn_cfg_route, upstream_name)),
    [JN_ROUTE_RESPOND] =
        JN_LD_KEY("respond", jn_ld_set_respond, offsetof(struct jn_cfg_route, respond)),
    [JN_ROUTE_STRIP_PREFIX] =
        JN_LD_KEY("strip_prefix", jn_ld_set_path, offsetof(struct jn_cfg_route, strip_prefix)),
    [JN_ROUTE_REWRITE] =
        JN_LD_KEY("rewrite", jn_ld_set_rewrite, offsetof(struct jn_cfg_route, rewrite)),
    [JN_ROUTE_REQUEST_HEADERS] =
        JN_LD_SUB("request_headers", offsetof(struct jn_cfg_route, request_headers),
                  &jn_request_headers_table),
    [JN_ROUTE_RESPONSE_HEADERS] =
        JN_LD_SUB("response_headers", offsetof(struct jn_cfg_route, response_headers),
                  &jn_response_headers_table),
    [JN_ROUTE_LISTENERS] = JN_LD_KEY("listeners", jn_ld_set_route_listeners, 0),
    [JN_ROUTE_POLICIES] = JN_LD_KEY("policies", jn_ld_set_route_policies, 0),
};
static const struct jn_ld_table jn_route_table = JN_LD_TABLE("route", jn_route_keys);

/* Points the route at its upstream. A linear search: it runs once per route
 * at load, and configurations have few upstreams next to their routes. */
static void jn_ld_resolve_upstream(struct jn_ld *ld, struct jn_cfg_route *r, yaml_node_t *at)
{
    r->upstream = jn_cfg_find_upstream(ld->cfg, r->upstream_name);
    if (r->upstream != NULL)
        return;
    jn_ld_error(ld, at, "upstream: unknown upstream %s",
                jn_ld_quote(ld, r->upstream_name, strlen(r->upstream_name)));
}

/* Checks what only the whole route can tell: where requests go. */
static void jn_ld_route_target(struct jn_ld *ld, struct jn_cfg_route *r, yaml_node_t *node,
                               const struct jn_ld_found *found)
{
    yaml_node_t *up = found[JN_ROUTE_UPSTREAM].key, *respond = found[JN_ROUTE_RESPOND].key;
    if (up != NULL && respond != NULL) {
        yaml_node_t *later = up->start_mark.index > respond->start_mark.index ? up : respond;
        jn_ld_error(ld, later, "route: use either upstream or respond, not both");
    } else if (up == NULL && respond == NULL && !ld->exhausted) {
        jn_ld_error(ld, node, "route %s: needs either upstream or respond",
                    jn_ld_quote(ld, r->name, strlen(r->name)));
    } else if (r->upstream_name != NULL) {
        jn_ld_resolve_upstream(ld, r, up);
    }
}

static bool jn_ld_route(struct jn_ld *ld, yaml_node_t *node, struct jn_cfg_route *r,
                        struct jn_ld_name *name)
{
    struct jn_ld_found found[JN_ROUTE_NKEYS];
    char def[32];
    r->index = ld->cfg->nroutes;
    r->pos = jn_ld_pos(ld, node);
    if (!jn_ld_map(ld, node, &jn_route_table, r, found))
        return false;
    yaml_node_t *named = found[JN_ROUTE_NAME].value;
    if (named == NULL) {
        snprintf(def, sizeof(def), "route-%zu", r->index);
        r->name = jn_ld_strdup(ld, def, strlen(def));
    }
    /* An invalid name is reported already; a stand-in keeps later messages whole
     * and stays out of the duplicate check. */
    *name = (struct jn_ld_name){r->name, named != NULL ? named : node};
    if (r->name == NULL)
        r->name = jn_ld_strdup(ld, "?", 1);
    if (r->name == NULL)
        return false;
    jn_ld_route_target(ld, r, node, found);
    jn_ld_route_chain(ld, r, node);
    return true;
}

void jn_ld_routes(struct jn_ld *ld, yaml_node_t *node)
{
    struct jn_config *cfg = ld->cfg;
    if (!jn_ld_expect(ld, node, YAML_SEQUENCE_NODE, "routes", "a list"))
        return;
    size_t n = jn_ld_seq_len(node);
    struct jn_ld_name *names = jn_ld_calloc(ld, n, sizeof(*names));
    cfg->routes = jn_ld_calloc(ld, n, sizeof(*cfg->routes));
    if (names == NULL || cfg->routes == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = jn_ld_seq_item(ld, node, i);
        if (item != NULL && jn_ld_route(ld, item, &cfg->routes[cfg->nroutes], &names[cfg->nroutes]))
            cfg->nroutes++;
    }
    jn_ld_dups(ld, names, cfg->nroutes, false, "route name");
}
