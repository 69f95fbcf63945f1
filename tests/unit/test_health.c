/* Unit tests for the shared server state: outlier ejection and its cap,
 * doubling ejections, the retry budget, slow start and sticky tokens. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "balance/sticky.h"
#include "core/log.h"
#include "health/state.h"

static struct jn_cfg_server servers[4] = {
    { .address = "127.0.0.1:9001", .weight = 1 },
    { .address = "127.0.0.1:9002", .weight = 1 },
    { .address = "127.0.0.1:9003", .weight = 1 },
    { .address = "127.0.0.1:9004", .weight = 1 },
};
static struct jn_cfg_upstream up;
static struct jn_config cfg;

/* Servers are known by their socket address across snapshots. */
static void resolve(struct jn_cfg_server *v, size_t n)
{
    const char *err;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(jn_parse_address(v[i].address, &v[i].addr, &v[i].addrlen, &err), 0);
}

static struct jn_pool_state *setup(size_t n, uint32_t max_pct)
{
    jn_log_set_level(JN_LOG_ERR); /* ejections log warnings: not news in a unit test */
    resolve(servers, 4);
    up = (struct jn_cfg_upstream){ .name = "app", .servers = servers, .nservers = n };
    up.outlier = (struct jn_cfg_outlier){ .enabled = true, .consecutive_failures = 3,
                                          .ejection_time = 1000, .max_ejected_percent = max_pct };
    up.retries.budget_percent = 20;
    up.slow_start = 20000;
    cfg = (struct jn_config){ .upstreams = &up, .nupstreams = 1 };
    jn_arena_init(&cfg.arena, 1024);
    cr_assert_eq(jn_pools_create(&cfg, NULL), 0);
    return jn_pool_of(&cfg, 0);
}

/* What freeing the snapshot does for its pools. */
static void teardown(void)
{
    for (struct jn_cfg_cleanup *c = cfg.cleanups; c != NULL; c = c->next)
        c->fn(c->arg);
    jn_arena_free(&cfg.arena);
}

static void fail(struct jn_pool_state *p, size_t server, int times, uint64_t now)
{
    for (int i = 0; i < times; i++)
        jn_pool_report(p, server, JN_OUT_CONNECT, now);
}

static bool usable(struct jn_pool_state *p, size_t i, uint64_t now)
{
    uint64_t until = UINT64_MAX;
    return jn_server_usable(p, i, now, &until);
}

Test(health, consecutive_failures_eject_and_a_success_resets_the_run, .fini = teardown)
{
    struct jn_pool_state *p = setup(4, 50);
    fail(p, 0, 2, 100);
    jn_pool_report(p, 0, JN_OUT_OK, 100);
    fail(p, 0, 2, 100);
    cr_assert(usable(p, 0, 100));
    fail(p, 0, 1, 100);
    cr_assert_not(usable(p, 0, 100));
    cr_assert_not(usable(p, 0, 1099));
    cr_assert(usable(p, 0, 1100)); /* the ejection ends by itself */
    cr_assert_eq(atomic_load(&p->nejected), 0);
}

Test(health, the_cap_limits_how_many_are_ejected_at_once, .fini = teardown)
{
    struct jn_pool_state *p = setup(4, 50);
    for (size_t i = 0; i < 4; i++)
        fail(p, i, 3, 100);
    int out = 0;
    for (size_t i = 0; i < 4; i++)
        out += !usable(p, i, 100);
    cr_assert_eq(out, 2);
}

Test(health, a_small_cap_still_ejects_one, .fini = teardown)
{
    struct jn_pool_state *p = setup(3, 10);
    fail(p, 1, 3, 100);
    cr_assert_not(usable(p, 1, 100));
    fail(p, 2, 3, 100);
    cr_assert(usable(p, 2, 100));
}

Test(health, a_second_ejection_in_a_row_lasts_twice_as_long, .fini = teardown)
{
    struct jn_pool_state *p = setup(2, 50);
    fail(p, 0, 3, 0);
    cr_assert(usable(p, 0, 1000));
    fail(p, 0, 3, 1200);
    cr_assert_not(usable(p, 0, 3199));
    cr_assert(usable(p, 0, 3200));
    /* In for longer than the last ejection: the run is forgiven. */
    fail(p, 0, 3, 10000);
    cr_assert(usable(p, 0, 11000));
}

