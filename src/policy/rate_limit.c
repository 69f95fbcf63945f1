/* rate_limit: at most `limit` requests per `window` for each key (client
 * address, consumer, header, route), exactly, across worker threads: a
 * sliding log or a token bucket (GCRA) per key in a shared table
 * (limit_table.c). Answers 429 with Retry-After beyond it, and tells the
 * client where it stands in RateLimit-* fields on every response. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/load.h"
#include "http/fields.h"
#include "http/stream.h"
#include "policy/chain.h"
#include "policy/limit_table.h"

#define DAY_MS (24u * 60 * 60 * 1000)
#define MAX_WINDOW_MS (30ull * DAY_MS)
#define DEFAULT_MAX_KEYS 100000u
#define MAX_KEYS 10000000u
/* What the sliding logs of one rate_limit may hold at worst (limit x
 * max_keys timestamps of 8 bytes): beyond it, the load fails. */
#define LOG_BUDGET_BYTES (1ull << 30)

struct rate_limit {
    uint32_t limit;
    uint64_t window_ms;
    char *algorithm; /* as written; token_bucket says which */
    bool token_bucket;
    uint32_t burst; /* token bucket: its size, default limit */
    uint32_t max_keys;
    struct jn_limit_by by;
    uint64_t window_ns, interval_ns;
    char policy_item[80]; /* this limit in RateLimit-Policy: "100;w=60" */
    struct jn_limit_table *table; /* owned (ops->free) */
};

/* What a request learnt from the limit, for its response hook. */
struct rl_state {
    uint64_t limit;     /* what RateLimit-Limit reports: limit, or burst */
    uint64_t remaining; /* after this request */
    uint64_t reset_at;  /* the table's clock: when the quota is whole again */
};

enum { K_LIMIT, K_WINDOW, K_KEY, K_ALGORITHM, K_BURST, K_MAX_KEYS };

static const struct jn_ld_key keys[] = {
    [K_LIMIT] = { .name = "limit", .set = jn_ld_set_u32,
                  .offset = offsetof(struct rate_limit, limit), .min = 1, .max = 1000000000,
                  .required = true },
    [K_WINDOW] = { .name = "window", .set = jn_ld_set_duration,
                   .offset = offsetof(struct rate_limit, window_ms), .min = 1000,
                   .max = MAX_WINDOW_MS, .required = true },
    [K_KEY] = JN_LD_KEY("key", jn_limit_set_by, offsetof(struct rate_limit, by)),
    [K_ALGORITHM] =
        JN_LD_KEY("algorithm", jn_ld_set_string, offsetof(struct rate_limit, algorithm)),
    [K_BURST] =
        JN_LD_NUM("burst", jn_ld_set_u32, offsetof(struct rate_limit, burst), 1, 1000000000),
    [K_MAX_KEYS] = JN_LD_NUM("max_keys", jn_ld_set_u32, offsetof(struct rate_limit, max_keys), 1,
                             MAX_KEYS),
};
static const struct jn_ld_table table = JN_LD_TABLE("rate_limit", keys);

static void rl_free(void *conf)
{
    struct rate_limit *rl = conf;
    jn_limit_table_free(rl->table);
    rl->table = NULL;
}

