/* concurrency_limit: at most `max` requests in flight per key, counted when
 * a request passes and released when its exchange ends, however it ends
 * (on_done runs once for every stream whose request this policy saw). */
#include <string.h>

#include "config/load.h"
#include "http/stream.h"
#include "policy/chain.h"
#include "policy/limit_table.h"

#define DEFAULT_MAX_KEYS 100000u
#define MAX_KEYS 10000000u

struct concurrency_limit {
    uint32_t max;
    uint16_t status; /* 429 or 503 */
    uint32_t max_keys;
    struct jn_limit_by by;
    struct jn_limit_table *table; /* owned (ops->free) */
};

/* A request counted in its key's in-flight number, to release at the end. */
struct cl_state {
    struct jn_limit_key key;
    bool counted;
};

enum { K_MAX, K_KEY, K_STATUS, K_MAX_KEYS };

static const struct jn_ld_key keys[] = {
    [K_MAX] = { .name = "max", .set = jn_ld_set_u32,
                .offset = offsetof(struct concurrency_limit, max), .min = 1, .max = 1000000000,
                .required = true },
    [K_KEY] = JN_LD_KEY("key", jn_limit_set_by, offsetof(struct concurrency_limit, by)),
    [K_STATUS] = JN_LD_NUM("status", jn_ld_set_u16, offsetof(struct concurrency_limit, status), 429,
                           503),
    [K_MAX_KEYS] = JN_LD_NUM("max_keys", jn_ld_set_u32,
                             offsetof(struct concurrency_limit, max_keys), 1, MAX_KEYS),
};
static const struct jn_ld_table table = JN_LD_TABLE("concurrency_limit", keys);

static void cl_free(void *conf)
{
    struct concurrency_limit *cl = conf;
    jn_limit_table_free(cl->table);
    cl->table = NULL;
}

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct concurrency_limit *cl = jn_ld_calloc(ld, 1, sizeof(*cl));
    struct jn_ld_found found[JN_ARRAY_LEN(keys)];
    size_t before = ld->nerrors;
    if (cl == NULL)
        return NULL;
    cl->status = 429;
    cl->max_keys = DEFAULT_MAX_KEYS;
    if (!jn_ld_map(ld, value, &table, cl, found) || ld->nerrors != before)
        return NULL;
    if (cl->status != 429 && cl->status != 503) {
        jn_ld_error(ld, found[K_STATUS].value, "status: must be 429 or 503");
        return NULL;
    }
    cl->table = jn_limit_table_new(cl->max_keys, NULL, NULL);
    if (cl->table == NULL) {
        jn_ld_oom(ld);
        return NULL;
    }
    return cl;
}

struct acquire {
    uint32_t max;
    bool allowed;
};

static int acquire(struct jn_limit_entry *e, uint64_t now, void *arg)
{
    (void)now;
    struct acquire *a = arg;
    a->allowed = e->value < a->max;
    if (a->allowed) {
        e->value++;
        e->expires = UINT64_MAX; /* in use: never evicted */
    }
    return 0;
}

static int release(struct jn_limit_entry *e, uint64_t now, void *arg)
{
    (void)now, (void)arg;
    if (e->value > 0)
        e->value--;
    if (e->value == 0)
        e->expires = 0; /* nothing in flight: as good as a fresh entry */
    return 0;
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    const struct concurrency_limit *cl = conf;
    struct cl_state *st = jn_arena_alloc(&s->arena, sizeof(*st));
    if (st == NULL)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    *st = (struct cl_state){ .key = jn_limit_key_of(cl->table, &cl->by, s, fields) };
    struct acquire a = { .max = cl->max };
    int rc = jn_limit_table_apply(cl->table, st->key, true, acquire, &a);
    if (rc == JN_ETOOBIG) /* every key of its shard has requests in flight */
        return jn_policy_reject(s, cl->status, "too many clients in flight", NULL, 0);
    if (rc != 0)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    if (!a.allowed)
        return jn_policy_reject(s, cl->status, "concurrency limit exceeded", NULL, 0);
    st->counted = true;
    *state = st;
    return JN_FILTER_CONTINUE;
}

static void on_done(struct jn_stream *s, void *conf, void **state)
{
    (void)s;
    const struct concurrency_limit *cl = conf;
    struct cl_state *st = *state;
    if (st == NULL || !st->counted)
        return;
    st->counted = false;
    jn_limit_table_apply(cl->table, st->key, false, release, NULL);
}

const struct jn_policy_ops jn_policy_concurrency_limit = {
    .name = "concurrency_limit",
    .parse = parse,
    .free = cl_free,
    .on_request = on_request,
    .on_done = on_done,
};
