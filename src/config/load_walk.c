/* The loader's table-driven mapping walker, duplicate detection and the
 * generic setters that key tables point at. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/load.h"
#include "core/common.h"

/* "name, address" for "unknown key" messages: the fix is usually a typo. */
static void jn_ld_key_list(const struct jn_ld_table *t, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->nkeys && o < cap; i++) {
        int n = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", t->keys[i].name);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static int jn_ld_find_key(struct jn_ld *ld, const struct jn_ld_table *t, yaml_node_t *key)
{
    const char *name = jn_ld_scalar(ld, key, t->what, "a key name");
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < t->nkeys; i++)
        if (strcmp(t->keys[i].name, name) == 0)
            return (int)i;
    char known[512];
    jn_ld_key_list(t, known, sizeof(known));
    jn_ld_error(ld, key, "unknown key %s in %s (known keys: %s)",
                jn_ld_quote(ld, name, key->data.scalar.length), t->what, known);
    return -1;
}

bool jn_ld_map(struct jn_ld *ld, yaml_node_t *node, const struct jn_ld_table *table, void *obj,
               struct jn_ld_found *found)
{
    struct jn_ld_found seen[JN_LD_MAX_KEYS] = {0};
    assert(table->nkeys <= JN_LD_MAX_KEYS);
    if (!jn_ld_expect(ld, node, YAML_MAPPING_NODE, table->what, "a mapping"))
        return false;
    size_t n = jn_ld_map_len(node);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *key, *value;
        jn_ld_map_pair(ld, node, i, &key, &value);
        if (value == NULL)
            break; /* budget spent, reported */
        int k = jn_ld_find_key(ld, table, key);
        if (k < 0)
            continue;
        if (seen[k].key != NULL) {
            jn_ld_error(ld, key, "duplicate key '%s' in %s (first at line %" PRIu32 ")",
                        table->keys[k].name, table->what, jn_ld_pos(ld, seen[k].key).line);
            continue;
        }
        seen[k] = (struct jn_ld_found){key, value};
        if (table->keys[k].set != NULL)
            table->keys[k].set(ld, &table->keys[k], value, obj);
    }
    for (size_t k = 0; k < table->nkeys; k++)
        if (table->keys[k].required && seen[k].key == NULL && !ld->exhausted)
            jn_ld_error(ld, node, "missing required key '%s' in %s", table->keys[k].name,
                        table->what);
    if (found != NULL)
        memcpy(found, seen, table->nkeys * sizeof(*found));
    return true;
}

struct jn_ld_sorted {
    const char *text;
    size_t order;
};

