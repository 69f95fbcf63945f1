/* Internal to src/config: the state of one load and the helpers the loader's
 * files share (node access, typed readers, a table-driven mapping walker).
 * Nothing outside src/config includes this header. */
#ifndef JN_CONFIG_LOAD_H
#define JN_CONFIG_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"
#include "net/cidr.h"

/* One load in progress. Every error goes through jn_ld_error so that the
 * load fails when nerrors is not 0, even if the caller passed no errs. */
struct jn_ld {
    struct jn_config *cfg;      /* being filled; owns every string kept */
    struct jn_cfg_errors *errs; /* borrowed from the caller; may be NULL */
    yaml_document_t *doc;       /* borrowed: jn_config_load_buffer deletes it */
    size_t budget;              /* node visits left: bounds alias expansion */
    size_t nerrors;
    bool oom;       /* "out of memory" already reported */
    bool exhausted; /* budget exhaustion already reported */
};

struct jn_ld_key;
struct jn_ld_table;

/* Fills the field at key->offset of obj from value. Reports its own errors. */
typedef void jn_ld_set_fn(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                          void *obj);

/* One known key of a mapping, nginx-style: a generic setter and where it writes. */
struct jn_ld_key {
    const char *name;
    jn_ld_set_fn *set; /* NULL: the caller handles it from found[] */
    size_t offset;     /* of the field in obj */
    int64_t min;       /* bounds for numeric setters */
    int64_t max;
    const struct jn_ld_table *sub; /* keys of a nested section (jn_ld_set_section) */
    bool required;
};

/* Table entries: a key a setter fills at an offset (numbers with bounds). */
/* clang-format off */
#define JN_LD_KEY(key, setter, off) { .name = (key), .set = (setter), .offset = (off) }
#define JN_LD_REQ(key, setter, off) \
    { .name = (key), .set = (setter), .offset = (off), .required = true }
#define JN_LD_NUM(key, setter, off, lo, hi) \
    { .name = (key), .set = (setter), .offset = (off), .min = (lo), .max = (hi) }
#define JN_LD_SUB(key, off, table) \
    { .name = (key), .set = jn_ld_set_section, .offset = (off), .sub = (table) }
/* clang-format on */

struct jn_ld_table {
    const char *what; /* for messages: "route", "match", ... */
    const struct jn_ld_key *keys;
    size_t nkeys; /* at most JN_LD_MAX_KEYS */
};

/* clang-format off */
#define JN_LD_TABLE(what, keys) { (what), (keys), sizeof(keys) / sizeof((keys)[0]) }
/* clang-format on */

/* What jn_ld_map saw for each key of a table (both NULL when absent). */
struct jn_ld_found {
    yaml_node_t *key;
    yaml_node_t *value;
};

#define JN_LD_MAX_KEYS 24

/* An entry for duplicate detection: a name and where it was written. */
struct jn_ld_name {
    const char *text;
    const yaml_node_t *node;
};

