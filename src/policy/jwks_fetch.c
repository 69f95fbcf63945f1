/* The jwt policy's JWKS fetcher: one thread per jwks_url, with blocking
 * logic over non-blocking sockets polled with a deadline and a stop
 * eventfd (so that stopping never waits for a slow server), Junction's own
 * TLS client context (tls/tls_client.c) and HTTP/1 response parser. A fetch
 * that fails keeps the keys it had. */
#include "policy/jwks_fetch.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/h1/h1_parse.h"
#include "net/transport.h"
#include "tls/tls.h"
#include "tls/tls_client.h"

#define JWKS_MAX_BYTES (1024 * 1024) /* a response larger than this is refused */
#define JWKS_HEADERS 64

/* ---- the URL ---- */

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

const char *jn_jwks_source_init(struct jn_jwks_source *src, char *url)
{
    src->url = url;
    src->refresh_ms = 5 * 60 * 1000;
    src->min_refresh_ms = 10 * 1000;
    src->timeout_ms = 5000;
    src->tls.verify = true;
    src->stop_fd = -1;
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0)
        src->https = true, rest = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else
        return "must start with http:// or https://";
    size_t auth_len = strcspn(rest, "/?#");
    const char *path = rest + auth_len;
    if (auth_len == 0)
        return "has no host";
    if (strchr(path, '#') != NULL || strchr(url, ' ') != NULL || memchr(rest, '@', auth_len))
        return "must not hold a fragment, spaces or user information";
    const char *host = rest, *host_end, *port = NULL;
    if (rest[0] == '[') {
        host = rest + 1;
        host_end = memchr(host, ']', auth_len - 1);
        if (host_end == NULL)
            return "has an unclosed [";
        if (host_end + 1 < rest + auth_len) {
            if (host_end[1] != ':')
                return "has junk after ]";
            port = host_end + 2;
        }
    } else {
        host_end = memchr(rest, ':', auth_len);
        if (host_end != NULL)
            port = host_end + 1;
        else
            host_end = rest + auth_len;
    }
    size_t port_len = port != NULL ? (size_t)(rest + auth_len - port) : 0;
    if (host_end == host || (port != NULL && (port_len == 0 || port_len > 5 ||
                                              strspn(port, "0123456789") < port_len)))
        return "has an invalid host or port";
    src->host = dup_n(host, (size_t)(host_end - host));
    src->port = port != NULL ? dup_n(port, port_len) : strdup(src->https ? "443" : "80");
    src->authority = dup_n(rest, auth_len);
    src->path = *path == '/' ? strdup(path) : NULL;
    if (src->path == NULL && *path != '/') {
        size_t n = strlen(path);
        src->path = malloc(n + 2);
        if (src->path != NULL) {
            src->path[0] = '/';
            memcpy(src->path + 1, path, n + 1);
        }
    }
    if (src->host == NULL || src->port == NULL || src->authority == NULL || src->path == NULL)
        return "out of memory";
    return NULL;
}

/* ---- one fetch ---- */

static uint64_t now_ms(void)
{
    return jn_clock_ms();
}

/* Waits for events on fd until deadline. Returns 0, JN_ETIMEOUT, or
 * JN_ECLOSED when the source is stopping. */
static int wait_fd(struct jn_jwks_source *src, int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return JN_ETIMEOUT;
        struct pollfd p[2] = { { fd, events, 0 }, { src->stop_fd, POLLIN, 0 } };
        int n = poll(p, 2, (int)JN_MIN(deadline - now, 60000));
        if (n < 0 && errno != EINTR)
            return JN_EIO;
        if (p[1].revents != 0)
            return JN_ECLOSED;
        if (n > 0)
            return 0;
    }
}

/* A name lookup run by glibc's getaddrinfo_a on its own thread, so that it
 * too is bounded by the deadline and the stop eventfd. A lookup given up
 * on is left to finish: whichever of the two owners lets go last frees it
 * (glibc's lookup cannot be interrupted once it runs). */
struct lookup {
    struct gaicb req; /* ar_name and ar_service point into name */
    struct addrinfo hints;
    int done_fd;     /* eventfd, written when the lookup ends */
    atomic_int refs; /* the fetch and the notification */
    char name[];     /* host, NUL, port, NUL */
};

static void lookup_unref(struct lookup *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    if (l->req.ar_result != NULL)
        freeaddrinfo(l->req.ar_result);
    close(l->done_fd);
    free(l);
}

static void lookup_done(union sigval v)
{
    struct lookup *l = v.sival_ptr;
    uint64_t one = 1;
    if (write(l->done_fd, &one, sizeof(one)) < 0)
        jn_log(JN_LOG_DEBUG, "jwt: eventfd: %s", strerror(errno));
    lookup_unref(l);
}

