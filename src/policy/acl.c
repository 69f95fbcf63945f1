/* acl: lets a consumer through by its groups, after an authentication
 * policy (key_auth, basic_auth, jwt) named it: allow_groups passes a
 * consumer in any of them, deny_groups stops one in any of them. */
#include <string.h>

#include "config/load.h"
#include "http/stream.h"
#include "policy/chain.h"

struct acl {
    char **groups; /* the one list configured */
    size_t ngroups;
    bool allow; /* allow_groups; false: deny_groups */
};

enum { ACL_ALLOW, ACL_DENY, ACL_NKEYS };
static const struct jn_ld_key keys[] = {
    [ACL_ALLOW] = JN_LD_KEY("allow_groups", NULL, 0),
    [ACL_DENY] = JN_LD_KEY("deny_groups", NULL, 0),
};
static const struct jn_ld_table table = JN_LD_TABLE("acl", keys);

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct acl *a = jn_ld_calloc(ld, 1, sizeof(*a));
    struct jn_ld_found found[ACL_NKEYS];
    size_t before = ld->nerrors;
    if (a == NULL || !jn_ld_map(ld, value, &table, a, found) || ld->nerrors != before)
        return NULL;
    if ((found[ACL_ALLOW].value == NULL) == (found[ACL_DENY].value == NULL)) {
        jn_ld_error(ld, value, "acl: needs exactly one of allow_groups and deny_groups");
        return NULL;
    }
    a->allow = found[ACL_ALLOW].value != NULL;
    yaml_node_t *list = found[a->allow ? ACL_ALLOW : ACL_DENY].value;
    if (!jn_ld_string_list(ld, list, keys[a->allow ? ACL_ALLOW : ACL_DENY].name, NULL, false,
                           &a->groups, &a->ngroups))
        return NULL;
    return a;
}

static bool in_any(const struct jn_cfg_consumer *c, const struct acl *a)
{
    for (size_t i = 0; i < c->ngroups; i++)
        for (size_t j = 0; j < a->ngroups; j++)
            if (strcmp(c->groups[i], a->groups[j]) == 0)
                return true;
    return false;
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    (void)fields, (void)state;
    const struct acl *a = conf;
    if (s->consumer == NULL)
        return jn_policy_reject(s, 401, "authentication required", NULL, 0);
    if (in_any(s->consumer, a) != a->allow)
        return jn_policy_reject(s, 403, "forbidden", NULL, 0);
    return JN_FILTER_CONTINUE;
}

const struct jn_policy_ops jn_policy_acl = {
    .name = "acl",
    .parse = parse,
    .on_request = on_request,
};
