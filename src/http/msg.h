/* The protocol-neutral HTTP request and response heads. The HTTP/1.1 codec
 * fills them today and HTTP/2 streams will fill the same structures, so
 * routing, balancing and policies never see which protocol carried a request. */
#ifndef JN_HTTP_MSG_H
#define JN_HTTP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

struct jn_http_field {
    struct jn_slice name;  /* as received (case preserved); compare case-insensitively */
    struct jn_slice value;
};

/* Views point into the codec's buffer or the request arena. */
struct jn_http_request {
    struct jn_slice method;    /* upper-case token as received */
    struct jn_slice scheme;    /* "http" or "https" */
    struct jn_slice authority; /* Host (HTTP/1.1) or :authority (HTTP/2), as received */
    struct jn_slice host;      /* authority without port, any case */
    struct jn_slice path;      /* normalised path, no query: what routing and policies see */
    struct jn_slice query;     /* raw query string without '?', empty when none */
    struct jn_http_field *fields;
    size_t nfields;
    uint8_t version_major;     /* 1 or 2 */
    uint8_t version_minor;
};

struct jn_http_response {
    uint16_t status;
    struct jn_http_field *fields;
    size_t nfields;
};

/* Returns the value of the first field named name (case-insensitive), or a
 * slice with ptr NULL when there is none. */
struct jn_slice jn_http_field_get(const struct jn_http_field *fields, size_t n, const char *name);

#endif
