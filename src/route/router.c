/* The router: routes grouped by host, then by path matcher, all reached
 * through one hash table, so matching costs the same with ten routes or ten
 * thousand. Built once per configuration snapshot, read-only afterwards. */
#include "route/router.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <inttypes.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"
#include "http/query.h"

/* Secondary path matchers an item must still check: a route with several
 * path matchers is filed under the most specific one only. */
enum { JN_RT_CHECK_PREFIX = 1, JN_RT_CHECK_REGEX = 2 };

/* One route in a list. */
struct jn_rt_item {
    const struct jn_cfg_route *route; /* borrowed from the snapshot */
    struct jn_rt_item *next;
    unsigned check; /* JN_RT_CHECK_* */
};

/* Routes sharing a host and a path matcher, by priority then file order. */
struct jn_rt_list {
    struct jn_rt_item *head;
    struct jn_rt_item *tail; /* used while building */
};

/* A node of a group's prefix trie, standing for the prefix "/s1/.../sk" of
 * the segments on its way from the root ("" at the root). Children are
 * entries of the router's table keyed by (node, segment). */
struct jn_rt_node {
    const struct jn_rt_node *parent;
    size_t plen;             /* length of "/s1/.../sk" */
    struct jn_rt_list plain; /* path_prefix "/s1/.../sk", and "/" at the root */
    struct jn_rt_list slash; /* path_prefix "/s1/.../sk/" */
};

/* The routes of one group that share a path_regex pattern. */
struct jn_rt_regex {
    const pcre2_code *code; /* borrowed: the first such route's match.regex */
    struct jn_rt_list routes;
    struct jn_rt_regex *next; /* file order of each pattern's first route */
};

/* Every route of one host (exact, wildcard, or none). */
struct jn_rt_group {
    bool has_exact;  /* some route has an exact path: worth a lookup */
    bool has_prefix; /* some route has a path_prefix: worth a trie walk */
    struct jn_rt_node root;
    struct jn_rt_regex *regex_head;
    struct jn_rt_regex *regex_tail;
    struct jn_rt_list any_path;
};

enum jn_rt_kind {
    JN_RT_HOST,  /* exact host -> group; key lower case */
    JN_RT_WILD,  /* ".suffix" of "*.suffix" -> group; key lower case */
    JN_RT_PATH,  /* (group, exact path) -> list */
    JN_RT_EDGE,  /* (node, segment) -> child node */
    JN_RT_REGEX, /* (group, pattern) -> struct jn_rt_regex */
    JN_RT_SIG,   /* (list, signature) -> route: finds indistinguishable routes */
};

struct jn_rt_entry {
    const void *owner; /* group, node or list the key belongs to; NULL for hosts */
    const char *key;   /* borrowed from the snapshot or the router's arena */
    size_t len;
    uint64_t hash;
    enum jn_rt_kind kind;
    void *value; /* NULL: empty slot */
};

struct jn_router {
    struct jn_arena arena;     /* owns groups, nodes, lists, items, copied keys */
    struct jn_rt_entry *table; /* owned (malloc): open addressing, at most half full */
    size_t mask;
    size_t wild_max;              /* longest wildcard ".suffix"; 0: no wildcard hosts */
    struct jn_rt_group *any_host; /* routes without host, or NULL */
};

/* ---- hash table ---------------------------------------------------------- */

static bool jn_rt_kind_folds(enum jn_rt_kind kind)
{
    return kind == JN_RT_HOST || kind == JN_RT_WILD;
}

static uint64_t jn_rt_hash(const void *owner, enum jn_rt_kind kind, const char *s, size_t len)
{
    bool fold = jn_rt_kind_folds(kind);
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)(uintptr_t)owner ^ ((uint64_t)kind << 59);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)(fold ? jn_lower(s[i]) : s[i]);
        h *= 0x100000001b3ull;
    }
    /* FNV's low bits mix poorly and the slot is taken from them */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Returns the entry of (owner, kind, key), or the empty slot where it belongs. */
static struct jn_rt_entry *jn_rt_find(const struct jn_router *r, const void *owner,
                                      enum jn_rt_kind kind, const char *s, size_t len)
{
    uint64_t h = jn_rt_hash(owner, kind, s, len);
    for (size_t i = (size_t)h & r->mask;; i = (i + 1) & r->mask) {
        struct jn_rt_entry *e = &r->table[i];
        if (e->value == NULL)
            return e;
        if (e->hash != h || e->owner != owner || e->kind != kind || e->len != len)
            continue;
        struct jn_slice a = {e->key, len}, b = {s, len};
        if (jn_rt_kind_folds(kind) ? jn_slice_ieq_slice(a, b) : jn_slice_eq(a, b))
            return e;
    }
}

