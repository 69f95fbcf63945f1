/* The top level of the configuration schema: workers, listeners, timeouts,
 * http limits, logs and upstreams. Routes (load_route.c) are read last,
 * whatever their place in the file, because they refer to the others. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "balance/balance.h"
#include "balance/lb_maglev.h"
#include "config/load.h"
#include "core/common.h"
#include "core/log.h"
#include "tls/tls.h"

#define JN_HOUR_MS (60 * 60 * 1000)

/* A canonical "ip:port" is at most "[" + INET6_ADDRSTRLEN + "]:65535". */
#define JN_ADDR_CANON_MAX 64

struct jn_ld_choice {
    const char *name;
    int value;
};

/* Maps a string value to one of choices; false (reported) when none fits. */
static bool jn_ld_choose(struct jn_ld *ld, yaml_node_t *value, const char *name,
                         const struct jn_ld_choice *choices, size_t n, int *out)
{
    const char *s = jn_ld_scalar(ld, value, name, "a string");
    if (s == NULL)
        return false;
    char known[128] = "";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, choices[i].name) == 0) {
            *out = choices[i].value;
            return true;
        }
        int w = snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "", choices[i].name);
        o = JN_MIN(o + (size_t)(w > 0 ? w : 0), sizeof(known) - 1);
    }
    jn_ld_error(ld, value, "%s: invalid value %s (expected one of: %s)", name,
                jn_ld_quote(ld, s, strlen(s)), known);
    return false;
}

static void jn_ld_set_workers(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct jn_config *cfg = obj;
    bool scalar = value != NULL && value->type == YAML_SCALAR_NODE && !jn_ld_is_null(value);
    const char *s = scalar ? (const char *)value->data.scalar.value : "";
    int64_t n;
    if (scalar && strcmp(s, "auto") == 0) {
        cfg->workers = 0;
        return;
    }
    if (!scalar || value->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        s[strspn(s, "-0123456789")] != '\0') {
        jn_ld_error(ld, value, "workers: expected a number from 1 to 256 or \"auto\", got %s",
                    scalar ? jn_ld_quote(ld, s, strlen(s)) : jn_ld_kind(value));
        return;
    }
    if (jn_ld_int(ld, value, "workers", 1, 256, &n))
        cfg->workers = (uint32_t)n;
}

static void jn_ld_set_escaped_slashes(struct jn_ld *ld, const struct jn_ld_key *key,
                                      yaml_node_t *value, void *obj)
{
    static const struct jn_ld_choice choices[] = {
        {"keep", JN_SLASH_KEEP},
        {"decode", JN_SLASH_DECODE},
        {"reject", JN_SLASH_REJECT},
    };
    int v;
    if (jn_ld_choose(ld, value, key->name, choices, JN_ARRAY_LEN(choices), &v))
        ((struct jn_cfg_http *)obj)->escaped_slashes = (enum jn_escaped_slash)v;
}

static void jn_ld_set_log_format(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                 void *obj)
{
    static const struct jn_ld_choice choices[] = {
        {"json", JN_LOGFMT_JSON},
        {"text", JN_LOGFMT_TEXT},
    };
    int v;
    if (jn_ld_choose(ld, value, key->name, choices, JN_ARRAY_LEN(choices), &v))
        ((struct jn_config *)obj)->access_log.format = (enum jn_log_format)v;
}

static void jn_ld_set_log_level(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                void *obj)
{
    static const struct jn_ld_choice choices[] = {
        {"error", JN_LOG_ERR},
        {"warn", JN_LOG_WARN},
        {"info", JN_LOG_INFO},
        {"debug", JN_LOG_DEBUG},
    };
    int v;
    if (jn_ld_choose(ld, value, key->name, choices, JN_ARRAY_LEN(choices), &v))
        ((struct jn_config *)obj)->error_log.level = v;
}

/* A log destination: "stdout", "stderr", "none" or a file path. */
static char *jn_ld_log_path(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value)
{
    return jn_ld_nonempty(ld, value, key->name, "\"stdout\", \"stderr\" or a file path");
}

static void jn_ld_set_access_log_path(struct jn_ld *ld, const struct jn_ld_key *key,
                                      yaml_node_t *value, void *obj)
{
    char *s = jn_ld_log_path(ld, key, value);
    if (s != NULL)
        ((struct jn_config *)obj)->access_log.path = s;
}

