/* Unit tests of src/admin/metrics*.c: slots that outlive a reload, the
 * "_other" slot past the bound, and the shape of /metrics and /stats for a
 * snapshot (the integration test counts real requests). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/metrics.h"
#include "admin/metrics_count.h"
#include "config/config.h"

static struct jn_config *load(const char *routes)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "listeners:\n"
             "  - { name: front, address: 127.0.0.1:1 }\n"
             "upstreams:\n"
             "  up1: { servers: [ { address: 127.0.0.1:2 } ] }\n"
             "routes:\n%s",
             routes);
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_buffer("t.yaml", text, strlen(text), &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    jn_cfg_errors_free(&errs);
    cr_assert_not_null(cfg);
    return cfg;
}

Test(metrics, a_name_keeps_its_slot_across_snapshots)
{
    struct jn_config *a = load("  - { name: keep-a, match: { path: /a }, upstream: up1 }\n"
                               "  - { name: keep-b, match: { path: /b }, upstream: up1,\n"
                               "      policies: [ { rate_limit: { limit: 1, window: 1s } } ] }\n");
    struct jn_config *b = load("  - { name: keep-new, match: { path: /n }, upstream: up1 }\n"
                               "  - { name: keep-b, match: { path: /b2 }, upstream: up1,\n"
                               "      policies: [ { rate_limit: { limit: 1, window: 1s } } ] }\n"
                               "  - { name: keep-a, match: { path: /a }, upstream: up1 }\n");
    cr_assert_eq(a->routes[0].metrics_slot, b->routes[2].metrics_slot);
    cr_assert_eq(a->routes[1].metrics_slot, b->routes[1].metrics_slot);
    cr_assert_neq(b->routes[0].metrics_slot, b->routes[1].metrics_slot);
    cr_assert_neq(b->routes[0].metrics_slot, b->routes[2].metrics_slot);
    cr_assert_eq(a->upstreams[0].metrics_slot, b->upstreams[0].metrics_slot);
    cr_assert_eq(a->listeners[0].metrics_slot, b->listeners[0].metrics_slot);
    cr_assert_eq(a->routes[1].metrics_policy_slots[0], b->routes[1].metrics_policy_slots[0]);
    jn_config_unref(a);
    jn_config_unref(b);
}

Test(metrics, names_past_the_bound_share_the_other_slot)
{
    /* Fill the route registry with names of this test's own (other tests
     * of this process may have taken some slots already). */
    char routes[200];
    struct jn_config *cfg = NULL;
    for (int i = 0; i <= JN_METRICS_MAX_ROUTES; i++) {
        snprintf(routes, sizeof(routes), "  - { name: fill-%d, match: { path: /x }, respond: "
                                         "{ status: 200 } }\n", i);
        if (cfg != NULL)
            jn_config_unref(cfg);
        cfg = load(routes);
    }
    cr_assert_eq(cfg->routes[0].metrics_slot, JN_M_ROUTE_OTHER);
    size_t len = 0;
    char *text = jn_metrics_render_config(cfg, &len);
    cr_assert_not_null(text);
    cr_assert_not_null(strstr(text, "junction_http_request_duration_seconds_count{route=\"_other\"} 0"));
    free(text);
    jn_config_unref(cfg);
}

Test(metrics, render_names_every_route_listener_and_server_of_the_snapshot)
{
    struct jn_config *cfg = load("  - { name: r-one, match: { path: /a }, upstream: up1 }\n"
                                 "  - { name: r-two, match: { path: /b }, respond: { status: 204 } }\n");
    size_t len = 0;
    char *text = jn_metrics_render_config(cfg, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    const char *want[] = {
        "# TYPE junction_http_requests_total counter\n",
        "# TYPE junction_http_request_duration_seconds histogram\n",
        "junction_http_request_duration_seconds_bucket{route=\"r-one\",le=\"0.0005\"} 0\n",
        "junction_http_request_duration_seconds_bucket{route=\"r-two\",le=\"+Inf\"} 0\n",
        "junction_upstream_response_duration_seconds_count{route=\"r-one\"} 0\n",
        "junction_http_requests_in_flight{listener=\"front\"} 0\n",
        "junction_upstream_retries_total{upstream=\"up1\"} 0\n",
        "junction_build_info{version=\"",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_not_null(strstr(text, want[i]), "missing %s", want[i]);
    /* A route without an upstream has no upstream latency. */
    cr_assert_null(strstr(text, "junction_upstream_response_duration_seconds_count{route=\"r-two\"}"));
    free(text);
    jn_config_unref(cfg);
}

Test(metrics, stats_has_the_contract_shape)
{
    struct jn_config *cfg = load("  - { name: s-one, match: { path: /a }, upstream: up1 }\n");
    json_t *j = jn_metrics_stats_json_config(cfg);
    cr_assert_not_null(j);
    const char *numbers[] = { "time", "uptime_seconds", "generation", "requests_total",
                              "in_flight", "connections_open", "bytes_in", "bytes_out" };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        cr_assert(json_is_number(json_object_get(j, numbers[i])), "%s", numbers[i]);
    json_t *resp = json_object_get(j, "responses");
    cr_assert(json_is_integer(json_object_get(resp, "2xx")));
    cr_assert(json_is_integer(json_object_get(resp, "5xx")));
    json_t *lb = json_object_get(j, "latency_buckets");
    cr_assert_eq(json_array_size(json_object_get(lb, "le")), JN_M_BUCKETS);
    cr_assert_eq(json_array_size(json_object_get(lb, "counts")), JN_M_BUCKETS + 1);
    cr_assert_float_eq(json_real_value(json_array_get(json_object_get(lb, "le"), 0)), 0.0005,
                       1e-9);
    json_t *routes = json_object_get(j, "routes");
    cr_assert_eq(json_array_size(routes), 1);
    json_t *r = json_array_get(routes, 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "name")), "s-one");
    cr_assert(json_is_integer(json_object_get(r, "requests_total")));
    cr_assert(json_is_integer(json_object_get(r, "errors_total")));
    cr_assert(json_is_object(json_object_get(r, "latency_buckets")));
    json_decref(j);
    jn_config_unref(cfg);
}
