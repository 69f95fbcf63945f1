/* Reading YAML nodes for the loader: positions, typed scalars, the
 * table-driven mapping walker and the generic setters its tables use. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/load.h"
#include "core/common.h"

static void jn_ld_verror(struct jn_ld *ld, struct jn_cfg_pos pos, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    ld->nerrors++;
    jn_cfg_error(ld->errs, pos, "%s", msg);
}

void jn_ld_error(struct jn_ld *ld, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jn_ld_verror(ld, jn_ld_pos(ld, node), fmt, ap);
    va_end(ap);
}

void jn_ld_error_at(struct jn_ld *ld, struct jn_cfg_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jn_ld_verror(ld, pos, fmt, ap);
    va_end(ap);
}

static uint32_t jn_ld_clamp(size_t v)
{
    return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)v + 1;
}

struct jn_cfg_pos jn_ld_pos(const struct jn_ld *ld, const yaml_node_t *node)
{
    struct jn_cfg_pos pos = {ld->cfg->file, 1, 1};
    if (node != NULL) {
        /* libyaml counts from 0; people and editors count from 1. */
        pos.line = jn_ld_clamp(node->start_mark.line);
        pos.column = jn_ld_clamp(node->start_mark.column);
    }
    return pos;
}

yaml_node_t *jn_ld_node(struct jn_ld *ld, int id)
{
    /* Aliases let a small document name one node many times (and even
     * contain itself), so every visit is paid for from a budget sized for
     * the document without aliases plus a generous allowance. */
    if (ld->budget == 0) {
        if (!ld->exhausted)
            jn_ld_error(ld, NULL, "document too complex: aliases expand it beyond the limit");
        ld->exhausted = true;
        return NULL;
    }
    ld->budget--;
    return yaml_document_get_node(ld->doc, id);
}