static void jn_ld_set_error_log_path(struct jn_ld *ld, const struct jn_ld_key *key,
                                     yaml_node_t *value, void *obj)
{
    char *s = jn_ld_log_path(ld, key, value);
    /* The error log is how every other failure is told: it cannot be off. */
    if (s != NULL && strcmp(s, "none") == 0) {
        jn_ld_error(ld, value, "%s: the error log cannot be disabled (use level: error)",
                    key->name);
        return;
    }
    if (s != NULL)
        ((struct jn_config *)obj)->error_log.path = s;
}

/* Reads value as an address into its text, sockaddr and canonical form. */
static bool jn_ld_address(struct jn_ld *ld, yaml_node_t *value, char **text,
                          struct sockaddr_storage *ss, socklen_t *len)
{
    const char *err = NULL;
    char *s = jn_ld_string(ld, value, "address", "an address");
    if (s == NULL)
        return false;
    if (jn_parse_address(s, ss, len, &err) != JN_OK) {
        jn_ld_error(ld, value, "address: invalid address %s: %s", jn_ld_quote(ld, s, strlen(s)),
                    err);
        return false;
    }
    *text = s;
    return true;
}

/* metrics: address: where /metrics is served without a token (the admin
 * listener serves it too, behind its token). */
static void jn_ld_set_metrics_address(struct jn_ld *ld, const struct jn_ld_key *key,
                                      yaml_node_t *value, void *obj)
{
    struct jn_cfg_metrics *m = obj;
    if (jn_ld_address(ld, value, &m->address, &m->addr, &m->addrlen))
        m->pos = jn_ld_pos(ld, value);
}

static void jn_ld_set_listener_address(struct jn_ld *ld, const struct jn_ld_key *key,
                                       yaml_node_t *value, void *obj)
{
    struct jn_cfg_listener *l = obj;
    jn_ld_address(ld, value, &l->address, &l->addr, &l->addrlen);
}

/* True for 0.0.0.0 and [::]: addresses to listen on, not to connect to. */
static bool jn_ld_is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static void jn_ld_set_server_address(struct jn_ld *ld, const struct jn_ld_key *key,
                                     yaml_node_t *value, void *obj)
{
    struct jn_cfg_server *s = obj;
    if (!jn_ld_address(ld, value, &s->address, &s->addr, &s->addrlen))
        return;
    if (jn_ld_is_wildcard(&s->addr)) {
        jn_ld_error(ld, value, "address: %s is a wildcard; a server needs a host to connect to",
                    jn_ld_quote(ld, s->address, strlen(s->address)));
        s->address = NULL;
    }
}

/* For duplicate detection: the canonical address, so that "localhost:80" and
 * "127.0.0.1:80" are seen as one. NULL when the address did not parse. */
static const char *jn_ld_canonical(struct jn_ld *ld, const char *text,
                                   const struct sockaddr_storage *ss)
{
    char buf[JN_ADDR_CANON_MAX];
    if (text == NULL)
        return NULL;
    jn_ld_canonical_address(ss, buf, sizeof(buf));
    return jn_ld_strdup(ld, buf, strlen(buf));
}

static void jn_ld_set_protocol(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                               void *obj)
{
    static const struct jn_ld_choice choices[] = {
        {"http", JN_PROTO_HTTP},
        {"tcp", JN_PROTO_TCP},
    };
    int v;
    if (jn_ld_choose(ld, value, key->name, choices, JN_ARRAY_LEN(choices), &v))
        ((struct jn_cfg_listener *)obj)->protocol = (enum jn_listener_protocol)v;
}

static void jn_ld_set_proxy_protocol(struct jn_ld *ld, const struct jn_ld_key *key,
                                     yaml_node_t *value, void *obj)
{
    static const struct jn_ld_choice choices[] = {
        {"v1", JN_PROXY_PROTOCOL_V1},
        {"v2", JN_PROXY_PROTOCOL_V2},
    };
    int v;
    if (jn_ld_choose(ld, value, key->name, choices, JN_ARRAY_LEN(choices), &v))
        ((struct jn_cfg_listener *)obj)->proxy_protocol = (enum jn_proxy_protocol)v;
}

/* The name is resolved once every upstream is read (they may come later in
 * the file), so its position is kept for the messages. */
