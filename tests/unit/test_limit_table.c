/* Unit tests of the limit policies' counters (src/policy/limit_table.c): the
 * sliding log and the token bucket are exact under an injected clock, the
 * table stays within its capacity whatever number of keys goes through it,
 * entries in use are never evicted, and threads sharing one key let exactly
 * `limit` requests pass. Also the rate_limit and concurrency_limit settings. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/common.h"
#include "policy/limit_table.h"

#define S JN_NS_PER_S

static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

/* A small deterministic generator for arrival times. */
static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

Test(limit_algo, sliding_log_counts_down_then_refuses_until_the_oldest_leaves)
{
    struct jn_limit_entry e = { 0 };
    struct jn_limit_result r;
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(jn_limit_sliding_log(&e, 100 * S + i, 5, 10 * S, &r), 0);
        cr_assert(r.allowed);
        cr_assert_eq(r.remaining, 4 - i, "request %u: remaining %llu", i,
                     (unsigned long long)r.remaining);
        cr_assert_eq(r.reset_at, 110 * S + i);
    }
    cr_assert_eq(jn_limit_sliding_log(&e, 105 * S, 5, 10 * S, &r), 0);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.retry_at, 110 * S, "the oldest pass leaves the window at 110s");
    cr_assert_eq(r.reset_at, 110 * S + 4);
    /* One nanosecond before the oldest leaves: still refused; at it: passes. */
    jn_limit_sliding_log(&e, 110 * S - 1, 5, 10 * S, &r);
    cr_assert_not(r.allowed);
    jn_limit_sliding_log(&e, 110 * S, 5, 10 * S, &r);
    cr_assert(r.allowed);
    cr_assert_eq(r.remaining, 0);
    /* A window later everything has expired: the whole quota again. */
    jn_limit_sliding_log(&e, 200 * S, 5, 10 * S, &r);
    cr_assert(r.allowed);
    cr_assert_eq(r.remaining, 4);
    cr_assert_eq(e.expires, 210 * S);
    free(e.log);
}

Test(limit_algo, sliding_log_never_lets_more_than_limit_into_any_window)
{
    const uint32_t limit = 7;
    const uint64_t window = 1000;
    struct jn_limit_entry e = { 0 };
    uint64_t passes[20000];
    size_t npass = 0;
    uint64_t t = 0;
    for (int i = 0; i < 60000; i++) {
        t += rng() % 60; /* bursts (several at one instant) and gaps */
        struct jn_limit_result r;
        cr_assert_eq(jn_limit_sliding_log(&e, t, limit, window, &r), 0);
        if (r.allowed) {
            cr_assert_lt(npass, JN_ARRAY_LEN(passes));
            passes[npass++] = t;
        }
    }
    /* Any window of that length that holds limit + 1 passes would hold the
     * pass limit places before the last one: check them all. */
    for (size_t k = limit; k < npass; k++)
        cr_assert_geq(passes[k] - passes[k - limit], window, "passes %zu..%zu in one window",
                      k - limit, k);
    /* And it is not stingy: every refusal saw limit passes in its window. */
    cr_assert_gt(npass, 60000 / 100);
    free(e.log);
}

Test(limit_algo, token_bucket_takes_burst_then_refills_at_the_rate)
{
    struct jn_limit_entry e = { 0 };
    struct jn_limit_result r;
    uint64_t interval = jn_limit_interval(3600 * S, 1); /* 1 per hour */
    cr_assert_eq(interval, 3600 * S);
    for (uint32_t i = 0; i < 100; i++) {
        jn_limit_token_bucket(&e, 50 * S, interval, 100, &r);
        cr_assert(r.allowed, "request %u", i);
        cr_assert_eq(r.remaining, 99 - i);
    }
    jn_limit_token_bucket(&e, 50 * S, interval, 100, &r);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.retry_at, 50 * S + 3600 * S, "one token back an hour later");
    cr_assert_eq(r.reset_at, 50 * S + 100 * 3600 * S);
    jn_limit_token_bucket(&e, 50 * S + 3600 * S, interval, 100, &r);
    cr_assert(r.allowed);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(jn_limit_interval(1000, 3), 334, "rounded up: never faster than asked");
}