/* Resolves host and port by the deadline. Returns 0 with *res set (the
 * caller frees it), or -1 with *why. */
static int resolve(struct jn_jwks_source *src, uint64_t deadline, struct addrinfo **res,
                   const char **why)
{
    size_t hlen = strlen(src->host), plen = strlen(src->port);
    struct lookup *l = calloc(1, sizeof(*l) + hlen + plen + 2);
    if (l == NULL || (l->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        free(l);
        *why = "out of memory";
        return -1;
    }
    memcpy(l->name, src->host, hlen + 1);
    memcpy(l->name + hlen + 1, src->port, plen + 1);
    l->hints.ai_socktype = SOCK_STREAM;
    l->req = (struct gaicb){ .ar_name = l->name, .ar_service = l->name + hlen + 1,
                             .ar_request = &l->hints };
    atomic_init(&l->refs, 2);
    struct sigevent ev = { .sigev_notify = SIGEV_THREAD, .sigev_notify_function = lookup_done,
                           .sigev_value = { .sival_ptr = l } };
    struct gaicb *list[1] = { &l->req };
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &ev);
    if (rc != 0) {
        close(l->done_fd);
        free(l);
        *why = gai_strerror(rc);
        return -1;
    }
    rc = wait_fd(src, l->done_fd, POLLIN, deadline);
    if (rc != 0) {
        *why = rc == JN_ETIMEOUT ? "name lookup timed out" : "stopping";
        lookup_unref(l); /* the lookup frees itself when it ends */
        return -1;
    }
    rc = gai_error(&l->req);
    if (rc != 0) {
        *why = gai_strerror(rc);
    } else {
        *res = l->req.ar_result;
        l->req.ar_result = NULL;
    }
    lookup_unref(l);
    return rc == 0 ? 0 : -1;
}

static int connect_to(struct jn_jwks_source *src, uint64_t deadline, const char **why)
{
    struct addrinfo *res = NULL;
    if (resolve(src, deadline, &res, why) != 0)
        return -1;
    int fd = -1;
    *why = "connection refused";
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EINPROGRESS &&
            wait_fd(src, fd, POLLOUT, deadline) == 0) {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            errno = err;
        }
        if (errno != 0 && errno != EISCONN) {
            *why = errno == EINPROGRESS ? "connect timed out" : strerror(errno);
            close(fd);
            fd = -1;
        }
        errno = 0;
    }
    freeaddrinfo(res);
    return fd;
}

/* Waits for what an EAGAIN of the transport needs. */
static int wait_transport(struct jn_jwks_source *src, struct jn_transport *t, bool writing,
                          uint64_t deadline)
{
    bool out = writing ? !t->write_wants_read : t->read_wants_write;
    return wait_fd(src, t->fd, out ? POLLOUT : POLLIN, deadline);
}

static int send_request(struct jn_jwks_source *src, struct jn_transport *t, uint64_t deadline,
                        const char **why)
{
    const char *hs_why = "handshake failed";
    while (t->handshaking) {
        int rc = jn_tls_client_handshake(t, &hs_why);
        if (rc == 0)
            break;
        if (rc != JN_EAGAIN || wait_transport(src, t, false, deadline) != 0) {
            const char *verify = jn_tls_client_verify_error(t);
            *why = verify != NULL ? verify : rc == JN_EAGAIN ? "TLS handshake timed out" : hs_why;
            return -1;
        }
    }
    char head[2048];
    int n = snprintf(head, sizeof(head),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                     "User-Agent: junction\r\nConnection: close\r\n\r\n",
                     src->path, src->authority);
    if (n < 0 || (size_t)n >= sizeof(head)) {
        *why = "URL too long";
        return -1;
    }
    struct jn_buf b = { .data = head, .cap = sizeof(head), .start = 0, .end = (size_t)n };
    for (;;) {
        ssize_t w = t->ops->write(t, &b);
        if (w >= 0 && jn_buf_empty(&b))
            return 0;
        if ((w < 0 && w != JN_EAGAIN) || wait_transport(src, t, true, deadline) != 0) {
            *why = w < 0 && w != JN_EAGAIN ? "write failed" : "timed out";
            return -1;
        }
    }
}

/* The body of a complete response in buf into *body (malloc'd). Returns 1
 * when complete, 0 when more bytes are needed, -1 on error. */
