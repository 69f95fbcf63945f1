/* Unit tests of the upstream policy sections of the configuration
 * (src/config/load_upstream.c): health, outlier, retries, limits, sticky,
 * slow_start and ewma; their defaults, their values and where each error is
 * reported. Linked with the real balance registry (make unit). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/common.h"

/* ---- helpers ---- */

static struct jn_config *up_load(const char *yaml, struct jn_cfg_errors *errs)
{
    return jn_config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

static void up_dump(const struct jn_cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "  | %s\n", errs->msgs[i]);
}

static bool up_has(const struct jn_cfg_errors *errs, const char *prefix)
{
    for (size_t i = 0; i < errs->count; i++)
        if (strncmp(errs->msgs[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

/* Loads yaml, which must fail with exactly the errors given (NULL-terminated
 * prefixes "t.yaml:LINE:COL: what"), no more and no fewer. */
static void up_errors(const char *yaml, ...)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = up_load(yaml, &errs);
    cr_expect_null(cfg, "the configuration loaded but should not have:\n%s", yaml);
    jn_config_unref(cfg);
    size_t want = 0;
    bool dump = false;
    va_list ap;
    va_start(ap, yaml);
    for (const char *p; (p = va_arg(ap, const char *)) != NULL; want++) {
        if (!up_has(&errs, p)) {
            cr_expect(false, "no error starting with \"%s\"", p);
            dump = true;
        }
    }
    va_end(ap);
    if (errs.count != want) {
        cr_expect_eq(errs.count, want, "%zu errors reported, %zu expected", errs.count, want);
        dump = true;
    }
    if (dump)
        up_dump(&errs);
    jn_cfg_errors_free(&errs);
}

static struct jn_config *up_ok(const char *yaml)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = up_load(yaml, &errs);
    if (cfg == NULL)
        up_dump(&errs);
    cr_assert_not_null(cfg, "load failed with %zu errors", errs.count);
    cr_assert_eq(errs.count, 0);
    jn_cfg_errors_free(&errs);
    return cfg;
}

#define LISTENER "listeners:\n  - { name: public, address: 127.0.0.1:8080 }\n"

/* An upstream u whose keys (each line indented by four spaces) start on line 5. */
#define UP(keys) LISTENER "upstreams:\n  u:\n" keys "    servers: [ { address: 127.0.0.1:9 } ]\n"

/* ---- defaults ---- */

static void up_expect_defaults(const struct jn_cfg_upstream *up)
{
    cr_expect_not(up->health.enabled);
    cr_expect_not(up->health.tcp);
    cr_expect_str_eq(up->health.path, "/");
    cr_expect_null(up->health.host);
    cr_expect_eq(up->health.interval, 5000);
    cr_expect_eq(up->health.timeout, 1000);
    cr_expect_eq(up->health.healthy_threshold, 2);
    cr_expect_eq(up->health.unhealthy_threshold, 3);
    cr_expect_null(up->health.expect_status);
    cr_expect_eq(up->health.nexpect_status, 0);

    cr_expect_not(up->outlier.enabled);
    cr_expect_eq(up->outlier.consecutive_failures, 5);
    cr_assert_eq(up->outlier.nfailure_status, 3);
    cr_expect_eq(up->outlier.failure_status[0], 502);
    cr_expect_eq(up->outlier.failure_status[1], 503);
    cr_expect_eq(up->outlier.failure_status[2], 504);
    cr_expect_eq(up->outlier.ejection_time, 30000);
    cr_expect_eq(up->outlier.max_ejected_percent, 50);

    cr_expect_eq(up->retries.attempts, 1);
    cr_expect_eq(up->retries.on, JN_RETRY_CONNECT);
    cr_expect_null(up->retries.status);
    cr_expect_eq(up->retries.nstatus, 0);
    cr_expect_eq(up->retries.budget_percent, 20);

    cr_expect_eq(up->limits.max_connections, 0);
    cr_expect_eq(up->limits.max_pending, 0);
    cr_expect_eq(up->limits.queue_timeout, 1000);

    cr_expect_null(up->sticky.cookie);
    cr_expect_eq(up->sticky.ttl, 0);
    cr_expect_null(up->sticky.secret);

    cr_expect_eq(up->slow_start, 0);
    cr_expect_eq(up->ewma_decay, 10000);
    cr_expect_eq(up->ewma_initial_us, 1000);
}

Test(config_upstream, every_policy_default_is_set_without_its_section)
{
    struct jn_config *cfg = up_ok(UP(""));
    up_expect_defaults(&cfg->upstreams[0]);
    jn_config_unref(cfg);
    /* Also for an upstream whose balancer ignores most of them. */
    cfg = up_ok(UP("    balance: ewma\n"));
    up_expect_defaults(&cfg->upstreams[0]);
    jn_config_unref(cfg);
}

Test(config_upstream, every_upstream_of_a_file_gets_its_own_defaults)
{
    struct jn_config *cfg = up_ok(LISTENER "upstreams:\n"
                                           "  a: { servers: [ { address: 127.0.0.1:1 } ],\n"
                                           "       outlier: { failure_status: [500] } }\n"
                                           "  b: { servers: [ { address: 127.0.0.1:2 } ] }\n");
    cr_assert_eq(cfg->nupstreams, 2);
    cr_expect_eq(cfg->upstreams[0].outlier.nfailure_status, 1);
    up_expect_defaults(&cfg->upstreams[1]);
    jn_config_unref(cfg);
}

/* ---- a full valid example ---- */

static const char full_yaml[] = LISTENER
    "upstreams:\n"
    "  users:\n"
    "    balance: ewma\n"
    "    servers: [ { address: 127.0.0.1:9001, weight: 2 }, { address: 127.0.0.1:9002 } ]\n"
    "    health: { type: http, path: /healthz, host: users.internal, interval: 2s, timeout: 1s,\n"
    "              healthy_threshold: 2, unhealthy_threshold: 3, expect_status: [200] }\n"
    "    outlier: { consecutive_failures: 5, failure_status: [502, 503, 504], ejection_time: 30s,\n"
    "               max_ejected_percent: 50 }\n"
    "    retries: { attempts: 2, retry_on: [connect_failure, reset, timeout, 502, 503, 504],\n"
    "               budget: 20% }\n"
    "    limits: { max_connections: 100, max_pending: 50, queue_timeout: 1s }\n"
    "    sticky: { cookie: jn_route, ttl: 1h, secret: \"some text\" }\n"
    "    slow_start: 30s\n"
    "    ewma: { decay: 10s, initial: 1ms }\n"
    "  orders:\n"
    "    balance: p2c\n"
    "    servers: [ { address: 127.0.0.1:9101 } ]\n"
    "    health: { type: tcp, interval: 250ms, timeout: 250ms, healthy_threshold: 1,\n"
    "              unhealthy_threshold: 100 }\n"
    "    outlier: { consecutive_failures: 1000, failure_status: [], ejection_time: 24h,\n"
    "               max_ejected_percent: 0 }\n"
    "    retries: { attempts: 0, retry_on: [503], budget: 0 }\n"
    "    limits: { max_connections: 1000000, max_pending: 1000000, queue_timeout: 24h }\n"
    "    sticky: { cookie: \"__Host-s\", ttl: 8760h }\n"
    "    slow_start: 1h\n";

Test(config_upstream, full_example_loads_every_value)
{
    struct jn_config *cfg = up_ok(full_yaml);
    cr_assert_eq(cfg->nupstreams, 2);
    const struct jn_cfg_upstream *up = &cfg->upstreams[0];
    cr_expect(up->health.enabled);
    cr_expect_not(up->health.tcp);
    cr_expect_str_eq(up->health.path, "/healthz");
    cr_expect_str_eq(up->health.host, "users.internal");
    cr_expect_eq(up->health.interval, 2000);
    cr_expect_eq(up->health.timeout, 1000);
    cr_expect_eq(up->health.healthy_threshold, 2);
    cr_expect_eq(up->health.unhealthy_threshold, 3);
    cr_assert_eq(up->health.nexpect_status, 1);
    cr_expect_eq(up->health.expect_status[0], 200);
    cr_expect(up->outlier.enabled);
    cr_expect_eq(up->outlier.consecutive_failures, 5);
    cr_assert_eq(up->outlier.nfailure_status, 3);
    cr_expect_eq(up->outlier.failure_status[2], 504);
    cr_expect_eq(up->outlier.ejection_time, 30000);
    cr_expect_eq(up->outlier.max_ejected_percent, 50);
    cr_expect_eq(up->retries.attempts, 2);
    cr_expect_eq(up->retries.on, JN_RETRY_CONNECT | JN_RETRY_RESET | JN_RETRY_TIMEOUT);
    cr_assert_eq(up->retries.nstatus, 3);
    cr_expect_eq(up->retries.status[0], 502);
    cr_expect_eq(up->retries.status[1], 503);
    cr_expect_eq(up->retries.status[2], 504);
    cr_expect_eq(up->retries.budget_percent, 20);
    cr_expect_eq(up->limits.max_connections, 100);
    cr_expect_eq(up->limits.max_pending, 50);
    cr_expect_eq(up->limits.queue_timeout, 1000);
    cr_expect_str_eq(up->sticky.cookie, "jn_route");
    cr_expect_eq(up->sticky.ttl, 3600000);
    cr_expect_str_eq(up->sticky.secret, "some text");
    cr_expect_eq(up->slow_start, 30000);
    cr_expect_eq(up->ewma_decay, 10000);
    cr_expect_eq(up->ewma_initial_us, 1000);

    up = &cfg->upstreams[1];
    cr_expect(up->health.enabled);
    cr_expect(up->health.tcp);
    cr_expect_str_eq(up->health.path, "/", "unused by tcp, left at its default");
    cr_expect_eq(up->health.interval, 250);
    cr_expect_eq(up->health.timeout, 250);
    cr_expect_eq(up->health.healthy_threshold, 1);
    cr_expect_eq(up->health.unhealthy_threshold, 100);
    cr_expect(up->outlier.enabled);
    cr_expect_eq(up->outlier.consecutive_failures, 1000);
    cr_expect_eq(up->outlier.nfailure_status, 0, "an empty list counts no status");
    cr_expect_eq(up->outlier.ejection_time, 24 * 3600000);
    cr_expect_eq(up->outlier.max_ejected_percent, 0);
    cr_expect_eq(up->retries.attempts, 0);
    cr_expect_eq(up->retries.on, 0, "retry_on replaces the default connect_failure");
    cr_assert_eq(up->retries.nstatus, 1);
    cr_expect_eq(up->retries.status[0], 503);
    cr_expect_eq(up->retries.budget_percent, 0);
    cr_expect_eq(up->limits.max_connections, 1000000);
    cr_expect_eq(up->limits.max_pending, 1000000);
    cr_expect_eq(up->limits.queue_timeout, 24 * 3600000);
    cr_expect_str_eq(up->sticky.cookie, "__Host-s");
    cr_expect_eq(up->sticky.ttl, 365ull * 24 * 3600000);
    cr_expect_null(up->sticky.secret);
    cr_expect_eq(up->slow_start, 3600000);
    cr_expect_eq(up->ewma_decay, 10000);
    jn_config_unref(cfg);
}

Test(config_upstream, empty_sections_turn_checks_on_with_defaults)
{
    struct jn_config *cfg = up_ok(UP("    health: {}\n    outlier: {}\n    retries: {}\n"
                                     "    limits: {}\n"));
    const struct jn_cfg_upstream *up = &cfg->upstreams[0];
    cr_expect(up->health.enabled);
    cr_expect_eq(up->health.interval, 5000);
    cr_expect_str_eq(up->health.path, "/");
    cr_expect(up->outlier.enabled);
    cr_expect_eq(up->outlier.nfailure_status, 3);
    cr_expect_eq(up->retries.attempts, 1);
    cr_expect_eq(up->retries.on, JN_RETRY_CONNECT);
    cr_expect_eq(up->retries.budget_percent, 20);
    cr_expect_eq(up->limits.queue_timeout, 1000);
    jn_config_unref(cfg);
}

Test(config_upstream, retries_without_retry_on_keep_connect_failure)
{
    struct jn_config *cfg = up_ok(UP("    retries: { attempts: 3, budget: 50 }\n"));
    cr_expect_eq(cfg->upstreams[0].retries.attempts, 3);
    cr_expect_eq(cfg->upstreams[0].retries.on, JN_RETRY_CONNECT);
    cr_expect_eq(cfg->upstreams[0].retries.budget_percent, 50);
    jn_config_unref(cfg);
    cfg = up_ok(UP("    retries: { retry_on: [] }\n"));
    cr_expect_eq(cfg->upstreams[0].retries.on, 0, "an empty list retries nothing");
    cr_expect_eq(cfg->upstreams[0].retries.nstatus, 0);
    jn_config_unref(cfg);
    cfg = up_ok(UP("    retries: { budget: \"100%\" }\n"));
    cr_expect_eq(cfg->upstreams[0].retries.budget_percent, 100);
    jn_config_unref(cfg);
}

Test(config_upstream, ewma_initial_is_kept_in_microseconds)
{
    static const struct {
        const char *in;
        uint64_t us;
    } ok[] = {{"1us", 1}, {"500us", 500}, {"1ms", 1000}, {"2s", 2000000}, {"1h", 3600000000}};
    for (size_t i = 0; i < JN_ARRAY_LEN(ok); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 UP("    balance: ewma\n    ewma: { decay: 1h, initial: %s }\n"), ok[i].in);
        struct jn_config *cfg = up_ok(yaml);
        cr_expect_eq(cfg->upstreams[0].ewma_initial_us, ok[i].us, "%s", ok[i].in);
        cr_expect_eq(cfg->upstreams[0].ewma_decay, 3600000);
        jn_config_unref(cfg);
    }
}

Test(config_upstream, microsecond_durations_parse_only_where_asked)
{
    uint64_t v = 0;
    cr_expect_eq(jn_parse_duration_us("250us", &v), JN_OK);
    cr_expect_eq(v, 250);
    cr_expect_eq(jn_parse_duration_us("3ms", &v), JN_OK);
    cr_expect_eq(v, 3000);
    cr_expect_eq(jn_parse_duration_us("1m", &v), JN_OK);
    cr_expect_eq(v, 60000000);
    cr_expect_eq(jn_parse_duration_us("0us", &v), JN_OK);
    cr_expect_eq(v, 0);
    cr_expect_eq(jn_parse_duration_us("18446744073709551615us", &v), JN_OK);
    cr_expect_eq(v, UINT64_MAX);
    cr_expect_eq(jn_parse_duration_us("18446744073709552ms", &v), JN_EINVAL, "overflows in us");
    cr_expect_eq(jn_parse_duration_us("5", &v), JN_EINVAL);
    cr_expect_eq(jn_parse_duration_us("5µs", &v), JN_EINVAL);
    cr_expect_eq(jn_parse_duration_us("5US", &v), JN_EINVAL);
    cr_expect_eq(jn_parse_duration_us("us", &v), JN_EINVAL);
    cr_expect_eq(jn_parse_duration("5us", &v), JN_EINVAL, "millisecond durations know no us");
    cr_expect_eq(jn_parse_duration("18446744073709551615ms", &v), JN_OK);
    cr_expect_eq(v, UINT64_MAX);
}

/* ---- errors, each at its position ---- */

Test(config_upstream, health_values_are_checked)
{
    up_errors(UP("    health: { type: udp }\n"),
              "t.yaml:5:21: type: invalid value 'udp' (expected one of: http, tcp)", NULL);
    up_errors(UP("    health: { path: healthz }\n"),
              "t.yaml:5:21: path: 'healthz' must start with '/'", NULL);
    up_errors(UP("    health: { path: \"/a b\" }\n"),
              "t.yaml:5:21: path: '/a b' must not contain spaces", NULL);
    up_errors(UP("    health: { path: \"/a\\tb\" }\n"),
              "t.yaml:5:21: path: '/a\\x09b' must not contain spaces, control", NULL);
    up_errors(UP("    health: { path: \"/é\" }\n"), "t.yaml:5:21: path: '/é' must not contain",
              NULL);
    up_errors(UP("    health: { path: \"/a#b\" }\n"),
              "t.yaml:5:21: path: '/a#b' must not contain '#'", NULL);
    up_errors(UP("    health: { host: \"a\\r\\nX-Evil: 1\" }\n"),
              "t.yaml:5:21: host: header value must not contain CR, LF or NUL", NULL);
    up_errors(UP("    health: { host: \"\" }\n"), "t.yaml:5:21: host: must not be empty", NULL);
    up_errors(UP("    health: { interval: 0ms, timeout: 25h }\n"),
              "t.yaml:5:25: interval: '0ms' is out of range (1ms to 86400000ms)",
              "t.yaml:5:39: timeout: '25h' is out of range (1ms to 86400000ms)", NULL);
    up_errors(UP("    health: { interval: 5, timeout: 0s }\n"),
              "t.yaml:5:25: interval: invalid duration '5'",
              "t.yaml:5:37: timeout: '0s' is out of range", NULL);
    up_errors(UP("    health: { healthy_threshold: 0, unhealthy_threshold: 101 }\n"),
              "t.yaml:5:34: healthy_threshold: 0 is out of range (1 to 100)",
              "t.yaml:5:58: unhealthy_threshold: 101 is out of range (1 to 100)", NULL);
    up_errors(UP("    health: { expect_status: [200, 99, 600, ok, 200] }\n"),
              "t.yaml:5:36: expect_status: 99 is out of range (100 to 599)",
              "t.yaml:5:40: expect_status: 600 is out of range (100 to 599)",
              "t.yaml:5:45: expect_status: expected an integer from 100 to 599, got 'ok'",
              "t.yaml:5:49: expect_status: 200 is listed twice", NULL);
    up_errors(UP("    health: { expect_status: [] }\n"),
              "t.yaml:5:30: expect_status: the list is empty (leave it out", NULL);
    up_errors(UP("    health: { expect_status: 200 }\n"),
              "t.yaml:5:30: expect_status: expected a list of statuses, got a string", NULL);
    up_errors(UP("    health: { method: GET }\n"),
              "t.yaml:5:15: unknown key 'method' in health (known keys: type, path, host,", NULL);
    up_errors(UP("    health:\n"), "t.yaml:5:12: health: expected a mapping, got null", NULL);
    up_errors(UP("    health: on\n"), "t.yaml:5:13: health: expected a mapping, got a string",
              NULL);
}

Test(config_upstream, tcp_checks_refuse_http_keys)
{
    up_errors(UP("    health: { type: tcp, path: /x }\n"),
              "t.yaml:5:26: path: only used by type: http (type is tcp)", NULL);
    up_errors(UP("    health:\n      host: a\n      expect_status: [204]\n      type: tcp\n"),
              "t.yaml:6:7: host: only used by type: http (type is tcp)",
              "t.yaml:7:7: expect_status: only used by type: http (type is tcp)", NULL);
    /* A bad type leaves http in place: no second error for the path. */
    up_errors(UP("    health: { type: tpc, path: /x }\n"), "t.yaml:5:21: type: invalid value 'tpc'",
              NULL);
}

Test(config_upstream, check_timeout_must_fit_in_the_interval)
{
    up_errors(UP("    health: { interval: 1s, timeout: 2s }\n"),
              "t.yaml:5:38: timeout: '2s' is longer than interval (1000ms)", NULL);
    up_errors(UP("    health: { timeout: 6s }\n"),
              "t.yaml:5:24: timeout: '6s' is longer than interval (5000ms)", NULL);
    up_errors(UP("    health: { interval: 500ms }\n"),
              "t.yaml:5:25: interval: '500ms' is shorter than the default timeout (1000ms)", NULL);
    /* One mistake, one error: a wrong interval is not compared as well. */
    up_errors(UP("    health: { interval: 0s, timeout: 2s }\n"),
              "t.yaml:5:25: interval: '0s' is out of range", NULL);
    up_errors(UP("    health: { interval: 100ms, timeout: 5x }\n"),
              "t.yaml:5:41: timeout: invalid duration '5x'", NULL);
    struct jn_config *cfg = up_ok(UP("    health: { interval: 500ms, timeout: 500ms }\n"));
    cr_expect_eq(cfg->upstreams[0].health.timeout, 500);
    jn_config_unref(cfg);
}

Test(config_upstream, outlier_values_are_checked)
{
    up_errors(UP("    outlier: { consecutive_failures: 0 }\n"),
              "t.yaml:5:38: consecutive_failures: 0 is out of range (1 to 1000)", NULL);
    up_errors(UP("    outlier: { consecutive_failures: 1001 }\n"),
              "t.yaml:5:38: consecutive_failures: 1001 is out of range (1 to 1000)", NULL);
    up_errors(UP("    outlier: { failure_status: [502, 404, 600, 502] }\n"),
              "t.yaml:5:38: failure_status: 404 is out of range (500 to 599)",
              "t.yaml:5:43: failure_status: 600 is out of range (500 to 599)",
              "t.yaml:5:48: failure_status: 502 is listed twice", NULL);
    up_errors(UP("    outlier: { failure_status: [\"502\"] }\n"),
              "t.yaml:5:33: failure_status: expected an integer from 500 to 599, got '502'", NULL);
    up_errors(UP("    outlier: { ejection_time: 0ms }\n"),
              "t.yaml:5:31: ejection_time: '0ms' is out of range (1ms to 86400000ms)", NULL);
    up_errors(UP("    outlier: { ejection_time: 25h }\n"),
              "t.yaml:5:31: ejection_time: '25h' is out of range", NULL);
    up_errors(UP("    outlier: { max_ejected_percent: 101 }\n"),
              "t.yaml:5:37: max_ejected_percent: 101 is out of range (0 to 100)", NULL);
    up_errors(UP("    outlier: { max_ejected_percent: 50% }\n"),
              "t.yaml:5:37: max_ejected_percent: expected an integer from 0 to 100, got '50%'",
              NULL);
    up_errors(UP("    outlier: { interval: 10s }\n"),
              "t.yaml:5:16: unknown key 'interval' in outlier (known keys: consecutive_failures,",
              NULL);
}

Test(config_upstream, retries_values_are_checked)
{
    up_errors(UP("    retries: { attempts: 11 }\n"),
              "t.yaml:5:26: attempts: 11 is out of range (0 to 10)", NULL);
    up_errors(UP("    retries: { attempts: -1 }\n"),
              "t.yaml:5:26: attempts: -1 is out of range (0 to 10)", NULL);
    up_errors(UP("    retries: { retry_on: [connect-failure, 404, 600, reset, reset, 503, 503,\n"
                 "                          x5] }\n"),
              "t.yaml:5:27: retry_on: invalid value 'connect-failure' (expected connect_failure, "
              "reset, timeout or a status from 500 to 599)",
              "t.yaml:5:44: retry_on: 404 is out of range (500 to 599)",
              "t.yaml:5:49: retry_on: 600 is out of range (500 to 599)",
              "t.yaml:5:61: retry_on: reset is listed twice",
              "t.yaml:5:73: retry_on: 503 is listed twice",
              "t.yaml:6:27: retry_on: invalid value 'x5'", NULL);
    up_errors(UP("    retries: { retry_on: [5o2, { a: b }] }\n"),
              "t.yaml:5:27: retry_on: expected an integer from 500 to 599, got '5o2'",
              "t.yaml:5:32: retry_on: expected a condition or a status, got a mapping", NULL);
    up_errors(UP("    retries: { retry_on: reset }\n"),
              "t.yaml:5:26: retry_on: expected a list, got a string", NULL);
    up_errors(UP("    retries: { budget: 120% }\n"),
              "t.yaml:5:24: budget: expected a percentage from 0% to 100% (as in 20%), got '120%'",
              NULL);
    up_errors(UP("    retries: { budget: 101 }\n"), "t.yaml:5:24: budget: expected a percentage",
              NULL);
    up_errors(UP("    retries: { budget: \"20\" }\n"),
              "t.yaml:5:24: budget: expected a percentage from 0% to 100% (as in 20%), got '20'",
              NULL);
    up_errors(UP("    retries: { budget: -5% }\n"), "t.yaml:5:24: budget: expected a percentage",
              NULL);
    up_errors(UP("    retries: { budget: 20 % }\n"), "t.yaml:5:24: budget: expected a percentage",
              NULL);
    up_errors(UP("    retries: { budget: 1000000000000000000000% }\n"),
              "t.yaml:5:24: budget: expected a percentage", NULL);
    up_errors(UP("    retries: { on: [reset] }\n"),
              "t.yaml:5:16: unknown key 'on' in retries (known keys: attempts, retry_on, budget)",
              NULL);
}

Test(config_upstream, limits_values_are_checked)
{
    up_errors(UP("    limits: { max_connections: 1000001 }\n"),
              "t.yaml:5:32: max_connections: 1000001 is out of range (0 to 1000000)", NULL);
    up_errors(UP("    limits: { max_connections: 10, max_pending: 1000001 }\n"),
              "t.yaml:5:49: max_pending: 1000001 is out of range (0 to 1000000)", NULL);
    up_errors(UP("    limits: { queue_timeout: 0ms }\n"),
              "t.yaml:5:30: queue_timeout: '0ms' is out of range (1ms to 86400000ms)", NULL);
    up_errors(UP("    limits: { queue_timeout: 25h }\n"),
              "t.yaml:5:30: queue_timeout: '25h' is out of range", NULL);
    up_errors(UP("    limits: { max_conns: 5 }\n"),
              "t.yaml:5:15: unknown key 'max_conns' in limits (known keys: max_connections, "
              "max_pending, queue_timeout)",
              NULL);
}

Test(config_upstream, max_pending_needs_max_connections)
{
    up_errors(UP("    limits: { max_pending: 50 }\n"),
              "t.yaml:5:15: max_pending: needs max_connections", NULL);
    up_errors(UP("    limits:\n      max_connections: 0\n      max_pending: 1\n"),
              "t.yaml:7:7: max_pending: needs max_connections", NULL);
    /* A wrong max_connections was reported; its absence is not reported too. */
    up_errors(UP("    limits: { max_connections: lots, max_pending: 5 }\n"),
              "t.yaml:5:32: max_connections: expected an integer from 0 to 1000000, got 'lots'",
              NULL);
    struct jn_config *cfg = up_ok(UP("    limits: { max_pending: 0 }\n"));
    cr_expect_eq(cfg->upstreams[0].limits.max_pending, 0);
    jn_config_unref(cfg);
    cfg = up_ok(UP("    limits: { max_connections: 5 }\n"));
    cr_expect_eq(cfg->upstreams[0].limits.max_connections, 5);
    cr_expect_eq(cfg->upstreams[0].limits.max_pending, 0);
    jn_config_unref(cfg);
}

Test(config_upstream, sticky_values_are_checked)
{
    up_errors(UP("    sticky: { ttl: 1h }\n"),
              "t.yaml:5:13: missing required key 'cookie' in sticky", NULL);
    up_errors(UP("    sticky: { cookie: \"a b\" }\n"),
              "t.yaml:5:23: cookie: invalid cookie name 'a b'", NULL);
    up_errors(UP("    sticky: { cookie: \"a;b\" }\n"),
              "t.yaml:5:23: cookie: invalid cookie name 'a;b'", NULL);
    up_errors(UP("    sticky: { cookie: \"\" }\n"), "t.yaml:5:23: cookie: invalid cookie name ''",
              NULL);
    up_errors(UP("    sticky: { cookie: s, ttl: 8761h }\n"),
              "t.yaml:5:31: ttl: '8761h' is out of range (0ms to 31536000000ms)", NULL);
    up_errors(UP("    sticky: { cookie: s, ttl: 1d }\n"), "t.yaml:5:31: ttl: invalid duration '1d'",
              NULL);
    up_errors(UP("    sticky: { cookie: s, secret: \"\" }\n"),
              "t.yaml:5:34: secret: must not be empty", NULL);
    up_errors(UP("    sticky: { cookie: s, path: / }\n"),
              "t.yaml:5:26: unknown key 'path' in sticky (known keys: cookie, ttl, secret)", NULL);
    struct jn_config *cfg = up_ok(UP("    sticky: { cookie: s, ttl: 0s }\n"));
    cr_expect_str_eq(cfg->upstreams[0].sticky.cookie, "s");
    cr_expect_eq(cfg->upstreams[0].sticky.ttl, 0);
    jn_config_unref(cfg);
}

Test(config_upstream, slow_start_is_at_most_an_hour)
{
    up_errors(UP("    slow_start: 61m\n"),
              "t.yaml:5:17: slow_start: '61m' is out of range (0ms to 3600000ms)", NULL);
    up_errors(UP("    slow_start: 30\n"), "t.yaml:5:17: slow_start: invalid duration '30'", NULL);
    struct jn_config *cfg = up_ok(UP("    slow_start: 0s\n"));
    cr_expect_eq(cfg->upstreams[0].slow_start, 0);
    jn_config_unref(cfg);
}

Test(config_upstream, ewma_section_needs_the_ewma_balancer)
{
    up_errors(UP("    balance: p2c\n    ewma: { decay: 5s }\n"),
              "t.yaml:6:5: ewma: only used by balance: ewma (balance is p2c)", NULL);
    up_errors(UP("    ewma: { initial: 2ms }\n"),
              "t.yaml:5:5: ewma: only used by balance: ewma (balance is round_robin)", NULL);
    /* Either order; and an unknown algorithm is reported once, alone. */
    up_errors(UP("    ewma: { decay: 5s }\n    balance: least_conn\n"),
              "t.yaml:5:5: ewma: only used by balance: ewma (balance is least_conn)", NULL);
    up_errors(UP("    ewma: { decay: 5s }\n    balance: ewmaa\n"),
              "t.yaml:6:14: balance: unknown algorithm 'ewmaa'", NULL);
    struct jn_config *cfg = up_ok(UP("    ewma: { decay: 5s }\n    balance: ewma\n"));
    cr_expect_eq(cfg->upstreams[0].ewma_decay, 5000);
    cr_expect_eq(cfg->upstreams[0].ewma_initial_us, 1000);
    jn_config_unref(cfg);
}

Test(config_upstream, ewma_values_are_checked)
{
    up_errors(UP("    balance: ewma\n    ewma: { decay: 0ms }\n"),
              "t.yaml:6:20: decay: '0ms' is out of range (1ms to 3600000ms)", NULL);
    up_errors(UP("    balance: ewma\n    ewma: { decay: 2h }\n"),
              "t.yaml:6:20: decay: '2h' is out of range", NULL);
    up_errors(UP("    balance: ewma\n    ewma: { decay: 500us }\n"),
              "t.yaml:6:20: decay: invalid duration '500us'", NULL);
    up_errors(UP("    balance: ewma\n    ewma: { initial: 0us }\n"),
              "t.yaml:6:22: initial: '0us' is out of range (1us to 3600000000us)", NULL);
    up_errors(UP("    balance: ewma\n    ewma: { initial: 2h }\n"),
              "t.yaml:6:22: initial: '2h' is out of range", NULL);
    up_errors(UP("    balance: ewma\n    ewma: { initial: 1.5ms }\n"),
              "t.yaml:6:22: initial: invalid duration '1.5ms' (expected a number and a unit: us, "
              "ms, s, m or h",
              NULL);
    up_errors(UP("    balance: ewma\n    ewma: { alpha: 1 }\n"),
              "t.yaml:6:13: unknown key 'alpha' in ewma (known keys: decay, initial)", NULL);
}

Test(config_upstream, every_error_of_every_section_is_reported)
{
    up_errors(
        LISTENER "upstreams:\n"
                 "  a:\n"
                 "    servers: [ { address: 127.0.0.1:1 } ]\n"
                 "    health: { type: tcp, path: /, interval: 0s }\n"
                 "    outlier: { consecutive_failures: 0, max_ejected_percent: 200 }\n"
                 "    retries: { attempts: 99, retry_on: [nope] }\n"
                 "    limits: { max_pending: 3, queue_timeout: 0s }\n"
                 "  b:\n"
                 "    servers: [ { address: 127.0.0.1:2 } ]\n"
                 "    sticky: { ttl: 9999h }\n"
                 "    slow_start: 2h\n"
                 "    ewma: { decay: 1s, what: 1 }\n"
                 "    health: { colour: red }\n",
        "t.yaml:6:26: path: only used by type: http", "t.yaml:6:45: interval: '0s' is out of range",
        "t.yaml:7:38: consecutive_failures: 0 is out of range",
        "t.yaml:7:62: max_ejected_percent: 200 is out of range",
        "t.yaml:8:26: attempts: 99 is out of range", "t.yaml:8:41: retry_on: invalid value 'nope'",
        "t.yaml:9:15: max_pending: needs max_connections",
        "t.yaml:9:46: queue_timeout: '0s' is out of range",
        "t.yaml:12:20: ttl: '9999h' is out of range",
        "t.yaml:12:13: missing required key 'cookie' in sticky",
        "t.yaml:13:17: slow_start: '2h' is out of range",
        "t.yaml:14:24: unknown key 'what' in ewma",
        "t.yaml:14:5: ewma: only used by balance: ewma (balance is round_robin)",
        "t.yaml:15:15: unknown key 'colour' in health", NULL);
}
