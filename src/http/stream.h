/* A stream is one request/response exchange: the client side (an HTTP/1.1
 * connection today, an HTTP/2 stream later), the route chosen for it, and the
 * upstream connection it is relayed to. */
#ifndef JN_HTTP_STREAM_H
#define JN_HTTP_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "balance/upstream.h"
#include "core/arena.h"
#include "core/buf.h"
#include "http/body.h"
#include "http/h1/h1_parse.h"
#include "http/msg.h"
#include "net/cidr.h"
#include "server/worker.h"

struct jn_client;
struct jn_front_ops;
struct jn_h2_stream;
struct jn_h2up_stream;

enum jn_stream_phase {
    JN_STREAM_REQ_HEAD,   /* routing and filters */
    JN_STREAM_UPSTREAM,   /* relaying to and from the upstream */
    JN_STREAM_LOCAL,      /* answering locally (respond, errors) */
    JN_STREAM_TUNNEL,     /* upgraded (101): bytes relayed both ways (http/upgrade.c) */
    JN_STREAM_DONE,
};

/* A value a policy publishes for header templates: ${name}. */
struct jn_stream_var {
    const char *name;      /* static or arena */
    struct jn_slice value; /* arena */
    struct jn_stream_var *next;
};

struct jn_stream {
    struct jn_client *client;   /* borrowed: the connection carrying it */
    const struct jn_front_ops *front; /* static: how the client side is spoken */
    struct jn_h2_stream *h2;    /* HTTP/2 only: the stream's frames side, owned by the connection */
    struct jn_h2up_stream *h2up; /* an HTTP/2 upstream's side (h2/h2_client.c), in the arena */
    struct jn_http_field *trailers; /* arena: response trailers to pass on, NULL when none */
    size_t ntrailers;
    struct jn_http_field
        *req_trailers; /* arena: an HTTP/2 request's trailers, for an HTTP/2 upstream */
    size_t nreq_trailers, req_trailers_cap;
    uint8_t grpc_web;           /* a gRPC-Web request sent as gRPC: 1 binary, 2 text (base64) */
    uint8_t gw_nq;              /* text: characters of an unfinished request quantum */
    char gw_quantum[4];
    size_t gw_encoded;          /* text: bytes at resp_in's head already in base64 */
    const char *tls_client_subject; /* borrowed from the connection, which outlives the stream:
                                       its verified TLS client certificate subject (RFC 2253),
                                       NULL without one; what policies read */
    struct jn_gen *gen;         /* one use counted */
    struct jn_arena arena;      /* owns copies made for this request */
    enum jn_stream_phase phase;
    struct jn_http_request req; /* views into the client buffer until the head is forwarded */
    struct jn_http_field *fields; /* owned by arena: request fields, edited by filters */
    size_t fields_cap;
    const struct jn_cfg_route *route; /* borrowed from gen->cfg */
    /* Policies (policy/chain.c): where the walk stands, and their slots. */
    uint8_t chain_at;           /* the policy running, or paused */
    uint8_t chain_ran;          /* policies whose request hook ran */
    bool paused;                /* a policy is working asynchronously */
    void **pstate;              /* arena: one slot per policy of the chain */
    struct jn_h1_message *held; /* arena: the head kept while paused (no header views) */
    size_t held_nfields;        /* request fields in s->fields while paused */
    uint32_t req_nheaders;      /* header fields as received, before any was removed */
    const struct jn_cfg_consumer *consumer; /* borrowed from gen->cfg: who called, or NULL */
    struct jn_stream_var *vars;             /* arena: values policies publish (${jwt.sub}) */
    struct jn_ip client_addr;               /* the client, as trusted_proxies decides */
    char client_ip[48];                     /* ...as text: what policies, logs and hash keys use */
    struct jn_upstream_rt *up;        /* borrowed from gen */
    int server;                 /* chosen server, -1 none */
    bool counted;               /* counted in the server's in-flight requests */
    struct jn_upconn *uc;       /* owned while the exchange runs */
    struct jn_buf req_out;      /* request head and body on their way upstream */
    struct jn_buf resp_in;      /* response bytes from upstream */
    size_t req_head_len;        /* bytes of head at req_out's start, for a retry */
    bool retryable;             /* may be replayed on a fresh connection */
    bool retried;               /* replayed once after a stale pooled connection */
    int tried[12];              /* servers tried before this one (retries:) */
    uint8_t ntried;
    bool sticky_hit;            /* the request's sticky cookie named s->server */
    bool has_hash;
    uint64_t hash;              /* the request's hash key, for hashing balancers */
    struct jn_upwait wait;      /* queued for a connection (limits:) */
    struct jn_h1_scan resp_scan;
    struct jn_body req_body;    /* client -> upstream */
    struct jn_body resp_body;   /* upstream -> client */
    bool resp_head_sent;
    bool upstream_eof;
    bool req_write_failed;      /* the upstream stopped taking the request */
    bool upstream_keep_alive;
    bool head_request;
    bool absolute_form;         /* the target carried the authority */
    bool client_keep_alive;
    bool expect_continue;
    bool upgrade;               /* a WebSocket handshake, forwarded with its Upgrade */
    bool ws_h2;                 /* WebSocket over HTTP/2 (RFC 8441): DATA relayed as a body */
    bool ws_shut;               /* ws_h2: the client's end passed on to the upstream */
    struct {
        bool to_upstream_shut;  /* the client's end passed on to the upstream */
        bool upstream_eof;      /* the upstream sent its end */
        bool to_client_shut;    /* ... passed on to the client */
        uint64_t last_active;   /* ms, loop clock: when a byte last moved */
    } tunnel;
    uint16_t status;
    uint64_t bytes_sent;        /* body and head bytes to the client */
    uint64_t t_start, t_upstream, t_upstream_head; /* ms, loop clock */
    uint64_t t_upstream_us;     /* us, for the latency EWMA and ewma balancing */
    const char *method;         /* arena copies for the access log */
    const char *path;
    char request_id[40];
    const char *error;          /* static: why the exchange failed, for logs */
    bool logged;                /* counted and access-logged */
    struct jn_stream *next_free; /* worker's free list link */
};

#endif
