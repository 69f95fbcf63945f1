/* The filter chain: every request walks the filters that apply to its route,
 * in order; each may let it continue, pause it (asynchronous work pending,
 * resumed with jn_chain_resume) or answer it. Policies are filters; adding one
 * is a file with its ops table and a line in chain.c's registry. */
#ifndef JN_POLICY_CHAIN_H
#define JN_POLICY_CHAIN_H

#include "http/fields.h"
#include "http/msg.h"

struct jn_stream;

enum jn_filter_verdict {
    JN_FILTER_CONTINUE = 0,
    JN_FILTER_PAUSE = 1,   /* the filter will call jn_chain_resume later */
    JN_FILTER_RESPOND = 2, /* the filter wrote a response (jn_stream_respond) */
};

struct jn_filter_ops {
    const char *name;
    /* Called with the request head (fields editable). NULL = not interested. */
    enum jn_filter_verdict (*on_request)(struct jn_stream *s, struct jn_fields *fields);
    /* Called with the response head before it reaches the client. NULL = not interested. */
    void (*on_response)(struct jn_stream *s, struct jn_http_response *resp, struct jn_fields *fields);
};

/* Runs request filters from the first. Returns the verdict that stopped the
 * walk, or JN_FILTER_CONTINUE when every filter let the request through. */
enum jn_filter_verdict jn_chain_request(struct jn_stream *s, struct jn_fields *fields);
/* Runs response filters in reverse order (the last to see the request is the
 * first to see the response, as in every layered proxy). */
void jn_chain_response(struct jn_stream *s, struct jn_http_response *resp, struct jn_fields *fields);

extern const struct jn_filter_ops jn_filter_route_headers;

#endif
