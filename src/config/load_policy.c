/* The gateway sections of the configuration: consumers:, trusted_proxies:,
 * and the policies: lists, top-level and per route, from which each route's
 * chain is built (docs/policies.md). Each policy reads its own settings
 * through its parse op; this file only handles the list around them. */
#include <openssl/sha.h>
#include <string.h>

#include "config/load.h"
#include "core/common.h"
#include "policy/chain.h"

bool jn_ld_cidr_list(struct jn_ld *ld, yaml_node_t *node, const char *name, struct jn_cidr **out,
                     size_t *n)
{
    char **items;
    size_t count;
    if (!jn_ld_string_list(ld, node, name, NULL, true, &items, &count))
        return false;
    struct jn_cidr *v = jn_ld_calloc(ld, count ? count : 1, sizeof(*v));
    if (v == NULL)
        return false;
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        const char *err = NULL;
        if (!jn_cidr_parse(items[i], &v[i], &err)) {
            jn_ld_error(ld, jn_ld_seq_item(ld, node, i), "%s: %s: %s", name,
                        jn_ld_quote(ld, items[i], strlen(items[i])), err);
            ok = false;
        }
    }
    *out = v;
    *n = count;
    return ok;
}

void jn_ld_set_trusted_proxies(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                               void *obj)
{
    (void)key;
    struct jn_config *cfg = obj;
    jn_ld_cidr_list(ld, value, "trusted_proxies", &cfg->trusted_proxies, &cfg->ntrusted_proxies);
}

/* ---- consumers ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool jn_ld_sha256_hex(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

struct jn_ld_api_key {
    char *sha256;
    char *key;
};

static const struct jn_ld_key jn_api_key_keys[] = {
    JN_LD_KEY("sha256", jn_ld_set_string, offsetof(struct jn_ld_api_key, sha256)),
    JN_LD_KEY("key", jn_ld_set_string, offsetof(struct jn_ld_api_key, key)),
};
static const struct jn_ld_table jn_api_key_table = JN_LD_TABLE("api key", jn_api_key_keys);

static void jn_ld_api_key(struct jn_ld *ld, yaml_node_t *item, uint8_t digest[32], bool *ok)
{
    struct jn_ld_api_key k = {0};
    *ok = false;
    if (!jn_ld_map(ld, item, &jn_api_key_table, &k, NULL))
        return;
    if ((k.sha256 == NULL) == (k.key == NULL)) {
        jn_ld_error(ld, item, "api_keys: each key needs either sha256 or key (not both)");
    } else if (k.key != NULL) {
        if (k.key[0] == '\0')
            jn_ld_error(ld, item, "api_keys: key must not be empty");
        else {
            SHA256((const unsigned char *)k.key, strlen(k.key), digest);
            *ok = true;
        }
    } else if (!jn_ld_sha256_hex(k.sha256, digest)) {
        jn_ld_error(ld, item, "api_keys: sha256 must be 64 hexadecimal digits");
    } else {
        *ok = true;
    }
}

static void jn_ld_set_api_keys(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                               void *obj)
{
    (void)key;
    struct jn_cfg_consumer *c = obj;
    if (!jn_ld_expect(ld, value, YAML_SEQUENCE_NODE, "api_keys", "a list"))
        return;
    size_t n = jn_ld_seq_len(value);
    c->key_digests = jn_ld_calloc(ld, n ? n : 1, sizeof(*c->key_digests));
    if (c->key_digests == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = jn_ld_seq_item(ld, value, i);
        bool ok = false;
        if (item != NULL)
            jn_ld_api_key(ld, item, c->key_digests[c->nkeys], &ok);
        c->nkeys += ok;
    }
}

static const struct jn_ld_key jn_basic_keys[] = {
    JN_LD_REQ("username", jn_ld_set_string, offsetof(struct jn_cfg_consumer, basic_username)),
    JN_LD_REQ("password_hash", jn_ld_set_string,
              offsetof(struct jn_cfg_consumer, basic_password_hash)),
};
static const struct jn_ld_table jn_basic_table = JN_LD_TABLE("basic", jn_basic_keys);

static void jn_ld_set_groups(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                             void *obj)
{
    (void)key;
    struct jn_cfg_consumer *c = obj;
    jn_ld_string_list(ld, value, "groups", NULL, false, &c->groups, &c->ngroups);
}

/* bcrypt only: crypt(3)'s other methods are too fast to guess against. */
static void jn_ld_check_basic(struct jn_ld *ld, struct jn_cfg_consumer *c, yaml_node_t *node)
{
    const char *h = c->basic_password_hash;
    if (h == NULL || c->basic_username == NULL)
        return;
    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || strchr("aby", h[2]) == NULL || h[3] != '$')
        jn_ld_error(ld, node,
                    "basic: password_hash must be a bcrypt hash ($2y$, $2b$ or $2a$, "
                    "60 characters)");
    if (c->basic_username[0] == '\0' || strchr(c->basic_username, ':') != NULL)
        jn_ld_error(ld, node, "basic: username must be non-empty and hold no ':'");
}