static void *jn_rt_lookup(const struct jn_router *r, const void *owner, enum jn_rt_kind kind,
                          const char *s, size_t len)
{
    return jn_rt_find(r, owner, kind, s, len)->value;
}

static void jn_rt_store(struct jn_rt_entry *e, const void *owner, enum jn_rt_kind kind,
                        const char *s, size_t len, void *value)
{
    *e = (struct jn_rt_entry){owner, s, len, jn_rt_hash(owner, kind, s, len), kind, value};
}

/* ---- request-side helpers ------------------------------------------------ */

/* Strips ":port" (not from a bare IPv6 address) and one trailing dot: the
 * caller strips the port already, but a stray one must not defeat routing. */
static struct jn_slice jn_rt_host_trim(struct jn_slice h)
{
    if (h.len == 0)
        return h;
    const char *colon = memrchr(h.ptr, ':', h.len);
    if (colon != NULL) {
        size_t c = (size_t)(colon - h.ptr);
        bool digits = true;
        for (size_t i = c + 1; i < h.len; i++)
            digits = digits && h.ptr[i] >= '0' && h.ptr[i] <= '9';
        bool bracketed =
            h.ptr[0] == '[' ? c > 0 && h.ptr[c - 1] == ']' : memchr(h.ptr, ':', c) == NULL;
        if (digits && bracketed)
            h.len = c;
    }
    if (h.len > 1 && h.ptr[h.len - 1] == '.')
        h.len--;
    return h;
}

static size_t jn_rt_kv_len(const struct jn_cfg_kv *kv)
{
    return kv->value_len ? kv->value_len : strlen(kv->value);
}

/* The first parameter named kv->name decides; a NULL value only asks for presence. */
static bool jn_rt_query_ok(struct jn_slice q, const struct jn_cfg_kv *kv)
{
    struct jn_slice v;
    if (!jn_query_find(q, kv->name, strlen(kv->name), &v))
        return false;
    return kv->value == NULL || jn_form_eq(v.ptr, v.len, kv->value, jn_rt_kv_len(kv));
}

/* Segment-boundary prefix test, as the trie does it, for a route that has a
 * path_prefix besides a more specific matcher. */
static bool jn_rt_prefix_ok(const char *prefix, struct jn_slice path)
{
    size_t n = strlen(prefix);
    if (n == 1 && prefix[0] == '/')
        return path.len > 0 && path.ptr[0] == '/';
    if (path.len < n || memcmp(path.ptr, prefix, n) != 0)
        return false;
    return prefix[n - 1] == '/' || path.len == n || path.ptr[n] == '/';
}

/* ---- matching ------------------------------------------------------------ */

struct jn_rt_request {
    const struct jn_http_request *req; /* borrowed from the caller */
    struct jn_slice path;
    const char *listener; /* NULL: no listener filter */
};

static bool jn_rt_listener_ok(const struct jn_cfg_route *route, const char *listener)
{
    if (listener == NULL || route->nlisteners == 0)
        return true;
    for (size_t i = 0; i < route->nlisteners; i++)
        if (strcmp(route->listeners[i], listener) == 0)
            return true;
    return false;
}

static bool jn_rt_method_ok(const struct jn_cfg_match *m, struct jn_slice method)
{
    if (m->nmethods == 0)
        return true;
    for (size_t i = 0; i < m->nmethods; i++)
        if (strlen(m->methods[i]) == method.len &&
            memcmp(m->methods[i], method.ptr, method.len) == 0)
            return true;
    return false;
}

static bool jn_rt_headers_ok(const struct jn_cfg_match *m, const struct jn_http_request *req)
{
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct jn_cfg_kv *kv = &m->headers[i];
        struct jn_slice v = jn_http_field_get(req->fields, req->nfields, kv->name);
        if (v.ptr == NULL)
            return false;
        if (kv->value != NULL && !jn_slice_eq(v, (struct jn_slice){kv->value, jn_rt_kv_len(kv)}))
            return false;
    }
    return true;
}

static bool jn_rt_item_ok(const struct jn_rt_request *q, const struct jn_rt_item *it)
{
    const struct jn_cfg_route *route = it->route;
    const struct jn_cfg_match *m = &route->match;
    if (!jn_rt_listener_ok(route, q->listener) || !jn_rt_method_ok(m, q->req->method) ||
        !jn_rt_headers_ok(m, q->req))
        return false;
    for (size_t i = 0; i < m->nquery; i++)
        if (!jn_rt_query_ok(q->req->query, &m->query[i]))
            return false;
    if ((it->check & JN_RT_CHECK_PREFIX) && !jn_rt_prefix_ok(m->path_prefix, q->path))
        return false;
    const size_t *ovector;
    if ((it->check & JN_RT_CHECK_REGEX) && !jn_route_regex_match(m->regex, q->path, &ovector))
        return false;
    return true;
}