/* The settings against each other, once all are read. */
static bool check(struct jn_ld *ld, struct rate_limit *rl, const struct jn_ld_found *found)
{
    if (found[K_ALGORITHM].value != NULL && rl->algorithm != NULL &&
        strcmp(rl->algorithm, "sliding_window") != 0 &&
        strcmp(rl->algorithm, "token_bucket") != 0) {
        jn_ld_error(ld, found[K_ALGORITHM].value,
                    "algorithm: %s is not one of sliding_window, token_bucket",
                    jn_ld_quote(ld, rl->algorithm, strlen(rl->algorithm)));
        return false;
    }
    rl->token_bucket = rl->algorithm != NULL && strcmp(rl->algorithm, "token_bucket") == 0;
    if (rl->window_ms % 1000 != 0) {
        jn_ld_error(ld, found[K_WINDOW].value, "window: must be a whole number of seconds");
        return false;
    }
    rl->window_ns = rl->window_ms * 1000000u;
    if (!rl->token_bucket) {
        if (found[K_BURST].value != NULL) {
            jn_ld_error(ld, found[K_BURST].key, "burst: only used by algorithm: token_bucket");
            return false;
        }
        if (rl->limit > JN_LIMIT_LOG_MAX) {
            jn_ld_error(ld, found[K_LIMIT].value,
                        "limit: at most %u with sliding_window (it keeps one timestamp per "
                        "request); use algorithm: token_bucket", JN_LIMIT_LOG_MAX);
            return false;
        }
        uint64_t worst = (uint64_t)rl->limit * rl->max_keys * sizeof(uint64_t);
        if (worst > LOG_BUDGET_BYTES) {
            jn_ld_error(ld, found[K_LIMIT].value,
                        "rate_limit: sliding_window keeps one timestamp per request: limit %" PRIu32
                        " x max_keys %" PRIu32 " x 8 bytes is %" PRIu64
                        " MiB, more than 1024 MiB; lower max_keys, or use algorithm: token_bucket",
                        rl->limit, rl->max_keys, worst >> 20);
            return false;
        }
        return true;
    }
    if (rl->burst == 0)
        rl->burst = rl->limit;
    rl->interval_ns = jn_limit_interval(rl->window_ns, rl->limit);
    if (rl->burst > (UINT64_MAX / 2) / rl->interval_ns) {
        jn_ld_error(ld, found[K_BURST].value ? found[K_BURST].value : found[K_LIMIT].value,
                    "burst: too large for this rate (burst x window / limit overflows)");
        return false;
    }
    return true;
}

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct rate_limit *rl = jn_ld_calloc(ld, 1, sizeof(*rl));
    struct jn_ld_found found[JN_ARRAY_LEN(keys)];
    size_t before = ld->nerrors;
    if (rl == NULL)
        return NULL;
    rl->max_keys = DEFAULT_MAX_KEYS;
    if (!jn_ld_map(ld, value, &table, rl, found) || ld->nerrors != before || !check(ld, rl, found))
        return NULL;
    uint64_t w = rl->window_ms / 1000;
    if (rl->token_bucket)
        snprintf(rl->policy_item, sizeof(rl->policy_item),
                 "%" PRIu32 ";w=%" PRIu64 ";burst=%" PRIu32, rl->limit, w, rl->burst);
    else
        snprintf(rl->policy_item, sizeof(rl->policy_item), "%" PRIu32 ";w=%" PRIu64, rl->limit, w);
    /* The counters live as long as the snapshot (the loader calls ops->free). */
    rl->table = jn_limit_table_new(rl->max_keys, NULL, NULL);
    if (rl->table == NULL) {
        jn_ld_oom(ld);
        return NULL;
    }
    return rl;
}

struct run {
    const struct rate_limit *rl;
    struct jn_limit_result r;
    uint64_t now;
};

static int run_limit(struct jn_limit_entry *e, uint64_t now, void *arg)
{
    struct run *run = arg;
    const struct rate_limit *rl = run->rl;
    run->now = now;
    if (rl->token_bucket) {
        jn_limit_token_bucket(e, now, rl->interval_ns, rl->burst, &run->r);
        return 0;
    }
    return jn_limit_sliding_log(e, now, rl->limit, rl->window_ns, &run->r);
}

static uint64_t seconds_up(uint64_t ns)
{
    return ns / JN_NS_PER_S + (ns % JN_NS_PER_S != 0);
}

static bool read_u64(struct jn_slice v, uint64_t *out)
{
    uint64_t n = 0;
    if (v.ptr == NULL || v.len == 0 || v.len > 19)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return false;
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    *out = n;
    return true;
}

/* v in decimal at the end of buf (not NUL-terminated): on every request,
 * where snprintf costs more than the rest of the policy. */