Test(limit_algo, token_bucket_never_passes_more_than_burst_plus_rate_times_time)
{
    const uint32_t burst = 5;
    const uint64_t interval = jn_limit_interval(1000, 3);
    struct jn_limit_entry e = { 0 };
    static uint64_t passes[60000];
    size_t npass = 0;
    uint64_t t = 0;
    for (int i = 0; i < 60000; i++) {
        t += rng() % 200;
        struct jn_limit_result r;
        jn_limit_token_bucket(&e, t, interval, burst, &r);
        if (r.allowed)
            passes[npass++] = t;
    }
    /* Over [passes[i], passes[j]]: j - i + 1 passes <= burst + span / interval. */
    for (size_t i = 0; i < npass; i += 7)
        for (size_t j = i; j < npass && j < i + 200; j++) {
            uint64_t n = j - i + 1;
            cr_assert(n <= burst || (n - burst) * interval <= passes[j] - passes[i],
                      "%llu passes in %llu ns", (unsigned long long)n,
                      (unsigned long long)(passes[j] - passes[i]));
        }
    cr_assert_gt(npass, 1000);
}

static int run_log(struct jn_limit_entry *e, uint64_t now, void *arg)
{
    struct jn_limit_result r;
    int rc = jn_limit_sliding_log(e, now, 3, 10 * S, &r);
    *(bool *)arg = r.allowed;
    return rc;
}