static const struct jn_cfg_route *jn_rt_try_list(const struct jn_rt_request *q,
                                                 const struct jn_rt_list *list)
{
    for (const struct jn_rt_item *it = list->head; it != NULL; it = it->next)
        if (jn_rt_item_ok(q, it))
            return it->route;
    return NULL;
}

/* Walks the trie down the path's segments as far as it goes, then back up:
 * the way up meets the prefixes longest first, without a stack. */
static const struct jn_cfg_route *jn_rt_try_prefix(const struct jn_router *r,
                                                   const struct jn_rt_request *q,
                                                   const struct jn_rt_group *g)
{
    struct jn_slice p = q->path;
    if (p.len == 0 || p.ptr[0] != '/')
        return NULL;
    const struct jn_rt_node *node = &g->root;
    size_t i = 1;
    for (;;) {
        const char *slash = memchr(p.ptr + i, '/', p.len - i);
        size_t end = slash ? (size_t)(slash - p.ptr) : p.len;
        const struct jn_rt_node *child = jn_rt_lookup(r, node, JN_RT_EDGE, p.ptr + i, end - i);
        if (child == NULL)
            break;
        node = child;
        if (end == p.len)
            break;
        i = end + 1;
    }
    for (; node != NULL; node = node->parent) {
        const struct jn_cfg_route *route = NULL;
        if (p.len > node->plen)
            route = jn_rt_try_list(q, &node->slash);
        if (route == NULL)
            route = jn_rt_try_list(q, &node->plain);
        if (route != NULL)
            return route;
    }
    return NULL;
}

static const struct jn_cfg_route *jn_rt_try_group(const struct jn_router *r,
                                                  const struct jn_rt_request *q,
                                                  const struct jn_rt_group *g)
{
    const struct jn_cfg_route *route = NULL;
    if (g->has_exact) {
        const struct jn_rt_list *list = jn_rt_lookup(r, g, JN_RT_PATH, q->path.ptr, q->path.len);
        if (list != NULL)
            route = jn_rt_try_list(q, list);
    }
    if (route == NULL && g->has_prefix)
        route = jn_rt_try_prefix(r, q, g);
    for (const struct jn_rt_regex *rx = g->regex_head; route == NULL && rx; rx = rx->next) {
        const size_t *ovector;
        if (jn_route_regex_match(rx->code, q->path, &ovector))
            route = jn_rt_try_list(q, &rx->routes);
    }
    if (route == NULL)
        route = jn_rt_try_list(q, &g->any_path);
    return route;
}

const struct jn_cfg_route *jn_router_match_listener(const struct jn_router *r,
                                                    const struct jn_http_request *req,
                                                    const char *listener_name)
{
    if (r == NULL)
        return NULL;
    struct jn_rt_request q = {req, req->path, listener_name};
    if (q.path.ptr == NULL)
        q.path = (struct jn_slice){"", 0};
    const struct jn_cfg_route *route = NULL;
    struct jn_slice host = jn_rt_host_trim(req->host);
    if (host.len > 0) {
        const struct jn_rt_group *g = jn_rt_lookup(r, NULL, JN_RT_HOST, host.ptr, host.len);
        if (g != NULL)
            route = jn_rt_try_group(r, &q, g);
        /* "*.b.c" before "*.c": the suffixes from each dot, left to right,
         * skipping those longer than any wildcard, so that a long host full
         * of dots costs no more than a short one. */
        size_t from = host.len > r->wild_max ? host.len - r->wild_max : 1;
        for (size_t i = from; route == NULL && r->wild_max > 0 && i < host.len; i++) {
            if (host.ptr[i] != '.')
                continue;
            g = jn_rt_lookup(r, NULL, JN_RT_WILD, host.ptr + i, host.len - i);
            if (g != NULL)
                route = jn_rt_try_group(r, &q, g);
        }
    }
    if (route == NULL && r->any_host != NULL)
        route = jn_rt_try_group(r, &q, r->any_host);
    return route;
}

const struct jn_cfg_route *jn_router_match(const struct jn_router *r,
                                           const struct jn_http_request *req)
{
    return jn_router_match_listener(r, req, NULL);
}

/* ---- regex runtime ------------------------------------------------------- */