Test(health, until_reports_when_an_ejection_ends, .fini = teardown)
{
    struct jn_pool_state *p = setup(2, 50);
    fail(p, 1, 3, 500);
    uint64_t until = UINT64_MAX;
    cr_assert(jn_server_usable(p, 0, 600, &until));
    cr_assert_not(jn_server_usable(p, 1, 600, &until));
    cr_assert_eq(until, 1500);
}

Test(health, check_verdicts_bump_the_version_only_on_change, .fini = teardown)
{
    struct jn_pool_state *p = setup(2, 50);
    uint64_t v = atomic_load(&p->version);
    jn_pool_set_checked(p, 1, true, 10);
    cr_assert_eq(atomic_load(&p->version), v);
    jn_pool_set_checked(p, 1, false, 10);
    cr_assert_eq(atomic_load(&p->version), v + 1);
    cr_assert_not(usable(p, 1, 10));
    jn_pool_set_checked(p, 1, true, 20);
    cr_assert(usable(p, 1, 20));
}

Test(health, the_budget_allows_a_floor_then_a_share_of_requests, .fini = teardown)
{
    struct jn_pool_state *p = setup(2, 50);
    int allowed = 0;
    for (int i = 0; i < 50; i++)
        allowed += jn_pool_retry_allowed(p, 5000);
    cr_assert_eq(allowed, 10); /* no requests yet: the floor */
    for (int i = 0; i < 100; i++)
        jn_pool_count_requests(p, 1, 5000);
    allowed = 0;
    for (int i = 0; i < 50; i++)
        allowed += jn_pool_retry_allowed(p, 5000);
    cr_assert_eq(allowed, 10); /* 20% of 100 = 20 retries in all */
    /* Two windows on, the old counts are gone. */
    allowed = 0;
    for (int i = 0; i < 50; i++)
        allowed += jn_pool_retry_allowed(p, 30000);
    cr_assert_eq(allowed, 10);
}

Test(health, slow_start_ramps_from_a_tenth_to_all, .fini = teardown)
{
    struct jn_pool_state *p = setup(2, 50);
    uint64_t until = UINT64_MAX;
    cr_assert_eq(jn_server_ramp(p, 0, 5, &until), 1000); /* present from the start */
    jn_pool_set_checked(p, 0, false, 1000);
    jn_pool_set_checked(p, 0, true, 1000);
    cr_assert_eq(jn_server_ramp(p, 0, 1000, &until), 100);
    cr_assert_eq(until, 2000); /* steps of a twentieth of 20 s */
    cr_assert_eq(jn_server_ramp(p, 0, 11000, &until), 550);
    until = UINT64_MAX;
    cr_assert_eq(jn_server_ramp(p, 0, 21000, &until), 1000);
    cr_assert_eq(until, UINT64_MAX);
}

Test(sticky, tokens_are_stable_distinct_and_hide_the_address)
{
    struct jn_cfg_upstream u = { .name = "app", .servers = servers, .nservers = 4 };
    char tokens[4][JN_STICKY_TOKEN_LEN + 1];
    for (size_t i = 0; i < 4; i++) {
        jn_sticky_token(&u, i, tokens[i]);
        cr_assert_eq(strlen(tokens[i]), JN_STICKY_TOKEN_LEN);
        cr_assert_null(strstr(tokens[i], "900"));
        for (size_t k = 0; k < i; k++)
            cr_assert_str_neq(tokens[i], tokens[k]);
    }
    char again[JN_STICKY_TOKEN_LEN + 1];
    jn_sticky_token(&u, 2, again);
    cr_assert_str_eq(again, tokens[2]);
    cr_assert_eq(jn_sticky_find(&u, (const char(*)[JN_STICKY_TOKEN_LEN + 1])tokens,
                                (struct jn_slice){ tokens[3], JN_STICKY_TOKEN_LEN }),
                 3);
    cr_assert_eq(jn_sticky_find(&u, (const char(*)[JN_STICKY_TOKEN_LEN + 1])tokens,
                                (struct jn_slice){ "0123456789abcdef", 16 }),
                 -1);
    u.sticky.secret = "s3cret";
    jn_sticky_token(&u, 2, again);
    cr_assert_str_neq(again, tokens[2]); /* the secret keys the hash */
}

