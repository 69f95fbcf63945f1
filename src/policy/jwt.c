/* jwt: authenticates requests by a JSON Web Token in Authorization: Bearer,
 * verified with keys from a JWKS file, a JWKS URL (jwks_fetch.c) or a raw
 * HMAC secret, with the algorithm pinned by configuration and key type.
 * Publishes the claims as ${jwt.<claim>}, copies some into headers, and
 * may name the consumer. A token whose kid is unknown waits for the key
 * set refresh it triggers. Tokens that passed are cached per worker, by
 * SHA-256 of the token, with what admitting them does, so that a reused
 * token skips the signature and the JSON (docs/policies.md, "jwt"). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "config/load.h"
#include "core/log.h"
#include "http/fields.h"
#include "http/query.h"
#include "http/stream.h"
#include "policy/chain.h"
#include "policy/jwks.h"
#include "policy/jwks_fetch.h"
#include "policy/jwt_token.h"
#include "server/worker.h"
#include "tls/digest.h"
#include "tls/tls_client.h"

#define KEY_FILE_MAX (1024 * 1024)
#define CACHE_DEFAULT 1024 /* tokens per worker */
#define CACHE_MAX 1000000
#define CACHE_WAYS 4       /* a token's place: one of the 4 slots of its set */
#define CACHE_WORKERS 256  /* workers with an id beyond do not cache */

struct claim_header {
    char *claim;  /* snapshot */
    char *header; /* snapshot */
};

/* Where a token may be: a header (Authorization needs the Bearer scheme,
 * another header may have it), a query parameter, a cookie. */
enum token_where { FROM_HEADER, FROM_QUERY, FROM_COOKIE };

struct token_source {
    enum token_where where;
    const char *name; /* snapshot */
};

struct jwt_conf {
    struct token_source *from; /* in order: the first one present is used */
    size_t nfrom;
    char **algorithms; /* as written, for the bit set below */
    size_t nalgorithms;
    uint32_t allowed; /* 1 << enum jn_jwt_alg */
    char *issuer;
    char **audiences;
    size_t naudiences;
    uint64_t leeway_ms;
    bool require_exp;
    bool hide_credentials;
    char *jwks_file, *jwks_url, *secret_file, *jwks_ca;
    uint64_t jwks_refresh_ms, jwks_min_refresh_ms, jwks_timeout_ms;
    struct claim_header *headers;
    size_t nheaders;
    char *consumer_claim;
    uint32_t cache_size;           /* tokens per worker; 0: no cache */
    struct jn_jwks *keys;          /* owned: from jwks_file or secret_file */
    struct jn_jwks_source *source; /* owned: jwks_url */
    struct token_cache **caches;   /* owned: CACHE_WORKERS, each made by its worker */
};

/* A token that passed: what admitting it does, so that its next requests
 * skip the signature and the JSON. Only the time checks run again; iss and
 * aud passed, and the configuration cannot change under the cache. */
struct cached_token {
    unsigned char digest[SHA256_DIGEST_LENGTH]; /* of the whole token */
    uint64_t set_id; /* the key set that verified it (jn_jwks.id); 0: free slot */
    uint64_t used;   /* the cache's clock at its last use */
    double exp, nbf;
    bool has_exp, has_nbf;
    const struct jn_cfg_consumer *consumer; /* consumer_claim's, in the snapshot */
    char *blob; /* malloc'd: the variables and header values (admission_pack) */
    size_t blob_len;
    uint32_t nvars;
};

/* One worker's cache: only that worker's thread uses it, no lock. */
struct token_cache {
    size_t nsets;
    uint64_t clock;
    struct cached_token slots[]; /* nsets * CACHE_WAYS */
};

/* What admitting a token does, in s->arena. */
struct admission {
    const struct jn_cfg_consumer *consumer;
    size_t nvars;
    const char **names;       /* "jwt.<claim>" */
    struct jn_slice *values;
    struct jn_slice *headers; /* one per claims_to_headers entry; ptr NULL: none */
};

/* A request waiting for a key set fetch (heap: it may outlive the stream
 * while its task is posted). */
struct jwt_wait {
    struct jn_jwks_waiter w;
    struct jn_stream *s;         /* borrowed; never used once cancelled */
    const struct jwt_conf *conf; /* borrowed from the snapshot */
    void **slot;                 /* the stream's state slot (arena) */
    struct jn_slice token;       /* in s->arena */
    bool cancelled;
};

/* ---- configuration ---- */

static const char *check_alg(struct jn_ld *ld, char *s)
{
    (void)ld;
    if (strcasecmp(s, "none") == 0)
        return "is refused: unsigned tokens are never accepted";
    return jn_jwt_alg_find(s, strlen(s)) < 0
               ? "is not an algorithm (HS256, HS384, HS512, RS256, RS384, RS512, PS256, "
                 "PS384, PS512, ES256, ES384, ES512, EdDSA)"
               : NULL;
}

