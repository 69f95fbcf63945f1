/* The policy sections of an upstream: active health checks, outlier
 * ejection, retries, per-server limits, sticky sessions and the ewma
 * balancer's tuning. load.c lists the keys; their defaults and checks live here. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config/load.h"
#include "tls/tls_client.h"
#include "core/common.h"

#define JN_MINUTE_MS (60 * 1000)
#define JN_HOUR_MS (60 * JN_MINUTE_MS)
#define JN_DAY_MS (24 * (int64_t)JN_HOUR_MS)

/* Section setters leave a field alone when its value is wrong (and reported).
 * Fields that a cross-check reads start the walk at this sentinel, so that the
 * check can tell "absent: keep the default" from "wrong: reported already"
 * and never adds a second error for one mistake. */
#define JN_LD_UNSET64 UINT64_MAX
#define JN_LD_UNSET32 UINT32_MAX

/* Puts the default back in a field still at the sentinel. Returns true when
 * the field holds a usable value: read from the file, or the default. */
static bool jn_ld_settle64(uint64_t *field, uint64_t def, const struct jn_ld_found *f)
{
    if (*field != JN_LD_UNSET64)
        return true;
    *field = def;
    return f->key == NULL;
}

static bool jn_ld_settle32(uint32_t *field, uint32_t def, const struct jn_ld_found *f)
{
    if (*field != JN_LD_UNSET32)
        return true;
    *field = def;
    return f->key == NULL;
}

/* ---- status lists ---- */

/* A status list being read: each status once, in file order. */
struct jn_ld_statuses {
    uint16_t *list; /* in the snapshot; NULL until the first status */
    size_t n;
    bool seen[600];
};

/* Adds status v (range-checked by the caller) read from item. */
static void jn_ld_status_add(struct jn_ld *ld, struct jn_ld_statuses *st, const yaml_node_t *item,
                             const char *name, int64_t v)
{
    if (st->seen[v]) {
        jn_ld_error(ld, item, "%s: %" PRId64 " is listed twice", name, v);
        return;
    }
    st->seen[v] = true;
    st->list[st->n++] = (uint16_t)v;
}

/* True when item looks like an integer, so that "5o2" is reported as a bad
 * number rather than as an unknown word. */
static bool jn_ld_looks_numeric(const yaml_node_t *item)
{
    if (item->type != YAML_SCALAR_NODE || item->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)item->data.scalar.value;
    return (s[0] >= '0' && s[0] <= '9') || s[0] == '-';
}

/* Reads a list of statuses lo..hi into *out and *n. An empty list is refused
 * when empty_hint says why it would be wrong. */
static void jn_ld_status_list(struct jn_ld *ld, yaml_node_t *value, const char *name, int64_t lo,
                              int64_t hi, const char *empty_hint, uint16_t **out, size_t *n)
{
    struct jn_ld_statuses st = {0};
    if (!jn_ld_expect(ld, value, YAML_SEQUENCE_NODE, name, "a list of statuses"))
        return;
    size_t len = jn_ld_seq_len(value);
    if (len == 0 && empty_hint != NULL)
        jn_ld_error(ld, value, "%s: the list is empty (%s)", name, empty_hint);
    if (len == 0) {
        *out = NULL;
        *n = 0;
        return;
    }
    if ((st.list = jn_ld_calloc(ld, len, sizeof(*st.list))) == NULL)
        return;
    for (size_t i = 0; i < len; i++) {
        int64_t v;
        yaml_node_t *item = jn_ld_seq_item(ld, value, i);
        if (item == NULL)
            return;
        if (jn_ld_int(ld, item, name, lo, hi, &v))
            jn_ld_status_add(ld, &st, item, name, v);
    }
    *out = st.list;
    *n = st.n;
}

/* ---- health: ---- */

