/* cors: answers browsers' preflights itself (they never reach the upstream)
 * and puts the CORS fields on the responses to allowed origins. The gateway
 * owns CORS on the route: whatever Access-Control-* fields the upstream sends
 * are replaced. A disallowed origin's actual request still goes through,
 * without CORS fields: the browser is the one that enforces CORS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/load.h"
#include "http/front.h"
#include "http/stream.h"
#include "policy/chain.h"

struct cors_origin {
    const char *text;  /* lower case, as written (a wildcard's first label is '*') */
    size_t len;
    size_t scheme_len; /* wildcard: the bytes before the '*' ("https://") */
    bool wildcard;
};

struct cors {
    char **origin_list; /* as read, lower case */
    size_t norigin_list;
    struct cors_origin *origins;
    size_t norigins;
    bool any_origin; /* origins: ["*"] */
    char **methods, **headers, **expose;
    size_t nmethods, nheaders, nexpose;
    bool any_method, any_header; /* ["*"]: the preflight's request is echoed */
    bool credentials;
    uint64_t max_age; /* ms */
    /* The field values, joined once at load. */
    const char *methods_text, *headers_text, *expose_text, *max_age_text;
};

/* What on_request learnt for on_response. */
struct cors_state {
    const char *origin; /* arena: the Origin when allowed, else NULL */
    bool preflight;     /* answered by cors itself: its response is complete */
};

static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){s, strlen(s)};
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ---- configuration ---- */

static bool is_scheme(const char *s, size_t len)
{
    if (len == 0 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum(s[i]) && strchr("+.-", s[i]) == NULL)
            return false;
    return true;
}

/* host[:port] of an origin, the "*." of a wildcard already skipped. */
static const char *host_port_error(const char *h)
{
    size_t i = 0;
    if (strchr(h, '*') != NULL)
        return "has a '*' that is not a whole first label (write https://*.example.com)";
    if (h[0] == '[') {
        while (h[i] != '\0' && h[i] != ']')
            i++;
        if (h[i] != ']' || i == 1)
            return "has an unterminated IPv6 address";
        i++;
    } else {
        while (is_alnum(h[i]) || h[i] == '-' || h[i] == '.')
            i++;
        if (i == 0 || h[0] == '.' || h[i - 1] == '.' || strstr(h, "..") != NULL)
            return "has no valid host";
    }
    if (h[i] == ':') {
        size_t digits = strspn(h + i + 1, "0123456789");
        if (digits == 0 || digits > 5 || strtol(h + i + 1, NULL, 10) > 65535)
            return "has an invalid port";
        i += 1 + digits;
    }
    if (h[i] == '/')
        return "has a path or a trailing slash (an origin is scheme://host[:port])";
    return h[i] == '\0' ? NULL : "has an invalid character (an origin is scheme://host[:port])";
}

/* Lower-cases s in place (origins compare case-insensitively) and checks
 * it is "*", "null" or scheme://host[:port], maybe with a "*." first label. */
