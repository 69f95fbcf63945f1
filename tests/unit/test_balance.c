/* Unit tests for the balancer registry and smooth weighted round robin. */
#include <criterion/criterion.h>
#include <string.h>

#include "balance/balance.h"

static struct jn_cfg_upstream make_upstream(struct jn_cfg_server *servers, const uint32_t *weights,
                                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        servers[i] = (struct jn_cfg_server){ .weight = weights[i] };
    return (struct jn_cfg_upstream){ .name = "u", .balance = "round_robin", .servers = servers,
                                     .nservers = n };
}

Test(balance, round_robin_is_registered_and_unknown_names_are_not)
{
    cr_assert(jn_lb_known("round_robin"));
    cr_assert_not(jn_lb_known("bogus"));
    cr_assert_eq(jn_lb_find("round_robin"), &jn_lb_round_robin);
}

Test(balance, weights_are_honoured_over_a_full_cycle)
{
    struct jn_cfg_server servers[3];
    const uint32_t w[3] = { 5, 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 3);
    void *st = jn_lb_round_robin.create(&up);
    int count[3] = { 0 };
    for (int i = 0; i < 7 * 100; i++)
        count[jn_lb_round_robin.pick(st, NULL)]++;
    cr_assert_eq(count[0], 500);
    cr_assert_eq(count[1], 100);
    cr_assert_eq(count[2], 100);
    jn_lb_round_robin.destroy(st);
}

Test(balance, smooth_order_spreads_the_heavy_server)
{
    struct jn_cfg_server servers[3];
    const uint32_t w[3] = { 5, 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 3);
    void *st = jn_lb_round_robin.create(&up);
    char seq[8] = { 0 };
    for (int i = 0; i < 7; i++)
        seq[i] = (char)('a' + jn_lb_round_robin.pick(st, NULL));
    cr_assert_str_eq(seq, "aabacaa");
    jn_lb_round_robin.destroy(st);
}

Test(balance, equal_weights_alternate)
{
    struct jn_cfg_server servers[2];
    const uint32_t w[2] = { 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 2);
    void *st = jn_lb_round_robin.create(&up);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(jn_lb_round_robin.pick(st, NULL), i % 2);
    jn_lb_round_robin.destroy(st);
}

Test(balance, unusable_servers_are_skipped_and_none_usable_gives_minus_one)
{
    struct jn_cfg_server servers[3];
    const uint32_t w[3] = { 1, 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 3);
    void *st = jn_lb_round_robin.create(&up);
    bool usable[3] = { false, true, false };
    struct jn_lb_ctx ctx = { .usable = usable };
    for (int i = 0; i < 5; i++)
        cr_assert_eq(jn_lb_round_robin.pick(st, &ctx), 1);
    usable[1] = false;
    cr_assert_eq(jn_lb_round_robin.pick(st, &ctx), -1);
    jn_lb_round_robin.destroy(st);
}

/* ---- least_conn, p2c, random ---- */

static void *make_state(const struct jn_lb_ops *ops, struct jn_cfg_upstream *up)
{
    void *st = ops->create(up);
    cr_assert_not_null(st);
    return st;
}

Test(balance, new_algorithms_are_registered)
{
    cr_assert(jn_lb_known("least_conn"));
    cr_assert(jn_lb_known("p2c"));
    cr_assert(jn_lb_known("random"));
}

Test(balance, least_conn_picks_the_fewest_in_flight_for_the_weight)
{
    struct jn_cfg_server servers[3];
    const uint32_t w[3] = { 1, 2, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 3);
    void *st = make_state(&jn_lb_least_conn, &up);
    uint32_t in_flight[3] = { 2, 3, 1 }; /* loads 2, 1.5, 1 */
    struct jn_lb_ctx ctx = { .in_flight = in_flight };
    cr_assert_eq(jn_lb_least_conn.pick(st, &ctx), 2);
    in_flight[2] = 4; /* loads 2, 1.5, 4 */
    cr_assert_eq(jn_lb_least_conn.pick(st, &ctx), 1);
    jn_lb_least_conn.destroy(st);
}

Test(balance, least_conn_rotates_among_ties)
{
    struct jn_cfg_server servers[3];
    const uint32_t w[3] = { 1, 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 3);
    void *st = make_state(&jn_lb_least_conn, &up);
    uint32_t in_flight[3] = { 0, 0, 0 };
    struct jn_lb_ctx ctx = { .in_flight = in_flight };
    int seen[3] = { 0 };
    for (int i = 0; i < 30; i++)
        seen[jn_lb_least_conn.pick(st, &ctx)]++;
    cr_assert(seen[0] == 10 && seen[1] == 10 && seen[2] == 10);
    jn_lb_least_conn.destroy(st);
}

Test(balance, p2c_never_picks_the_busier_of_two)
{
    struct jn_cfg_server servers[2];
    const uint32_t w[2] = { 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 2);
    void *st = make_state(&jn_lb_p2c, &up);
    uint32_t in_flight[2] = { 5, 0 };
    uint64_t rng = 42;
    struct jn_lb_ctx ctx = { .in_flight = in_flight, .rng = &rng };
    for (int i = 0; i < 100; i++)
        cr_assert_eq(jn_lb_p2c.pick(st, &ctx), 1);
    jn_lb_p2c.destroy(st);
}

