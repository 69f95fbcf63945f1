/* Listening sockets. Each worker opens its own socket per listener with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers and
 * no accept lock is needed. */
#ifndef JN_NET_LISTENER_H
#define JN_NET_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

/* A non-blocking listening socket bound to addr: one handed over by a
 * binary upgrade when one is bound there, else a new one. Returns the fd,
 * or -1 with *err set to a message for people (errno kept). */
int jn_listen(const struct sockaddr_storage *addr, socklen_t len, const char **err);

/* Adds a listening socket handed over by the process being upgraded to the
 * pool jn_listen takes from. Returns 0, or -1 when fd is not a listening
 * socket or the pool is full (fd is then closed). */
int jn_listen_inherit(int fd);
/* Closes the handed-over sockets no listener took; returns how many. */
size_t jn_listen_inherited_close(void);

#endif