static const char *origin_error(struct jn_ld *ld, char *s)
{
    (void)ld;
    for (char *p = s; *p != '\0'; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (strcmp(s, "*") == 0 || strcmp(s, "null") == 0)
        return NULL;
    const char *sep = strstr(s, "://");
    if (sep == NULL || !is_scheme(s, (size_t)(sep - s)))
        return "is not an origin (scheme://host[:port], as in https://app.example.com)";
    const char *host = sep + 3;
    if (strncmp(host, "*.", 2) == 0)
        host += 2;
    return host_port_error(host);
}

/* Upper case, as the route's methods: (browsers send GET for "get"). */
static const char *method_error(struct jn_ld *ld, char *s)
{
    (void)ld;
    for (char *p = s; *p != '\0'; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    return jn_ld_is_token(s, strlen(s)) ? NULL : "is not a valid method";
}

static const char *header_error(struct jn_ld *ld, char *s)
{
    (void)ld;
    return jn_ld_is_token(s, strlen(s)) ? NULL : "is not a valid header name";
}

static void set_origins(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                        void *obj)
{
    struct cors *c = obj;
    jn_ld_string_list(ld, value, key->name, origin_error, true, &c->origin_list,
                      &c->norigin_list);
}

static void set_methods(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                        void *obj)
{
    struct cors *c = obj;
    jn_ld_string_list(ld, value, key->name, method_error, false, &c->methods, &c->nmethods);
}

static void set_headers(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                        void *obj)
{
    struct cors *c = obj;
    jn_ld_string_list(ld, value, key->name, header_error, true, &c->headers, &c->nheaders);
}

static void set_expose(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                       void *obj)
{
    struct cors *c = obj;
    jn_ld_string_list(ld, value, key->name, header_error, true, &c->expose, &c->nexpose);
}

enum { K_ORIGINS, K_METHODS, K_HEADERS, K_EXPOSE, K_CREDENTIALS, K_MAX_AGE };
static const struct jn_ld_key keys[] = {
    [K_ORIGINS] = JN_LD_REQ("origins", set_origins, 0),
    [K_METHODS] = JN_LD_KEY("methods", set_methods, 0),
    [K_HEADERS] = JN_LD_KEY("headers", set_headers, 0),
    [K_EXPOSE] = JN_LD_KEY("expose_headers", set_expose, 0),
    [K_CREDENTIALS] = JN_LD_KEY("credentials", jn_ld_set_bool, offsetof(struct cors, credentials)),
    [K_MAX_AGE] =
        JN_LD_NUM("max_age", jn_ld_set_duration, offsetof(struct cors, max_age), 0, 86400000),
};
static const struct jn_ld_table table = JN_LD_TABLE("cors", keys);

/* "a, b, c" in the snapshot. */
static const char *join(struct jn_ld *ld, char *const *v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 2;
    char *out = jn_ld_calloc(ld, len, 1);
    if (out == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (i > 0) {
            memcpy(out + at, ", ", 2);
            at += 2;
        }
        memcpy(out + at, v[i], l);
        at += l;
    }
    return out;
}

/* Reports "*" listed with others; returns whether the list is ["*"]. */
static bool star_alone(struct jn_ld *ld, yaml_node_t *node, const char *name, char *const *v,
                       size_t n)
{
    /* Items with errors count too: ["*", "bad/"] is two items. */
    size_t total = node != NULL && node->type == YAML_SEQUENCE_NODE ? jn_ld_seq_len(node) : n;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], "*") != 0)
            continue;
        if (total > 1)
            jn_ld_error(ld, node, "%s: '*' must be the only item", name);
        return total == 1;
    }
    return false;
}

static bool build_origins(struct jn_ld *ld, struct cors *c)
{
    c->origins = jn_ld_calloc(ld, c->norigin_list, sizeof(*c->origins));
    if (c->origins == NULL)
        return false;
    for (size_t i = 0; i < c->norigin_list; i++) {
        const char *o = c->origin_list[i];
        const char *star = strstr(o, "://*.");
        c->origins[i] = (struct cors_origin){o, strlen(o), 0, false};
        if (star != NULL) {
            c->origins[i].wildcard = true;
            c->origins[i].scheme_len = (size_t)(star - o) + 3;
        }
    }
    c->norigins = c->norigin_list;
    return true;
}

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    static char *default_methods[] = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"};
    struct cors *c = jn_ld_calloc(ld, 1, sizeof(*c));
    struct jn_ld_found found[JN_ARRAY_LEN(keys)];
    size_t before = ld->nerrors;
    if (c == NULL)
        return NULL;
    c->max_age = 600000;
    if (!jn_ld_map(ld, value, &table, c, found))
        return NULL;
    c->any_origin = star_alone(ld, found[K_ORIGINS].value, "origins", c->origin_list,
                               c->norigin_list);
    c->any_method = star_alone(ld, found[K_METHODS].value, "methods", c->methods, c->nmethods);
    c->any_header = star_alone(ld, found[K_HEADERS].value, "headers", c->headers, c->nheaders);
    if (ld->nerrors != before)
        return NULL;
    if (c->nmethods == 0) {
        c->methods = default_methods;
        c->nmethods = JN_ARRAY_LEN(default_methods);
    }
    char age[24];
    snprintf(age, sizeof(age), "%llu", (unsigned long long)(c->max_age / 1000));
    c->methods_text = join(ld, c->methods, c->nmethods);
    c->headers_text = c->nheaders > 0 ? join(ld, c->headers, c->nheaders) : NULL;
    c->expose_text = c->nexpose > 0 ? join(ld, c->expose, c->nexpose) : NULL;
    c->max_age_text = jn_ld_strdup(ld, age, strlen(age));
    if (!build_origins(ld, c) || ld->nerrors != before)
        return NULL;
    return c;
}

