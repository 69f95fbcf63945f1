/* The L4 TCP proxy: each connection accepted on a `protocol: tcp` listener is
 * joined to a server of the listener's upstream, and bytes are relayed both
 * ways through a pipe with splice(2), so they are never copied into user
 * space nor buffered whole. See docs/tcp.md. */
#ifndef JN_NET_TCP_PROXY_H
#define JN_NET_TCP_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

struct jn_worker;
struct jn_listener_rt;
struct jn_tunnel;

/* Empty pipes a worker keeps for the next tunnels: creating one costs two
 * system calls and two descriptors. */
#define JN_TCP_PIPE_CACHE 32

/* A worker's TCP proxy state; embedded in struct jn_worker. */
struct jn_tcp_worker {
    struct jn_tunnel *tunnels;  /* owned: open tunnels (closed on forced drain) */
    struct jn_tunnel *garbage;  /* owned: closed, freed after the event batch */
    struct jn_tunnel *again;    /* borrowed from tunnels: stopped at their byte budget */
    size_t ntunnels;
    int pipes[JN_TCP_PIPE_CACHE][2]; /* owned: empty pipes for reuse */
    size_t npipes;
};

/* Takes over a socket accepted on tcp listener l: picks a server and
 * connects to it, trying others when a connect fails. Never fails: on any
 * error the client's connection is closed. */
void jn_tcp_accept(struct jn_worker *w, const struct jn_listener_rt *l, int fd,
                   const struct sockaddr_storage *peer);
/* Goes on with the tunnels that stopped at their byte budget to let others
 * run; the worker calls it when its loop is woken. */
void jn_tcp_resume(struct jn_worker *w);
/* Closes every tunnel (deferred free: call jn_tcp_collect after). */
void jn_tcp_close_all(struct jn_worker *w);
/* Frees the tunnels closed during the last batch of events. */
void jn_tcp_collect(struct jn_worker *w);
/* Closes the cached pipes; every tunnel must be closed and collected. */
void jn_tcp_worker_destroy(struct jn_worker *w);

#endif