static void jn_ld_set_listener_upstream(struct jn_ld *ld, const struct jn_ld_key *key,
                                        yaml_node_t *value, void *obj)
{
    struct jn_cfg_listener *l = obj;
    jn_ld_set_name(ld, key, value, &l->upstream_name);
    l->upstream_pos = jn_ld_pos(ld, value);
}

enum { JN_LS_NAME, JN_LS_ADDRESS, JN_LS_PROTOCOL, JN_LS_UPSTREAM, JN_LS_PROXY_PROTOCOL, JN_LS_TLS };
static const struct jn_ld_key jn_listener_keys[] = {
    [JN_LS_NAME] = JN_LD_REQ("name", jn_ld_set_name, offsetof(struct jn_cfg_listener, name)),
    [JN_LS_ADDRESS] = JN_LD_REQ("address", jn_ld_set_listener_address, 0),
    [JN_LS_PROTOCOL] = JN_LD_KEY("protocol", jn_ld_set_protocol, 0),
    [JN_LS_UPSTREAM] = JN_LD_KEY("upstream", jn_ld_set_listener_upstream, 0),
    [JN_LS_PROXY_PROTOCOL] = JN_LD_KEY("proxy_protocol", jn_ld_set_proxy_protocol, 0),
    [JN_LS_TLS] = JN_LD_KEY("tls", jn_ld_set_tls, 0),
};
static const struct jn_ld_table jn_listener_table = JN_LD_TABLE("listener", jn_listener_keys);

/* The keys that only a tcp listener takes, against its protocol. */
static void jn_ld_listener_protocol(struct jn_ld *ld, struct jn_cfg_listener *l, yaml_node_t *item,
                                    const struct jn_ld_found *found)
{
    if (l->protocol == JN_PROTO_TCP) {
        if (found[JN_LS_UPSTREAM].key == NULL)
            jn_ld_error(ld, item,
                        "missing required key 'upstream' in listener "
                                  "(protocol: tcp sends every connection to one upstream)");
        if (found[JN_LS_TLS].key != NULL)
            jn_ld_error(ld, found[JN_LS_TLS].key,
                        "tls: only used with protocol: http (a tcp listener relays bytes as "
                        "they are)");
        l->tls = NULL;
        return;
    }
    /* An invalid protocol was reported already; more would only add noise. */
    yaml_node_t *p = found[JN_LS_PROTOCOL].value;
    if (p != NULL &&
        (p->type != YAML_SCALAR_NODE || strcmp((const char *)p->data.scalar.value, "http") != 0))
        return;
    if (found[JN_LS_UPSTREAM].key != NULL)
        jn_ld_error(ld, found[JN_LS_UPSTREAM].key,
                    "upstream: only used with protocol: tcp (routes choose the upstream of "
                    "an http listener's requests)");
    if (found[JN_LS_PROXY_PROTOCOL].key != NULL)
        jn_ld_error(ld, found[JN_LS_PROXY_PROTOCOL].key,
                    "proxy_protocol: only used with protocol: tcp");
    l->upstream_name = NULL;
}

static void jn_ld_set_listeners(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                void *obj)
{
    struct jn_config *cfg = obj;
    if (!jn_ld_expect(ld, value, YAML_SEQUENCE_NODE, "listeners", "a list"))
        return;
    size_t n = jn_ld_seq_len(value);
    if (n == 0) {
        jn_ld_error(ld, value, "listeners: at least one listener is required");
        return;
    }
    struct jn_ld_name *names = jn_ld_calloc(ld, n, sizeof(*names));
    struct jn_ld_name *addrs = jn_ld_calloc(ld, n, sizeof(*addrs));
    cfg->listeners = jn_ld_calloc(ld, n, sizeof(*cfg->listeners));
    if (names == NULL || addrs == NULL || cfg->listeners == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        struct jn_ld_found found[JN_ARRAY_LEN(jn_listener_keys)];
        yaml_node_t *item = jn_ld_seq_item(ld, value, i);
        struct jn_cfg_listener *l = &cfg->listeners[cfg->nlisteners];
        if (item == NULL || !jn_ld_map(ld, item, &jn_listener_table, l, found))
            continue;
        l->pos = jn_ld_pos(ld, item);
        jn_ld_listener_protocol(ld, l, item, found);
        jn_ld_listener_tls(ld, l);
        names[cfg->nlisteners] = (struct jn_ld_name){l->name, found[JN_LS_NAME].value};
        addrs[cfg->nlisteners] = (struct jn_ld_name){jn_ld_canonical(ld, l->address, &l->addr),
                                                     found[JN_LS_ADDRESS].value};
        cfg->nlisteners++;
    }
    jn_ld_dups(ld, names, cfg->nlisteners, false, "listener name");
    jn_ld_dups(ld, addrs, cfg->nlisteners, false, "listener address");
}