Test(limit_table, a_million_keys_stay_within_max_keys)
{
    struct jn_limit_table *t = jn_limit_table_new(1000, fake_clock, NULL);
    cr_assert_not_null(t);
    fake_now = 1;
    char name[32];
    for (uint32_t i = 0; i < 1000000; i++) {
        int n = snprintf(name, sizeof(name), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
        bool allowed = false;
        if (i % 1000 == 0)
            fake_now += S; /* time passes: some entries expire */
        cr_assert_eq(jn_limit_table_apply(t, jn_limit_key(t, 'i', name, (size_t)n), true, run_log,
                                          &allowed),
                     0);
        cr_assert(allowed, "a new key starts with its whole quota");
    }
    struct jn_limit_stats st;
    jn_limit_table_stats(t, &st);
    cr_assert_eq(st.capacity, 1000);
    cr_assert_leq(st.keys, 1000);
    cr_assert_eq(st.evicted, 1000000 - st.keys);
    cr_assert_leq(st.log_slots, 3 * st.keys, "each log holds at most limit timestamps");
    /* Expired entries go first: with 10s windows and 1000 new keys a second,
     * the table fills with fresh keys and evicts live ones; but a key seen
     * again right away is still there, with its count. */
    bool allowed;
    jn_limit_table_apply(t, jn_limit_key(t, 'i', "again", 5), true, run_log, &allowed);
    jn_limit_table_apply(t, jn_limit_key(t, 'i', "again", 5), true, run_log, &allowed);
    jn_limit_table_apply(t, jn_limit_key(t, 'i', "again", 5), true, run_log, &allowed);
    cr_assert(allowed);
    jn_limit_table_apply(t, jn_limit_key(t, 'i', "again", 5), true, run_log, &allowed);
    cr_assert_not(allowed, "the fourth within the window is refused");
    jn_limit_table_free(t);
}

Test(limit_table, expired_entries_are_evicted_before_live_ones)
{
    struct jn_limit_table *t = jn_limit_table_new(16, fake_clock, NULL);
    fake_now = 1000 * S;
    bool allowed;
    char name[16];
    for (int i = 0; i < 16; i++) {
        int n = snprintf(name, sizeof(name), "old%d", i);
        jn_limit_table_apply(t, jn_limit_key(t, 'i', name, (size_t)n), true, run_log, &allowed);
    }
    fake_now += 20 * S; /* every old entry has expired */
    for (int i = 0; i < 16; i++) {
        int n = snprintf(name, sizeof(name), "new%d", i);
        jn_limit_table_apply(t, jn_limit_key(t, 'i', name, (size_t)n), true, run_log, &allowed);
    }
    struct jn_limit_stats st;
    jn_limit_table_stats(t, &st);
    cr_assert_eq(st.keys, 16);
    cr_assert_eq(st.evicted, 16);
    cr_assert_eq(st.evicted_live, 0, "only expired entries made room");
    jn_limit_table_free(t);
}

static int hold(struct jn_limit_entry *e, uint64_t now, void *arg)
{
    (void)now, (void)arg;
    e->value++;
    e->expires = UINT64_MAX;
    return 0;
}

static int let_go(struct jn_limit_entry *e, uint64_t now, void *arg)
{
    (void)now, (void)arg;
    e->value--;
    e->expires = 0;
    return 0;
}

Test(limit_table, entries_in_use_are_never_evicted)
{
    struct jn_limit_table *t = jn_limit_table_new(16, fake_clock, NULL);
    fake_now = 5;
    char name[16];
    for (int i = 0; i < 16; i++) {
        int n = snprintf(name, sizeof(name), "busy%d", i);
        cr_assert_eq(jn_limit_table_apply(t, jn_limit_key(t, 'c', name, (size_t)n), true, hold,
                                          NULL),
                     0);
    }
    cr_assert_eq(jn_limit_table_apply(t, jn_limit_key(t, 'c', "one more", 8), true, hold, NULL),
                 JN_ETOOBIG);
    cr_assert_eq(jn_limit_table_apply(t, jn_limit_key(t, 'c', "absent", 6), false, hold, NULL), 1,
                 "without create, an absent key is not made");
    cr_assert_eq(jn_limit_table_apply(t, jn_limit_key(t, 'c', "busy3", 5), false, let_go, NULL), 0);
    cr_assert_eq(jn_limit_table_apply(t, jn_limit_key(t, 'c', "one more", 8), true, hold, NULL), 0);
    jn_limit_table_free(t);
}

Test(limit_table, tags_keep_kinds_of_keys_apart)
{
    struct jn_limit_table *t = jn_limit_table_new(16, NULL, NULL);
    struct jn_limit_key a = jn_limit_key(t, 'i', "10.0.0.1", 8);
    struct jn_limit_key b = jn_limit_key(t, 'c', "10.0.0.1", 8);
    struct jn_limit_key c = jn_limit_key(t, 'i', "10.0.0.1", 8);
    cr_assert(a.h[0] != b.h[0] || a.h[1] != b.h[1]);
    cr_assert(a.h[0] == c.h[0] && a.h[1] == c.h[1]);
    jn_limit_table_free(t);
}

/* ---- threads on one key ---- */

struct hammer {
    struct jn_limit_table *t;
    bool token_bucket;
    uint32_t passed;
};

static int run_shared(struct jn_limit_entry *e, uint64_t now, void *arg)
{
    struct hammer *h = arg;
    struct jn_limit_result r;
    int rc = 0;
    if (h->token_bucket)
        jn_limit_token_bucket(e, now, jn_limit_interval(3600 * S, 1), 1000, &r);
    else
        rc = jn_limit_sliding_log(e, now, 1000, 3600 * S, &r);
    h->passed += r.allowed;
    return rc;
}

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 20000; i++) {
        /* Other keys too, so that the shards are busy. */
        char other[16];
        int n = snprintf(other, sizeof(other), "k%d", i % 500);
        jn_limit_table_apply(h->t, jn_limit_key(h->t, 'h', other, (size_t)n), true, run_shared, h);
    }
    return NULL;
}

static void *one_key_thread(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 20000; i++)
        jn_limit_table_apply(h->t, jn_limit_key(h->t, 'h', "shared", 6), true, run_shared, h);
    return NULL;
}

