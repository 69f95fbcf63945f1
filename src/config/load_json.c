/* The configuration document as JSON, for the admin API's GET /config: built
 * once at load from libyaml's node tree (so it shows exactly what the file
 * said, defaults left out), with every secret replaced by "<redacted>". */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/load.h"
#include "core/common.h"

#define JN_JSON_MAX_DEPTH 64
/* Node visits allowed beyond the node count, as the loader allows aliases. */
#define JN_JSON_ALIAS_BUDGET 400000

/* Keys whose value is a credential wherever they appear. */
static const char *const secret_keys[] = {
    "password", "password_hash", "secret", "token", "api_key", "private_key",
};

/* Words that make a header or query parameter value a credential. */
static const char *const secret_words[] = {
    "auth", "cookie", "token", "secret", "key", "password", "session",
};

static bool jn_json_contains_nocase(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (; *s != '\0'; s++)
        if (strncasecmp(s, word, n) == 0)
            return true;
    return false;
}

static bool jn_json_has_ancestor(const char *const *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] != NULL && strcmp(keys[i], name) == 0)
            return true;
    return false;
}

bool jn_cfg_is_secret(const char *const *keys, size_t n)
{
    if (n == 0 || keys[n - 1] == NULL)
        return false;
    const char *last = keys[n - 1];
    for (size_t i = 0; i < JN_ARRAY_LEN(secret_keys); i++)
        if (strcmp(last, secret_keys[i]) == 0)
            return true;
    /* A consumer's api_keys items: { key: ... } or { sha256: ... }. */
    if ((strcmp(last, "key") == 0 || strcmp(last, "sha256") == 0) &&
        jn_json_has_ancestor(keys, n - 1, "api_keys"))
        return true;
    /* Header and query values: request_headers set/add, respond headers,
     * match headers/query. The name tells whether it carries a credential. */
    const char *parent = n >= 2 ? keys[n - 2] : NULL;
    if (parent == NULL || (strcmp(parent, "set") != 0 && strcmp(parent, "add") != 0 &&
                           strcmp(parent, "headers") != 0 && strcmp(parent, "query") != 0))
        return false;
    for (size_t i = 0; i < JN_ARRAY_LEN(secret_words); i++)
        if (jn_json_contains_nocase(last, secret_words[i]))
            return true;
    return false;
}

struct jn_json_walk {
    struct jn_ld *ld;
    const char *keys[JN_JSON_MAX_DEPTH];
    size_t depth;
    size_t budget;
};

static bool jn_json_is_int(const char *s)
{
    const char *p = s + (*s == '-');
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18)
        return false;
    return !(p[0] == '0' && p[1] != '\0'); /* 0755 is text to YAML 1.2 readers too */
}

/* A plain scalar typed as the loader reads it: booleans, integers, null;
 * anything quoted is a string. */
static json_t *jn_json_scalar(const yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
            return json_true();
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
            return json_false();
        if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0)
            return json_null();
        if (jn_json_is_int(s))
            return json_integer(strtoll(s, NULL, 10));
    }
    return json_stringn(s, len); /* NULL when not UTF-8: the caller says so */
}

static json_t *jn_json_node(struct jn_json_walk *w, int id);

static json_t *jn_json_sequence(struct jn_json_walk *w, const yaml_node_t *node)
{
    json_t *arr = json_array();
    w->keys[w->depth++] = NULL;
    for (yaml_node_item_t *it = node->data.sequence.items.start;
         arr != NULL && it < node->data.sequence.items.top; it++)
        if (json_array_append_new(arr, jn_json_node(w, *it)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    w->depth--;
    return arr;
}

static json_t *jn_json_mapping(struct jn_json_walk *w, const yaml_node_t *node)
{
    json_t *obj = json_object();
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         obj != NULL && p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->ld->doc, p->key);
        const char *name = k != NULL && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value
                                                                    : "?";
        w->keys[w->depth++] = name;
        json_t *v = jn_cfg_is_secret(w->keys, w->depth) ? json_string("<redacted>")
                                                        : jn_json_node(w, p->value);
        w->depth--;
        if (v == NULL || json_object_set_new(obj, name, v) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

static json_t *jn_json_node(struct jn_json_walk *w, int id)
{
    yaml_node_t *node = yaml_document_get_node(w->ld->doc, id);
    if (node == NULL || w->budget == 0 || w->depth + 1 >= JN_JSON_MAX_DEPTH)
        return NULL;
    w->budget--;
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return jn_json_scalar(node);
    case YAML_SEQUENCE_NODE:
        return jn_json_sequence(w, node);
    case YAML_MAPPING_NODE:
        return jn_json_mapping(w, node);
    default:
        return NULL;
    }
}

void jn_ld_document_json(struct jn_ld *ld, yaml_node_t *root)
{
    if (root == NULL)
        return;
    struct jn_json_walk w = {
        .ld = ld,
        .budget = (size_t)(ld->doc->nodes.top - ld->doc->nodes.start) + JN_JSON_ALIAS_BUDGET,
    };
    /* The root's id: nodes are numbered from 1 in document order. */
    json_t *doc = jn_json_node(&w, (int)(root - ld->doc->nodes.start) + 1);
    if (doc == NULL)
        return; /* GET /config then says the document is not available */
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text != NULL)
        ld->cfg->json = jn_ld_strdup(ld, text, strlen(text));
    free(text);
}
