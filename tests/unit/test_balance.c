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