static void set_algorithms(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                           void *obj)
{
    struct jwt_conf *c = obj;
    jn_ld_string_list(ld, value, key->name, check_alg, false, &c->algorithms, &c->nalgorithms);
    for (size_t i = 0; i < c->nalgorithms; i++)
        c->allowed |= 1u << jn_jwt_alg_find(c->algorithms[i], strlen(c->algorithms[i]));
}

static void set_audiences(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                          void *obj)
{
    struct jwt_conf *c = obj;
    jn_ld_string_list(ld, value, key->name, NULL, false, &c->audiences, &c->naudiences);
}

static void set_claims_to_headers(struct jn_ld *ld, const struct jn_ld_key *key,
                                  yaml_node_t *value, void *obj)
{
    struct jwt_conf *c = obj;
    if (!jn_ld_expect(ld, value, YAML_MAPPING_NODE, key->name, "a mapping of claim: header"))
        return;
    size_t n = jn_ld_map_len(value);
    struct jn_ld_name *names = jn_ld_calloc(ld, n + 1, sizeof(*names));
    c->headers = jn_ld_calloc(ld, n + 1, sizeof(*c->headers));
    if (names == NULL || c->headers == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k, *v;
        jn_ld_map_pair(ld, value, i, &k, &v);
        char *claim = k ? jn_ld_nonempty(ld, k, key->name, "a claim name") : NULL;
        char *header = v ? jn_ld_nonempty(ld, v, key->name, "a header name") : NULL;
        if (claim == NULL || header == NULL)
            continue;
        if (!jn_ld_is_token(header, strlen(header))) {
            jn_ld_error(ld, v, "%s: %s is not a valid header name", key->name,
                        jn_ld_quote(ld, header, strlen(header)));
            continue;
        }
        names[c->nheaders] = (struct jn_ld_name){ header, v };
        c->headers[c->nheaders++] = (struct claim_header){ claim, header };
    }
    jn_ld_dups(ld, names, c->nheaders, true, "header");
}

static const char *check_token_from(struct jn_ld *ld, char *s)
{
    (void)ld;
    const char *colon = strchr(s, ':');
    size_t kind = colon != NULL ? (size_t)(colon - s) : 0;
    if (colon == NULL || colon[1] == '\0' ||
        !((kind == 6 && memcmp(s, "header", 6) == 0) || (kind == 5 && memcmp(s, "query", 5) == 0) ||
          (kind == 6 && memcmp(s, "cookie", 6) == 0)))
        return "must be header:NAME, query:NAME or cookie:NAME";
    if (!jn_ld_is_token(colon + 1, strlen(colon + 1)))
        return "has a name that is not a token";
    return NULL;
}

static void set_token_from(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                           void *obj)
{
    struct jwt_conf *c = obj;
    char **items = NULL;
    size_t n = 0;
    if (!jn_ld_string_list(ld, value, key->name, check_token_from, true, &items, &n) || n == 0)
        return;
    c->from = jn_ld_calloc(ld, n, sizeof(*c->from));
    if (c->from == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(items[i], ':');
        enum token_where where = items[i][0] == 'h' ? FROM_HEADER
                                 : items[i][0] == 'q' ? FROM_QUERY
                                                      : FROM_COOKIE;
        c->from[c->nfrom++] = (struct token_source){ where, colon + 1 };
        if (where == FROM_QUERY)
            jn_ld_secret_param(ld, colon + 1);
    }
}