static int jn_ld_cmp_case(const void *a, const void *b)
{
    const struct jn_ld_sorted *x = a, *y = b;
    int c = strcmp(x->text, y->text);
    return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

static int jn_ld_cmp_nocase(const void *a, const void *b)
{
    const struct jn_ld_sorted *x = a, *y = b;
    int c = strcasecmp(x->text, y->text);
    return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

void jn_ld_dups(struct jn_ld *ld, struct jn_ld_name *names, size_t n, bool nocase, const char *what)
{
    /* Sorting keeps this O(n log n): configurations with thousands of
     * routes or servers are normal. first[i] is the earlier twin of i. */
    if (n < 2)
        return;
    struct jn_ld_sorted *s = calloc(n, sizeof(*s));
    size_t *first = calloc(n, sizeof(*first));
    size_t m = 0;
    if (s == NULL || first == NULL) {
        jn_ld_oom(ld);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        first[i] = i;
        if (names[i].text != NULL)
            s[m++] = (struct jn_ld_sorted){names[i].text, i};
    }
    qsort(s, m, sizeof(*s), nocase ? jn_ld_cmp_nocase : jn_ld_cmp_case);
    for (size_t i = 1, run = 0; i < m; i++) {
        if ((nocase ? strcasecmp(s[run].text, s[i].text) : strcmp(s[run].text, s[i].text)))
            run = i;
        else
            first[s[i].order] = s[run].order;
    }
    for (size_t i = 0; i < n; i++)
        if (first[i] != i && names[i].text != NULL)
            jn_ld_error(ld, names[i].node, "duplicate %s %s (first at line %" PRIu32 ")", what,
                        jn_ld_quote(ld, names[i].text, strlen(names[i].text)),
                        jn_ld_pos(ld, names[first[i]].node).line);
out:
    free(s);
    free(first);
}

void jn_ld_set_section(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    jn_ld_map(ld, value, key->sub, (char *)obj + key->offset, NULL);
}

void jn_ld_set_string(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a string");
    if (s != NULL)
        *(char **)((char *)obj + key->offset) = s;
}

void jn_ld_set_name(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a name");
    if (s == NULL)
        return;
    if (!jn_ld_is_name(s)) {
        jn_ld_error(ld, value, "%s: invalid name %s (use 1 to 64 letters, digits, '.', '_', '-')",
                    key->name, jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    *(char **)((char *)obj + key->offset) = s;
}

void jn_ld_set_bool(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    const char *s = jn_ld_scalar(ld, value, key->name, "true or false");
    if (s == NULL)
        return;
    bool *field = (bool *)((char *)obj + key->offset);
    for (size_t i = 0; value->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && i < 3; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *field = strcmp(s, yes[i]) == 0;
            return;
        }
    }
    jn_ld_error(ld, value, "%s: expected true or false, got %s", key->name,
                jn_ld_quote(ld, s, strlen(s)));
}

void jn_ld_set_u32(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    int64_t v;
    if (jn_ld_int(ld, value, key->name, key->min, key->max, &v))
        *(uint32_t *)((char *)obj + key->offset) = (uint32_t)v;
}

void jn_ld_set_i32(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    int64_t v;
    if (jn_ld_int(ld, value, key->name, key->min, key->max, &v))
        *(int32_t *)((char *)obj + key->offset) = (int32_t)v;
}

void jn_ld_set_u16(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    int64_t v;
    if (jn_ld_int(ld, value, key->name, key->min, key->max, &v))
        *(uint16_t *)((char *)obj + key->offset) = (uint16_t)v;
}

void jn_ld_set_size32(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    uint64_t v;
    const char *s = jn_ld_scalar(ld, value, key->name, "a size");
    if (s == NULL)
        return;
    if (jn_parse_size(s, &v) != JN_OK) {
        jn_ld_error(ld, value,
                    "%s: invalid size %s (expected bytes with an optional k, m or g "
                    "suffix, as in 16k)",
                    key->name, jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    if (v < (uint64_t)key->min || v > (uint64_t)key->max) {
        jn_ld_error(ld, value, "%s: %s is out of range (%" PRId64 " to %" PRId64 " bytes)",
                    key->name, jn_ld_quote(ld, s, strlen(s)), key->min, key->max);
        return;
    }
    *(uint32_t *)((char *)obj + key->offset) = (uint32_t)v;
}

void jn_ld_set_duration(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                        void *obj)
{
    uint64_t v;
    const char *s = jn_ld_scalar(ld, value, key->name, "a duration");
    if (s == NULL)
        return;
    if (jn_parse_duration(s, &v) != JN_OK) {
        jn_ld_error(ld, value,
                    "%s: invalid duration %s (expected a number and a unit: ms, s, m "
                    "or h, as in 250ms or 10s)",
                    key->name, jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    if (v < (uint64_t)key->min || v > (uint64_t)key->max) {
        jn_ld_error(ld, value, "%s: %s is out of range (%" PRId64 "ms to %" PRId64 "ms)", key->name,
                    jn_ld_quote(ld, s, strlen(s)), key->min, key->max);
        return;
    }
    *(uint64_t *)((char *)obj + key->offset) = v;
}
