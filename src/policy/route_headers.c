/* The route's request_headers and response_headers: set, add, remove. */
#include "http/stream.h"
#include "policy/chain.h"

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields)
{
    if (s->route != NULL)
        jn_fields_apply(fields, &s->route->request_headers);
    return JN_FILTER_CONTINUE;
}

static void on_response(struct jn_stream *s, struct jn_http_response *resp, struct jn_fields *fields)
{
    if (s->route != NULL)
        jn_fields_apply(fields, &s->route->response_headers);
}

const struct jn_filter_ops jn_filter_route_headers = {
    .name = "route_headers",
    .on_request = on_request,
    .on_response = on_response,
};