Test(sticky, set_cookie_carries_the_ttl)
{
    struct jn_cfg_upstream u = { .name = "app", .servers = servers, .nservers = 1 };
    u.sticky = (struct jn_cfg_sticky){ .cookie = "jn_route", .ttl = 3600000 };
    char out[256];
    size_t n = jn_sticky_set_cookie(&u, "00ff", out, sizeof(out));
    cr_assert_str_eq(out, "jn_route=00ff; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
    cr_assert_eq(n, strlen(out));
    u.sticky.ttl = 0;
    jn_sticky_set_cookie(&u, "00ff", out, sizeof(out));
    cr_assert_str_eq(out, "jn_route=00ff; Path=/; HttpOnly; SameSite=Lax");
}

Test(health, a_clock_behind_the_return_stamp_ramps_from_a_tenth, .fini = teardown)
{
    struct jn_pool_state *p = setup(2, 50);
    jn_pool_set_checked(p, 0, false, 5000);
    jn_pool_set_checked(p, 0, true, 5000); /* another thread's clock, ahead of ours */
    uint64_t until = UINT64_MAX;
    cr_assert_eq(jn_server_ramp(p, 0, 4997, &until), 100);
}

Test(health, an_ejection_ends_while_checks_say_down_and_frees_its_place, .fini = teardown)
{
    struct jn_pool_state *p = setup(4, 25); /* the cap is one server */
    fail(p, 0, 3, 100);
    jn_pool_set_checked(p, 0, false, 200);
    cr_assert_not(usable(p, 0, 5000)); /* still down by its checks... */
    cr_assert_eq(atomic_load(&p->nejected), 0); /* ...but no longer holding the cap */
    fail(p, 1, 3, 5000);
    cr_assert_not(usable(p, 1, 5000));
}

Test(health, a_thread_behind_by_a_window_does_not_wipe_the_budget, .fini = teardown)
{
    struct jn_pool_state *p = setup(2, 50);
    for (int i = 0; i < 100; i++)
        jn_pool_count_requests(p, 1, 10000);
    jn_pool_count_requests(p, 1, 9999); /* a worker whose clock still reads the last window */
    int allowed = 0;
    for (int i = 0; i < 50; i++)
        allowed += jn_pool_retry_allowed(p, 10000);
    cr_assert_eq(allowed, 20); /* 20% of 101 requests */
}

Test(health, a_new_snapshot_keeps_what_is_known_of_servers_by_address, .fini = teardown)
{
    struct jn_pool_state *p = setup(3, 100);
    fail(p, 1, 3, 1000); /* 9002 ejected until 2000 */
    jn_pool_set_checked(p, 2, false, 1000);
    /* The next snapshot drops 9001 and puts the others in another order. */
    struct jn_cfg_server next_servers[3] = {
        { .address = "127.0.0.1:9003", .weight = 1 },
        { .address = "127.0.0.1:9002", .weight = 1 },
        { .address = "127.0.0.1:9009", .weight = 1 },
    };
    resolve(next_servers, 3);
    struct jn_cfg_upstream next_up = up;
    next_up.servers = next_servers;
    struct jn_config next = { .upstreams = &next_up, .nupstreams = 1 };
    jn_arena_init(&next.arena, 1024);
    cr_assert_eq(jn_pools_create(&next, &cfg), 0);
    struct jn_pool_state *q = jn_pool_of(&next, 0);
    cr_assert(!usable(q, 0, 1500), "9003 stays checked down");
    cr_assert(!usable(q, 1, 1500), "9002 stays ejected");
    cr_assert_eq(atomic_load(&q->servers[1].ejections_total), 1);
    cr_assert(usable(q, 2, 1500), "a new server starts usable");
    for (struct jn_cfg_cleanup *c = next.cleanups; c != NULL; c = c->next)
        c->fn(c->arg);
    jn_arena_free(&next.arena);
}
