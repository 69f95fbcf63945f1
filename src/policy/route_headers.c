/* The route's request_headers and response_headers: set, add, remove. Runs
 * last in every chain, so it sees the request as the policies left it. */
#include "http/stream.h"
#include "policy/chain.h"

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    (void)conf, (void)state;
        jn_fields_apply(fields, &s->route->request_headers);
    return JN_FILTER_CONTINUE;
}

static void on_response(struct jn_stream *s, struct jn_http_response *resp,
                        struct jn_fields *fields, void *conf, void **state)
{
    (void)resp, (void)conf, (void)state;
        jn_fields_apply(fields, &s->route->response_headers);
}

const struct jn_policy_ops jn_policy_route_headers = {
    .name = "route_headers",
    .on_request = on_request,
    .on_response = on_response,
};
