/* Zero-downtime binary upgrade: listening sockets handed from the running
 * process to its replacement over a Unix socket (docs/operations.md). */
#ifndef JN_SERVER_UPGRADE_H
#define JN_SERVER_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>

/* Adds fn to what is handed over: it writes up to max listening fds to out
 * (borrowed: the caller keeps them) and returns how many. Workers' and the
 * admin listeners register one each at start. */
void jn_upgrade_add_source(size_t (*fn)(int *out, size_t max));

/* Running process: listens on path for a replacement (mode 0600; a stale
 * socket file is replaced). Returns the fd, or -1 with err filled. */
int jn_upgrade_listen(const char *path, char *err, size_t errlen);
/* Running process, when *lfd is readable: accepts the replacement, hands
 * over every listening socket and waits for it to serve. Returns true when
 * it does: *lfd is then closed (-1) and this process must stop accepting
 * and drain. False: nothing changed (the replacement failed or left). */
bool jn_upgrade_serve(int *lfd);

/* Replacement: connects to path and takes the running process's sockets
 * into the listener pool (net/listener.h). Returns the connection (for
 * jn_upgrade_finish), or -1 with err filled. */
int jn_upgrade_fetch(const char *path, char *err, size_t errlen);
/* Replacement, once it serves: tells the old process, which stops
 * accepting. Closes c. Returns 0 or JN_EIO. */
int jn_upgrade_finish(int c);

#endif
