/* How a client connection's bytes cross its socket: as they are (plain), or
 * through TLS (tls/tls.c). The HTTP/1 code reads and writes only through
 * these two functions, so it never knows which one it has. */
#ifndef JN_NET_TRANSPORT_H
#define JN_NET_TRANSPORT_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/buf.h"

struct jn_transport;

struct jn_transport_ops {
    /* Reads into b's free space. Returns bytes read, 0 on EOF, JN_EAGAIN when
     * nothing is ready, JN_EIO on error. *drained is set when nothing more
     * can come without a new readiness edge (as jn_buf_read_fd). */
    ssize_t (*read)(struct jn_transport *t, struct jn_buf *b, bool *drained);
    /* Writes b's bytes, consuming what left. Returns 0 when b is empty,
     * JN_EAGAIN when the socket would block, JN_EIO on error. */
    ssize_t (*write)(struct jn_transport *t, struct jn_buf *b);
};

struct jn_transport {
    const struct jn_transport_ops *ops; /* static table */
    int fd;
    struct ssl_st *ssl; /* owned (TLS only): freed by jn_tls_conn_free */
    /* TLS may need the other direction's readiness to go on: a read that
     * must first send (a TLS 1.3 key update), a write that must first read.
     * The connection then waits for that edge instead of its own. */
    bool read_wants_write;
    bool write_wants_read;
    bool handshaking; /* TLS: the handshake is not over; no application bytes yet */
    bool failed;      /* TLS: a fatal error; no close_notify may be sent */
};

/* recv/send on t->fd. */
extern const struct jn_transport_ops jn_transport_plain;

#endif
