/* The filter chain: every request walks the policies of its route, in order;
 * each may let it continue, pause it (asynchronous work pending, resumed with
 * jn_chain_resume) or answer it. A policy is one file with a
 * `const struct jn_policy_ops` table and a line in chain.c's registry; the
 * configuration loader finds it there by name (docs/policies.md). */
#ifndef JN_POLICY_CHAIN_H
#define JN_POLICY_CHAIN_H

#include <stdbool.h>
#include <yaml.h>

#include "http/fields.h"
#include "http/msg.h"

struct jn_stream;
struct jn_ld;
struct jn_config;

enum jn_filter_verdict {
    JN_FILTER_CONTINUE = 0,
    JN_FILTER_PAUSE = 1,   /* the filter will call jn_chain_resume later */
    JN_FILTER_RESPOND = 2, /* the filter answered (jn_policy_reject, jn_stream_respond_error) */
};

/* Every hook is optional. conf is what parse returned (owned by the
 * configuration snapshot); state is the stream's own slot for this policy,
 * NULL at first, for data that lives as long as the request (allocate it in
 * s->arena; on_done releases what the arena does not own). */
struct jn_policy_ops {
    const char *name; /* the key in `policies:` */
    /* Reads the item's value (a mapping, or null for defaults). Returns the
     * policy's configuration, allocated with jn_ld_calloc (snapshot arena),
     * or NULL after reporting every error with jn_ld_error. Runs after
     * consumers, trusted_proxies and upstreams are loaded. */
    void *(*parse)(struct jn_ld *ld, yaml_node_t *value);
    /* Called when the snapshot is freed, for what the arena does not own. */
    void (*free)(void *conf);
    /* Called once the snapshot is about to serve (threads, files); returns
     * 0 or a negative JN_E* code after logging why. */
    int (*start)(void *conf, const struct jn_config *cfg);
    enum jn_filter_verdict (*on_request)(struct jn_stream *s, struct jn_fields *f, void *conf,
                                         void **state);
    /* The response head on its way to the client, relayed or local. */
    void (*on_response)(struct jn_stream *s, struct jn_http_response *resp, struct jn_fields *f,
                        void *conf, void **state);
    /* The exchange is over (however it ended), for every policy whose
     * on_request ran. */
    void (*on_done)(struct jn_stream *s, void *conf, void **state);
    /* The stream ends while this policy holds it paused: drop the pending
     * work; jn_chain_resume must not be called for it afterwards. */
    void (*cancel)(struct jn_stream *s, void *conf, void **state);
};

/* Runs the start op of every policy of cfg, once, before it serves.
 * Returns 0, or -1 when one failed (it logged why). */
int jn_policies_start(const struct jn_config *cfg);

/* The registry: the policy named name, or NULL. */
const struct jn_policy_ops *jn_policy_find(const char *name);
/* Names every policy a configuration may use, for "unknown policy" messages. */
const char *jn_policy_names(void);

/* Runs request filters from where the stream stands. Returns the verdict that
 * stopped the walk, or JN_FILTER_CONTINUE when every filter let it pass. */
enum jn_filter_verdict jn_chain_request(struct jn_stream *s, struct jn_fields *fields);
/* Runs the response hooks of every policy whose request hook ran, in reverse
 * order (the last to see the request is the first to see the response). */
void jn_chain_response(struct jn_stream *s, struct jn_http_response *resp,
                       struct jn_fields *fields);
/* A paused policy has finished its work: it either answered the stream
 * (jn_policy_reject) or lets it go on, to the next policy and the upstream. */
void jn_chain_resume(struct jn_stream *s);
/* The stream is over: cancel a pause in progress, then on_done. Called once. */
void jn_chain_end(struct jn_stream *s);

/* Answers the request from a policy: the JSON error body with the request id,
 * the extra fields (WWW-Authenticate...), and the response hooks of the
 * policies that ran, this one included (CORS headers on a 401, this
 * rate limit's RateLimit-* on its own 429). Returns
 * JN_FILTER_RESPOND, for `return jn_policy_reject(...)`. */
enum jn_filter_verdict jn_policy_reject(struct jn_stream *s, uint16_t status, const char *msg,
                                        const struct jn_http_field *extra, size_t nextra);

/* Stream variables: what policies publish about a request (the consumer,
 * JWT claims) for header templates (${name}) and for other policies, which
 * never call each other. Built in: consumer, client_ip, request_id. */
/* Sets name (kept as given: static or in s->arena) to a copy of value in
 * s->arena; a later set of the same name wins. Returns 0 or JN_ENOMEM. */
int jn_stream_var_set(struct jn_stream *s, const char *name, struct jn_slice value);
/* The value of name (len bytes), or {NULL, 0} when the request has none. */
struct jn_slice jn_stream_var_get(const struct jn_stream *s, const char *name, size_t len);

/* The registered policies, one file each (docs/policies.md). */
extern const struct jn_policy_ops jn_policy_ip_filter;
extern const struct jn_policy_ops jn_policy_key_auth;
extern const struct jn_policy_ops jn_policy_basic_auth;
extern const struct jn_policy_ops jn_policy_acl;
extern const struct jn_policy_ops jn_policy_jwt;
extern const struct jn_policy_ops jn_policy_request_limits;
extern const struct jn_policy_ops jn_policy_cors;
extern const struct jn_policy_ops jn_policy_rate_limit;
extern const struct jn_policy_ops jn_policy_concurrency_limit;
extern const struct jn_policy_ops jn_policy_forward_auth;

/* The route's request_headers and response_headers, last in every chain. */
extern const struct jn_policy_ops jn_policy_route_headers;
/* Applies header operations whose set and add values may hold ${variables}
 * (expanded from jn_stream_var_get into s->arena): a value whose variable
 * has none, or holds a control character, is not added, and for set the
 * field is removed. Without variables it is jn_fields_apply. Returns 0 or
 * JN_ETOOBIG when fields is full. */
int jn_route_headers_apply(struct jn_stream *s, struct jn_fields *fields,
                           const struct jn_cfg_header_ops *ops);

#endif
