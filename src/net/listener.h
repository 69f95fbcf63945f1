/* Listening sockets. Each worker opens its own socket per listener with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers and
 * no accept lock is needed. */
#ifndef JN_NET_LISTENER_H
#define JN_NET_LISTENER_H

#include <sys/socket.h>

/* Opens a non-blocking listening socket bound to addr. Returns the fd, or -1
 * with *err set to a message for people (errno kept). */
int jn_listen(const struct sockaddr_storage *addr, socklen_t len, const char **err);

#endif
