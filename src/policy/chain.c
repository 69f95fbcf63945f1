/* The filter chain walker and its registry. */
#include "policy/chain.h"

#include "http/stream.h"

/* Order matters: authentication before authorisation before rate limits
 * (later issues); header rewriting last, so it sees the final request. */
static const struct jn_filter_ops *const registry[] = {
    &jn_filter_route_headers,
};

#define NFILTERS (sizeof(registry) / sizeof(registry[0]))

enum jn_filter_verdict jn_chain_request(struct jn_stream *s, struct jn_fields *fields)
{
    for (size_t i = 0; i < NFILTERS; i++) {
        if (registry[i]->on_request == NULL)
            continue;
        enum jn_filter_verdict v = registry[i]->on_request(s, fields);
        if (v != JN_FILTER_CONTINUE)
            return v;
    }
    return JN_FILTER_CONTINUE;
}

void jn_chain_response(struct jn_stream *s, struct jn_http_response *resp, struct jn_fields *fields)
{
    for (size_t i = NFILTERS; i-- > 0;)
        if (registry[i]->on_response != NULL)
            registry[i]->on_response(s, resp, fields);
}