static int response_body(const char *buf, size_t len, bool eof, char **body, size_t *blen,
                         uint16_t *status, const char **why)
{
    struct jn_h1_limits lim = { 8192, 16384, JWKS_HEADERS };
    struct jn_h1_header hdrs[JWKS_HEADERS];
    struct jn_h1_scan scan = { 0 };
    struct jn_h1_message m;
    int rc = jn_h1_parse_response(buf, len, &lim, hdrs, JWKS_HEADERS, &scan, false, &m);
    if (rc == JN_EAGAIN && !eof)
        return 0;
    if (rc < 0) {
        *why = rc == JN_EAGAIN ? "incomplete response" : "invalid response";
        return -1;
    }
    *status = m.status;
    const char *in = buf + m.header_bytes;
    size_t inlen = len - m.header_bytes;
    if (m.body == JN_H1_BODY_LENGTH || m.body == JN_H1_BODY_NONE) {
        uint64_t want = m.body == JN_H1_BODY_NONE ? 0 : m.content_length;
        if (inlen < want) {
            *why = "incomplete response";
            return eof ? -1 : 0;
        }
        inlen = (size_t)want;
    } else if (m.body == JN_H1_BODY_CLOSE) {
        if (!eof)
            return 0;
    } else {
        struct jn_h1_chunked st = { 0 };
        char *out = malloc(inlen + 1);
        size_t olen = 0;
        while (out != NULL) {
            size_t used = 0;
            struct jn_slice data;
            int c = jn_h1_chunked_decode(&st, in, inlen, &used, &data, why);
            in += used, inlen -= used;
            if (c == JN_H1_CHUNK_DATA) {
                memcpy(out + olen, data.ptr, data.len);
                olen += data.len;
                continue;
            }
            if (c == JN_H1_CHUNK_DONE) {
                *body = out, *blen = olen;
                return 1;
            }
            free(out);
            if (c == JN_EAGAIN && !eof)
                return 0;
            *why = c == JN_EAGAIN ? "incomplete response" : *why;
            return -1;
        }
        *why = "out of memory";
        return -1;
    }
    *body = dup_n(in, inlen);
    *blen = inlen;
    return *body != NULL ? 1 : -1;
}

static int read_response(struct jn_jwks_source *src, struct jn_transport *t, uint64_t deadline,
                         char **body, size_t *blen, const char **why)
{
    struct jn_buf b = { 0 };
    uint16_t status = 0;
    int rc = 0;
    bool eof = false;
    while (rc == 0) {
        if (jn_buf_room(&b) < 4096 && (b.cap >= JWKS_MAX_BYTES || jn_buf_grow(&b, b.cap + 65536))) {
            *why = b.cap >= JWKS_MAX_BYTES ? "response too large" : "out of memory";
            rc = -1;
            break;
        }
        bool drained = false;
        ssize_t n = t->ops->read(t, &b, &drained);
        if (n == JN_EAGAIN) {
            if (wait_transport(src, t, false, deadline) != 0) {
                *why = "timed out";
                rc = -1;
            }
            continue;
        }
        if (n < 0) {
            *why = "read failed";
            rc = -1;
            break;
        }
        eof = n == 0;
        rc = response_body(jn_buf_head(&b), jn_buf_len(&b), eof, body, blen, &status, why);
    }
    free(b.data);
    if (rc == 1 && status != 200) {
        *why = "status not 200";
        free(*body);
        *body = NULL;
        return -1;
    }
    return rc == 1 ? 0 : -1;
}

/* One fetch: the new key set, or NULL after logging why at warn. */
static struct jn_jwks *fetch(struct jn_jwks_source *src)
{
    uint64_t deadline = now_ms() + src->timeout_ms;
    const char *why = "out of memory";
    char *body = NULL, err[200];
    size_t blen = 0;
    struct jn_transport t = { .ops = &jn_transport_plain, .fd = -1 };
    struct jn_jwks *set = NULL;
    t.fd = connect_to(src, deadline, &why);
    if (t.fd >= 0 &&
        (!src->https || jn_tls_client_start(src->tls_client, &src->tls, src->authority, NULL,
                                            &t) == 0) &&
        send_request(src, &t, deadline, &why) == 0 &&
        read_response(src, &t, deadline, &body, &blen, &why) == 0) {
        set = jn_jwks_parse(body, blen, err, sizeof(err));
        why = err;
    }
    if (set == NULL)
        jn_log(JN_LOG_WARN, "jwt: jwks_url %s: %s; keeping the keys it had", src->url, why);
    if (t.ssl != NULL)
        jn_tls_conn_free(&t);
    if (t.fd >= 0)
        close(t.fd);
    free(body);
    return set;
}

/* ---- the thread ---- */

/* Posts every waiting request to its loop. Under lock. */
static void post_waiters(struct jn_jwks_source *src)
{
    struct jn_jwks_waiter *w = src->waiters;
    src->waiters = NULL;
    while (w != NULL) {
        struct jn_jwks_waiter *next = w->next;
        w->listed = false;
        /* After this, w belongs to its loop: never touched here again. */
        jn_loop_post(w->task.loop, &w->task);
        w = next;
    }
}