/* Bounds the work of one match so that a pathological pattern costs a miss,
 * not a worker: generous for paths (a few thousand bytes), far below PCRE2's
 * default of ten million. */
#define JN_RT_MATCH_LIMIT 1000000u

static pthread_once_t jn_rt_once = PTHREAD_ONCE_INIT;
static pthread_key_t jn_rt_md_key; /* frees a thread's match data when it exits */
static bool jn_rt_md_key_ok;
static pcre2_match_context *jn_rt_mctx; /* shared read-only by every thread */
static _Thread_local pcre2_match_data *jn_rt_md;

static void jn_rt_md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void jn_rt_init_once(void)
{
    jn_rt_md_key_ok = pthread_key_create(&jn_rt_md_key, jn_rt_md_free) == 0;
    jn_rt_mctx = pcre2_match_context_create(NULL);
    if (jn_rt_mctx != NULL)
        pcre2_set_match_limit(jn_rt_mctx, JN_RT_MATCH_LIMIT);
}

bool jn_route_regex_match(const struct pcre2_real_code_8 *code, struct jn_slice subject,
                          const size_t **ovector)
{
    if (code == NULL)
        return false;
    if (jn_rt_md == NULL) {
        pthread_once(&jn_rt_once, jn_rt_init_once);
        jn_rt_md = pcre2_match_data_create(10, NULL);
        if (jn_rt_md == NULL)
            return false;
        if (jn_rt_md_key_ok)
            pthread_setspecific(jn_rt_md_key, jn_rt_md);
    }
    const char *s = subject.ptr ? subject.ptr : "";
    int rc = pcre2_match(code, (PCRE2_SPTR)s, subject.len, 0, 0, jn_rt_md, jn_rt_mctx);
    if (rc < 0) /* no match, or a limit hit */
        return false;
    /* PCRE2 leaves the pairs of groups past the last one set untouched: they
     * would still hold offsets from another subject. rc 0 means all 10 set. */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(jn_rt_md);
    for (int k = rc == 0 ? 10 : rc; k < 10; k++)
        ov[2 * k] = ov[2 * k + 1] = PCRE2_UNSET;
    *ovector = ov;
    return true;
}

/* ---- building ------------------------------------------------------------ */

/* A growable byte buffer for signatures. */
struct jn_rt_buf {
    char *ptr; /* owned (malloc) */
    size_t len;
    size_t cap;
    bool oom;
};

struct jn_rt_build {
    struct jn_router *r;
    struct jn_config *cfg;      /* borrowed from the caller */
    struct jn_cfg_errors *errs; /* borrowed from the caller; may be NULL */
    struct jn_rt_list **slot;   /* owned: per route, the list it joins */
    unsigned *check;            /* owned: per route, JN_RT_CHECK_* */
    struct jn_rt_buf sig;       /* the signature being built */
    struct jn_rt_buf elems;     /* scratch for the elements of one set */
    size_t nerrors;
};

/* How messages name a route: 'name', or #N (its place in the file) when it
 * has none. Used as jn_rt_label(route).text within one full expression. */
struct jn_rt_label {
    char text[96];
};

static struct jn_rt_label jn_rt_label(const struct jn_cfg_route *route)
{
    struct jn_rt_label l;
    if (route->name != NULL)
        snprintf(l.text, sizeof(l.text), "'%s'", route->name);
    else
        snprintf(l.text, sizeof(l.text), "#%zu", route->index + 1);
    return l;
}

static void jn_rt_error(struct jn_rt_build *b, struct jn_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Counts every error, so that the build fails even when the caller passed no errs. */
static void jn_rt_error(struct jn_rt_build *b, struct jn_cfg_pos pos, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->nerrors++;
    if (b->errs != NULL)
        jn_cfg_error(b->errs, pos, "%s", msg);
}

static void jn_rt_oom(struct jn_rt_build *b)
{
    struct jn_cfg_pos pos = {b->cfg->file, 0, 0};
    jn_rt_error(b, pos, "router: out of memory");
}

static void jn_rt_buf_put(struct jn_rt_buf *buf, const char *s, size_t n)
{
    if (buf->oom)
        return;
    if (buf->ptr == NULL || buf->cap - buf->len < n) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap - buf->len < n)
            cap *= 2;
        char *p = realloc(buf->ptr, cap);
        if (p == NULL) {
            buf->oom = true;
            return;
        }
        buf->ptr = p;
        buf->cap = cap;
    }
    if (n > 0)
        memcpy(buf->ptr + buf->len, s, n);
    buf->len += n;
}

/* Appends a tag, a length and the bytes: length-prefixed fields cannot run
 * into each other, whatever bytes the values hold. */