size_t jn_ld_seq_len(const yaml_node_t *node)
{
    if (node == NULL || node->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

yaml_node_t *jn_ld_seq_item(struct jn_ld *ld, const yaml_node_t *node, size_t i)
{
    return jn_ld_node(ld, node->data.sequence.items.start[i]);
}

size_t jn_ld_map_len(const yaml_node_t *node)
{
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return 0;
    return (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
}

void jn_ld_map_pair(struct jn_ld *ld, const yaml_node_t *node, size_t i, yaml_node_t **key,
                    yaml_node_t **value)
{
    const yaml_node_pair_t *pair = &node->data.mapping.pairs.start[i];
    *key = jn_ld_node(ld, pair->key);
    *value = *key != NULL ? jn_ld_node(ld, pair->value) : NULL;
}

bool jn_ld_is_null(const yaml_node_t *node)
{
    if (node == NULL || node->type != YAML_SCALAR_NODE)
        return false;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)node->data.scalar.value;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *jn_ld_kind(const yaml_node_t *node)
{
    if (node == NULL)
        return "nothing";
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return jn_ld_is_null(node) ? "null" : "a string";
    default:
        return "nothing";
    }
}

bool jn_ld_expect(struct jn_ld *ld, const yaml_node_t *node, yaml_node_type_t type,
                  const char *name, const char *what)
{
    if (node != NULL && node->type == type && !jn_ld_is_null(node))
        return true;
    jn_ld_error(ld, node, "%s: expected %s, got %s", name, what, jn_ld_kind(node));
    return false;
}

const char *jn_ld_scalar(struct jn_ld *ld, const yaml_node_t *node, const char *name,
                         const char *what)
{
    if (!jn_ld_expect(ld, node, YAML_SCALAR_NODE, name, what))
        return NULL;
    const char *s = (const char *)node->data.scalar.value;
    /* A double-quoted "\0" puts a NUL inside; C strings would cut there. */
    if (strlen(s) != node->data.scalar.length) {
        jn_ld_error(ld, node, "%s: must not contain a NUL byte", name);
        return NULL;
    }
    return s;
}

char *jn_ld_string(struct jn_ld *ld, const yaml_node_t *node, const char *name, const char *what)
{
    const char *s = jn_ld_scalar(ld, node, name, what);
    return s != NULL ? jn_ld_strdup(ld, s, node->data.scalar.length) : NULL;
}

char *jn_ld_nonempty(struct jn_ld *ld, const yaml_node_t *node, const char *name, const char *what)
{
    char *s = jn_ld_string(ld, node, name, what);
    if (s != NULL && s[0] == '\0') {
        jn_ld_error(ld, node, "%s: must not be empty", name);
        return NULL;
    }
    return s;
}

/* Parses an optionally negative decimal integer; false on garbage or overflow. */
static bool jn_ld_parse_int(const char *s, int64_t *out)
{
    bool neg = s[0] == '-';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    size_t i = neg ? 1 : 0;
    if (s[i] == '\0')
        return false;
    for (; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* Negating in unsigned arithmetic keeps INT64_MIN well defined. */
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool jn_ld_int(struct jn_ld *ld, const yaml_node_t *node, const char *name, int64_t min,
               int64_t max, int64_t *out)
{
    int64_t v;
    const char *s = jn_ld_scalar(ld, node, name, "an integer");
    if (s == NULL)
        return false;
    /* A quoted "5" is a string in YAML; accepting it would hide typing mistakes. */
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !jn_ld_parse_int(s, &v)) {
        jn_ld_error(ld, node, "%s: expected an integer from %" PRId64 " to %" PRId64 ", got %s",
                    name, min, max, jn_ld_quote(ld, s, node->data.scalar.length));
        return false;
    }
    if (v < min || v > max) {
        jn_ld_error(ld, node, "%s: %" PRId64 " is out of range (%" PRId64 " to %" PRId64 ")", name,
                    v, min, max);
        return false;
    }
    *out = v;
    return true;
}

void jn_ld_oom(struct jn_ld *ld)
{
    if (!ld->oom)
        jn_ld_error(ld, NULL, "out of memory");
    ld->oom = true;
    ld->nerrors++; /* even when reported already: the load must fail */
}

void *jn_ld_calloc(struct jn_ld *ld, size_t n, size_t size)
{
    void *p = jn_arena_calloc(&ld->cfg->arena, n, size);
    if (p == NULL)
        jn_ld_oom(ld);
    return p;
}

void jn_ld_secret_param(struct jn_ld *ld, const char *name)
{
    struct jn_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->nsecret_params; i++)
        if (strcmp(cfg->secret_params[i], name) == 0)
            return;
    /* A few names at most: the array is copied on each one. */
    const char **v = jn_ld_calloc(ld, cfg->nsecret_params + 1, sizeof(*v));
    if (v == NULL)
        return;
    for (size_t i = 0; i < cfg->nsecret_params; i++)
        v[i] = cfg->secret_params[i];
    v[cfg->nsecret_params] = name;
    cfg->secret_params = v;
    cfg->nsecret_params++;
}

char *jn_ld_strdup(struct jn_ld *ld, const char *s, size_t len)
{
    char *p = jn_ld_calloc(ld, 1, len + 1);
    if (p != NULL)
        memcpy(p, s, len);
    return p;
}

const char *jn_ld_quote(struct jn_ld *ld, const char *s, size_t len)
{
    enum { SHOWN = 60 };
    char buf[SHOWN * 4 + 8];
    size_t o = 0, i = 0;
    buf[o++] = '\'';
    for (; i < len && i < SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (i < len) {
        /* Cut at a character boundary so the message stays valid UTF-8. */
        while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
            o--;
        if (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
            o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    char *q = jn_ld_strdup(ld, buf, o);
    return q != NULL ? q : "'?'";
}

bool jn_ld_on_free(struct jn_ld *ld, void (*fn)(void *), void *arg)
{
    struct jn_cfg_cleanup *c = jn_ld_calloc(ld, 1, sizeof(*c));
    if (c == NULL)
        return false;
    *c = (struct jn_cfg_cleanup){fn, arg, ld->cfg->cleanups};
    ld->cfg->cleanups = c;
    return true;
}
