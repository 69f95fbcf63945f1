/* ip_filter: allows or denies by the client address (as trusted_proxies
 * decides it), IPv4 and IPv6. deny wins over allow; with an allow list, an
 * address on neither list is denied (nginx allow/deny, read as sets). */
#include "config/load.h"
#include "http/stream.h"
#include "policy/chain.h"

struct ip_filter {
    struct jn_cidr *allow, *deny;
    size_t nallow, ndeny;
};

static void set_allow(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct ip_filter *f = obj;
    jn_ld_cidr_list(ld, value, key->name, &f->allow, &f->nallow);
}

static void set_deny(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct ip_filter *f = obj;
    jn_ld_cidr_list(ld, value, key->name, &f->deny, &f->ndeny);
}

static const struct jn_ld_key keys[] = {
    JN_LD_KEY("allow", set_allow, 0),
    JN_LD_KEY("deny", set_deny, 0),
};
static const struct jn_ld_table table = JN_LD_TABLE("ip_filter", keys);

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct ip_filter *f = jn_ld_calloc(ld, 1, sizeof(*f));
    size_t before = ld->nerrors;
    if (f == NULL || !jn_ld_map(ld, value, &table, f, NULL) || ld->nerrors != before)
        return NULL;
    if (f->nallow == 0 && f->ndeny == 0) {
        jn_ld_error(ld, value, "ip_filter: needs allow, deny or both");
        return NULL;
    }
    return f;
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    (void)fields, (void)state;
    const struct ip_filter *f = conf;
    const struct jn_ip *ip = &s->client_addr;
    bool denied = ip->family == 0 || jn_cidr_any(f->deny, f->ndeny, ip) ||
                  (f->nallow > 0 && !jn_cidr_any(f->allow, f->nallow, ip));
    return denied ? jn_policy_reject(s, 403, "forbidden", NULL, 0) : JN_FILTER_CONTINUE;
}

const struct jn_policy_ops jn_policy_ip_filter = {
    .name = "ip_filter",
    .parse = parse,
    .on_request = on_request,
};