enum { JN_CONS_NAME, JN_CONS_BASIC, JN_CONS_NKEYS = 4 };
static const struct jn_ld_key jn_consumer_keys[] = {
    [JN_CONS_NAME] = JN_LD_REQ("name", jn_ld_set_name, offsetof(struct jn_cfg_consumer, name)),
    [JN_CONS_BASIC] = JN_LD_SUB("basic", 0, &jn_basic_table),
    JN_LD_KEY("groups", jn_ld_set_groups, 0),
    JN_LD_KEY("api_keys", jn_ld_set_api_keys, 0),
};
static const struct jn_ld_table jn_consumer_table = JN_LD_TABLE("consumer", jn_consumer_keys);

/* No two consumers may share a name, a username or an API key: a
 * credential must name one caller. */
static void jn_ld_consumer_dups(struct jn_ld *ld, struct jn_ld_name *names, size_t n)
{
    struct jn_config *cfg = ld->cfg;
    jn_ld_dups(ld, names, n, false, "consumer name");
    for (size_t i = 0; i < cfg->nconsumers; i++) {
        const struct jn_cfg_consumer *a = &cfg->consumers[i];
        for (size_t j = 0; j < i; j++) {
            const struct jn_cfg_consumer *b = &cfg->consumers[j];
            if (a->basic_username && b->basic_username &&
                strcmp(a->basic_username, b->basic_username) == 0)
                jn_ld_error_at(ld, a->pos, "consumer %s: basic username already used by %s",
                               a->name, b->name);
            for (size_t x = 0; x < a->nkeys; x++)
                for (size_t y = 0; y < b->nkeys; y++)
                    if (memcmp(a->key_digests[x], b->key_digests[y], 32) == 0)
                        jn_ld_error_at(ld, a->pos, "consumer %s: API key already used by %s",
                                       a->name, b->name);
        }
    }
}

void jn_ld_consumers(struct jn_ld *ld, yaml_node_t *node)
{
    struct jn_config *cfg = ld->cfg;
    if (!jn_ld_expect(ld, node, YAML_SEQUENCE_NODE, "consumers", "a list"))
        return;
    size_t n = jn_ld_seq_len(node);
    cfg->consumers = jn_ld_calloc(ld, n ? n : 1, sizeof(*cfg->consumers));
    struct jn_ld_name *names = jn_ld_calloc(ld, n ? n : 1, sizeof(*names));
    if (cfg->consumers == NULL || names == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = jn_ld_seq_item(ld, node, i);
        struct jn_cfg_consumer *c = &cfg->consumers[cfg->nconsumers];
        struct jn_ld_found found[JN_CONS_NKEYS];
        if (item == NULL || !jn_ld_map(ld, item, &jn_consumer_table, c, found) || c->name == NULL)
            continue;
        c->pos = jn_ld_pos(ld, item);
        if (found[JN_CONS_BASIC].value != NULL)
            jn_ld_check_basic(ld, c, found[JN_CONS_BASIC].value);
        names[cfg->nconsumers++] = (struct jn_ld_name){c->name, found[JN_CONS_NAME].value};
    }
    jn_ld_consumer_dups(ld, names, cfg->nconsumers);
}

/* ---- policies: lists ---- */

/* `- name: {disabled: true}`: true when value says so (alone). */
static bool jn_ld_policy_disabled(struct jn_ld *ld, yaml_node_t *value, const char *name, bool *bad)
{
    *bad = false;
    if (value->type != YAML_MAPPING_NODE)
        return false;
    for (size_t i = 0; i < jn_ld_map_len(value); i++) {
        yaml_node_t *k, *v;
        jn_ld_map_pair(ld, value, i, &k, &v);
        if (k == NULL || k->type != YAML_SCALAR_NODE ||
            strcmp((const char *)k->data.scalar.value, "disabled") != 0)
            continue;
        const char *text =
            v != NULL && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";
        if (strcmp(text, "true") != 0 || jn_ld_map_len(value) != 1) {
            jn_ld_error(ld, k,
                        "%s: disabled is written `disabled: true` alone, to turn off "
                        "an inherited %s",
                        name, name);
            *bad = true;
            return false;
        }
        return true;
    }
    return false;
}