static void jn_rt_buf_field(struct jn_rt_buf *buf, char tag, const char *s, size_t n)
{
    char head[32];
    int k = snprintf(head, sizeof(head), "%c%zu:", tag, n);
    jn_rt_buf_put(buf, head, (size_t)k);
    jn_rt_buf_put(buf, s, n);
}

static void jn_rt_buf_opt(struct jn_rt_buf *buf, char tag, const char *s)
{
    if (s == NULL)
        jn_rt_buf_put(buf, "-", 1);
    else
        jn_rt_buf_field(buf, tag, s, strlen(s));
}

/* ---- signatures: routes that can never be told apart -------------------- */

typedef void jn_rt_elem_fn(struct jn_rt_buf *out, const struct jn_cfg_route *route, size_t i);

static void jn_rt_enc_value(struct jn_rt_buf *out, const struct jn_cfg_kv *kv)
{
    if (kv->value == NULL)
        jn_rt_buf_put(out, "-", 1);
    else
        jn_rt_buf_field(out, 'v', kv->value, jn_rt_kv_len(kv));
}

static void jn_rt_enc_method(struct jn_rt_buf *out, const struct jn_cfg_route *route, size_t i)
{
    jn_rt_buf_opt(out, 'm', route->match.methods[i]);
}

static void jn_rt_enc_header(struct jn_rt_buf *out, const struct jn_cfg_route *route, size_t i)
{
    const struct jn_cfg_kv *kv = &route->match.headers[i];
    size_t n = strlen(kv->name);
    jn_rt_buf_field(out, 'h', kv->name, n);
    /* names are case-insensitive: "X-A" and "x-a" are one matcher */
    for (size_t k = out->len - n; !out->oom && k < out->len; k++)
        out->ptr[k] = jn_lower(out->ptr[k]);
    jn_rt_enc_value(out, kv);
}

static void jn_rt_enc_query(struct jn_rt_buf *out, const struct jn_cfg_route *route, size_t i)
{
    jn_rt_buf_opt(out, 'q', route->match.query[i].name);
    jn_rt_enc_value(out, &route->match.query[i]);
}

static void jn_rt_enc_listener(struct jn_rt_buf *out, const struct jn_cfg_route *route, size_t i)
{
    jn_rt_buf_opt(out, 'l', route->listeners[i]);
}

struct jn_rt_span {
    const char *ptr; /* borrowed from the elements buffer */
    size_t len;
};

