/* TEST ONLY, until the admin helper's listener serves `metrics: address`:
 * with JUNCTION_TEST_METRICS_SERVER=1 in the environment, a thread answers
 * GET /metrics there (one blocking connection at a time). The lead deletes
 * this file when the real listener lands. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/metrics.h"
#include "config/config.h"
#include "core/log.h"

static void answer(int fd)
{
    char req[4096];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
        ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    size_t len = 0;
    char *body = strncmp(req, "GET /metrics ", 13) == 0 ? jn_metrics_render(&len) : NULL;
    char head[256];
    int h = body != NULL ? snprintf(head, sizeof(head),
                                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
                                    "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                                    len)
                         : snprintf(head, sizeof(head),
                                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                    "Connection: close\r\n\r\n");
    if (write(fd, head, (size_t)h) == h && body != NULL) {
        for (size_t at = 0; at < len;) {
            ssize_t w = write(fd, body + at, len - at);
            if (w <= 0)
                break;
            at += (size_t)w;
        }
    }
    free(body);
}

static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        answer(fd);
        close(fd);
    }
    return NULL;
}

void jn_metrics_test_server(const struct jn_config *cfg)
{
    static bool started;
    const char *on = getenv("JUNCTION_TEST_METRICS_SERVER");
    if (started || on == NULL || strcmp(on, "1") != 0 || cfg->metrics.address == NULL)
        return;
    started = true;
    int one = 1, fd = socket(cfg->metrics.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    pthread_t t;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)&cfg->metrics.addr, cfg->metrics.addrlen) != 0 ||
        listen(fd, 64) != 0 || pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) != 0) {
        jn_log(JN_LOG_ERR, "metrics test server: cannot listen on %s", cfg->metrics.address);
        return;
    }
    pthread_detach(t);
}
