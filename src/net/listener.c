/* Listening sockets with SO_REUSEPORT, and the sockets a binary upgrade
 * hands over (server/upgrade.c): a listener whose address was handed over
 * takes that socket instead of opening one, so that no connection waiting
 * in its queue is lost. */
#include "net/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define MAX_INHERITED 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct inherited {
    int fd;
    struct sockaddr_storage addr;
} inherited[MAX_INHERITED];
static size_t ninherited;

/* An inherited socket bound to addr, taken out of the pool, or -1. */
static int take_inherited(const struct sockaddr_storage *addr)
{
    int fd = -1;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < ninherited; i++) {
        if (jn_sockaddr_equal(&inherited[i].addr, addr)) {
            fd = inherited[i].fd;
            inherited[i] = inherited[--ninherited];
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

int jn_listen(const struct sockaddr_storage *addr, socklen_t len, const char **err)
{
    int fd = take_inherited(addr);
    if (fd >= 0)
        return fd;
    fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = strerror(errno);
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, 4096) != 0) {
        int saved = errno;
        *err = strerror(saved);
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int jn_listen_inherit(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    int listening = 0;
    socklen_t optlen = sizeof(listening);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening) {
        close(fd);
        return -1;
    }
    pthread_mutex_lock(&lock);
    int rc = -1;
    if (ninherited < MAX_INHERITED) {
        inherited[ninherited++] = (struct inherited){ fd, addr };
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    if (rc != 0)
        close(fd);
    return rc;
}

size_t jn_listen_inherited_close(void)
{
    pthread_mutex_lock(&lock);
    size_t n = ninherited;
    for (size_t i = 0; i < ninherited; i++)
        close(inherited[i].fd);
    ninherited = 0;
    pthread_mutex_unlock(&lock);
    return n;
}