/* ---- requests ---- */

/* One or more DNS labels, each of letters, digits and '-'. */
static bool is_labels(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && s[i + 1] == '.')
            return false;
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.')
            return false;
    }
    return true;
}

/* A wildcard origin (https, then "*.example.com") matches https://a.example.com
 * and https://a.b.example.com, not https://example.com nor
 * https://evil-example.com: the labels must end right before ".example.com". */
static bool origin_matches(const struct cors_origin *p, struct jn_slice o)
{
    if (!p->wildcard)
        return o.len == p->len && strncasecmp(o.ptr, p->text, o.len) == 0;
    const char *suffix = p->text + p->scheme_len + 1; /* ".example.com[:port]" */
    size_t slen = p->len - p->scheme_len - 1;
    if (o.len <= p->scheme_len + slen || strncasecmp(o.ptr, p->text, p->scheme_len) != 0 ||
        strncasecmp(o.ptr + o.len - slen, suffix, slen) != 0)
        return false;
    return is_labels(o.ptr + p->scheme_len, o.len - p->scheme_len - slen);
}

static bool origin_allowed(const struct cors *c, struct jn_slice o)
{
    if (c->any_origin)
        return true;
    for (size_t i = 0; i < c->norigins; i++)
        if (origin_matches(&c->origins[i], o))
            return true;
    return false;
}

static bool method_allowed(const struct cors *c, struct jn_slice m)
{
    if (c->any_method)
        return jn_ld_is_token(m.ptr, m.len);
    for (size_t i = 0; i < c->nmethods; i++)
        if (jn_slice_eq(m, cs(c->methods[i])))
            return true;
    return false;
}

/* A list of field names a preflight may echo back: tokens, commas, spaces. */
static bool is_name_list(struct jn_slice v)
{
    for (size_t i = 0; i < v.len; i++)
        if (!jn_ld_is_token(v.ptr + i, 1) && v.ptr[i] != ',' && v.ptr[i] != ' ' &&
            v.ptr[i] != '\t')
            return false;
    return v.len > 0;
}

/* The allowed origin as the response names it. */
static struct jn_slice allow_origin(const struct cors *c, const struct cors_state *st)
{
    return c->any_origin && !c->credentials ? cs("*") : cs(st->origin);
}

