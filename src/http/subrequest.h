/* Subrequests: Junction's own HTTP/1.1 requests to an upstream on behalf of
 * a stream (forward_auth asks an authorisation service). A GET without a
 * body goes through the upstream's own client side: the balancer's pick,
 * the worker's pooled keep-alive connections, TLS when the upstream has
 * tls:, passive health, retries of failed connects; the answer is read with
 * the proxy's HTTP/1.1 parser. Everything runs on the worker's loop. */
#ifndef JN_HTTP_SUBREQUEST_H
#define JN_HTTP_SUBREQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance/upstream.h"
#include "core/buf.h"
#include "http/fields.h"
#include "http/h1/h1_parse.h"

#define JN_SUBREQ_MAX_HEADERS 100 /* fields of an answer; more is a malformed answer */

struct jn_subreq;

/* How a subrequest ended, for the done callback. Views are valid during
 * the call only. */
struct jn_subreq_answer {
    uint16_t status;               /* 0 when no answer came (error says why) */
    const char *error;             /* static; NULL with an answer */
    const struct jn_h1_header *headers;
    size_t nheaders;
    const char *body;              /* the decoded body; NULL when not read */
    size_t body_len;
};

/* Runs once per subrequest, on the worker's loop (never from inside
 * jn_subreq_start). The subrequest is gone when it returns. */
typedef void jn_subreq_done_fn(void *arg, const struct jn_subreq_answer *a);

struct jn_subreq_params {
    struct jn_upstream_rt *up;     /* borrowed: the pool, in the worker's generation */
    struct jn_buf_pool *bufs;      /* borrowed: the worker's buffers */
    const uint64_t *hash;          /* the hash key for hashing balancers, NULL when none */
    struct jn_slice target;        /* origin-form "/path?query", copied */
    const struct jn_fields *fields; /* request fields without Host (set to the server's
                                       address), copied */
    uint64_t timeout_ms;           /* bounds the whole exchange: connects and answer */
    size_t max_body;               /* a longer answer body is a failure */
    bool skip_2xx_body;            /* 2xx: the body is not wanted (read and dropped when
                                      within max_body, else left unread) */
    const char *tag;               /* for logs ("request <id>"), copied */
    jn_subreq_done_fn *done;
    void *arg;                     /* borrowed: given to done */
};

/* Starts a subrequest. Returns it, or NULL with *err (static) when it could
 * not even start (no usable server, out of memory); done never runs then. */
struct jn_subreq *jn_subreq_start(const struct jn_subreq_params *p, const char **err);
/* Abandons a subrequest whose done has not run: its connection is closed,
 * its timers stopped, its memory freed; done never runs. */
void jn_subreq_cancel(struct jn_subreq *r);

#endif