#define OFF(f) offsetof(struct jwt_conf, f)
enum { K_ALGS, K_JWKS_FILE, K_JWKS_URL, K_SECRET_FILE, K_JWKS_CA };
static const struct jn_ld_key keys[] = {
    [K_ALGS] = JN_LD_REQ("algorithms", set_algorithms, 0),
    [K_JWKS_FILE] = JN_LD_KEY("jwks_file", jn_ld_set_string, OFF(jwks_file)),
    [K_JWKS_URL] = JN_LD_KEY("jwks_url", jn_ld_set_string, OFF(jwks_url)),
    [K_SECRET_FILE] = JN_LD_KEY("secret_file", jn_ld_set_string, OFF(secret_file)),
    [K_JWKS_CA] = JN_LD_KEY("jwks_ca", jn_ld_set_string, OFF(jwks_ca)),
    JN_LD_KEY("issuer", jn_ld_set_string, OFF(issuer)),
    JN_LD_KEY("audiences", set_audiences, 0),
    JN_LD_NUM("leeway", jn_ld_set_duration, OFF(leeway_ms), 0, 3600000),
    JN_LD_KEY("require_exp", jn_ld_set_bool, OFF(require_exp)),
    JN_LD_KEY("hide_credentials", jn_ld_set_bool, OFF(hide_credentials)),
    JN_LD_KEY("token_from", set_token_from, 0),
    JN_LD_KEY("claims_to_headers", set_claims_to_headers, 0),
    JN_LD_KEY("consumer_claim", jn_ld_set_string, OFF(consumer_claim)),
    JN_LD_NUM("jwks_refresh", jn_ld_set_duration, OFF(jwks_refresh_ms), 1000, 86400000),
    JN_LD_NUM("jwks_min_refresh", jn_ld_set_duration, OFF(jwks_min_refresh_ms), 0, 3600000),
    JN_LD_NUM("jwks_timeout", jn_ld_set_duration, OFF(jwks_timeout_ms), 100, 60000),
    JN_LD_NUM("cache_size", jn_ld_set_u32, OFF(cache_size), 0, CACHE_MAX),
};
static const struct jn_ld_table table = JN_LD_TABLE("jwt", keys);

/* Reads a whole file of at most KEY_FILE_MAX bytes (malloc'd, NUL added). */
static char *read_file(const char *path, size_t *len, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *why = strerror(errno);
        return NULL;
    }
    char *data = malloc(KEY_FILE_MAX + 1);
    size_t n = data != NULL ? fread(data, 1, KEY_FILE_MAX + 1, f) : 0;
    bool err = ferror(f) != 0;
    fclose(f);
    *why = data == NULL ? "out of memory" : err ? "read error" : "larger than 1 MiB";
    if (data == NULL || err || n > KEY_FILE_MAX) {
        free(data);
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

static void load_jwks_file(struct jn_ld *ld, struct jwt_conf *c, yaml_node_t *node)
{
    size_t len = 0;
    const char *why;
    char err[256];
    char *data = read_file(c->jwks_file, &len, &why);
    if (data == NULL) {
        jn_ld_error(ld, node, "jwks_file: cannot read %s: %s", c->jwks_file, why);
        return;
    }
    c->keys = jn_jwks_parse(data, len, err, sizeof(err));
    free(data);
    if (c->keys == NULL)
        jn_ld_error(ld, node, "jwks_file: %s: %s", c->jwks_file, err);
}

static void load_secret_file(struct jn_ld *ld, struct jwt_conf *c, yaml_node_t *node)
{
    size_t len = 0;
    const char *why;
    char *data = read_file(c->secret_file, &len, &why);
    if (data == NULL) {
        jn_ld_error(ld, node, "secret_file: cannot read %s: %s", c->secret_file, why);
        return;
    }
    /* One line ending is what `echo secret > file` adds, not the secret's. */
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (len > 0 && data[len - 1] == '\r')
        len--;
    if (len == 0)
        jn_ld_error(ld, node, "secret_file: %s is empty", c->secret_file);
    else if ((c->keys = jn_jwks_from_secret((unsigned char *)data, len)) == NULL)
        jn_ld_oom(ld);
    free(data);
}

static void load_jwks_url(struct jn_ld *ld, struct jwt_conf *c, struct jn_ld_found *found)
{
    c->source = calloc(1, sizeof(*c->source));
    if (c->source == NULL) {
        jn_ld_oom(ld);
        return;
    }
    const char *why = jn_jwks_source_init(c->source, c->jwks_url);
    if (why != NULL) {
        jn_ld_error(ld, found[K_JWKS_URL].value, "jwks_url: %s %s",
                    jn_ld_quote(ld, c->jwks_url, strlen(c->jwks_url)), why);
        return;
    }
    struct jn_jwks_source *src = c->source;
    if (c->jwks_refresh_ms)
        src->refresh_ms = c->jwks_refresh_ms;
    src->min_refresh_ms = c->jwks_min_refresh_ms;
    if (c->jwks_timeout_ms)
        src->timeout_ms = c->jwks_timeout_ms;
    if (!src->https) {
        if (c->jwks_ca != NULL)
            jn_ld_error(ld, found[K_JWKS_CA].value, "jwks_ca: needs an https:// jwks_url");
        return;
    }
    src->tls.ca = c->jwks_ca;
    enum jn_tls_client_fault fault;
    char err[256];
    src->tls_client = jn_tls_client_new(&src->tls, &fault, err, sizeof(err));
    if (src->tls_client == NULL)
        jn_ld_error(ld, fault == JN_TLS_CLIENT_FAULT_CA && c->jwks_ca ? found[K_JWKS_CA].value
                                                                       : found[K_JWKS_URL].value,
                    "jwks_url: %s", err);
}

/* At least one configured algorithm must fit a key the file gave. */
static void check_keys_fit(struct jn_ld *ld, const struct jwt_conf *c, yaml_node_t *node)
{
    for (size_t i = 0; i < c->keys->n; i++)
        for (int a = 0; a < JN_JWT_NALGS; a++)
            if ((c->allowed & (1u << a)) && c->keys->keys[i].kind == jn_jwt_alg_kind(a) &&
                (c->keys->keys[i].alg < 0 || c->keys->keys[i].alg == a))
                return;
    jn_ld_error(ld, node, "jwt: no key of %s verifies any of the algorithms",
                c->jwks_file != NULL ? c->jwks_file : c->secret_file);
}

static void cache_drop(struct cached_token *e)
{
    free(e->blob);
    *e = (struct cached_token){ .set_id = 0 };
}

static void conf_free(void *arg)
{
    struct jwt_conf *c = arg;
    for (size_t w = 0; c->caches != NULL && w < CACHE_WORKERS; w++) {
        struct token_cache *tc = c->caches[w];
        for (size_t i = 0; tc != NULL && i < tc->nsets * CACHE_WAYS; i++)
            free(tc->slots[i].blob);
        free(tc);
    }
    free(c->caches);
    c->caches = NULL;
    jn_jwks_unref(c->keys);
    c->keys = NULL;
    if (c->source != NULL) {
        jn_jwks_source_free(c->source);
        free(c->source);
        c->source = NULL;
    }
}

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct jwt_conf *c = jn_ld_calloc(ld, 1, sizeof(*c));
    struct jn_ld_found found[JN_ARRAY_LEN(keys)] = { 0 };
    size_t before = ld->nerrors;
    if (c == NULL)
        return NULL;
    c->leeway_ms = 30000;
    c->require_exp = true;
    c->jwks_min_refresh_ms = 10000;
    c->cache_size = CACHE_DEFAULT;
    if (!jn_ld_map(ld, value, &table, c, found) || ld->nerrors != before)
        return NULL;
    if (c->nfrom == 0) {
        static struct token_source authorization = { FROM_HEADER, "Authorization" };
        c->from = &authorization;
        c->nfrom = 1;
    }
    int sources = (c->jwks_file != NULL) + (c->jwks_url != NULL) + (c->secret_file != NULL);
    if (sources != 1) {
        jn_ld_error(ld, value, "jwt: needs exactly one key source: jwks_file, jwks_url or "
                               "secret_file");
        return NULL;
    }
    if (c->jwks_file != NULL)
        load_jwks_file(ld, c, found[K_JWKS_FILE].value);
    else if (c->secret_file != NULL)
        load_secret_file(ld, c, found[K_SECRET_FILE].value);
    else
        load_jwks_url(ld, c, found);
    if (c->jwks_url == NULL && c->jwks_ca != NULL)
        jn_ld_error(ld, found[K_JWKS_CA].value, "jwks_ca: needs an https:// jwks_url");
    if (c->keys != NULL && ld->nerrors == before)
        check_keys_fit(ld, c, found[c->jwks_file ? K_JWKS_FILE : K_SECRET_FILE].value);
    if (c->cache_size > 0 && ld->nerrors == before &&
        (c->caches = calloc(CACHE_WORKERS, sizeof(*c->caches))) == NULL)
        jn_ld_oom(ld);
    if (ld->nerrors != before) {
        conf_free(c);
        return NULL;
    }
    return c;
}