/* Returns NULL when s may be sent as the target of a check request, else why not. */
static const char *jn_ld_target_error(const char *s)
{
    if (s[0] != '/')
        return "must start with '/'";
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f)
            return "must not contain spaces, control or non-ASCII bytes (percent-encode them)";
        if (c == '#')
            return "must not contain '#' (a fragment is not sent)";
    }
    return NULL;
}

static void jn_ld_set_check_type(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                 void *obj)
{
    const char *s = jn_ld_scalar(ld, value, key->name, "http or tcp");
    if (s == NULL)
        return;
    if (strcmp(s, "http") != 0 && strcmp(s, "tcp") != 0) {
        jn_ld_error(ld, value, "type: invalid value %s (expected one of: http, tcp)",
                    jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    ((struct jn_cfg_health *)obj)->tcp = strcmp(s, "tcp") == 0;
}

static void jn_ld_set_check_path(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                 void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a path");
    const char *err = s != NULL ? jn_ld_target_error(s) : NULL;
    if (err != NULL)
        jn_ld_error(ld, value, "%s: %s %s", key->name, jn_ld_quote(ld, s, strlen(s)), err);
    else if (s != NULL)
        ((struct jn_cfg_health *)obj)->path = s;
}

static void jn_ld_set_check_host(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                 void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a host");
    if (s == NULL)
        return;
    const char *err = s[0] == '\0' ? "must not be empty (leave it out to send the server's "
                                     "address)"
                                   : jn_ld_header_value_error(s, strlen(s));
    if (err != NULL)
        jn_ld_error(ld, value, "%s: %s", key->name, err);
    else
        ((struct jn_cfg_health *)obj)->host = s;
}

static void jn_ld_set_expect_status(struct jn_ld *ld, const struct jn_ld_key *key,
                                    yaml_node_t *value, void *obj)
{
    struct jn_cfg_health *h = obj;
    jn_ld_status_list(ld, value, key->name, 100, 599, "leave it out to accept any 2xx or 3xx",
                      &h->expect_status, &h->nexpect_status);
}

enum {
    JN_HC_TYPE,
    JN_HC_PATH,
    JN_HC_HOST,
    JN_HC_INTERVAL,
    JN_HC_TIMEOUT,
    JN_HC_HEALTHY,
    JN_HC_UNHEALTHY,
    JN_HC_EXPECT,
};
static const struct jn_ld_key jn_health_keys[] = {
    [JN_HC_TYPE] = JN_LD_KEY("type", jn_ld_set_check_type, 0),
    [JN_HC_PATH] = JN_LD_KEY("path", jn_ld_set_check_path, 0),
    [JN_HC_HOST] = JN_LD_KEY("host", jn_ld_set_check_host, 0),
    [JN_HC_INTERVAL] = JN_LD_NUM("interval", jn_ld_set_duration,
                                 offsetof(struct jn_cfg_health, interval), 1, 24 * JN_HOUR_MS),
    [JN_HC_TIMEOUT] = JN_LD_NUM("timeout", jn_ld_set_duration,
                                offsetof(struct jn_cfg_health, timeout), 1, 24 * JN_HOUR_MS),
    [JN_HC_HEALTHY] = JN_LD_NUM("healthy_threshold", jn_ld_set_u32,
                                offsetof(struct jn_cfg_health, healthy_threshold), 1, 100),
    [JN_HC_UNHEALTHY] = JN_LD_NUM("unhealthy_threshold", jn_ld_set_u32,
                                  offsetof(struct jn_cfg_health, unhealthy_threshold), 1, 100),
    [JN_HC_EXPECT] = JN_LD_KEY("expect_status", jn_ld_set_expect_status, 0),
};
static const struct jn_ld_table jn_health_table = JN_LD_TABLE("health", jn_health_keys);

/* A check must end before the next one starts. */
static void jn_ld_health_timeout(struct jn_ld *ld, const struct jn_cfg_health *h,
                                 const struct jn_ld_found *found)
{
    if (h->timeout <= h->interval)
        return;
    const yaml_node_t *t = found[JN_HC_TIMEOUT].value, *i = found[JN_HC_INTERVAL].value;
    if (t != NULL)
        jn_ld_error(ld, t, "timeout: %s is longer than interval (%" PRIu64 "ms)",
                    jn_ld_quote(ld, (const char *)t->data.scalar.value, t->data.scalar.length),
                    h->interval);
    else
        jn_ld_error(ld, i,
                    "interval: %s is shorter than the default timeout (%" PRIu64
                    "ms); set a timeout no longer than the interval",
                    jn_ld_quote(ld, (const char *)i->data.scalar.value, i->data.scalar.length),
                    h->timeout);
}

void jn_ld_set_health(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    static const size_t http_only[] = {JN_HC_PATH, JN_HC_HOST, JN_HC_EXPECT};
    struct jn_cfg_health *h = &((struct jn_cfg_upstream *)obj)->health;
    struct jn_ld_found found[JN_ARRAY_LEN(jn_health_keys)];
    uint64_t interval = h->interval, timeout = h->timeout;
    h->interval = h->timeout = JN_LD_UNSET64;
    bool mapped = jn_ld_map(ld, value, &jn_health_table, h, found);
    if (!mapped) {
        h->interval = interval;
        h->timeout = timeout;
        return;
    }
    h->enabled = true;
    bool interval_ok = jn_ld_settle64(&h->interval, interval, &found[JN_HC_INTERVAL]);
    bool timeout_ok = jn_ld_settle64(&h->timeout, timeout, &found[JN_HC_TIMEOUT]);
    if (interval_ok && timeout_ok)
        jn_ld_health_timeout(ld, h, found);
    for (size_t i = 0; h->tcp && i < JN_ARRAY_LEN(http_only); i++)
        if (found[http_only[i]].key != NULL)
            jn_ld_error(ld, found[http_only[i]].key, "%s: only used by type: http (type is tcp)",
                        jn_health_keys[http_only[i]].name);
}

/* ---- outlier: ---- */

static void jn_ld_set_failure_status(struct jn_ld *ld, const struct jn_ld_key *key,
                                     yaml_node_t *value, void *obj)
{
    struct jn_cfg_outlier *o = obj;
    /* An empty list is meaningful: only connection failures and timeouts count. */
    jn_ld_status_list(ld, value, key->name, 500, 599, NULL, &o->failure_status,
                      &o->nfailure_status);
}

static const struct jn_ld_key jn_outlier_keys[] = {
    JN_LD_NUM("consecutive_failures", jn_ld_set_u32,
              offsetof(struct jn_cfg_outlier, consecutive_failures), 1, 1000),
    JN_LD_KEY("failure_status", jn_ld_set_failure_status, 0),
    JN_LD_NUM("ejection_time", jn_ld_set_duration, offsetof(struct jn_cfg_outlier, ejection_time),
              1, 24 * JN_HOUR_MS),
    JN_LD_NUM("max_ejected_percent", jn_ld_set_u32,
              offsetof(struct jn_cfg_outlier, max_ejected_percent), 0, 100),
};
static const struct jn_ld_table jn_outlier_table = JN_LD_TABLE("outlier", jn_outlier_keys);

void jn_ld_set_outlier(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct jn_cfg_outlier *o = &((struct jn_cfg_upstream *)obj)->outlier;
    if (jn_ld_map(ld, value, &jn_outlier_table, o, NULL))
        o->enabled = true;
}

/* ---- retries: ---- */

static const char *const jn_retry_words[] = {"connect_failure", "reset", "timeout"};
static const uint32_t jn_retry_bits[] = {JN_RETRY_CONNECT, JN_RETRY_RESET, JN_RETRY_TIMEOUT};

/* Reads one retry_on item: a condition's name or a status 500..599. */
static void jn_ld_retry_item(struct jn_ld *ld, const yaml_node_t *item, struct jn_cfg_retries *r,
                             struct jn_ld_statuses *st)
{
    int64_t v;
    if (jn_ld_looks_numeric(item)) {
        if (jn_ld_int(ld, item, "retry_on", 500, 599, &v))
            jn_ld_status_add(ld, st, item, "retry_on", v);
        return;
    }
    const char *s = jn_ld_scalar(ld, item, "retry_on", "a condition or a status");
    if (s == NULL)
        return;
    for (size_t i = 0; i < JN_ARRAY_LEN(jn_retry_words); i++) {
        if (strcmp(s, jn_retry_words[i]) != 0)
            continue;
        if (r->on & jn_retry_bits[i])
            jn_ld_error(ld, item, "retry_on: %s is listed twice", s);
        r->on |= jn_retry_bits[i];
        return;
    }
    jn_ld_error(ld, item,
                "retry_on: invalid value %s (expected connect_failure, reset, timeout or a "
                "status from 500 to 599)",
                jn_ld_quote(ld, s, strlen(s)));
}

/* What is listed is retried, and nothing else: the list replaces the default. */
static void jn_ld_set_retry_on(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                               void *obj)
{
    struct jn_cfg_retries *r = obj;
    struct jn_ld_statuses st = {0};
    if (!jn_ld_expect(ld, value, YAML_SEQUENCE_NODE, key->name, "a list"))
        return;
    size_t len = jn_ld_seq_len(value);
    r->on = 0;
    r->status = NULL;
    r->nstatus = 0;
    if (len == 0)
        return;
    if ((st.list = jn_ld_calloc(ld, len, sizeof(*st.list))) == NULL)
        return;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = jn_ld_seq_item(ld, value, i);
        if (item == NULL)
            break;
        jn_ld_retry_item(ld, item, r, &st);
    }
    if (st.n > 0) {
        r->status = st.list;
        r->nstatus = st.n;
    }
}

/* "20%" or a plain 20: a share of recent requests, 0..100. */
static void jn_ld_set_budget(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                             void *obj)
{
    const char *s = jn_ld_scalar(ld, value, key->name, "a percentage");
    if (s == NULL)
        return;
    size_t digits = strspn(s, "0123456789");
    bool percent = s[digits] == '%' && s[digits + 1] == '\0';
    bool plain = s[digits] == '\0' && value->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    uint32_t v = 0;
    for (size_t i = 0; i < digits && i < 4; i++)
        v = v * 10 + (uint32_t)(s[i] - '0');
    if (digits == 0 || digits > 3 || (!percent && !plain) || v > 100) {
        jn_ld_error(ld, value, "%s: expected a percentage from 0%% to 100%% (as in 20%%), got %s",
                    key->name, jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    ((struct jn_cfg_retries *)obj)->budget_percent = v;
}

static const struct jn_ld_key jn_retries_keys[] = {
    JN_LD_NUM("attempts", jn_ld_set_u32, offsetof(struct jn_cfg_retries, attempts), 0, 10),
    JN_LD_KEY("retry_on", jn_ld_set_retry_on, 0),
    JN_LD_KEY("budget", jn_ld_set_budget, 0),
};
static const struct jn_ld_table jn_retries_table = JN_LD_TABLE("retries", jn_retries_keys);

void jn_ld_set_retries(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    jn_ld_map(ld, value, &jn_retries_table, &((struct jn_cfg_upstream *)obj)->retries, NULL);
}

/* ---- limits: ---- */

enum { JN_LIM_CONNECTIONS, JN_LIM_PENDING, JN_LIM_QUEUE_TIMEOUT };
static const struct jn_ld_key jn_limits_keys[] = {
    [JN_LIM_CONNECTIONS] = JN_LD_NUM("max_connections", jn_ld_set_u32,
                                     offsetof(struct jn_cfg_limits, max_connections), 0, 1000000),
    [JN_LIM_PENDING] = JN_LD_NUM("max_pending", jn_ld_set_u32,
                                 offsetof(struct jn_cfg_limits, max_pending), 0, 1000000),
    [JN_LIM_QUEUE_TIMEOUT] =
        JN_LD_NUM("queue_timeout", jn_ld_set_duration,
                  offsetof(struct jn_cfg_limits, queue_timeout), 1, 24 * JN_HOUR_MS),
};
static const struct jn_ld_table jn_limits_table = JN_LD_TABLE("limits", jn_limits_keys);

void jn_ld_set_limits(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct jn_cfg_limits *l = &((struct jn_cfg_upstream *)obj)->limits;
    struct jn_ld_found found[JN_ARRAY_LEN(jn_limits_keys)];
    uint32_t connections = l->max_connections;
    l->max_connections = JN_LD_UNSET32;
    if (!jn_ld_map(ld, value, &jn_limits_table, l, found)) {
        l->max_connections = connections;
        return;
    }
    bool connections_ok =
        jn_ld_settle32(&l->max_connections, connections, &found[JN_LIM_CONNECTIONS]);
    /* Requests wait only for a connection that a limit holds back. */
    if (connections_ok && l->max_pending > 0 && l->max_connections == 0)
        jn_ld_error(ld, found[JN_LIM_PENDING].key,
                    "max_pending: needs max_connections (requests only wait when connections "
                    "are limited)");
}

/* ---- sticky: ---- */

static void jn_ld_set_cookie_name(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                  void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a cookie name");
    if (s == NULL)
        return;
    if (!jn_ld_is_token(s, strlen(s))) {
        jn_ld_error(ld, value, "%s: invalid cookie name %s", key->name,
                    jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    ((struct jn_cfg_sticky *)obj)->cookie = s;
}

static void jn_ld_set_secret(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                             void *obj)
{
    char *s = jn_ld_nonempty(ld, value, key->name, "a string");
    if (s != NULL)
        ((struct jn_cfg_sticky *)obj)->secret = s;
}

static const struct jn_ld_key jn_sticky_keys[] = {
    JN_LD_REQ("cookie", jn_ld_set_cookie_name, 0),
    JN_LD_NUM("ttl", jn_ld_set_duration, offsetof(struct jn_cfg_sticky, ttl), 0, 365 * JN_DAY_MS),
    JN_LD_KEY("secret", jn_ld_set_secret, 0),
};
static const struct jn_ld_table jn_sticky_table = JN_LD_TABLE("sticky", jn_sticky_keys);

void jn_ld_set_sticky(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    jn_ld_map(ld, value, &jn_sticky_table, &((struct jn_cfg_upstream *)obj)->sticky, NULL);
}

/* ---- ewma: ---- */

/* uint64_t microseconds in [min, max]; durations here also know "us". */
static void jn_ld_set_duration_us(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                  void *obj)
{
    uint64_t v;
    const char *s = jn_ld_scalar(ld, value, key->name, "a duration");
    if (s == NULL)
        return;
    if (jn_parse_duration_us(s, &v) != JN_OK) {
        jn_ld_error(ld, value,
                    "%s: invalid duration %s (expected a number and a unit: us, ms, s, m "
                    "or h, as in 500us or 2ms)",
                    key->name, jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    if (v < (uint64_t)key->min || v > (uint64_t)key->max) {
        jn_ld_error(ld, value, "%s: %s is out of range (%" PRId64 "us to %" PRId64 "us)", key->name,
                    jn_ld_quote(ld, s, strlen(s)), key->min, key->max);
        return;
    }
    *(uint64_t *)((char *)obj + key->offset) = v;
}

/* Written straight into the upstream: these fields are not a struct of their own. */
static const struct jn_ld_key jn_ewma_keys[] = {
    JN_LD_NUM("decay", jn_ld_set_duration, offsetof(struct jn_cfg_upstream, ewma_decay), 1,
              JN_HOUR_MS),
    JN_LD_NUM("initial", jn_ld_set_duration_us, offsetof(struct jn_cfg_upstream, ewma_initial_us),
              1, (int64_t)JN_HOUR_MS * 1000),
};
static const struct jn_ld_table jn_ewma_table = JN_LD_TABLE("ewma", jn_ewma_keys);

void jn_ld_set_ewma(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    jn_ld_map(ld, value, &jn_ewma_table, obj, NULL);
}

void jn_ld_upstream_ewma(struct jn_ld *ld, const struct jn_cfg_upstream *up,
                         const yaml_node_t *balance, const yaml_node_t *ewma_key)
{
    /* An unknown algorithm was reported already; its ewma key tells nothing. */
    if (ewma_key == NULL || up->balance == NULL)
        return;
    if (balance != NULL && (balance->type != YAML_SCALAR_NODE ||
                            strcmp((const char *)balance->data.scalar.value, up->balance) != 0))
        return;
    if (strcmp(up->balance, "ewma") != 0)
        jn_ld_error(ld, ewma_key, "ewma: only used by balance: ewma (balance is %s)", up->balance);
}

/* ---- protocol ---- */

void jn_ld_set_upstream_protocol(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                 void *obj)
{
    static const char *const names[] = { "http1", "h2c", "h2" };
    const char *s = jn_ld_scalar(ld, value, key->name, "http1, h2c or h2");
    if (s == NULL)
        return;
    for (size_t i = 0; i < JN_ARRAY_LEN(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            ((struct jn_cfg_upstream *)obj)->protocol = (enum jn_upstream_protocol)i;
            return;
        }
    }
    jn_ld_error(ld, value, "protocol: invalid value %s (expected one of: http1, h2c, h2)",
                jn_ld_quote(ld, s, strlen(s)));
}

void jn_ld_upstream_protocol(struct jn_ld *ld, struct jn_cfg_upstream *up, yaml_node_t *value,
                             yaml_node_t *health)
{
    if (up->protocol == JN_UPSTREAM_H2 && up->tls != NULL && up->tls->client != NULL)
        jn_tls_client_offer_h2(up->tls->client);
    if (up->protocol == JN_UPSTREAM_H2 && up->tls == NULL)
        jn_ld_error(ld, value, "protocol: h2 is HTTP/2 over TLS and needs tls: (h2c is HTTP/2 "
                               "in clear text)");
    else if (up->protocol == JN_UPSTREAM_H2C && up->tls != NULL)
        jn_ld_error(ld, value, "protocol: h2c is HTTP/2 in clear text; with tls: use h2");
    else if (up->protocol != JN_UPSTREAM_HTTP1 && up->health.enabled && !up->health.tcp)
        jn_ld_error(ld, health, "health: checks of type http speak HTTP/1.1, which a protocol "
                                "%s upstream may not; use type: tcp",
                    up->protocol == JN_UPSTREAM_H2 ? "h2" : "h2c");
}

/* ---- defaults ---- */

void jn_ld_upstream_defaults(struct jn_ld *ld, struct jn_cfg_upstream *up)
{
    static const uint16_t failure_status[] = {502, 503, 504};
    up->health = (struct jn_cfg_health){
        .path = jn_ld_strdup(ld, "/", 1),
        .interval = 5000,
        .timeout = 1000,
        .healthy_threshold = 2,
        .unhealthy_threshold = 3,
    };
    up->outlier = (struct jn_cfg_outlier){
        .consecutive_failures = 5,
        .failure_status = jn_ld_calloc(ld, JN_ARRAY_LEN(failure_status), sizeof(uint16_t)),
        .ejection_time = 30000,
        .max_ejected_percent = 50,
    };
    if (up->outlier.failure_status != NULL) {
        memcpy(up->outlier.failure_status, failure_status, sizeof(failure_status));
        up->outlier.nfailure_status = JN_ARRAY_LEN(failure_status);
    }
    up->retries =
        (struct jn_cfg_retries){.attempts = 1, .on = JN_RETRY_CONNECT, .budget_percent = 20};
    up->limits = (struct jn_cfg_limits){.queue_timeout = 1000};
    up->sticky = (struct jn_cfg_sticky){0};
    up->slow_start = 0;
    up->ewma_decay = 10000;
    up->ewma_initial_us = 1000;
}