/* Why up cannot balance TCP connections, or NULL when it can: a connection
 * carries no path, header or cookie, and no response time to learn from. */
static const char *jn_ld_tcp_balance_error(const struct jn_cfg_upstream *up)
{
    if (up->hash_key != NULL && strcmp(up->hash_key, "client_ip") != 0)
        return "hashes a part of HTTP requests (a tcp listener can only hash client_ip)";
    if (strcmp(up->balance, "ewma") == 0)
        return "balances by HTTP response time (ewma); use least_conn or p2c for tcp";
    if (up->sticky.cookie != NULL)
        return "has sticky cookies, which need HTTP";
    if (up->tls != NULL)
        return "has tls:, which a tcp listener does not speak (it relays bytes as they are)";
    if (up->protocol != JN_UPSTREAM_HTTP1)
        return "speaks HTTP/2, which a tcp listener does not (it relays bytes as they are)";
    return NULL;
}

/* Resolves each tcp listener's upstream; upstreams are read by now. */
static void jn_ld_listener_upstreams(struct jn_ld *ld)
{
    struct jn_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct jn_cfg_listener *l = &cfg->listeners[i];
        if (l->protocol != JN_PROTO_TCP || l->upstream_name == NULL)
            continue;
        l->upstream = jn_cfg_find_upstream(cfg, l->upstream_name);
        const char *name = jn_ld_quote(ld, l->upstream_name, strlen(l->upstream_name));
        const char *why = l->upstream != NULL ? jn_ld_tcp_balance_error(l->upstream) : NULL;
        if (l->upstream == NULL)
            jn_ld_error_at(ld, l->upstream_pos, "upstream: unknown upstream %s", name);
        else if (why != NULL)
            jn_ld_error_at(ld, l->upstream_pos, "upstream: %s %s", name, why);
    }
}

static const struct jn_ld_key jn_server_keys[] = {
    JN_LD_REQ("address", jn_ld_set_server_address, 0),
    JN_LD_NUM("weight", jn_ld_set_u32, offsetof(struct jn_cfg_server, weight), 1, 1000),
    JN_LD_KEY("drain", jn_ld_set_bool, offsetof(struct jn_cfg_server, drain)),
};
static const struct jn_ld_table jn_server_table = JN_LD_TABLE("server", jn_server_keys);

static void jn_ld_set_servers(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    struct jn_cfg_upstream *up = obj;
    if (!jn_ld_expect(ld, value, YAML_SEQUENCE_NODE, "servers", "a list"))
        return;
    size_t n = jn_ld_seq_len(value);
    if (n == 0) {
        jn_ld_error(ld, value, "servers: an upstream needs at least one server");
        return;
    }
    struct jn_ld_name *addrs = jn_ld_calloc(ld, n, sizeof(*addrs));
    up->servers = jn_ld_calloc(ld, n, sizeof(*up->servers));
    if (addrs == NULL || up->servers == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        struct jn_ld_found found[JN_ARRAY_LEN(jn_server_keys)];
        yaml_node_t *item = jn_ld_seq_item(ld, value, i);
        struct jn_cfg_server *s = &up->servers[up->nservers];
        s->weight = 1;
        if (item == NULL || !jn_ld_map(ld, item, &jn_server_table, s, found))
            continue;
        s->pos = jn_ld_pos(ld, item);
        addrs[up->nservers++] =
            (struct jn_ld_name){jn_ld_canonical(ld, s->address, &s->addr), found[0].value};
    }
    jn_ld_dups(ld, addrs, up->nservers, false, "server address");
}