static int start(void *conf, const struct jn_config *cfg)
{
    (void)cfg;
    struct jwt_conf *c = conf;
    return c->source != NULL ? jn_jwks_source_start(c->source) : 0;
}

/* ---- requests ---- */

/* The token of a header: Authorization must use the Bearer scheme (other
 * schemes belong to other policies); another header may. *several is set
 * when two fields carry one. */
static struct jn_slice header_token(const struct jn_fields *f, const char *name, bool *several)
{
    struct jn_slice tok = { NULL, 0 };
    bool authorization = strcasecmp(name, "authorization") == 0;
    for (size_t i = 0; i < f->n; i++) {
        if (!jn_slice_ieq(f->v[i].name, name))
            continue;
        if (tok.ptr != NULL) {
            *several = true;
            return tok;
        }
        struct jn_slice v = f->v[i].value;
        bool bearer = v.len >= 7 && strncasecmp(v.ptr, "bearer ", 7) == 0;
        if (authorization && !bearer)
            continue;
        size_t at = bearer ? 7 : 0;
        while (at < v.len && v.ptr[at] == ' ')
            at++;
        tok = (struct jn_slice){ v.ptr + at, v.len - at };
    }
    return tok;
}

/* name=value in the "; "-separated pairs of the Cookie fields (names are
 * case-sensitive, RFC 6265). */
