/* The filter chain walker and the policy registry. */
#include "policy/chain.h"

#include <string.h>

#include "admin/metrics.h"
#include "http/proxy.h"
#include "http/stream.h"

/* Every policy a configuration can name. The order here means nothing: a
 * route's chain runs in the order its policies: lists give. */
static const struct jn_policy_ops *const registry[] = {
    &jn_policy_ip_filter,
    &jn_policy_key_auth,
    &jn_policy_basic_auth,
    &jn_policy_acl,
    &jn_policy_jwt,
    &jn_policy_request_limits,
    &jn_policy_cors,
    &jn_policy_rate_limit,
    &jn_policy_concurrency_limit,
    &jn_policy_forward_auth,
};

const struct jn_policy_ops *jn_policy_find(const char *name)
{
    for (size_t i = 0; i < JN_ARRAY_LEN(registry); i++)
        if (registry[i]->parse != NULL && strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const char *jn_policy_names(void)
{
    static char names[512];
    if (names[0] == '\0') {
        size_t at = 0;
        for (size_t i = 0; i < JN_ARRAY_LEN(registry); i++) {
            if (registry[i]->parse == NULL)
                continue;
            size_t len = strlen(registry[i]->name);
            if (at + len + 3 >= sizeof(names))
                break;
            if (at > 0) {
                memcpy(names + at, ", ", 2);
                at += 2;
            }
            memcpy(names + at, registry[i]->name, len);
            at += len;
        }
        names[at] = '\0';
    }
    return names;
}

/* The per-stream slots, one per policy of the chain, made on first use. */
static void **slots(struct jn_stream *s)
{
    if (s->pstate == NULL)
        s->pstate = jn_arena_calloc(&s->arena, s->route->nchain, sizeof(void *));
    return s->pstate;
}

enum jn_filter_verdict jn_chain_request(struct jn_stream *s, struct jn_fields *fields)
{
    const struct jn_cfg_route *r = s->route;
    void **state = slots(s);
    if (state == NULL)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    for (; s->chain_at < r->nchain; s->chain_at++) {
        const struct jn_cfg_policy *p = r->chain[s->chain_at];
        if (p->ops->on_request == NULL)
            continue;
        s->chain_ran = (uint8_t)(s->chain_at + 1);
        enum jn_filter_verdict v = p->ops->on_request(s, fields, p->conf, &state[s->chain_at]);
        if (v == JN_FILTER_PAUSE)
            s->paused = true;
        if (v != JN_FILTER_CONTINUE)
            return v;
    }
    return JN_FILTER_CONTINUE;
}

void jn_chain_response(struct jn_stream *s, struct jn_http_response *resp, struct jn_fields *fields)
{
    if (s->route == NULL || s->pstate == NULL)
        return;
    for (size_t i = s->chain_ran; i-- > 0;) {
        const struct jn_cfg_policy *p = s->route->chain[i];
        if (p->ops->on_response != NULL)
            p->ops->on_response(s, resp, fields, p->conf, &s->pstate[i]);
    }
}

void jn_chain_resume(struct jn_stream *s)
{
    s->paused = false;
    s->chain_at++;
    jn_proxy_resume(s);
}

void jn_chain_end(struct jn_stream *s)
{
    if (s->route == NULL || s->pstate == NULL)
        return;
    if (s->paused) {
        s->paused = false;
        const struct jn_cfg_policy *p = s->route->chain[s->chain_at];
        if (p->ops->cancel != NULL)
            p->ops->cancel(s, p->conf, &s->pstate[s->chain_at]);
    }
    for (size_t i = s->chain_ran; i-- > 0;) {
        const struct jn_cfg_policy *p = s->route->chain[i];
        if (p->ops->on_done != NULL)
            p->ops->on_done(s, p->conf, &s->pstate[i]);
    }
    s->chain_ran = 0;
}

int jn_stream_var_set(struct jn_stream *s, const char *name, struct jn_slice value)
{
    struct jn_stream_var *v = jn_arena_alloc(&s->arena, sizeof(*v));
    char *copy = jn_arena_strndup(&s->arena, value.ptr ? value.ptr : "", value.len);
    if (v == NULL || copy == NULL)
        return JN_ENOMEM;
    *v = (struct jn_stream_var){name, {copy, value.len}, s->vars};
    s->vars = v;
    return 0;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

static struct jn_slice text(const char *s)
{
    return (struct jn_slice){s, strlen(s)};
}

struct jn_slice jn_stream_var_get(const struct jn_stream *s, const char *name, size_t len)
{
    for (const struct jn_stream_var *v = s->vars; v != NULL; v = v->next)
        if (name_is(name, len, v->name))
            return v->value;
    if (name_is(name, len, "consumer"))
        return s->consumer != NULL ? text(s->consumer->name) : (struct jn_slice){NULL, 0};
    if (name_is(name, len, "client_ip"))
        return text(s->client_ip);
    if (name_is(name, len, "request_id"))
        return text(s->request_id);
    return (struct jn_slice){NULL, 0};
}

enum jn_filter_verdict jn_policy_reject(struct jn_stream *s, uint16_t status, const char *msg,
                                        const struct jn_http_field *extra, size_t nextra)
{
    jn_metrics_policy_rejected(s, status);
    jn_stream_respond_error_with(s, status, msg, extra, nextra);
    return JN_FILTER_RESPOND;
}

static int start_list(const struct jn_cfg_policy *v, size_t n, const struct jn_config *cfg)
{
    for (size_t i = 0; i < n; i++)
        if (!v[i].disabled && v[i].ops->start != NULL && v[i].ops->start(v[i].conf, cfg) != 0)
            return -1;
    return 0;
}

int jn_policies_start(const struct jn_config *cfg)
{
    if (start_list(cfg->policies, cfg->npolicies, cfg) != 0)
        return -1;
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (start_list(cfg->routes[i].policies, cfg->routes[i].npolicies, cfg) != 0)
            return -1;
    return 0;
}
