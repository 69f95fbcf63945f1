/* Zero-downtime binary upgrade (docs/operations.md): the running process
 * hands its listening sockets to the new one over a Unix socket
 * (SCM_RIGHTS), then stops accepting and drains once the new one says it
 * serves. Both processes accept on the same sockets meanwhile, so no
 * connection waiting in a queue is lost.
 *
 * Messages (SOCK_SEQPACKET, one per send): the new process says "HELLO"
 * (a bare connect, such as another process checking whether the socket is
 * alive, gets nothing); the old one sends "FDS" with up to FDS_PER_MSG
 * descriptors, as many times as needed, then "END"; the new one answers
 * "READY" once it serves, and the old one "BYE" once it has stopped taking
 * upgrades. */
#include "server/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "net/listener.h"

#define FDS_PER_MSG 200
#define MAX_FDS 1024
#define PEER_TIMEOUT_S 60 /* the new process loads its configuration meanwhile */
#define HELLO_TIMEOUT_MS 1000 /* a replacement asks at once; the main thread waits no more */

static size_t (*sources[4])(int *out, size_t max);
static size_t nsources;

void jn_upgrade_add_source(size_t (*fn)(int *out, size_t max))
{
    if (nsources < JN_ARRAY_LEN(sources))
        sources[nsources++] = fn;
}

static int unix_addr(const char *path, struct sockaddr_un *sa, char *err, size_t errlen)
{
    *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa->sun_path)) {
        snprintf(err, errlen, "upgrade socket %s: path too long", path);
        return JN_EINVAL;
    }
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

static void set_timeouts(int fd, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int jn_upgrade_listen(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (unix_addr(path, &sa, err, errlen) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "upgrade socket: %s", strerror(errno));
        return -1;
    }
    /* A socket file nobody answers on is a leftover: replaced. One that
     * answers belongs to a running process, which keeps it. Anything but a
     * socket (a typo naming the configuration file) is never removed. */
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "upgrade socket %s: exists and is not a socket", path);
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        snprintf(err, errlen, "upgrade socket %s: in use by another process", path);
        close(fd);
        return -1;
    }
    close(fd);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(path);
    mode_t old = umask(0077); /* only this user may take the sockets */
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc == 0)
        rc = chmod(path, 0600);
    if (rc != 0 || listen(fd, 4) != 0) {
        snprintf(err, errlen, "upgrade socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int send_msg(int fd, const char *text, const int *fds, size_t n)
{
    char ctl[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
    struct iovec iov = { (void *)text, strlen(text) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (n > 0) {
        memset(ctl, 0, sizeof(ctl));
        mh.msg_control = ctl;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
}

/* Receives one message into text; descriptors that came with it go to the
 * listener pool when keep_fds, else are closed. Returns the text's length,
 * or -1. */
static ssize_t recv_msg(int fd, char *text, size_t cap, bool keep_fds)
{
    char ctl[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
    struct iovec iov = { text, cap - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                         .msg_controllen = sizeof(ctl) };
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -1;
    text[n] = '\0';
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[FDS_PER_MSG];
        memcpy(fds, CMSG_DATA(cm), sizeof(int) * JN_MIN(k, (size_t)FDS_PER_MSG));
        for (size_t i = 0; i < k && i < FDS_PER_MSG; i++) {
            if (keep_fds)
                jn_listen_inherit(fds[i]);
            else
                close(fds[i]);
        }
    }
    return (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -1 : n;
}

static bool peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    return cred.uid == geteuid() || cred.uid == 0;
}

/* Hands every listening socket to the peer, then waits for it to serve. */
static bool hand_over(int c)
{
    int fds[MAX_FDS];
    size_t n = 0;
    for (size_t i = 0; i < nsources && n < MAX_FDS; i++)
        n += JN_MIN(sources[i](fds + n, MAX_FDS - n), MAX_FDS - n);
    if (n == MAX_FDS)
        jn_log(JN_LOG_WARN, "upgrade: more than %d listening sockets; the rest are not handed "
                            "over", MAX_FDS);
    for (size_t at = 0; at < n; at += FDS_PER_MSG)
        if (send_msg(c, "FDS", fds + at, JN_MIN(n - at, (size_t)FDS_PER_MSG)) != 0)
            return false;
    if (send_msg(c, "END", NULL, 0) != 0)
        return false;
    jn_log(JN_LOG_INFO, "upgrade: %zu listening socket%s handed over; waiting for the new "
                        "process", n, n == 1 ? "" : "s");
    char text[16];
    return recv_msg(c, text, sizeof(text), false) > 0 && strcmp(text, "READY") == 0;
}

bool jn_upgrade_serve(int *lfd)
{
    int c = accept4(*lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return false;
    if (!peer_allowed(c)) {
        jn_log(JN_LOG_WARN, "upgrade: refused a process of another user");
        close(c);
        return false;
    }
    set_timeouts(c, HELLO_TIMEOUT_MS);
    char hello[16];
    if (recv_msg(c, hello, sizeof(hello), false) <= 0 || strcmp(hello, "HELLO") != 0) {
        jn_log(JN_LOG_DEBUG, "upgrade: a connection to the upgrade socket left without asking");
        close(c);
        return false;
    }
    set_timeouts(c, PEER_TIMEOUT_S * 1000);
    if (!hand_over(c)) {
        jn_log(JN_LOG_ERR, "upgrade: the new process did not start; still serving");
        close(c);
        return false;
    }
    /* Closed first: the new process binds the path once it reads BYE. */
    close(*lfd);
    *lfd = -1;
    send_msg(c, "BYE", NULL, 0);
    close(c);
    jn_log(JN_LOG_INFO, "upgrade: the new process serves; this one stops accepting and drains");
    return true;
}

int jn_upgrade_fetch(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (unix_addr(path, &sa, err, errlen) != 0)
        return -1;
    int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "upgrade socket %s: %s (is Junction running with this "
                              "configuration?)", path, strerror(errno));
        if (c >= 0)
            close(c);
        return -1;
    }
    set_timeouts(c, PEER_TIMEOUT_S * 1000);
    /* The sockets must come from this user's Junction (or root's), not
     * from whoever bound the path first. */
    if (!peer_allowed(c)) {
        snprintf(err, errlen, "upgrade socket %s: served by a process of another user", path);
        close(c);
        return -1;
    }
    if (send_msg(c, "HELLO", NULL, 0) != 0) {
        snprintf(err, errlen, "upgrade socket %s: %s", path, strerror(errno));
        close(c);
        return -1;
    }
    for (;;) {
        char text[16];
        if (recv_msg(c, text, sizeof(text), true) <= 0) {
            snprintf(err, errlen, "upgrade socket %s: the running process did not hand its "
                                  "sockets over", path);
            close(c);
            jn_listen_inherited_close();
            return -1;
        }
        if (strcmp(text, "END") == 0)
            return c;
    }
}

int jn_upgrade_finish(int c)
{
    char text[16];
    int rc = send_msg(c, "READY", NULL, 0) == 0 && recv_msg(c, text, sizeof(text), false) > 0 &&
                     strcmp(text, "BYE") == 0
                 ? 0
                 : JN_EIO;
    close(c);
    return rc;
}