static struct jn_slice cookie_token(const struct jn_fields *f, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < f->n; i++) {
        if (!jn_slice_ieq(f->v[i].name, "cookie"))
            continue;
        const char *p = f->v[i].value.ptr, *end = p + f->v[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi != NULL ? semi : end;
            if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=')
                return (struct jn_slice){ p + nlen + 1, (size_t)(stop - p - nlen - 1) };
            p = stop;
        }
    }
    return (struct jn_slice){ NULL, 0 };
}

/* The token from the first place of token_from that has one, or {NULL, 0}. */
static struct jn_slice find_token(const struct jn_stream *s, const struct jn_fields *f,
                                  const struct jwt_conf *c, bool *several)
{
    struct jn_slice tok = { NULL, 0 };
    *several = false;
    for (size_t i = 0; i < c->nfrom && tok.ptr == NULL && !*several; i++) {
        const char *name = c->from[i].name;
        if (c->from[i].where == FROM_HEADER)
            tok = header_token(f, name, several);
        else if (c->from[i].where == FROM_COOKIE)
            tok = cookie_token(f, name);
        else if (!jn_query_find(s->req.query, name, strlen(name), &tok))
            tok = (struct jn_slice){ NULL, 0 };
    }
    return tok;
}

static enum jn_filter_verdict deny(struct jn_stream *s, const char *why, bool no_token)
{
    char value[160];
    if (no_token)
        snprintf(value, sizeof(value), "Bearer");
    else
        snprintf(value, sizeof(value), "Bearer error=\"invalid_token\", error_description=\"%s\"",
                 why);
    char *copy = jn_arena_strdup(&s->arena, value);
    struct jn_http_field f = { JN_SLICE_LIT("WWW-Authenticate"),
                               { copy ? copy : "Bearer", copy ? strlen(copy) : 6 } };
    return jn_policy_reject(s, 401, why, &f, 1);
}

/* A claim as header-safe text in s->arena: strings without control bytes
 * and numbers; {NULL, 0} for anything else. */
static struct jn_slice claim_text(struct jn_stream *s, json_t *v)
{
    char num[40];
    const char *text = NULL;
    size_t len = 0;
    if (json_is_string(v)) {
        text = json_string_value(v);
        len = json_string_length(v);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
                return (struct jn_slice){ NULL, 0 };
    } else if (json_is_integer(v)) {
        len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = num;
    } else if (json_is_real(v)) {
        len = (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        text = num;
    } else {
        return (struct jn_slice){ NULL, 0 };
    }
    char *copy = jn_arena_strndup(&s->arena, text, len);
    return (struct jn_slice){ copy, copy != NULL ? len : 0 };
}

/* ---- the token cache ---- */

/* This worker's cache, made on its first use; NULL when there is none. */
static struct token_cache *worker_cache(const struct jwt_conf *c, const struct jn_stream *s)
{
    if (c->caches == NULL || s->gen == NULL || s->gen->worker == NULL)
        return NULL;
    int id = s->gen->worker->id;
    if (id < 0 || id >= CACHE_WORKERS)
        return NULL;
    struct token_cache *tc = c->caches[id];
    if (tc == NULL) {
        size_t nsets = (c->cache_size + CACHE_WAYS - 1) / CACHE_WAYS;
        tc = calloc(1, sizeof(*tc) + nsets * CACHE_WAYS * sizeof(tc->slots[0]));
        if (tc == NULL)
            return NULL;
        tc->nsets = nsets;
        c->caches[id] = tc;
    }
    return tc;
}

static struct cached_token *cache_set(struct token_cache *tc, const unsigned char *digest)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h)); /* SHA-256 output is uniform */
    return &tc->slots[(h % tc->nsets) * CACHE_WAYS];
}

/* The entry of digest verified by the key set set_id, or NULL. An entry
 * verified by another set (the keys rotated) is dropped: a miss. */
static struct cached_token *cache_find(struct token_cache *tc, const unsigned char *digest,
                                       uint64_t set_id)
{
    struct cached_token *set = cache_set(tc, digest);
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        struct cached_token *e = &set[i];
        if (e->set_id == 0 || CRYPTO_memcmp(e->digest, digest, sizeof(e->digest)) != 0)
            continue;
        if (e->set_id != set_id || set_id == 0) {
            cache_drop(e);
            return NULL;
        }
        e->used = ++tc->clock;
        return e;
    }
    return NULL;
}

/* The slot for digest: its own, else a free one, else the least recently
 * used of its set (emptied). */
