/* The client side of HTTP/1.1: one connection, its buffers and timers, and
 * the requests on it, answered one at a time and in order (pipelining). */
#ifndef JN_HTTP_H1_SERVER_H
#define JN_HTTP_H1_SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/h1/h1_parse.h"
#include "net/cidr.h"
#include "net/transport.h"
#include "server/worker.h"

struct jn_stream;
struct jn_h2_conn;

enum jn_client_timer { JN_CT_IDLE, JN_CT_HEADER, JN_CT_BODY };

struct jn_client {
    struct jn_io io;
    struct jn_transport tp;            /* plain or TLS: every byte in or out goes through it */
    struct jn_timer timer;
    enum jn_client_timer timer_kind;
    struct jn_worker *worker;          /* borrowed */
    const struct jn_listener_rt *listener; /* borrowed */
    struct jn_buf in;                  /* bytes from the client (pooled, released when idle) */
    struct jn_buf out;                 /* bytes to the client (pooled, released when idle) */
    struct jn_h1_scan scan;
    struct jn_stream *stream;          /* owned: the request being answered */
    struct jn_h2_conn *h2;             /* owned: set when the connection speaks HTTP/2 */
    struct jn_client *next_deferred;   /* HTTP/2: link in the worker's h2_deferred list */
    bool deferred;                     /* on that list */
    bool can_read, can_write;          /* edge-triggered readiness not yet consumed */
    bool hup;                          /* the client closed or failed: read until EOF */
    bool eof;                          /* the client shut its sending side */
    bool close_after;                  /* close once out is flushed */
    bool closed;
    bool lingering;                    /* write side shut, dropping input until the client closes */
    bool header_timer_armed;
    uint32_t requests;
    bool metered;                      /* counted in metrics (admin/metrics.h) */
    uint16_t metrics_slot;             /* its listener's counter slot, when metered */
    char peer[48];                     /* client address as text */
    struct jn_ip peer_ip;              /* ...parsed (family 0 when it is not an IP) */
    /* One reference on the snapshot whose TLS contexts run the handshake
     * (callbacks use them), held until the handshake ends. */
    struct jn_config *tls_cfg;
    char *tls_subject;                 /* owned: verified client certificate subject (RFC 2253),
                                          NULL without one; freed with the connection */
    struct jn_client *prev, *next;     /* worker's list; next is also the garbage link */
};

/* Takes over an accepted socket. */
void jn_client_accept(struct jn_worker *w, const struct jn_listener_rt *l, int fd,
                      const struct sockaddr_storage *peer);
/* Makes all progress possible on the connection (reads, requests, writes). */
void jn_client_drive(struct jn_client *c);
/* Reads what is available into c->in. Returns bytes read, 0 on EOF,
 * JN_EAGAIN, JN_EIO; manages can_read. */
int jn_client_read(struct jn_client *c);
/* The output buffer, with storage from the worker's pool: every writer
 * goes through it, so no response costs a malloc. */
struct jn_buf *jn_client_out(struct jn_client *c);
/* Writes c->out. Returns 0 (flushed or would block) or JN_EIO. */
int jn_client_flush(struct jn_client *c);
/* Called by the stream when it is over: frees it; the connection goes on
 * with the next request unless close is set. */
void jn_client_stream_done(struct jn_client *c, bool close);
/* Closes now (deferred free). */
void jn_client_close(struct jn_client *c);
/* Re-arms the connection's timer. */
void jn_client_set_timer(struct jn_client *c, enum jn_client_timer kind);
/* Worker shutdown: close idle connections, let busy ones finish their request. */
/* Ends c gracefully: an idle connection closes now, a busy one after its
 * response (HTTP/2: GOAWAY, then its streams finish). */
void jn_client_drain(struct jn_client *c);
void jn_clients_drain(struct jn_worker *w);
/* Frees connections closed during the last batch of events. Never call it
 * inside a batch: later events of the batch may point at them. */
void jn_clients_collect(struct jn_worker *w);
/* Closes every connection (deferred free: call jn_clients_collect after). */
void jn_clients_close_all(struct jn_worker *w);

#endif
