/* The admin API's listener (docs/operations.md): its own thread with its own
 * event loop, so an operator's request never waits behind traffic and
 * traffic never waits behind an operator. Also serves the metrics: listener
 * (GET /metrics only, no token). */
#ifndef JN_ADMIN_ADMIN_H
#define JN_ADMIN_ADMIN_H

#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"

/* Opens every admin socket cfg asks for (admin:, metrics:) and starts the
 * admin thread. Does nothing and returns 0 when cfg has neither. Returns 0,
 * or JN_EIO (logged) when a socket could not be opened or the thread not
 * started; nothing is left open then. The token is read from the current
 * snapshot on each request, so reloads change it; the addresses are opened
 * here only, so changing them needs a restart or a binary upgrade. */
int jn_admin_start(const struct jn_config *cfg);
/* Stops the thread, closes its connections and listening sockets. Safe when
 * never started. Call before the workers stop: endpoints ask them for
 * their counters. */
void jn_admin_stop(void);

/* The one place admin listening sockets are opened (a binary upgrade may
 * hand over an inherited socket instead). what is "admin" or "metrics".
 * Returns the fd, or -1 (logged). */
int jn_admin_listen(const char *what, const struct sockaddr_storage *addr, socklen_t len);
/* The listening sockets in use, admin first then metrics: writes up to max
 * fds to out and returns how many there are. */
size_t jn_admin_fds(int *out, size_t max);

#endif