static struct cached_token *cache_slot(struct token_cache *tc, const unsigned char *digest)
{
    struct cached_token *set = cache_set(tc, digest), *victim = &set[0];
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        if (set[i].set_id != 0 &&
            CRYPTO_memcmp(set[i].digest, digest, sizeof(set[i].digest)) == 0) {
            victim = &set[i];
            break;
        }
        if (victim->set_id != 0 && (set[i].set_id == 0 || set[i].used < victim->used))
            victim = &set[i];
    }
    cache_drop(victim);
    return victim;
}

static void put_u32(char **p, uint32_t v)
{
    memcpy(*p, &v, sizeof(v));
    *p += sizeof(v);
}

static uint32_t get_u32(const char **p)
{
    uint32_t v;
    memcpy(&v, *p, sizeof(v));
    *p += sizeof(v);
    return v;
}

static void put_bytes(char **p, struct jn_slice b)
{
    if (b.len > 0)
        memcpy(*p, b.ptr, b.len);
    (*p)[b.len] = '\0';
    *p += b.len + 1;
}

/* Packs a's variables and header values into one malloc'd blob: per
 * variable, its name's and value's lengths then both NUL-terminated; per
 * header, its length (UINT32_MAX: none) then the value NUL-terminated. */
static char *admission_pack(const struct jwt_conf *c, const struct admission *a, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nvars; i++)
        n += 2 * sizeof(uint32_t) + strlen(a->names[i]) + 1 + a->values[i].len + 1;
    for (size_t i = 0; i < c->nheaders; i++)
        n += sizeof(uint32_t) + (a->headers[i].ptr != NULL ? a->headers[i].len + 1 : 0);
    char *blob = malloc(n > 0 ? n : 1), *p = blob;
    if (blob == NULL)
        return NULL;
    for (size_t i = 0; i < a->nvars; i++) {
        struct jn_slice name = { a->names[i], strlen(a->names[i]) };
        put_u32(&p, (uint32_t)name.len);
        put_u32(&p, (uint32_t)a->values[i].len);
        put_bytes(&p, name);
        put_bytes(&p, a->values[i]);
    }
    for (size_t i = 0; i < c->nheaders; i++) {
        put_u32(&p, a->headers[i].ptr != NULL ? (uint32_t)a->headers[i].len : UINT32_MAX);
        if (a->headers[i].ptr != NULL)
            put_bytes(&p, a->headers[i]);
    }
    *len = n;
    return blob;
}

/* The admission of a cached token, its blob copied into s->arena. */
static bool admission_unpack(struct jn_stream *s, const struct jwt_conf *c,
                             const struct cached_token *e, struct admission *a)
{
    char *copy = jn_arena_alloc(&s->arena, e->blob_len > 0 ? e->blob_len : 1);
    *a = (struct admission){
        .consumer = e->consumer,
        .nvars = e->nvars,
        .names = jn_arena_alloc(&s->arena, (e->nvars + 1) * sizeof(*a->names)),
        .values = jn_arena_alloc(&s->arena, (e->nvars + 1) * sizeof(*a->values)),
        .headers = jn_arena_alloc(&s->arena, (c->nheaders + 1) * sizeof(*a->headers)),
    };
    if (copy == NULL || a->names == NULL || a->values == NULL || a->headers == NULL)
        return false;
    if (e->blob_len > 0)
        memcpy(copy, e->blob, e->blob_len);
    const char *p = copy;
    for (size_t i = 0; i < e->nvars; i++) {
        uint32_t nl = get_u32(&p), vl = get_u32(&p);
        a->names[i] = p;
        a->values[i] = (struct jn_slice){ p + nl + 1, vl };
        p += nl + 1 + vl + 1;
    }
    for (size_t i = 0; i < c->nheaders; i++) {
        uint32_t len = get_u32(&p);
        a->headers[i] = (struct jn_slice){ NULL, 0 };
        if (len != UINT32_MAX) {
            a->headers[i] = (struct jn_slice){ p, len };
            p += len + 1;
        }
    }
    return true;
}

/* Keeps a token that passed, verified by the key set set_id. */
static void cache_store(struct token_cache *tc, const struct jwt_conf *c,
                        const unsigned char *digest, uint64_t set_id, const json_t *claims,
                        const struct admission *a)
{
    size_t len = 0;
    char *blob = admission_pack(c, a, &len);
    if (blob == NULL)
        return;
    const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    struct cached_token *e = cache_slot(tc, digest);
    *e = (struct cached_token){
        .set_id = set_id,
        .used = ++tc->clock,
        .exp = exp != NULL ? json_number_value(exp) : 0,
        .nbf = nbf != NULL ? json_number_value(nbf) : 0,
        .has_exp = exp != NULL,
        .has_nbf = nbf != NULL,
        .consumer = a->consumer,
        .blob = blob,
        .blob_len = len,
        .nvars = (uint32_t)a->nvars,
    };
    memcpy(e->digest, digest, sizeof(e->digest));
}