static struct jn_slice number(char *buf, size_t cap, uint64_t v)
{
    size_t at = cap;
    do {
        buf[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && at > 0);
    return (struct jn_slice){ buf + at, cap - at };
}

#define VAR(name) name, sizeof(name) - 1

/* Several limits on one route: the one with the least remaining is the one
 * the RateLimit-* fields report (the first in the chain on a tie); every
 * limit the request went through is listed in RateLimit-Policy. The stream
 * variables carry this between the policies, which never call each other. */
static void publish(struct jn_stream *s, const struct rate_limit *rl, const struct rl_state *st)
{
    char buf[24];
    uint64_t best;
    if (!read_u64(jn_stream_var_get(s, VAR("ratelimit.remaining")), &best) ||
        st->remaining < best) {
        jn_stream_var_set(s, "ratelimit.remaining", number(buf, sizeof(buf), st->remaining));
        jn_stream_var_set(s, "ratelimit.limit", number(buf, sizeof(buf), st->limit));
    }
    struct jn_slice list = jn_stream_var_get(s, VAR("ratelimit.policy"));
    size_t ilen = strlen(rl->policy_item);
    char *joined = jn_arena_alloc(&s->arena, list.len + 2 + ilen + 1);
    if (joined == NULL)
        return;
    size_t n = 0;
    if (list.len > 0) {
        memcpy(joined, list.ptr, list.len);
        memcpy(joined + list.len, ", ", 2);
        n = list.len + 2;
    }
    memcpy(joined + n, rl->policy_item, ilen);
    jn_stream_var_set(s, "ratelimit.policy", (struct jn_slice){ joined, n + ilen });
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    const struct rate_limit *rl = conf;
    struct rl_state *st = jn_arena_alloc(&s->arena, sizeof(*st));
    struct run run = { .rl = rl };
    if (st == NULL ||
        jn_limit_table_apply(rl->table, jn_limit_key_of(rl->table, &rl->by, s, fields), true,
                             run_limit, &run) != 0)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    *st = (struct rl_state){
        .limit = rl->token_bucket ? rl->burst : rl->limit,
        .remaining = run.r.remaining,
        .reset_at = run.r.reset_at,
    };
    *state = st;
    publish(s, rl, st);
    if (run.r.allowed)
        return JN_FILTER_CONTINUE;
    char after[24];
    uint64_t wait = seconds_up(run.r.retry_at > run.now ? run.r.retry_at - run.now : 0);
    struct jn_http_field retry = { JN_SLICE_LIT("Retry-After"),
                                   number(after, sizeof(after), JN_MAX(wait, 1)) };
    return jn_policy_reject(s, 429, "rate limit exceeded", &retry, 1);
}

static struct jn_slice arena_number(struct jn_stream *s, uint64_t v)
{
    char *buf = jn_arena_alloc(&s->arena, 24);
    return buf != NULL ? number(buf, 24, v) : (struct jn_slice){ "0", 1 };
}

static void on_response(struct jn_stream *s, struct jn_http_response *resp,
                        struct jn_fields *fields, void *conf, void **state)
{
    (void)resp;
    const struct rate_limit *rl = conf;
    const struct rl_state *st = *state;
    uint64_t best;
    if (st == NULL || !read_u64(jn_stream_var_get(s, VAR("ratelimit.remaining")), &best) ||
        st->remaining != best)
        return;
    /* Reset counts from now, the response, not from when the request came. */
    uint64_t now = jn_limit_table_now(rl->table);
    uint64_t reset = seconds_up(st->reset_at > now ? st->reset_at - now : 0);
    jn_fields_set(fields, JN_SLICE_LIT("RateLimit-Limit"), arena_number(s, st->limit));
    jn_fields_set(fields, JN_SLICE_LIT("RateLimit-Remaining"), arena_number(s, st->remaining));
    jn_fields_set(fields, JN_SLICE_LIT("RateLimit-Reset"), arena_number(s, reset));
    struct jn_slice list = jn_stream_var_get(s, VAR("ratelimit.policy"));
    if (list.ptr != NULL)
        jn_fields_set(fields, JN_SLICE_LIT("RateLimit-Policy"), list);
}

const struct jn_policy_ops jn_policy_rate_limit = {
    .name = "rate_limit",
    .parse = parse,
    .free = rl_free,
    .on_request = on_request,
    .on_response = on_response,
};
