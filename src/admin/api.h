/* Internal to src/admin: one parsed admin request, the response the API
 * builds for it, and the helpers the endpoint files share. The connection
 * handling (admin.c) knows nothing of the endpoints, the endpoints nothing
 * of sockets. */
#ifndef JN_ADMIN_API_H
#define JN_ADMIN_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/common.h"
#include "http/h1/h1_parse.h"

/* The longest decoded path segment (an upstream name, a server address). */
#define JN_ADMIN_SEGMENT_MAX 256
/* Segments in the longest route: /upstreams/{name}/servers/{address}. */
#define JN_ADMIN_MAX_SEGMENTS 4

struct jn_admin_request {
    struct jn_slice method;
    struct jn_slice target;               /* as sent: path and query */
    const struct jn_h1_header *headers;   /* borrowed from the connection's buffer */
    size_t nheaders;
    const char *body;                     /* borrowed; body_len bytes */
    size_t body_len;
    bool metrics_only;                    /* on the metrics: listener */
};

struct jn_admin_response {
    int status;
    const char *content_type; /* static */
    char *body;               /* owned (malloc) */
    size_t len;
    const char *allow;        /* static: the Allow field of a 405, or NULL */
    bool challenge;           /* send WWW-Authenticate: Bearer */
};

/* The decoded segments of a request path, for the endpoints. */
struct jn_admin_path {
    char seg[JN_ADMIN_MAX_SEGMENTS][JN_ADMIN_SEGMENT_MAX + 1];
    size_t n;
};

/* Answers rq into rs (api.c): the page, authentication, routing. */
void jn_admin_handle(const struct jn_admin_request *rq, struct jn_admin_response *rs);

/* Percent-decodes in[0, len) into out (cap bytes, NUL added). Returns the
 * decoded length, or -1 when an escape is malformed, decodes to NUL or '/',
 * or the result does not fit. */
long jn_admin_pct_decode(const char *in, size_t len, char *out, size_t cap);
/* Splits the path of target (the query ignored) into decoded segments.
 * Returns 0, or JN_EINVAL when it is not an origin-form path, has empty
 * segments other than a lone "/", too many segments or a bad escape. */
int jn_admin_split_path(struct jn_slice target, struct jn_admin_path *out);
/* True when the Authorization value carries exactly the token ("Bearer",
 * any case, then the token), compared in time that depends on neither
 * the token's bytes nor its length. */
bool jn_admin_token_ok(struct jn_slice authorization, const char *token, size_t token_len);

/* Sets rs to a JSON answer; takes the reference of body. */
void jn_admin_reply_json(struct jn_admin_response *rs, int status, json_t *body);
/* Sets rs to {"error": message}. */
void jn_admin_reply_error(struct jn_admin_response *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* api_read.c: GET endpoints; cfg is the current snapshot (borrowed). */
void jn_admin_get_status(struct jn_config *cfg, struct jn_admin_response *rs);
void jn_admin_get_config(struct jn_config *cfg, struct jn_admin_response *rs);
void jn_admin_get_routes(struct jn_config *cfg, struct jn_admin_response *rs);
/* name NULL: every upstream. */
void jn_admin_get_upstreams(struct jn_config *cfg, const char *name,
                            struct jn_admin_response *rs);
void jn_admin_get_stats(struct jn_admin_response *rs);
void jn_admin_get_metrics(struct jn_admin_response *rs);
/* The SERVER object of server j of upstream u of cfg, as it is now (health
 * and per-worker counters gathered). NULL when memory ran out. */
json_t *jn_admin_server_json(struct jn_config *cfg, size_t u, size_t j);
/* The upstream index of name in cfg, or -1. */
long jn_admin_find_upstream(const struct jn_config *cfg, const char *name);
/* The server index of address in upstream u: the text as written, else the
 * same socket address ("localhost:80" is "127.0.0.1:80"). -1 when none. */
long jn_admin_find_server(const struct jn_config *cfg, size_t u, const char *address);

/* api_change.c: server changes and reload. */
void jn_admin_add_server(const char *upstream, const struct jn_admin_request *rq,
                         struct jn_admin_response *rs);
void jn_admin_set_server(const char *upstream, const char *address,
                         const struct jn_admin_request *rq, struct jn_admin_response *rs);
void jn_admin_remove_server(const char *upstream, const char *address,
                            const struct jn_admin_request *rq, struct jn_admin_response *rs);
void jn_admin_reload(struct jn_admin_response *rs);

#endif