/* ---- admission ---- */

/* What admitting a token with these claims does, in s->arena. Returns
 * false when out of memory; a->consumer NULL with consumer_claim set: no
 * such consumer. */
static bool admission_build(struct jn_stream *s, const struct jwt_conf *c, json_t *claims,
                            struct admission *a)
{
    size_t max = json_object_size(claims);
    *a = (struct admission){
        .names = jn_arena_alloc(&s->arena, (max + 1) * sizeof(*a->names)),
        .values = jn_arena_alloc(&s->arena, (max + 1) * sizeof(*a->values)),
        .headers = jn_arena_alloc(&s->arena, (c->nheaders + 1) * sizeof(*a->headers)),
    };
    if (a->names == NULL || a->values == NULL || a->headers == NULL)
        return false;
    if (c->consumer_claim != NULL) {
        const char *name = json_string_value(json_object_get(claims, c->consumer_claim));
        const struct jn_config *cfg = s->gen->cfg;
        for (size_t i = 0; name != NULL && i < cfg->nconsumers && a->consumer == NULL; i++)
            if (strcmp(cfg->consumers[i].name, name) == 0)
                a->consumer = &cfg->consumers[i];
    }
    const char *key;
    json_t *v;
    json_object_foreach (claims, key, v) {
        struct jn_slice text = claim_text(s, v);
        size_t klen = strlen(key);
        if (text.ptr == NULL || a->nvars == max)
            continue;
        char *name = jn_arena_alloc(&s->arena, klen + 5);
        if (name == NULL || klen > UINT32_MAX - 5 || text.len > UINT32_MAX - 1)
            return false;
        memcpy(name, "jwt.", 4);
        memcpy(name + 4, key, klen + 1);
        a->names[a->nvars] = name;
        a->values[a->nvars++] = text;
    }
    for (size_t i = 0; i < c->nheaders; i++)
        a->headers[i] = claim_text(s, json_object_get(claims, c->headers[i].claim));
    return true;
}

/* Does what a says: the consumer, the variables and the headers. */
static enum jn_filter_verdict admit(struct jn_stream *s, struct jn_fields *f,
                                    const struct jwt_conf *c, const struct admission *a)
{
    if (c->consumer_claim != NULL)
        s->consumer = a->consumer;
    for (size_t i = 0; i < a->nvars; i++)
        if (jn_stream_var_set(s, a->names[i], a->values[i]) != 0)
            return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    for (size_t i = 0; i < c->nheaders; i++) {
        jn_fields_remove(f, c->headers[i].header);
        struct jn_slice name = { c->headers[i].header, strlen(c->headers[i].header) };
        if (a->headers[i].ptr != NULL && jn_fields_add(f, name, a->headers[i]) != 0)
            return jn_policy_reject(s, 500, "too many header fields", NULL, 0);
    }
    for (size_t i = 0; c->hide_credentials && i < c->nfrom; i++) {
        if (c->from[i].where == FROM_HEADER)
            jn_fields_remove(f, c->from[i].name);
        else if (c->from[i].where == FROM_QUERY &&
                 !jn_query_hide(&s->arena, &s->req.query, c->from[i].name))
            return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    }
    return JN_FILTER_CONTINUE;
}

/* A cached token: only the time checks run again (as jn_jwt_check_claims). */
static enum jn_filter_verdict admit_cached(struct jn_stream *s, struct jn_fields *f,
                                           const struct jwt_conf *c, struct cached_token *e)
{
    double now = (double)time(NULL), leeway = (double)(c->leeway_ms / 1000);
    if (e->has_exp && !(now < e->exp + leeway)) {
        cache_drop(e); /* never again */
        return deny(s, jn_jwt_error(JN_JWT_EXPIRED), false);
    }
    if (e->has_nbf && !(now + leeway >= e->nbf))
        return deny(s, jn_jwt_error(JN_JWT_NOT_YET_VALID), false);
    struct admission a;
    if (!admission_unpack(s, c, e, &a))
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    return admit(s, f, c, &a);
}

static void wait_done(struct jn_task *t);

/* Parks the stream until the key set fetch it asked for ends. Returns
 * false when no fetch may run now (min_refresh). */
static bool wait_for_keys(struct jn_stream *s, const struct jwt_conf *c, struct jn_slice token,
                          void **state)
{
    struct jwt_wait *w = calloc(1, sizeof(*w));
    char *copy = jn_arena_strndup(&s->arena, token.ptr, token.len);
    if (w == NULL || copy == NULL) {
        free(w);
        return false;
    }
    *w = (struct jwt_wait){ .s = s, .conf = c, .slot = state, .token = { copy, token.len } };
    w->w.task.done = wait_done;
    w->w.task.loop = &s->gen->worker->loop;
    *state = w;
    if (jn_jwks_source_wait(c->source, &w->w))
        return true;
    *state = NULL;
    free(w);
    return false;
}