static int jn_rt_span_cmp(const void *a, const void *b)
{
    const struct jn_rt_span *x = a, *y = b;
    int c = memcmp(x->ptr, y->ptr, JN_MIN(x->len, y->len));
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Appends a set in canonical form, sorted and without duplicates, so that
 * the order its elements were written in cannot tell two routes apart. */
static void jn_rt_sig_set(struct jn_rt_build *b, char tag, const struct jn_cfg_route *route,
                          size_t n, jn_rt_elem_fn *encode)
{
    jn_rt_buf_put(&b->sig, &tag, 1);
    if (n == 0)
        return;
    struct jn_rt_span *spans = malloc(n * sizeof(*spans));
    if (spans == NULL) {
        b->sig.oom = true;
        return;
    }
    b->elems.len = 0;
    for (size_t i = 0; i < n; i++) {
        encode(&b->elems, route, i);
        spans[i].len = b->elems.len; /* the end for now: the buffer may still move */
    }
    for (size_t i = 0, start = 0; !b->elems.oom && i < n; i++) {
        size_t end = spans[i].len;
        spans[i] = (struct jn_rt_span){b->elems.ptr + start, end - start};
        start = end;
    }
    if (!b->elems.oom) {
        qsort(spans, n, sizeof(*spans), jn_rt_span_cmp);
        for (size_t i = 0; i < n; i++)
            if (i == 0 || jn_rt_span_cmp(&spans[i - 1], &spans[i]) != 0)
                jn_rt_buf_field(&b->sig, 'e', spans[i].ptr, spans[i].len);
    }
    b->sig.oom = b->sig.oom || b->elems.oom;
    free(spans);
}

/* The signature holds everything that tells a route's match apart from
 * another's in the same list (the list already stands for host and path). */
static bool jn_rt_signature(struct jn_rt_build *b, const struct jn_cfg_route *route)
{
    const struct jn_cfg_match *m = &route->match;
    char prio[16];
    int k = snprintf(prio, sizeof(prio), "%" PRId32, route->priority);
    b->sig.len = 0;
    jn_rt_buf_field(&b->sig, 'p', prio, (size_t)k);
    jn_rt_buf_opt(&b->sig, 'P', m->path);
    jn_rt_buf_opt(&b->sig, 'X', m->path_prefix);
    jn_rt_buf_opt(&b->sig, 'R', m->path_regex);
    jn_rt_sig_set(b, 'M', route, m->nmethods, jn_rt_enc_method);
    jn_rt_sig_set(b, 'H', route, m->nheaders, jn_rt_enc_header);
    jn_rt_sig_set(b, 'Q', route, m->nquery, jn_rt_enc_query);
    jn_rt_sig_set(b, 'L', route, route->nlisteners, jn_rt_enc_listener);
    return !b->sig.oom;
}

/* Reports a route whose whole match equals an earlier one's in the same list:
 * the earlier one always wins, so the later one is dead configuration. */
static bool jn_rt_check_unique(struct jn_rt_build *b, const struct jn_cfg_route *route,
                               struct jn_rt_list *slot)
{
    if (!jn_rt_signature(b, route)) {
        jn_rt_oom(b);
        return false;
    }
    struct jn_rt_entry *e = jn_rt_find(b->r, slot, JN_RT_SIG, b->sig.ptr, b->sig.len);
    if (e->value != NULL) {
        const struct jn_cfg_route *first = e->value;
        jn_rt_error(b, route->pos,
                    "route %s can never be matched: it has the same match as route %s "
                    "(line %" PRIu32 ")",
                    jn_rt_label(route).text, jn_rt_label(first).text, first->pos.line);
        return false;
    }
    char *key = jn_arena_strndup(&b->r->arena, b->sig.ptr, b->sig.len);
    if (key == NULL) {
        jn_rt_oom(b);
        return false;
    }
    jn_rt_store(e, slot, JN_RT_SIG, key, b->sig.len, (void *)route);
    return true;
}

/* ---- groups, lists and the trie ------------------------------------------ */

static struct jn_rt_group *jn_rt_group_for(struct jn_rt_build *b, const char *host)
{
    struct jn_router *r = b->r;
    struct jn_slice h = {"", 0};
    if (host != NULL)
        h = jn_rt_host_trim((struct jn_slice){host, strlen(host)});
    if (h.len == 0 || (h.len == 1 && h.ptr[0] == '*')) {
        if (r->any_host == NULL)
            r->any_host = jn_arena_calloc(&r->arena, 1, sizeof(*r->any_host));
        return r->any_host;
    }
    enum jn_rt_kind kind = JN_RT_HOST;
    if (h.len > 2 && h.ptr[0] == '*' && h.ptr[1] == '.') {
        kind = JN_RT_WILD; /* keyed by ".suffix": the dot keeps "shop.test" out */
        h.ptr++;
        h.len--;
    }
    struct jn_rt_entry *e = jn_rt_find(r, NULL, kind, h.ptr, h.len);
    if (e->value != NULL)
        return e->value;
    char *key = jn_arena_strndup(&r->arena, h.ptr, h.len);
    struct jn_rt_group *g = jn_arena_calloc(&r->arena, 1, sizeof(*g));
    if (key == NULL || g == NULL)
        return NULL;
    for (size_t i = 0; i < h.len; i++)
        key[i] = jn_lower(key[i]);
    jn_rt_store(e, NULL, kind, key, h.len, g);
    if (kind == JN_RT_WILD)
        r->wild_max = JN_MAX(r->wild_max, h.len);
    return g;
}

static struct jn_rt_list *jn_rt_exact_slot(struct jn_rt_build *b, struct jn_rt_group *g,
                                           const char *path)
{
    size_t n = strlen(path);
    struct jn_rt_entry *e = jn_rt_find(b->r, g, JN_RT_PATH, path, n);
    if (e->value == NULL) {
        struct jn_rt_list *list = jn_arena_calloc(&b->r->arena, 1, sizeof(*list));
        if (list == NULL)
            return NULL;
        jn_rt_store(e, g, JN_RT_PATH, path, n, list);
    }
    g->has_exact = true;
    return e->value;
}

static struct jn_rt_node *jn_rt_child(struct jn_rt_build *b, struct jn_rt_node *parent,
                                      const char *seg, size_t len)
{
    struct jn_rt_entry *e = jn_rt_find(b->r, parent, JN_RT_EDGE, seg, len);
    if (e->value != NULL)
        return e->value;
    struct jn_rt_node *node = jn_arena_calloc(&b->r->arena, 1, sizeof(*node));
    if (node == NULL)
        return NULL;
    node->parent = parent;
    node->plen = parent->plen + 1 + len;
    jn_rt_store(e, parent, JN_RT_EDGE, seg, len, node);
    return node;
}

/* "/" is the root's plain list; "/a/b" the plain list of node a -> b; "/a/b/"
 * the slash list of the same node (it needs more path after "/a/b"). */
static struct jn_rt_list *jn_rt_prefix_slot(struct jn_rt_build *b, struct jn_rt_group *g,
                                            const char *prefix)
{
    size_t n = strlen(prefix);
    g->has_prefix = true;
    if (n == 1)
        return &g->root.plain;
    bool slash = prefix[n - 1] == '/';
    n -= slash;
    struct jn_rt_node *node = &g->root;
    for (size_t i = 1;;) {
        const char *sep = memchr(prefix + i, '/', n - i);
        size_t end = sep ? (size_t)(sep - prefix) : n;
        node = jn_rt_child(b, node, prefix + i, end - i);
        if (node == NULL)
            return NULL;
        if (end == n)
            break;
        i = end + 1;
    }
    return slash ? &node->slash : &node->plain;
}

/* Patterns are tried in the file order of their first route: this runs in
 * file order, and appends each new pattern at the tail. */
static struct jn_rt_list *jn_rt_regex_slot(struct jn_rt_build *b, struct jn_rt_group *g,
                                           const struct jn_cfg_route *route)
{
    const char *pattern = route->match.path_regex;
    size_t n = strlen(pattern);
    struct jn_rt_entry *e = jn_rt_find(b->r, g, JN_RT_REGEX, pattern, n);
    if (e->value == NULL) {
        struct jn_rt_regex *rx = jn_arena_calloc(&b->r->arena, 1, sizeof(*rx));
        if (rx == NULL)
            return NULL;
        rx->code = route->match.regex;
        if (g->regex_tail != NULL)
            g->regex_tail->next = rx;
        else
            g->regex_head = rx;
        g->regex_tail = rx;
        jn_rt_store(e, g, JN_RT_REGEX, pattern, n, rx);
    }
    return &((struct jn_rt_regex *)e->value)->routes;
}

/* Files a route under its most specific path matcher; any other it has is
 * left in *check for the match to test. */
static struct jn_rt_list *jn_rt_slot(struct jn_rt_build *b, struct jn_rt_group *g,
                                     const struct jn_cfg_route *route, unsigned *check)
{
    const struct jn_cfg_match *m = &route->match;
    *check = m->path_regex != NULL ? JN_RT_CHECK_REGEX : 0;
    if (m->path != NULL) {
        *check |= m->path_prefix != NULL ? JN_RT_CHECK_PREFIX : 0;
        return jn_rt_exact_slot(b, g, m->path);
    }
    if (m->path_prefix != NULL)
        return jn_rt_prefix_slot(b, g, m->path_prefix);
    *check = 0;
    if (m->path_regex != NULL)
        return jn_rt_regex_slot(b, g, route);
    return &g->any_path;
}

/* ---- regex compilation --------------------------------------------------- */

static struct pcre2_real_code_8 *jn_rt_compile(struct jn_rt_build *b,
                                               const struct jn_cfg_route *route, const char *what,
                                               const char *pattern)
{
    int code_err;
    PCRE2_SIZE offset;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code_err, &offset, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code_err, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code_err);
        jn_rt_error(b, route->pos, "route %s: %s: %s at offset %zu", jn_rt_label(route).text, what,
                    (const char *)msg, (size_t)offset);
        return NULL;
    }
    /* Without JIT (an unsupported CPU, no executable memory) the interpreter
     * still gives the same answers, only slower. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

/* The template syntax of jn_route_upstream_path: "$0".."$9" and "$$". */
static const char *jn_rt_replace_error(const char *t, uint32_t ngroups)
{
    for (size_t i = 0; t[i] != '\0'; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '?' || c == '#')
            return "must not contain '?' or '#' (the query string is kept apart)";
        if (c <= 0x20 || c >= 0x7f)
            return "must not contain spaces, control or non-ASCII bytes (percent-encode them)";
        if (c != '$')
            continue;
        char d = t[++i];
        if (d == '$')
            continue;
        if (d < '0' || d > '9')
            return "'$' must be followed by a group number 0-9 or by '$'";
        if ((uint32_t)(d - '0') > ngroups)
            return "a $N names a group the pattern does not have";
    }
    return NULL;
}