static enum jn_filter_verdict answer_preflight(struct jn_stream *s, const struct cors *c,
                                               const struct cors_state *st, struct jn_fields *f,
                                               struct jn_slice method)
{
    if (st->origin == NULL)
        return jn_policy_reject(s, 403, "cors: origin not allowed", NULL, 0);
    if (!method_allowed(c, method))
        return jn_policy_reject(s, 403, "cors: method not allowed", NULL, 0);
    struct jn_http_field out[40];
    struct jn_fields rf = {out, 0, JN_ARRAY_LEN(out)};
    jn_fields_add(&rf, cs("Access-Control-Allow-Origin"), allow_origin(c, st));
    struct jn_slice methods = cs(c->methods_text);
    if (c->any_method)
        methods = (struct jn_slice){jn_arena_strndup(&s->arena, method.ptr, method.len),
                                    method.len};
    if (methods.ptr != NULL)
        jn_fields_add(&rf, cs("Access-Control-Allow-Methods"), methods);
    struct jn_slice asked = jn_http_field_get(f->v, f->n, "access-control-request-headers");
    if (c->any_header && is_name_list(asked)) {
        const char *copy = jn_arena_strndup(&s->arena, asked.ptr, asked.len);
        if (copy != NULL)
            jn_fields_add(&rf, cs("Access-Control-Allow-Headers"), (struct jn_slice){copy,
                                                                                    asked.len});
    } else if (c->headers_text != NULL && !c->any_header) {
        jn_fields_add(&rf, cs("Access-Control-Allow-Headers"), cs(c->headers_text));
    }
    if (c->credentials)
        jn_fields_add(&rf, cs("Access-Control-Allow-Credentials"), cs("true"));
    jn_fields_add(&rf, cs("Access-Control-Max-Age"), cs(c->max_age_text));
    jn_fields_add(&rf, cs("Vary"),
                  cs("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"));
    struct jn_http_response resp = {.status = 204, .fields = out, .nfields = rf.n};
    jn_chain_response(s, &resp, &rf); /* the policies before cors (RateLimit-*) */
    jn_fields_set(&rf, cs("X-Request-Id"), cs(s->request_id));
    s->front->respond(s, 204, &rf, NULL, 0);
    return JN_FILTER_RESPOND;
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *f, void *conf,
                                         void **state)
{
    const struct cors *c = conf;
    struct jn_slice origin = jn_http_field_get(f->v, f->n, "origin");
    struct jn_slice method = jn_http_field_get(f->v, f->n, "access-control-request-method");
    bool preflight = origin.ptr != NULL && method.ptr != NULL &&
                     jn_slice_eq(s->req.method, cs("OPTIONS"));
    bool allowed = origin.ptr != NULL && origin_allowed(c, origin);
    if (!preflight && !allowed)
        return JN_FILTER_CONTINUE;
    struct cors_state *st = jn_arena_calloc(&s->arena, 1, sizeof(*st));
    if (st == NULL)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    st->preflight = preflight;
    *state = st;
    if (allowed && (st->origin = jn_arena_strndup(&s->arena, origin.ptr, origin.len)) == NULL)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    return preflight ? answer_preflight(s, c, st, f, method) : JN_FILTER_CONTINUE;
}

/* ---- responses ---- */

static bool starts_with_nocase(struct jn_slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && strncasecmp(s.ptr, prefix, n) == 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether some Vary field already names Origin (or is "*"). */
static bool varies_by_origin(const struct jn_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (!jn_slice_ieq(f->v[i].name, "vary"))
            continue;
        struct jn_slice v = f->v[i].value;
        for (size_t at = 0; at < v.len;) {
            size_t end = at;
            while (end < v.len && v.ptr[end] != ',')
                end++;
            struct jn_slice item = {v.ptr + at, end - at};
            while (item.len > 0 && is_space(item.ptr[0]))
                item.ptr++, item.len--;
            while (item.len > 0 && is_space(item.ptr[item.len - 1]))
                item.len--;
            if (jn_slice_ieq(item, "origin") || jn_slice_ieq(item, "*"))
                return true;
            at = end + 1;
        }
    }
    return false;
}

static void on_response(struct jn_stream *s, struct jn_http_response *resp, struct jn_fields *f,
                        void *conf, void **state)
{
    (void)s, (void)resp;
    const struct cors *c = conf;
    const struct cors_state *st = *state;
    if (st != NULL && st->preflight)
        return;
    /* The upstream's own CORS fields would contradict these. */
    size_t j = 0;
    for (size_t i = 0; i < f->n; i++)
        if (!starts_with_nocase(f->v[i].name, "access-control-"))
            f->v[j++] = f->v[i];
    f->n = j;
    bool star = c->any_origin && !c->credentials;
    /* Unless every origin gets "*", the response depends on Origin: a cache
     * must not serve one origin's answer to another (or to no origin). */
    if (!star && !varies_by_origin(f))
        jn_fields_add(f, cs("Vary"), cs("Origin"));
    if (!star && (st == NULL || st->origin == NULL))
        return;
    jn_fields_add(f, cs("Access-Control-Allow-Origin"), star ? cs("*") : cs(st->origin));
    if (c->credentials)
        jn_fields_add(f, cs("Access-Control-Allow-Credentials"), cs("true"));
    if (c->expose_text != NULL)
        jn_fields_add(f, cs("Access-Control-Expose-Headers"), cs(c->expose_text));
}

const struct jn_policy_ops jn_policy_cors = {
    .name = "cors",
    .parse = parse,
    .on_request = on_request,
    .on_response = on_response,
};