/* Verifies the token; may_wait: an unknown key (or no keys yet) may pause
 * the request for a key set fetch. */
static enum jn_filter_verdict authenticate(struct jn_stream *s, struct jn_fields *f,
                                           const struct jwt_conf *c, struct jn_slice token,
                                           bool may_wait, void **state)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    struct token_cache *tc = token.len <= JN_JWT_MAX_LEN ? worker_cache(c, s) : NULL;
    if (tc != NULL && jn_sha256(token.ptr, token.len, digest) != 0)
        tc = NULL;
    if (tc != NULL) {
        uint64_t current = c->keys != NULL ? c->keys->id : jn_jwks_source_id(c->source);
        struct cached_token *e = cache_find(tc, digest, current);
        if (e != NULL)
            return admit_cached(s, f, c, e);
    }
    struct jn_jwt t;
    enum jn_jwt_result r = jn_jwt_decode(token.ptr, token.len, c->allowed, &t);
    if (r != JN_JWT_OK)
        return deny(s, jn_jwt_error(r), false);
    struct jn_jwks *set = c->keys;
    if (set != NULL)
        jn_jwks_ref(set);
    else
        set = jn_jwks_source_get(c->source);
    bool have_keys = set != NULL;
    uint64_t set_id = have_keys ? set->id : 0;
    r = have_keys ? jn_jwt_verify(&t, set) : JN_JWT_UNKNOWN_KEY;
    jn_jwks_unref(set);
    /* A key set fetch may bring the key: wait for it (at most one fetch
     * per jwks_min_refresh; a request that cannot wait is refused). */
    if (r == JN_JWT_UNKNOWN_KEY && c->source != NULL && may_wait &&
        wait_for_keys(s, c, token, state)) {
        jn_jwt_free(&t);
        return JN_FILTER_PAUSE;
    }
    const struct jn_jwt_rules rules = {
        .issuer = c->issuer,
        .audiences = c->audiences,
        .naudiences = c->naudiences,
        .leeway_s = c->leeway_ms / 1000,
        .require_exp = c->require_exp,
    };
    enum jn_filter_verdict v;
    struct admission a;
    if (!have_keys)
        v = deny(s, "no keys", false);
    else if (r != JN_JWT_OK)
        v = deny(s, jn_jwt_error(r), false);
    else if ((r = jn_jwt_check_claims(t.claims, &rules, (int64_t)time(NULL))) != JN_JWT_OK)
        v = deny(s, jn_jwt_error(r), false);
    else if (!admission_build(s, c, t.claims, &a))
        v = jn_policy_reject(s, 500, "out of memory", NULL, 0);
    else if (c->consumer_claim != NULL && a.consumer == NULL)
        v = deny(s, "unknown consumer", false);
    else {
        if (tc != NULL)
            cache_store(tc, c, digest, set_id, t.claims, &a);
        v = admit(s, f, c, &a);
    }
    jn_jwt_free(&t);
    return v;
}

static void wait_done(struct jn_task *task)
{
    struct jwt_wait *w = (struct jwt_wait *)task; /* w.task is the first member */
    if (w->cancelled) {
        free(w);
        return;
    }
    struct jn_stream *s = w->s;
    *w->slot = NULL;
    struct jn_fields f = { s->fields, s->held_nfields, s->fields_cap };
    authenticate(s, &f, w->conf, w->token, false, w->slot);
    s->held_nfields = f.n;
    free(w);
    jn_chain_resume(s);
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *f, void *conf,
                                         void **state)
{
    const struct jwt_conf *c = conf;
    bool several;
    struct jn_slice token = find_token(s, f, c, &several);
    if (several)
        return deny(s, "more than one token header", false);
    if (token.ptr == NULL)
        return deny(s, "missing token", true);
    return authenticate(s, f, c, token, true, state);
}

static void cancel(struct jn_stream *s, void *conf, void **state)
{
    (void)s;
    const struct jwt_conf *c = conf;
    struct jwt_wait *w = *state;
    if (w == NULL)
        return;
    *state = NULL;
    if (jn_jwks_source_unwait(c->source, &w->w))
        free(w);
    else
        w->cancelled = true; /* posted: its done runs on this thread later, and frees it */
}

const struct jn_policy_ops jn_policy_jwt = {
    .name = "jwt",
    .parse = parse,
    .free = conf_free,
    .start = start,
    .on_request = on_request,
    .cancel = cancel,
};