static void jn_rt_prepare_rewrite(struct jn_rt_build *b, struct jn_cfg_route *route)
{
    struct jn_cfg_rewrite *rw = &route->rewrite;
    if (rw->pattern == NULL)
        return;
    if (rw->regex == NULL)
        rw->regex = jn_rt_compile(b, route, "rewrite.pattern", rw->pattern);
    if (rw->regex == NULL)
        return;
    uint32_t ngroups = 0;
    pcre2_pattern_info(rw->regex, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    const char *err = jn_rt_replace_error(rw->replace != NULL ? rw->replace : "", ngroups);
    if (err != NULL)
        jn_rt_error(b, route->pos, "route %s: rewrite.replace: %s", jn_rt_label(route).text, err);
}

/* ---- build --------------------------------------------------------------- */

/* First pass, in file order: compile, validate, find each route's list. */
static void jn_rt_place(struct jn_rt_build *b, size_t i)
{
    struct jn_cfg_route *route = &b->cfg->routes[i];
    struct jn_cfg_match *m = &route->match;
    size_t before = b->nerrors;
    if (m->path_regex != NULL && m->regex == NULL)
        m->regex = jn_rt_compile(b, route, "path_regex", m->path_regex);
    jn_rt_prepare_rewrite(b, route);
    if ((m->path != NULL && m->path[0] != '/') ||
        (m->path_prefix != NULL && m->path_prefix[0] != '/'))
        jn_rt_error(b, route->pos, "route %s: path and path_prefix must start with '/'",
                    jn_rt_label(route).text);
    if (b->nerrors != before)
        return;
    struct jn_rt_group *g = jn_rt_group_for(b, m->host);
    struct jn_rt_list *slot = g != NULL ? jn_rt_slot(b, g, route, &b->check[i]) : NULL;
    if (slot == NULL)
        jn_rt_oom(b);
    else if (jn_rt_check_unique(b, route, slot))
        b->slot[i] = slot;
}

static int jn_rt_order_cmp(const void *a, const void *b)
{
    const struct jn_cfg_route *x = *(const struct jn_cfg_route *const *)a;
    const struct jn_cfg_route *y = *(const struct jn_cfg_route *const *)b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Second pass, by priority then file order: appending in that order leaves
 * every list sorted the way it is tried. */
static void jn_rt_fill(struct jn_rt_build *b, const struct jn_cfg_route **order)
{
    size_t n = b->cfg->nroutes;
    for (size_t i = 0; i < n; i++)
        order[i] = &b->cfg->routes[i];
    qsort(order, n, sizeof(*order), jn_rt_order_cmp);
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)(order[k] - b->cfg->routes);
        struct jn_rt_item *it = jn_arena_alloc(&b->r->arena, sizeof(*it));
        if (it == NULL) {
            jn_rt_oom(b);
            return;
        }
        *it = (struct jn_rt_item){order[k], NULL, b->check[i]};
        struct jn_rt_list *list = b->slot[i];
        if (list->tail != NULL)
            list->tail->next = it;
        else
            list->head = it;
        list->tail = it;
    }
}