Test(balance, p2c_spreads_an_idle_pool_and_skips_unusable_servers)
{
    struct jn_cfg_server servers[4];
    const uint32_t w[4] = { 1, 1, 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 4);
    void *st = make_state(&jn_lb_p2c, &up);
    uint32_t in_flight[4] = { 0 };
    bool usable[4] = { true, true, false, true };
    uint64_t rng = 7;
    struct jn_lb_ctx ctx = { .in_flight = in_flight, .usable = usable, .rng = &rng };
    int seen[4] = { 0 };
    for (int i = 0; i < 3000; i++)
        seen[jn_lb_p2c.pick(st, &ctx)]++;
    cr_assert_eq(seen[2], 0);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            cr_assert(seen[i] > 800, "server %d got %d of 3000", i, seen[i]);
    usable[0] = usable[1] = usable[3] = false;
    cr_assert_eq(jn_lb_p2c.pick(st, &ctx), -1);
    jn_lb_p2c.destroy(st);
}

Test(balance, random_follows_the_weights)
{
    struct jn_cfg_server servers[3];
    const uint32_t w[3] = { 1, 3, 6 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 3);
    void *st = make_state(&jn_lb_random_weighted, &up);
    uint32_t in_flight[3] = { 0 };
    uint64_t rng = 12345;
    struct jn_lb_ctx ctx = { .in_flight = in_flight, .rng = &rng };
    int seen[3] = { 0 };
    for (int i = 0; i < 100000; i++)
        seen[jn_lb_random_weighted.pick(st, &ctx)]++;
    /* within 5% of 10% / 30% / 60% */
    cr_assert(seen[0] > 9500 && seen[0] < 10500, "%d", seen[0]);
    cr_assert(seen[1] > 28500 && seen[1] < 31500, "%d", seen[1]);
    cr_assert(seen[2] > 57000 && seen[2] < 63000, "%d", seen[2]);
    jn_lb_random_weighted.destroy(st);
}

/* ---- ewma ---- */

Test(balance, ewma_prefers_the_faster_server)
{
    struct jn_cfg_server servers[2];
    const uint32_t w[2] = { 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 2);
    void *st = make_state(&jn_lb_ewma, &up);
    uint32_t in_flight[2] = { 0, 0 };
    uint64_t rng = 3;
    struct jn_lb_ctx ctx = { .in_flight = in_flight, .rng = &rng };
    jn_lb_ewma.observe(st, 0, 50000, 1000000); /* 50 ms */
    jn_lb_ewma.observe(st, 1, 2000, 1000000);  /* 2 ms */
    for (int i = 0; i < 50; i++)
        cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 1);
    in_flight[1] = 40; /* a queue makes the fast server costlier: 2 ms x 41 > 50 ms x 1 */
    cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 0);
    jn_lb_ewma.destroy(st);
}

Test(balance, ewma_jumps_up_at_once_and_decays_slowly)
{
    struct jn_cfg_server servers[2];
    const uint32_t w[2] = { 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 2);
    void *st = make_state(&jn_lb_ewma, &up);
    uint32_t in_flight[2] = { 0, 0 };
    uint64_t rng = 5;
    struct jn_lb_ctx ctx = { .in_flight = in_flight, .rng = &rng };
    jn_lb_ewma.observe(st, 0, 1000, 1000000);
    jn_lb_ewma.observe(st, 1, 3000, 1000000);
    cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 0);
    jn_lb_ewma.observe(st, 0, 100000, 1001000); /* one slow answer: avoided at once */
    cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 1);
    jn_lb_ewma.observe(st, 0, 1000, 1002000); /* a fast one 1 ms later barely counts */
    cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 1);
    jn_lb_ewma.observe(st, 0, 1000, 61002000); /* a minute later, forgiven */
    cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 0);
    jn_lb_ewma.destroy(st);
}

Test(balance, ewma_tries_a_slow_looking_server_again_once_its_news_is_old)
{
    struct jn_cfg_server servers[2];
    const uint32_t w[2] = { 1, 1 };
    struct jn_cfg_upstream up = make_upstream(servers, w, 2);
    void *st = make_state(&jn_lb_ewma, &up);
    uint32_t in_flight[2] = { 0, 0 };
    uint64_t rng = 5;
    struct jn_lb_ctx ctx = { .in_flight = in_flight, .rng = &rng, .now_us = 1000000 };
    jn_lb_ewma.observe(st, 0, 200000, 1000000); /* 200 ms, then never picked again... */
    jn_lb_ewma.observe(st, 1, 5000, 1000000);
    cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 1);
    ctx.now_us = 1000000 + 60000000; /* ...unless its estimate decays without samples */
    jn_lb_ewma.observe(st, 1, 5000, ctx.now_us);
    cr_assert_eq(jn_lb_ewma.pick(st, &ctx), 0);
    jn_lb_ewma.destroy(st);
}