static void timed_wait(struct jn_jwks_source *src, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&src->cond, &src->lock, &ts);
}

static void *run(void *arg)
{
    struct jn_jwks_source *src = arg;
    pthread_mutex_lock(&src->lock);
    while (!src->stopping) {
        uint64_t now = now_ms();
        /* Without keys yet, tries again sooner than the refresh period. */
        uint64_t period = src->keys != NULL ? src->refresh_ms
                                            : JN_MIN(src->refresh_ms,
                                                     JN_MAX(src->min_refresh_ms, 1000));
        uint64_t due = src->last_attempt_ms == 0 ? now : src->last_attempt_ms + period;
        if (src->wanted && src->last_attempt_ms + src->min_refresh_ms < due)
            due = JN_MAX(src->last_attempt_ms + src->min_refresh_ms, now);
        if (now < due) {
            timed_wait(src, due - now);
            continue;
        }
        src->fetching = true;
        src->wanted = false;
        src->last_attempt_ms = now;
        pthread_mutex_unlock(&src->lock);
        struct jn_jwks *set = fetch(src);
        pthread_mutex_lock(&src->lock);
        if (set != NULL) {
            struct jn_jwks *old = src->keys;
            src->keys = set;
            atomic_store_explicit(&src->keys_id, set->id, memory_order_release);
            jn_jwks_unref(old); /* readers still verifying hold their own reference */
        }
        src->fetching = false;
        post_waiters(src);
    }
    pthread_mutex_unlock(&src->lock);
    return NULL;
}

int jn_jwks_source_start(struct jn_jwks_source *src)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&src->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&src->lock, NULL);
    src->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (src->stop_fd < 0 || pthread_create(&src->thread, NULL, run, src) != 0) {
        jn_log(JN_LOG_ERR, "jwt: jwks_url %s: cannot start the fetch thread", src->url);
        return JN_EIO;
    }
    src->started = true;
    return 0;
}

void jn_jwks_source_free(struct jn_jwks_source *src)
{
    if (src->started) {
        pthread_mutex_lock(&src->lock);
        src->stopping = true;
        pthread_cond_signal(&src->cond);
        pthread_mutex_unlock(&src->lock);
        uint64_t one = 1;
        if (write(src->stop_fd, &one, sizeof(one)) < 0)
            jn_log(JN_LOG_WARN, "jwt: cannot wake the jwks fetch thread");
        pthread_join(src->thread, NULL);
        /* Every stream ended before its configuration is freed, and ending
         * takes a stream off the list: nothing can be waiting now. */
        src->started = false;
    }
    if (src->stop_fd >= 0) {
        close(src->stop_fd);
        pthread_cond_destroy(&src->cond);
        pthread_mutex_destroy(&src->lock);
    }
    jn_jwks_unref(src->keys);
    jn_tls_client_free(src->tls_client);
    free(src->host);
    free(src->port);
    free(src->authority);
    free(src->path);
}

struct jn_jwks *jn_jwks_source_get(struct jn_jwks_source *src)
{
    pthread_mutex_lock(&src->lock);
    struct jn_jwks *set = src->keys;
    if (set != NULL)
        jn_jwks_ref(set);
    pthread_mutex_unlock(&src->lock);
    return set;
}

uint64_t jn_jwks_source_id(struct jn_jwks_source *src)
{
    return atomic_load_explicit(&src->keys_id, memory_order_acquire);
}

bool jn_jwks_source_wait(struct jn_jwks_source *src, struct jn_jwks_waiter *w)
{
    pthread_mutex_lock(&src->lock);
    bool allowed = src->fetching || src->last_attempt_ms == 0 ||
                   now_ms() >= src->last_attempt_ms + src->min_refresh_ms;
    if (allowed && w != NULL) {
        w->next = src->waiters;
        w->listed = true;
        src->waiters = w;
    }
    if (allowed && !src->fetching) {
        src->wanted = true;
        pthread_cond_signal(&src->cond);
    }
    pthread_mutex_unlock(&src->lock);
    return allowed;
}

bool jn_jwks_source_unwait(struct jn_jwks_source *src, struct jn_jwks_waiter *w)
{
    pthread_mutex_lock(&src->lock);
    bool listed = w->listed;
    if (listed) {
        struct jn_jwks_waiter **p = &src->waiters;
        while (*p != w)
            p = &(*p)->next;
        *p = w->next;
        w->listed = false;
    }
    pthread_mutex_unlock(&src->lock);
    return listed;
}