static bool jn_ld_policy_item(struct jn_ld *ld, yaml_node_t *item, struct jn_cfg_policy *p,
                              bool top)
{
    if (!jn_ld_expect(ld, item, YAML_MAPPING_NODE, "policies", "a one-key mapping"))
        return false;
    if (jn_ld_map_len(item) != 1) {
        jn_ld_error(ld, item,
                    "policies: each item is a one-key mapping (- key_auth: {...}), "
                    "got %zu keys",
                    jn_ld_map_len(item));
        return false;
    }
    yaml_node_t *k, *v;
    jn_ld_map_pair(ld, item, 0, &k, &v);
    const char *name = k ? jn_ld_scalar(ld, k, "policies", "a policy name") : NULL;
    if (name == NULL || v == NULL)
        return false;
    p->ops = jn_policy_find(name);
    p->pos = jn_ld_pos(ld, k);
    if (p->ops == NULL) {
        jn_ld_error(ld, k, "policies: unknown policy %s (known: %s)",
                    jn_ld_quote(ld, name, strlen(name)), jn_policy_names());
        return false;
    }
    bool bad;
    p->disabled = jn_ld_policy_disabled(ld, v, name, &bad);
    if (bad)
        return false;
    if (p->disabled && top) {
        jn_ld_error(ld, k, "%s: disabled belongs on a route, to turn off a top-level policy", name);
        return false;
    }
    if (p->disabled)
        return true;
    size_t before = ld->nerrors;
    p->conf = p->ops->parse(ld, v);
    if (p->conf == NULL && ld->nerrors == before)
        jn_ld_error(ld, v, "%s: invalid settings", name);
    if (p->conf != NULL && p->ops->free != NULL && !jn_ld_on_free(ld, p->ops->free, p->conf)) {
        p->ops->free(p->conf);
        p->conf = NULL;
    }
    return p->conf != NULL;
}

static void jn_ld_policy_list(struct jn_ld *ld, yaml_node_t *node, bool top,
                              struct jn_cfg_policy **out, size_t *n)
{
    if (!jn_ld_expect(ld, node, YAML_SEQUENCE_NODE, "policies", "a list"))
        return;
    size_t len = jn_ld_seq_len(node);
    if (len >= JN_MAX_CHAIN) {
        jn_ld_error(ld, node, "policies: at most %d items", JN_MAX_CHAIN - 1);
        return;
    }
    struct jn_cfg_policy *v = jn_ld_calloc(ld, len ? len : 1, sizeof(*v));
    if (v == NULL)
        return;
    *out = v;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = jn_ld_seq_item(ld, node, i);
        if (item != NULL && jn_ld_policy_item(ld, item, &v[*n], top))
            (*n)++;
    }
}

void jn_ld_top_policies(struct jn_ld *ld, yaml_node_t *node)
{
    jn_ld_policy_list(ld, node, true, &ld->cfg->policies, &ld->cfg->npolicies);
}

void jn_ld_set_route_policies(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                              void *obj)
{
    (void)key;
    struct jn_cfg_route *r = obj;
    jn_ld_policy_list(ld, value, false, &r->policies, &r->npolicies);
}

static const struct jn_cfg_policy jn_route_headers_item = {.ops = &jn_policy_route_headers};

/* The top-level policies in their order; a route's item of the same name
 * takes the place of the first inherited one not yet taken (so a route
 * re-configures key_auth without moving it after rate_limit), `disabled:
 * true` removes it, and the rest are appended. route_headers runs last. */
void jn_ld_route_chain(struct jn_ld *ld, struct jn_cfg_route *r, yaml_node_t *route_node)
{
    (void)route_node;
    const struct jn_config *cfg = ld->cfg;
    const struct jn_cfg_policy *chain[2 * JN_MAX_CHAIN];
    bool inherited[2 * JN_MAX_CHAIN];
    size_t n = 0;
    for (size_t i = 0; i < cfg->npolicies; i++, n++) {
        chain[n] = &cfg->policies[i];
        inherited[n] = true;
    }
    for (size_t i = 0; i < r->npolicies; i++) {
        const struct jn_cfg_policy *p = &r->policies[i];
        size_t at = n;
        for (size_t j = 0; j < n && at == n; j++)
            if (inherited[j] && chain[j] != NULL && chain[j]->ops == p->ops)
                at = j;
        if (at == n && p->disabled) {
            jn_ld_error_at(ld, p->pos, "%s: disabled, but no top-level %s is inherited to turn off",
                           p->ops->name, p->ops->name);
            continue;
        }
        chain[at] = p->disabled ? NULL : p;
        inherited[at] = false;
        n += at == n;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (chain[i] != NULL)
            chain[k++] = chain[i];
    if (k >= JN_MAX_CHAIN) {
        jn_ld_error_at(ld, r->pos, "route %s: at most %d policies apply to a route, got %zu",
                       r->name, JN_MAX_CHAIN - 1, k);
        return;
    }
    chain[k++] = &jn_route_headers_item;
    r->chain = jn_ld_calloc(ld, k, sizeof(*r->chain));
    if (r->chain == NULL)
        return;
    memcpy(r->chain, chain, k * sizeof(*chain));
    r->nchain = k;
}
