/* Listening sockets with SO_REUSEPORT. */
#include "net/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

int jn_listen(const struct sockaddr_storage *addr, socklen_t len, const char **err)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