static void hammer_one_key(bool token_bucket)
{
    struct jn_limit_table *t = jn_limit_table_new(100000, NULL, NULL);
    struct hammer h[4], noise = { t, token_bucket, 0 };
    pthread_t th[5];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){ t, token_bucket, 0 };
        pthread_create(&th[i], NULL, one_key_thread, &h[i]);
    }
    pthread_create(&th[4], NULL, hammer_thread, &noise);
    uint32_t total = 0;
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        total += h[i].passed;
    cr_assert_eq(total, 1000, "%u passed of 80000 at one key (limit 1000)", total);
    jn_limit_table_free(t);
}

Test(limit_table, four_threads_on_one_key_pass_exactly_limit_sliding_log)
{
    hammer_one_key(false);
}

Test(limit_table, four_threads_on_one_key_pass_exactly_limit_token_bucket)
{
    hammer_one_key(true);
}

/* ---- settings ---- */

static const char cfg_head[] = "listeners: [ { name: l, address: \"127.0.0.1:1\" } ]\n"
                               "upstreams: { app: { servers: [ { address: \"127.0.0.1:2\" } ] } }\n"
                               "routes:\n"
                               "  - match: { path_prefix: / }\n"
                               "    upstream: app\n"
                               "    policies:\n";

static bool loads(const char *policies, const char *want_error)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), "%s%s", cfg_head, policies);
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_buffer("t.yaml", yaml, strlen(yaml), &errs);
    bool found = want_error == NULL;
    for (size_t i = 0; i < errs.count; i++) {
        if (want_error != NULL && strstr(errs.msgs[i], want_error) != NULL)
            found = true;
        else
            fprintf(stderr, "  | %s\n", errs.msgs[i]);
    }
    bool ok = cfg != NULL;
    jn_config_unref(cfg);
    jn_cfg_errors_free(&errs);
    cr_expect(found, "no error with \"%s\"", want_error);
    return ok;
}

Test(limit_config, good_settings_load)
{
    cr_assert(loads("      - rate_limit: { limit: 10, window: 1s }\n"
                    "      - rate_limit: { limit: 1000, window: 1h, key: consumer }\n"
                    "      - rate_limit: { limit: 1, window: 1h, algorithm: token_bucket, "
                    "burst: 100, key: \"header:X-Key\", max_keys: 1000 }\n"
                    "      - concurrency_limit: { max: 5, key: route, status: 503 }\n",
                    NULL));
}

Test(limit_config, bad_settings_are_reported_with_positions)
{
    cr_assert_not(loads("      - rate_limit: { window: 1s }\n",
                        "t.yaml:7:21: missing required key 'limit'"));
    cr_assert_not(loads("      - rate_limit: { limit: 10, window: 1s, key: ip }\n",
                        "key: 'ip' is not one of client_ip, consumer, route, header:NAME"));
    cr_assert_not(loads("      - rate_limit: { limit: 10, window: 1s, key: \"header:\" }\n",
                        "is not one of"));
    cr_assert_not(loads("      - rate_limit: { limit: 10, window: 1500ms }\n",
                        "window: must be a whole number of seconds"));
    cr_assert_not(loads("      - rate_limit: { limit: 10, window: 1s, burst: 5 }\n",
                        "burst: only used by algorithm: token_bucket"));
    cr_assert_not(loads("      - rate_limit: { limit: 10, window: 1s, algorithm: leaky }\n",
                        "algorithm: 'leaky' is not one of sliding_window, token_bucket"));
    cr_assert_not(loads("      - rate_limit: { limit: 200000, window: 1h }\n",
                        "limit: at most 100000 with sliding_window"));
    cr_assert_not(loads("      - rate_limit: { limit: 5000, window: 1h }\n",
                        "lower max_keys, or use algorithm: token_bucket"));
    cr_assert(loads("      - rate_limit: { limit: 5000, window: 1h, max_keys: 10000 }\n", NULL));
    cr_assert_not(loads("      - rate_limit: { limit: 0, window: 1s }\n", "limit"));
    cr_assert_not(loads("      - concurrency_limit: { max: 5, status: 500 }\n", "status"));
    cr_assert_not(loads("      - concurrency_limit: { max: 5, status: 450 }\n",
                        "status: must be 429 or 503"));
    cr_assert_not(loads("      - concurrency_limit: { key: route }\n", "max"));
}