static void jn_ld_set_balance(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "an algorithm name");
    if (s == NULL)
        return;
    if (!jn_lb_known(s)) {
        jn_ld_error(ld, value, "balance: unknown algorithm %s", jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    ((struct jn_cfg_upstream *)obj)->balance = s;
}

/* True when name is a header or cookie name: an HTTP token. */
static bool jn_ld_hash_name_ok(const char *kind, const char *name)
{
    if (strcmp(kind, "query:") == 0)
        return name[0] != '\0';
    return jn_ld_is_token(name, strlen(name));
}

static void jn_ld_set_hash_key(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                               void *obj)
{
    static const char *const kinds[] = {"header:", "cookie:", "query:"};
    char *s = jn_ld_string(ld, value, key->name, "a hash key");
    if (s == NULL)
        return;
    bool ok = strcmp(s, "client_ip") == 0 || strcmp(s, "path") == 0;
    for (size_t i = 0; !ok && i < JN_ARRAY_LEN(kinds); i++) {
        size_t n = strlen(kinds[i]);
        ok = strncmp(s, kinds[i], n) == 0 && jn_ld_hash_name_ok(kinds[i], s + n);
    }
    if (!ok) {
        jn_ld_error(ld, value,
                    "hash_key: invalid value %s (expected client_ip, path, header:NAME, "
                    "cookie:NAME or query:NAME)",
                    jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    ((struct jn_cfg_upstream *)obj)->hash_key = s;
}

static bool jn_ld_is_prime(int64_t n)
{
    if (n < 2)
        return false;
    for (int64_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

static void jn_ld_set_table_size(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                 void *obj)
{
    int64_t v;
    if (!jn_ld_int(ld, value, key->name, key->min, key->max, &v))
        return;
    /* Maglev's permutations visit every slot only when the size is prime. */
    if (!jn_ld_is_prime(v)) {
        jn_ld_error(ld, value, "%s: %" PRId64 " is not a prime number (try 65537 or 1000003)",
                    key->name, v);
        return;
    }
    ((struct jn_cfg_upstream *)obj)->hash_table_size = (uint32_t)v;
}

static void jn_ld_set_balance_factor(struct jn_ld *ld, const struct jn_ld_key *key,
                                     yaml_node_t *value, void *obj)
{
    int64_t v;
    if (!jn_ld_int(ld, value, key->name, key->min, key->max, &v))
        return;
    /* Below 100% the bounds would add up to less than the load itself. */
    if (v != 0 && v < 100) {
        jn_ld_error(ld, value, "%s: %" PRId64 " is below 100 (use 0 for no bound)", key->name, v);
        return;
    }
    ((struct jn_cfg_upstream *)obj)->hash_balance_factor = (uint32_t)v;
}

enum {
    JN_UP_BALANCE,
    JN_UP_KEEPALIVE,
    JN_UP_SERVERS,
    JN_UP_HASH_KEY,
    JN_UP_TABLE,
    JN_UP_FACTOR,
    JN_UP_HEALTH,
    JN_UP_OUTLIER,
    JN_UP_RETRIES,
    JN_UP_LIMITS,
    JN_UP_STICKY,
    JN_UP_SLOW_START,
    JN_UP_EWMA,
    JN_UP_TLS,
    JN_UP_PROTOCOL,
};
static const struct jn_ld_key jn_upstream_keys[] = {
    [JN_UP_BALANCE] = JN_LD_KEY("balance", jn_ld_set_balance, 0),
    [JN_UP_KEEPALIVE] = JN_LD_NUM("keepalive", jn_ld_set_u32,
                                  offsetof(struct jn_cfg_upstream, keepalive), 0, 10000),
    [JN_UP_SERVERS] = JN_LD_REQ("servers", jn_ld_set_servers, 0),
    [JN_UP_HASH_KEY] = JN_LD_KEY("hash_key", jn_ld_set_hash_key, 0),
    [JN_UP_TABLE] = JN_LD_NUM("hash_table_size", jn_ld_set_table_size, 0, 7, 1000003),
    [JN_UP_FACTOR] = JN_LD_NUM("hash_balance_factor", jn_ld_set_balance_factor, 0, 0, 100000),
    /* The policy sections: load_upstream.c. */
    [JN_UP_HEALTH] = JN_LD_KEY("health", jn_ld_set_health, 0),
    [JN_UP_OUTLIER] = JN_LD_KEY("outlier", jn_ld_set_outlier, 0),
    [JN_UP_RETRIES] = JN_LD_KEY("retries", jn_ld_set_retries, 0),
    [JN_UP_LIMITS] = JN_LD_KEY("limits", jn_ld_set_limits, 0),
    [JN_UP_STICKY] = JN_LD_KEY("sticky", jn_ld_set_sticky, 0),
    [JN_UP_SLOW_START] = JN_LD_NUM("slow_start", jn_ld_set_duration,
                                   offsetof(struct jn_cfg_upstream, slow_start), 0, JN_HOUR_MS),
    [JN_UP_EWMA] = JN_LD_KEY("ewma", jn_ld_set_ewma, 0),
    [JN_UP_TLS] = JN_LD_KEY("tls", jn_ld_set_upstream_tls, 0), /* load_tls.c */
    [JN_UP_PROTOCOL] = JN_LD_KEY("protocol", jn_ld_set_upstream_protocol, 0),
};
static const struct jn_ld_table jn_upstream_table = JN_LD_TABLE("upstream", jn_upstream_keys);

/* The hash_* keys against the algorithm, once both are read (either order). */
static void jn_ld_upstream_hash(struct jn_ld *ld, struct jn_cfg_upstream *up,
                                const struct jn_ld_found *found)
{
    yaml_node_t *balance = found[JN_UP_BALANCE].value;
    /* An unknown algorithm was reported already; its hash keys tell nothing. */
    if (balance != NULL && (balance->type != YAML_SCALAR_NODE ||
                            strcmp((const char *)balance->data.scalar.value, up->balance) != 0))
        return;
    if (!jn_lb_hashes(up->balance)) {
        for (size_t k = JN_UP_HASH_KEY; k <= JN_UP_FACTOR; k++)
            if (found[k].key != NULL)
                jn_ld_error(ld, found[k].key,
                            "%s: only used by balance: consistent_hash or ip_hash (balance is %s)",
                            jn_upstream_keys[k].name, up->balance);
        return;
    }
    bool ip = strcmp(up->balance, "ip_hash") == 0;
    if (ip && up->hash_key != NULL && strcmp(up->hash_key, "client_ip") != 0)
        jn_ld_error(ld, found[JN_UP_HASH_KEY].value,
                    "hash_key: ip_hash always hashes client_ip (use consistent_hash for %s)",
                    jn_ld_quote(ld, up->hash_key, strlen(up->hash_key)));
    else if (ip)
        up->hash_key = jn_ld_strdup(ld, "client_ip", strlen("client_ip"));
    else if (found[JN_UP_HASH_KEY].key == NULL)
        jn_ld_error(ld, balance,
                    "balance: consistent_hash needs a hash_key "
                                 "(client_ip, path, header:NAME, cookie:NAME or query:NAME)");
}

/* Reads one "name: {...}" entry of upstreams into cfg->upstreams. */
static void jn_ld_upstream(struct jn_ld *ld, yaml_node_t *key, yaml_node_t *value,
                           struct jn_ld_name *name)
{
    struct jn_config *cfg = ld->cfg;
    struct jn_cfg_upstream *up = &cfg->upstreams[cfg->nupstreams];
    const struct jn_ld_key name_key = JN_LD_KEY("upstream name", jn_ld_set_name, 0);
    jn_ld_set_name(ld, &name_key, key, &up->name);
    up->balance = jn_ld_strdup(ld, "round_robin", strlen("round_robin"));
    up->keepalive = 32;
    up->hash_table_size = 65537;
    jn_ld_upstream_defaults(ld, up);
    up->pos = jn_ld_pos(ld, key);
    struct jn_ld_found found[JN_ARRAY_LEN(jn_upstream_keys)];
    if (up->name == NULL || !jn_ld_map(ld, value, &jn_upstream_table, up, found))
        return;
    jn_ld_upstream_hash(ld, up, found);
    jn_ld_upstream_ewma(ld, up, found[JN_UP_BALANCE].value, found[JN_UP_EWMA].key);
    *name = (struct jn_ld_name){up->name, key};
    up->index = cfg->nupstreams++;
    jn_ld_upstream_tls(ld, up); /* counted first: the snapshot frees its context */
    jn_ld_upstream_protocol(ld, up, found[JN_UP_PROTOCOL].value, found[JN_UP_HEALTH].key);
}

static void jn_ld_set_upstreams(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                void *obj)
{
    struct jn_config *cfg = obj;
    if (!jn_ld_expect(ld, value, YAML_MAPPING_NODE, "upstreams", "a mapping of names"))
        return;
    size_t n = jn_ld_map_len(value);
    struct jn_ld_name *names = jn_ld_calloc(ld, n, sizeof(*names));
    cfg->upstreams = jn_ld_calloc(ld, n, sizeof(*cfg->upstreams));
    if (names == NULL || cfg->upstreams == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k, *v;
        jn_ld_map_pair(ld, value, i, &k, &v);
        if (v == NULL)
            break;
        jn_ld_upstream(ld, k, v, &names[cfg->nupstreams]);
    }
    jn_ld_dups(ld, names, cfg->nupstreams, false, "upstream");
}

static const struct jn_ld_key jn_timeout_keys[] = {
#define JN_TIMEOUT(f, min)                                                                         \
    JN_LD_NUM(#f, jn_ld_set_duration, offsetof(struct jn_cfg_timeouts, f), min, 24 * JN_HOUR_MS)
    JN_TIMEOUT(client_header, 1),
    JN_TIMEOUT(client_body, 1),
    JN_TIMEOUT(client_idle, 1),
    JN_TIMEOUT(upstream_connect, 1),
    JN_TIMEOUT(upstream_response, 1),
    JN_TIMEOUT(upstream_idle, 1),
    JN_TIMEOUT(drain, 0), /* 0: close at once on shutdown */
    JN_TIMEOUT(tunnel_idle, 1),
#undef JN_TIMEOUT
};
static const struct jn_ld_table jn_timeouts_table = JN_LD_TABLE("timeouts", jn_timeout_keys);

static const struct jn_ld_key jn_http_keys[] = {
    JN_LD_NUM("max_request_line", jn_ld_set_size32, offsetof(struct jn_cfg_http, max_request_line),
              64, 1 << 20),
    JN_LD_NUM("max_header_size", jn_ld_set_size32, offsetof(struct jn_cfg_http, max_header_size),
              256, 16 << 20),
    JN_LD_NUM("max_headers", jn_ld_set_u32, offsetof(struct jn_cfg_http, max_headers), 1, 1000),
    JN_LD_KEY("merge_slashes", jn_ld_set_bool, offsetof(struct jn_cfg_http, merge_slashes)),
    JN_LD_KEY("escaped_slashes", jn_ld_set_escaped_slashes, 0),
};
static const struct jn_ld_table jn_http_table = JN_LD_TABLE("http", jn_http_keys);

#define JN_H2_NUM(f, set, min, max) JN_LD_NUM(#f, set, offsetof(struct jn_cfg_http2, f), min, max)
static const struct jn_ld_key jn_http2_keys[] = {
    JN_LD_KEY("enabled", jn_ld_set_bool, offsetof(struct jn_cfg_http2, enabled)),
    JN_H2_NUM(max_concurrent_streams, jn_ld_set_u32, 1, 10000),
    JN_H2_NUM(max_header_list_size, jn_ld_set_size32, 1024, 16 << 20),
    /* RFC 9113 section 6.9.2: a window is at most 2^31-1 bytes. */
    JN_H2_NUM(initial_window_size, jn_ld_set_size32, 1024, 0x7fffffff),
    JN_H2_NUM(connection_window_size, jn_ld_set_size32, 65535, 0x7fffffff),
    JN_H2_NUM(max_continuations, jn_ld_set_u32, 0, 1000),
    JN_H2_NUM(reset_burst, jn_ld_set_u32, 1, 1000000),
    JN_H2_NUM(reset_rate, jn_ld_set_u32, 1, 1000000),
    JN_H2_NUM(max_control_frames, jn_ld_set_u32, 10, 1000000),
};
#undef JN_H2_NUM
static const struct jn_ld_table jn_http2_table = JN_LD_TABLE("http2", jn_http2_keys);

/* The log sections' setters write into struct jn_config itself. */
static const struct jn_ld_key jn_access_log_keys[] = {
    JN_LD_KEY("path", jn_ld_set_access_log_path, 0),
    JN_LD_KEY("format", jn_ld_set_log_format, 0),
};
static const struct jn_ld_table jn_access_log_table = JN_LD_TABLE("access_log", jn_access_log_keys);

static const struct jn_ld_key jn_error_log_keys[] = {
    JN_LD_KEY("path", jn_ld_set_error_log_path, 0),
    JN_LD_KEY("level", jn_ld_set_log_level, 0),
};
static const struct jn_ld_table jn_error_log_table = JN_LD_TABLE("error_log", jn_error_log_keys);

static const struct jn_ld_key jn_metrics_keys[] = {
    JN_LD_KEY("enabled", jn_ld_set_bool, offsetof(struct jn_cfg_metrics, enabled)),
    JN_LD_KEY("address", jn_ld_set_metrics_address, 0),
};
static const struct jn_ld_table jn_metrics_table = JN_LD_TABLE("metrics", jn_metrics_keys);

enum { JN_TOP_ROUTES = 8, JN_TOP_CONSUMERS, JN_TOP_POLICIES };
static const struct jn_ld_key jn_top_keys[] = {
    JN_LD_KEY("workers", jn_ld_set_workers, 0),
    JN_LD_REQ("listeners", jn_ld_set_listeners, 0),
    JN_LD_SUB("timeouts", offsetof(struct jn_config, timeouts), &jn_timeouts_table),
    JN_LD_SUB("http", offsetof(struct jn_config, http), &jn_http_table),
    JN_LD_SUB("http2", offsetof(struct jn_config, http2), &jn_http2_table),
    JN_LD_SUB("access_log", 0, &jn_access_log_table),
    JN_LD_SUB("error_log", 0, &jn_error_log_table),
    JN_LD_KEY("upstreams", jn_ld_set_upstreams, 0),
    [JN_TOP_ROUTES] = JN_LD_KEY("routes", NULL, 0), /* read last: see jn_ld_document */
    [JN_TOP_CONSUMERS] = JN_LD_KEY("consumers", NULL, 0),
    [JN_TOP_POLICIES] = JN_LD_KEY("policies", NULL, 0),
    JN_LD_KEY("trusted_proxies", jn_ld_set_trusted_proxies, 0),
    JN_LD_KEY("upgrade_socket", jn_ld_set_string, offsetof(struct jn_config, upgrade_socket)),
    JN_LD_KEY("admin", jn_ld_set_admin, 0), /* load_admin.c */
    JN_LD_SUB("metrics", offsetof(struct jn_config, metrics), &jn_metrics_table),
};
static const struct jn_ld_table jn_top_table = JN_LD_TABLE("the configuration", jn_top_keys);

/* The metrics listener cannot share a listener's address: one of the two
 * would not bind (or, with SO_REUSEPORT, would take half the other's
 * connections). */
static void jn_ld_check_metrics(struct jn_ld *ld)
{
    const struct jn_config *cfg = ld->cfg;
    char a[JN_ADDR_CANON_MAX], b[JN_ADDR_CANON_MAX];
    if (cfg->metrics.address == NULL)
        return;
    jn_ld_canonical_address(&cfg->metrics.addr, a, sizeof(a));
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].address == NULL)
            continue;
        jn_ld_canonical_address(&cfg->listeners[i].addr, b, sizeof(b));
        if (strcmp(a, b) == 0)
            jn_ld_error_at(ld, cfg->metrics.pos, "address: %s is also the address of listener %s",
                           cfg->metrics.address, cfg->listeners[i].name);
    }
}

void jn_ld_document(struct jn_ld *ld, yaml_node_t *root)
{
    struct jn_ld_found found[JN_ARRAY_LEN(jn_top_keys)];
    if (root == NULL) {
        jn_ld_error(ld, NULL, "the configuration is empty (at least one listener is required)");
        return;
    }
    if (!jn_ld_map(ld, root, &jn_top_table, ld->cfg, found))
        return;
    jn_ld_listener_upstreams(ld);
    jn_ld_check_metrics(ld);
    for (size_t i = 0; i < ld->cfg->nlisteners; i++)
        if (ld->cfg->listeners[i].tls != NULL && ld->cfg->listeners[i].tls->server != NULL)
            jn_tls_server_offer_h2(ld->cfg->listeners[i].tls->server, ld->cfg->http2.enabled);
    /* Routes name listeners and upstreams, which may come later in the file,
     * and check their paths against http's normalisation options. */
    /* Policies read consumers and upstreams; routes inherit the top-level policies. */
    if (found[JN_TOP_CONSUMERS].value != NULL)
        jn_ld_consumers(ld, found[JN_TOP_CONSUMERS].value);
    if (found[JN_TOP_POLICIES].value != NULL)
        jn_ld_top_policies(ld, found[JN_TOP_POLICIES].value);
    if (found[JN_TOP_ROUTES].value != NULL)
        jn_ld_routes(ld, found[JN_TOP_ROUTES].value);
}