/* Sizes the table once for every key the routes can add, at most half full. */
static int jn_rt_alloc_table(struct jn_router *r, const struct jn_config *cfg)
{
    size_t want = 1;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const char *prefix = cfg->routes[i].match.path_prefix;
        want += 3; /* host, path or pattern, signature */
        for (size_t k = 0; prefix != NULL && prefix[k] != '\0'; k++)
            want += prefix[k] == '/';
    }
    size_t cap = 16;
    while (cap < 2 * want)
        cap *= 2;
    r->table = calloc(cap, sizeof(*r->table));
    r->mask = cap - 1;
    return r->table != NULL ? 0 : JN_ENOMEM;
}

struct jn_router *jn_router_build(struct jn_config *cfg, struct jn_cfg_errors *errs)
{
    size_t n = cfg->nroutes;
    struct jn_rt_build b = {.cfg = cfg, .errs = errs};
    b.r = calloc(1, sizeof(*b.r));
    if (b.r != NULL)
        jn_arena_init(&b.r->arena, 16384);
    b.slot = calloc(n + 1, sizeof(*b.slot));
    b.check = calloc(n + 1, sizeof(*b.check));
    const struct jn_cfg_route **order = calloc(n + 1, sizeof(*order));
    if (b.r == NULL || b.slot == NULL || b.check == NULL || order == NULL ||
        jn_rt_alloc_table(b.r, cfg) < 0) {
        jn_rt_oom(&b);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        jn_rt_place(&b, i);
    if (b.nerrors == 0)
        jn_rt_fill(&b, order);
done:
    free(order);
    free(b.check);
    free(b.slot);
    free(b.sig.ptr);
    free(b.elems.ptr);
    if (b.nerrors > 0) {
        jn_router_free(b.r);
        return NULL;
    }
    return b.r;
}

void jn_router_free(struct jn_router *r)
{
    if (r == NULL)
        return;
    free(r->table);
    jn_arena_free(&r->arena);
    free(r);
}
