/* The configuration snapshot: an immutable tree built from YAML, owned by one
 * arena, shared read-only by every worker and freed when its last user ends.
 * Nothing here may assume it is the only or the last snapshot (reload swaps
 * snapshots at run time). */
#ifndef JN_CONFIG_CONFIG_H
#define JN_CONFIG_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/arena.h"
#include "net/cidr.h"

struct jn_router;   /* route/router.h */
struct jn_tls_server; /* tls/tls.h */
struct jn_tls_client; /* tls/tls_client.h */
struct pcre2_real_code_8;

/* Where a value came from, for error messages: "file:line:column". */
struct jn_cfg_pos {
    const char *file; /* borrowed from the snapshot */
    uint32_t line;    /* 1-based */
    uint32_t column;  /* 1-based */
};

/* Collected configuration errors: every one is reported, then load fails. */
struct jn_cfg_errors {
    char **msgs; /* owned: each "file:line:col: message", malloc'd */
    size_t count;
    size_t cap;
};

/* Appends "file:line:col: message" (just "file: message" when pos.line is 0,
 * for the whole file). errs may be NULL. After 1000 messages the last one says
 * "too many errors" and later ones are dropped. */
void jn_cfg_error(struct jn_cfg_errors *errs, struct jn_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void jn_cfg_errors_free(struct jn_cfg_errors *errs);

/* One piece of a header value template: literal bytes, or a variable's name
 * ("client_ip", "jwt.sub") whose value is looked up per request. */
struct jn_cfg_tmpl_part {
    const char *text; /* in the snapshot */
    size_t len;
    bool var;
};

/* A header value with ${variables}, split at load (docs/policies.md); the
 * item's value keeps its source text. */
struct jn_cfg_tmpl {
    struct jn_cfg_tmpl_part *parts;
    size_t nparts;
};

struct jn_cfg_kv {
    char *name;
    char *value;
    size_t value_len;
};

/* set replaces any value of that name, add appends one, remove drops every one. */
struct jn_cfg_header_ops {
    struct jn_cfg_kv *set;
    size_t nset;
    struct jn_cfg_kv *add;
    size_t nadd;
    char **remove;
    size_t nremove;
    /* One per set (add) item: its value split at its ${variables}, nparts 0
     * when it has none (the item's value is then the literal). */
    struct jn_cfg_tmpl *set_tmpl, *add_tmpl;
    bool templated; /* some set or add value has variables */
};

enum jn_listener_protocol {
    JN_PROTO_HTTP, /* HTTP/1.1 requests, routed */
    JN_PROTO_TCP,  /* L4: each connection relayed to a server of one upstream */
};

/* The PROXY protocol header a tcp listener sends to the server first. */
enum jn_proxy_protocol { JN_PROXY_PROTOCOL_NONE, JN_PROXY_PROTOCOL_V1, JN_PROXY_PROTOCOL_V2 };

/* One certificate of a TLS listener: a PEM chain (leaf first) and its key. */
struct jn_cfg_tls_cert {
    char *cert; /* file path as written */
    char *key;
    struct jn_cfg_pos pos;      /* of the entry */
    struct jn_cfg_pos cert_pos; /* of each value, for error messages */
    struct jn_cfg_pos key_pos;
};

enum jn_tls_version { JN_TLS_1_2, JN_TLS_1_3 };

/* Client certificates (mTLS): none asked, or asked and verified. */
enum jn_tls_verify {
    JN_TLS_VERIFY_NONE,     /* no client_ca: no certificate is asked for */
    JN_TLS_VERIFY_REQUIRED, /* a valid certificate or no handshake */
    JN_TLS_VERIFY_OPTIONAL, /* asked for; verified when sent; none is fine */
};

/* A listener's tls: section (docs/tls.md). */
struct jn_cfg_tls {
    struct jn_cfg_tls_cert *certs; /* the first is the default */
    size_t ncerts;
    enum jn_tls_version min_version; /* default 1.2 */
    char *ciphers;      /* TLS 1.2 cipher list; NULL = Junction's modern default */
    char *ciphersuites; /* TLS 1.3 suites; NULL = OpenSSL's default */
    char *client_ca;                  /* PEM bundle of client CAs; NULL = no client certificate */
    enum jn_tls_verify verify_client; /* required when client_ca is set, unless written */
    char *client_subject_header;      /* forwards the verified subject; NULL = not forwarded */
    uint64_t ticket_key_rotation;     /* ms between session ticket key rotations, default 1h */
    struct jn_tls_server
        *server; /* owned: OpenSSL contexts made at load, freed with the snapshot */
    struct jn_cfg_pos ciphers_pos, ciphersuites_pos; /* for error messages */
    struct jn_cfg_pos client_ca_pos, verify_client_pos, client_subject_header_pos;
};

struct jn_cfg_listener {
    char *name;
    char *address; /* as written: "127.0.0.1:8080", "[::1]:8080", ":8080" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum jn_listener_protocol protocol;     /* default http */
    char *upstream_name;                    /* tcp only: where connections go, as written */
    struct jn_cfg_upstream *upstream;       /* borrowed: resolved from upstream_name */
    enum jn_proxy_protocol proxy_protocol;  /* tcp only; default none */
    struct jn_cfg_tls *tls;                 /* http only; NULL = plain text */
    struct jn_cfg_pos pos;
    struct jn_cfg_pos upstream_pos;         /* of upstream_name: resolved after upstreams */
    uint16_t metrics_slot;                  /* its counters (admin/metrics.h), kept across reloads */
};

struct jn_cfg_server {
    char *address; /* as written, "host:port"; a server's identity */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t weight; /* 1..1000, default 1 */
    bool drain;      /* no new requests; those in flight finish */
    struct jn_cfg_pos pos;
};

/* Active health checks (health:). One checker per upstream, in the health
 * thread; its verdicts are shared with every worker. */
struct jn_cfg_health {
    bool enabled;               /* health: present */
    bool tcp;                   /* type: tcp (connect only); default http */
    char *path;                 /* default "/" */
    char *host;                 /* Host of the check request; NULL = the server's address */
    uint64_t interval;          /* ms, default 5s */
    uint64_t timeout;           /* ms, default 1s */
    uint32_t healthy_threshold;   /* consecutive passes to come back, default 2 */
    uint32_t unhealthy_threshold; /* consecutive failures to leave, default 3 */
    uint16_t *expect_status;    /* NULL/0 = any 2xx or 3xx */
    size_t nexpect_status;
};

/* Passive health (outlier:): servers that keep failing real requests are
 * ejected for a while. */
struct jn_cfg_outlier {
    bool enabled;                 /* outlier: present */
    uint32_t consecutive_failures; /* default 5 */
    uint16_t *failure_status;     /* default 502, 503, 504 */
    size_t nfailure_status;
    uint64_t ejection_time;       /* ms, default 30s; doubles on repeated ejections */
    uint32_t max_ejected_percent; /* default 50 */
};

enum jn_retry_on {
    JN_RETRY_CONNECT = 1 << 0, /* connect_failure: nothing was sent, always safe */
    JN_RETRY_RESET = 1 << 1,   /* reset: the connection failed before a response */
    JN_RETRY_TIMEOUT = 1 << 2, /* timeout: no response head in time */
};

struct jn_cfg_retries {
    uint32_t attempts;      /* retries after the first try, default 1 */
    uint32_t on;            /* JN_RETRY_* bits, default connect_failure */
    uint16_t *status;       /* response statuses that are retried (5xx) */
    size_t nstatus;
    uint32_t budget_percent; /* retries as a share of recent requests, default 20 */
};

/* Circuit breaker per server (limits:). 0 = no limit. */
struct jn_cfg_limits {
    uint32_t max_connections; /* connections open to one server, idle ones included */
    uint32_t max_pending;     /* requests waiting for a connection to one server */
    uint64_t queue_timeout;   /* ms a request may wait, default 1s */
};

struct jn_cfg_sticky {
    char *cookie;   /* NULL = no session persistence */
    uint64_t ttl;   /* ms; 0 = a session cookie */
    char *secret;   /* keys the cookie value; NULL = derived from the upstream's name */
};

/* An upstream's tls: section (docs/tls.md): Junction speaks TLS to its
 * servers. */
struct jn_cfg_upstream_tls {
    bool verify; /* default true: the chain and the host name are checked */
    char *ca;    /* PEM CA file; NULL = the system's default store */
    char *sni;   /* name sent and checked; NULL = the server's host when it is a name */
    char *cert;  /* client certificate (PEM chain) shown to servers; NULL = none */
    char *key;   /* its key; set exactly when cert is */
    struct jn_tls_client *client;                     /* owned: the OpenSSL context made at load */
    struct jn_cfg_pos pos, ca_pos, cert_pos, key_pos; /* for error messages */
};

/* What an upstream's servers speak. */
enum jn_upstream_protocol {
    JN_UPSTREAM_HTTP1, /* HTTP/1.1 (the default) */
    JN_UPSTREAM_H2C,   /* HTTP/2 in clear text, prior knowledge */
    JN_UPSTREAM_H2,    /* HTTP/2 over the upstream's tls:, by ALPN */
};

struct jn_cfg_upstream {
    char *name;
    enum jn_upstream_protocol protocol; /* default http1 */
    char *balance; /* a name the balance registry knows, default "round_robin" */
    struct jn_cfg_server *servers;
    size_t nservers;
    uint32_t keepalive; /* idle connections kept per worker and server, default 32 */
    char *hash_key;     /* what hashing balancers hash ("header:X-User"); NULL = none */
    uint32_t hash_table_size;     /* Maglev lookup table size, a prime; default 65537 */
    uint32_t hash_balance_factor; /* bounded load, percent of the average (>= 100); 0 = unbounded */
    uint64_t ewma_decay;    /* ms, peak-EWMA time constant, default 10s */
    uint64_t ewma_initial_us; /* latency assumed for a server not measured yet, default 1ms */
    struct jn_cfg_health health;
    struct jn_cfg_outlier outlier;
    struct jn_cfg_retries retries;
    struct jn_cfg_limits limits;
    struct jn_cfg_sticky sticky;
    uint64_t slow_start;    /* ms to ramp a returning server from 10% to full weight; 0 = off */
    struct jn_cfg_upstream_tls *tls; /* NULL = plain text to the servers */
    size_t index;       /* position in jn_config.upstreams */
    uint16_t metrics_slot; /* its counters (admin/metrics.h), kept across reloads */
    struct jn_cfg_pos pos;
};

struct jn_cfg_match {
    char *host;        /* lower case, port-less; "*.example.com" wildcard; NULL = any */
    char *path;        /* exact; NULL = not set */
    char *path_prefix; /* segment-boundary prefix; NULL = not set */
    char *path_regex;  /* PCRE2 pattern; NULL = not set */
    struct pcre2_real_code_8 *regex; /* compiled path_regex, owned (freed with snapshot) */
    char **methods;    /* upper case; NULL/0 = any */
    size_t nmethods;
    struct jn_cfg_kv *headers; /* exact values; names matched case-insensitively */
    size_t nheaders;
    struct jn_cfg_kv *query; /* exact values of decoded query parameters */
    size_t nquery;
};

struct jn_cfg_rewrite {
    char *pattern; /* PCRE2 applied to the (stripped) normalised path */
    struct pcre2_real_code_8 *regex; /* owned */
    char *replace; /* template with $0..$9 */
};

struct jn_cfg_respond {
    bool enabled;
    uint16_t status;
    char *body;
    size_t body_len;
    struct jn_cfg_kv *headers;
    size_t nheaders;
};

struct jn_policy_ops;

/* One item of a policies: list (docs/policies.md). */
struct jn_cfg_policy {
    const struct jn_policy_ops *ops; /* static: from the registry in policy/chain.c */
    void *conf;                      /* the policy's own, in the snapshot (ops->free) */
    bool disabled;                   /* `disabled: true`: turns an inherited one off */
    struct jn_cfg_pos pos;
};

#define JN_MAX_CHAIN 32 /* policies on one route, route_headers included */

/* A caller known by its credentials (docs/policies.md). */
struct jn_cfg_consumer {
    char *name;
    char **groups;
    size_t ngroups;
    uint8_t (*key_digests)[32]; /* SHA-256 of each API key */
    size_t nkeys;
    char *basic_username;      /* NULL: no basic credentials */
    char *basic_password_hash; /* crypt(3) string: bcrypt "$2y$", "$2b$" */
    struct jn_cfg_pos pos;
};

struct jn_cfg_route {
    char *name;
    struct jn_cfg_match match;
    int32_t priority; /* higher first; default 0 */
    char *upstream_name;
    struct jn_cfg_upstream *upstream; /* borrowed: resolved from upstream_name */
    char *strip_prefix;
    struct jn_cfg_rewrite rewrite; /* pattern NULL = none */
    struct jn_cfg_header_ops request_headers;
    struct jn_cfg_header_ops response_headers;
    struct jn_cfg_respond respond;
    char **listeners; /* names of the listeners this route serves; NULL/0 = every one */
    size_t nlisteners;
    struct jn_cfg_policy *policies; /* the route's own policies: list */
    size_t npolicies;
    const struct jn_cfg_policy **chain; /* what runs: inherited and own, route_headers last */
    size_t nchain;
    size_t index; /* file order */
    uint16_t metrics_slot;          /* its counters (admin/metrics.h), kept across reloads */
    uint16_t *metrics_policy_slots; /* arena: one per chain item, for policy rejections */
    struct jn_cfg_pos pos;
};

enum jn_log_format { JN_LOGFMT_JSON, JN_LOGFMT_TEXT };

struct jn_cfg_timeouts { /* milliseconds */
    uint64_t client_header;     /* default 10s */
    uint64_t client_body;       /* default 30s */
    uint64_t client_idle;       /* default 60s */
    uint64_t upstream_connect;  /* default 5s */
    uint64_t upstream_response; /* default 60s */
    uint64_t upstream_idle;     /* default 60s */
    uint64_t drain;             /* default 10s: graceful shutdown limit */
    uint64_t tunnel_idle;       /* default 1h: silence in both directions of a tunnel */
};

enum jn_escaped_slash { JN_SLASH_KEEP, JN_SLASH_DECODE, JN_SLASH_REJECT };

struct jn_cfg_http {
    uint32_t max_request_line; /* default 8k, 414 beyond */
    uint32_t max_header_size;  /* default 32k, 431 beyond */
    uint32_t max_headers;      /* default 100, 431 beyond */
    bool merge_slashes;        /* default true */
    enum jn_escaped_slash escaped_slashes; /* default keep */
};

/* HTTP/2 on the client side (docs/http2.md). */
struct jn_cfg_http2 {
    bool enabled;                    /* default true: h2 by ALPN, h2c by prior knowledge */
    uint32_t max_concurrent_streams; /* default 100 */
    uint32_t max_header_list_size;   /* default 64k: decoded names + values + 32 each */
    uint32_t initial_window_size;    /* default 64k: request body bytes buffered per stream */
    uint32_t connection_window_size; /* default 1m: request body bytes buffered per connection */
    uint32_t max_continuations;      /* default 8: CONTINUATION frames per header block */
    uint32_t reset_burst;            /* default 200: streams a client may reset at once... */
    uint32_t reset_rate;             /* default 50: ...and per second after that */
    uint32_t max_control_frames;     /* default 1000: PING, SETTINGS, PRIORITY per second */
};

/* The admin listener (admin:, docs/operations.md). Its address is opened
 * once at start; the token lives in each snapshot, so a reload changes it. */
struct jn_cfg_admin {
    bool enabled;                 /* admin: present */
    char *address;                /* as written */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *token_file;             /* as written; NULL = no token: every API route refused */
    char *token;                  /* the file's bytes, trailing newline dropped (arena) */
    size_t token_len;
    struct jn_cfg_pos pos;
};

/* Something the snapshot owns outside its arena (a policy's key set, table,
 * thread), released by fn(arg) when the snapshot is freed, newest first. */
struct jn_cfg_cleanup {
    void (*fn)(void *arg);
    void *arg;
    struct jn_cfg_cleanup *next; /* in the arena */
};

struct jn_pool_state; /* health/state.h */
/* metrics: (docs/operations.md). */
struct jn_cfg_metrics {
    bool enabled;  /* default true; false: no counter is recorded */
    char *address; /* a listener serving only /metrics, without a token; NULL = none */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct jn_cfg_pos pos; /* of address */
};

struct jn_config {
    struct jn_arena arena; /* owns every string and array below (a derived
                              snapshot: only what it copied) */
    struct jn_cfg_cleanup *cleanups;
    /* A derived snapshot (runtime server changes, server/runtime.c) copies
     * the upstreams and shares everything else with the file's snapshot it
     * came from, of which it holds one reference; NULL for a file's. */
    struct jn_config *parent;
    /* Shared runtime state per upstream (health verdicts, ejections), made
     * when the snapshot is put in service (jn_pools_create), freed with it. */
    struct jn_pool_state *pools;
    _Atomic uint32_t refs; /* snapshot users; freed at 0 */
    uint64_t generation;
    char *file;
    uint32_t workers; /* 0 = auto (one per core) */
    struct jn_cfg_listener *listeners;
    size_t nlisteners;
    struct jn_cfg_timeouts timeouts;
    struct jn_cfg_http2 http2;
    struct jn_cfg_http http;
    struct {
        char *path; /* "stdout", "stderr", "none" or a file */
        enum jn_log_format format;
    } access_log;
    struct {
        char *path; /* "stderr", "stdout" or a file */
        int level;  /* JN_LOG_* from core/log.h, default info */
    } error_log;
    struct jn_cfg_metrics metrics;
    struct jn_cfg_upstream *upstreams;
    size_t nupstreams;
    struct jn_cfg_route *routes;
    size_t nroutes;
    struct jn_cfg_consumer *consumers;
    size_t nconsumers;
    struct jn_cidr *trusted_proxies; /* peers whose X-Forwarded-For names the client */
    size_t ntrusted_proxies;
    /* Query parameters that carry credentials (key_auth's query, jwt's
     * token_from query:): the access log leaves them out of every target. */
    const char **secret_params;
    size_t nsecret_params;
    struct jn_cfg_policy *policies; /* the top-level policies:, inherited by every route */
    size_t npolicies;
    struct jn_router *router; /* owned: built from routes at load */
    /* Where a binary upgrade takes the listening sockets from (docs/operations.md):
     * NULL = the configuration file's path + ".upgrade.sock"; "none" = no upgrades. */
    char *upgrade_socket;
    struct jn_cfg_admin admin;
    /* The document as JSON text, secrets replaced by "<redacted>", for the
     * admin API's GET /config (arena; NULL when it could not be built). */
    char *json;
};

/* True when the value at a path of mapping keys (keys[0] at the top, NULL
 * for a list item) holds a secret that GET /config must not show: API keys,
 * password hashes, secrets, tokens, credential-bearing header values. */
bool jn_cfg_is_secret(const char *const *keys, size_t n);
/* The length of a token file's bytes without one trailing "\n" or "\r\n". */
size_t jn_cfg_token_trim(const char *s, size_t len);

/* Loads and validates a file. On success returns a snapshot with one reference.
 * On failure returns NULL and fills errs with every error found (file:line:col). */
struct jn_config *jn_config_load_file(const char *path, struct jn_cfg_errors *errs);
/* Same from memory; name is used in error messages. */
struct jn_config *jn_config_load_buffer(const char *name, const char *data, size_t len,
                                        struct jn_cfg_errors *errs);

/* A new snapshot sharing everything of base (one reference taken on it)
 * except the upstreams array and its servers arrays, which are copied into
 * the new snapshot's arena so that they can be edited before it is put in
 * service. Returns NULL when out of memory. */
struct jn_config *jn_config_derive(struct jn_config *base);
/* Has fn(arg) run when cfg is freed (newest first). Before cfg is shared
 * only. Returns 0 or JN_ENOMEM (then fn is not registered). */
int jn_config_on_free(struct jn_config *cfg, void (*fn)(void *arg), void *arg);

void jn_config_ref(struct jn_config *cfg);
/* Drops one reference; frees the snapshot (router, regexes, arena) at zero. */
void jn_config_unref(struct jn_config *cfg);

/* "250ms", "2s", "1m", "1h" -> milliseconds. Returns 0 or JN_EINVAL. */
int jn_parse_duration(const char *s, uint64_t *out_ms);
/* The same with "us" also known, in microseconds: "500us", "1ms" -> 1000.
 * Returns 0 or JN_EINVAL (also when the value overflows). */
int jn_parse_duration_us(const char *s, uint64_t *out_us);
/* "512", "16k", "1m", "1g" -> bytes. Returns 0 or JN_EINVAL. */
int jn_parse_size(const char *s, uint64_t *out);
/* "host:port", "[v6]:port", ":port" -> sockaddr (numeric hosts and "localhost").
 * Returns 0 or JN_EINVAL with *err set to a static message. */
int jn_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **err);
/* True when a and b are the same IPv4 or IPv6 address and port (what a
 * listener or a server is known by across snapshots). */
bool jn_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* The upstream of cfg named name, or NULL. */
struct jn_cfg_upstream *jn_cfg_find_upstream(const struct jn_config *cfg, const char *name);
/* The index of up's server at addr, or -1. */
long jn_cfg_find_server(const struct jn_cfg_upstream *up, const struct sockaddr_storage *addr);

#endif