/* load_node.c: access and typed reading of YAML nodes. */
void jn_ld_error(struct jn_ld *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like jn_ld_error, at a position kept from an earlier pass. */
void jn_ld_error_at(struct jn_ld *ld, struct jn_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct jn_cfg_pos jn_ld_pos(const struct jn_ld *ld, const yaml_node_t *node);
/* Returns the node of id, or NULL once the visit budget is spent (reported once). */
yaml_node_t *jn_ld_node(struct jn_ld *ld, int id);
size_t jn_ld_seq_len(const yaml_node_t *node);
yaml_node_t *jn_ld_seq_item(struct jn_ld *ld, const yaml_node_t *node, size_t i);
size_t jn_ld_map_len(const yaml_node_t *node);
void jn_ld_map_pair(struct jn_ld *ld, const yaml_node_t *node, size_t i, yaml_node_t **key,
                    yaml_node_t **value);
/* "a mapping", "a list", "null", "a string", for "expected X, got Y". */
const char *jn_ld_kind(const yaml_node_t *node);
bool jn_ld_is_null(const yaml_node_t *node);
/* Reports "NAME: expected WHAT, got KIND" unless node has the type. */
bool jn_ld_expect(struct jn_ld *ld, const yaml_node_t *node, yaml_node_type_t type,
                  const char *name, const char *what);
/* A scalar's text, checked to hold no NUL byte; NULL (reported) otherwise. */
const char *jn_ld_scalar(struct jn_ld *ld, const yaml_node_t *node, const char *name,
                         const char *what);
/* Like jn_ld_scalar, copied into the snapshot. */
char *jn_ld_string(struct jn_ld *ld, const yaml_node_t *node, const char *name, const char *what);
/* Like jn_ld_string, and an empty string is an error ("NAME: must not be
 * empty"); NULL on any error. */
char *jn_ld_nonempty(struct jn_ld *ld, const yaml_node_t *node, const char *name, const char *what);
bool jn_ld_int(struct jn_ld *ld, const yaml_node_t *node, const char *name, int64_t min,
               int64_t max, int64_t *out);
/* Has fn(arg) run when the snapshot is freed (a failed load's too). Returns
 * false when memory ran out (reported); the caller then releases arg itself. */
bool jn_ld_on_free(struct jn_ld *ld, void (*fn)(void *), void *arg);
/* Reports running out of memory (once) and makes the load fail. */
void jn_ld_oom(struct jn_ld *ld);
void *jn_ld_calloc(struct jn_ld *ld, size_t n, size_t size);
char *jn_ld_strdup(struct jn_ld *ld, const char *s, size_t len);
/* Records a query parameter that carries credentials (once per name), for
 * the access log to leave out (cfg->secret_params). name: in the snapshot. */
void jn_ld_secret_param(struct jn_ld *ld, const char *name);
/* A printable, shortened copy of s for messages (escapes control bytes). */
const char *jn_ld_quote(struct jn_ld *ld, const char *s, size_t len);

/* Walks a mapping: runs the setter of each known key on obj, reports unknown,
 * repeated and missing required keys. found (nkeys entries) may be NULL.
 * Returns false when node is not a mapping (reported). */
bool jn_ld_map(struct jn_ld *ld, yaml_node_t *node, const struct jn_ld_table *table, void *obj,
               struct jn_ld_found *found);
/* Reports every entry whose text equals an earlier one's ("duplicate WHAT"). */
void jn_ld_dups(struct jn_ld *ld, struct jn_ld_name *names, size_t n, bool nocase,
                const char *what);

/* Reads a non-empty list of distinct strings into an array (snapshot arena);
 * check (may be NULL) returns why an item is invalid, or NULL. */
bool jn_ld_string_list(struct jn_ld *ld, yaml_node_t *node, const char *name,
                       const char *(*check)(struct jn_ld *, char *), bool nocase, char ***out,
                       size_t *n);
/* load_policy.c: a non-empty list of CIDR ranges ("10.0.0.0/8", "::1"). */
bool jn_ld_cidr_list(struct jn_ld *ld, yaml_node_t *node, const char *name, struct jn_cidr **out,
                     size_t *n);
/* The top-level consumers:, trusted_proxies: and policies: sections. */
void jn_ld_consumers(struct jn_ld *ld, yaml_node_t *node);
jn_ld_set_fn jn_ld_set_trusted_proxies;
void jn_ld_top_policies(struct jn_ld *ld, yaml_node_t *node);
/* A route's policies: item list (obj is the struct jn_cfg_route); the chain
 * is built by jn_ld_route_chain once the route is read. */
jn_ld_set_fn jn_ld_set_route_policies;
void jn_ld_route_chain(struct jn_ld *ld, struct jn_cfg_route *r, yaml_node_t *route_node);

/* Generic setters for jn_ld_key tables. */
jn_ld_set_fn jn_ld_set_section;  /* nested mapping with key->sub, at offset */
jn_ld_set_fn jn_ld_set_string;   /* char *, any scalar without NUL */
jn_ld_set_fn jn_ld_set_name;     /* char *, [A-Za-z0-9._-]{1,64} */
jn_ld_set_fn jn_ld_set_bool;     /* bool */
jn_ld_set_fn jn_ld_set_u32;      /* uint32_t integer in [min, max] */
jn_ld_set_fn jn_ld_set_i32;      /* int32_t integer in [min, max] */
jn_ld_set_fn jn_ld_set_u16;      /* uint16_t integer in [min, max] */
jn_ld_set_fn jn_ld_set_size32;   /* uint32_t size ("16k") in [min, max] */
jn_ld_set_fn jn_ld_set_duration; /* uint64_t milliseconds in [min, max] */

/* load_check.c: validators shared by the sections. */
bool jn_ld_is_token(const char *s, size_t len);
bool jn_ld_is_name(const char *s);
/* Returns NULL when s is a valid match host, else why not. */
const char *jn_ld_host_error(const char *s);
/* Returns NULL when s is a path a normalised request path can equal, else why not. */
const char *jn_ld_path_error(const char *s, const struct jn_cfg_http *http);
/* Returns NULL when a header value may be sent as is, else why not. */
const char *jn_ld_header_value_error(const char *s, size_t len);
/* Writes the address in canonical form ("127.0.0.1:80", "[::1]:80") for comparisons. */
void jn_ld_canonical_address(const struct sockaddr_storage *ss, char *out, size_t cap);

/* load_upstream.c: the policy sections of an upstream (obj is the
 * struct jn_cfg_upstream) and their defaults. */
jn_ld_set_fn jn_ld_set_health;  /* health: present turns checks on */
jn_ld_set_fn jn_ld_set_outlier; /* outlier: present turns ejection on */
jn_ld_set_fn jn_ld_set_retries;
jn_ld_set_fn jn_ld_set_limits;
jn_ld_set_fn jn_ld_set_sticky;
jn_ld_set_fn jn_ld_set_ewma;
/* Sets every policy default of up (whether or not its sections are written). */
void jn_ld_upstream_defaults(struct jn_ld *ld, struct jn_cfg_upstream *up);
/* Once the upstream is read: reports ewma_key (the "ewma" key node, NULL when
 * absent) unless up balances with ewma. balance is the balance value or NULL. */
void jn_ld_upstream_ewma(struct jn_ld *ld, const struct jn_cfg_upstream *up,
                         const yaml_node_t *balance, const yaml_node_t *ewma_key);

/* load_tls.c: a listener's tls: section (obj is the struct jn_cfg_listener);
 * jn_ld_listener_tls then loads its certificates once the protocol is known. */
jn_ld_set_fn jn_ld_set_tls;
void jn_ld_listener_tls(struct jn_ld *ld, struct jn_cfg_listener *l);
/* An upstream's tls: section (obj is the struct jn_cfg_upstream);
 * jn_ld_upstream_tls then builds its OpenSSL context (CA file, client
 * certificate), reporting a file that cannot be used. */
jn_ld_set_fn jn_ld_set_upstream_tls;
jn_ld_set_fn jn_ld_set_upstream_protocol; /* load_upstream.c */
/* protocol: against tls: and health checks, once the whole upstream is read
 * (value: the protocol's node, NULL when absent; health: health's key). */
void jn_ld_upstream_protocol(struct jn_ld *ld, struct jn_cfg_upstream *up, yaml_node_t *value,
                             yaml_node_t *health);
void jn_ld_upstream_tls(struct jn_ld *ld, struct jn_cfg_upstream *up);

/* load_admin.c: the admin: section (obj is the struct jn_config). */
jn_ld_set_fn jn_ld_set_admin;
/* load_json.c: the document as redacted JSON text into ld->cfg->json. */
void jn_ld_document_json(struct jn_ld *ld, yaml_node_t *root);

/* load.c: reads the document (root may be NULL: empty) into ld->cfg, reporting every error. */
void jn_ld_document(struct jn_ld *ld, yaml_node_t *root);
/* load_route.c: reads the routes list; listeners, upstreams and http must be read already. */
void jn_ld_routes(struct jn_ld *ld, yaml_node_t *node);

#endif
