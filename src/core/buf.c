/* Byte buffers and their per-thread pool. */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"

struct free_block {
    struct free_block *next;
};

void jn_buf_pool_init(struct jn_buf_pool *pool, size_t max_free)
{
    pool->free_list = NULL;
    pool->nfree = 0;
#ifdef JN_ASAN
    max_free = 0;
#endif
    pool->max_free = max_free;
}

void jn_buf_pool_destroy(struct jn_buf_pool *pool)
{
    struct free_block *b = pool->free_list;
    while (b) {
        struct free_block *next = b->next;
        free(b);
        b = next;
    }
    pool->free_list = NULL;
    pool->nfree = 0;
}

int jn_buf_acquire(struct jn_buf_pool *pool, struct jn_buf *b)
{
    if (b->data != NULL)
        return 0;
    struct free_block *fb = pool->free_list;
    if (fb != NULL) {
        pool->free_list = fb->next;
        pool->nfree--;
        b->data = (char *)fb;
    } else {
        b->data = malloc(JN_BUF_SIZE);
        if (b->data == NULL)
            return JN_ENOMEM;
    }
    b->cap = JN_BUF_SIZE;
    b->start = b->end = 0;
    return 0;
}

void jn_buf_release(struct jn_buf_pool *pool, struct jn_buf *b)
{
    if (b->data == NULL)
        return;
    if (b->cap == JN_BUF_SIZE && pool->nfree < pool->max_free) {
        struct free_block *fb = (struct free_block *)(void *)b->data;
        fb->next = pool->free_list;
        pool->free_list = fb;
        pool->nfree++;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->cap = b->start = b->end = 0;
}

int jn_buf_grow(struct jn_buf *b, size_t cap)
{
    if (b->cap >= cap)
        return 0;
    /* Never realloc a pooled block: it must stay JN_BUF_SIZE to go back. */
    char *p = malloc(cap);
    if (p == NULL)
        return JN_ENOMEM;
    size_t n = jn_buf_len(b);
    if (n)
        memcpy(p, b->data + b->start, n);
    free(b->data);
    b->data = p;
    b->cap = cap;
    b->start = 0;
    b->end = n;
    return 0;
}

size_t jn_buf_room(struct jn_buf *b)
{
    if (b->start == b->end) {
        b->start = b->end = 0;
    } else if (b->start > 0 && b->cap - b->end < b->cap / 4) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    return b->cap - b->end;
}

void jn_buf_consume(struct jn_buf *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}

int jn_buf_append(struct jn_buf *b, const void *p, size_t n)
{
    if (jn_buf_room(b) < n)
        return JN_ETOOBIG;
    memcpy(b->data + b->end, p, n);
    b->end += n;
    return 0;
}

ssize_t jn_buf_read_fd(struct jn_buf *b, int fd, bool *drained)
{
    size_t room = jn_buf_room(b);
    *drained = false;
    if (room == 0)
        return JN_EAGAIN;
    for (;;) {
        ssize_t n = recv(fd, b->data + b->end, room, 0);
        if (n > 0) {
            b->end += (size_t)n;
            *drained = (size_t)n < room;
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *drained = true;
            return JN_EAGAIN;
        }
        return JN_EIO;
    }
}

ssize_t jn_buf_write_fd(struct jn_buf *b, int fd)
{
    while (!jn_buf_empty(b)) {
        ssize_t n = send(fd, b->data + b->start, jn_buf_len(b), MSG_NOSIGNAL);
        if (n > 0) {
            jn_buf_consume(b, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return JN_EAGAIN;
        return JN_EIO;
    }
    return 0;
}

int jn_buf_put(struct jn_buf *b, const void *p, size_t n)
{
    size_t len = jn_buf_len(b);
    if (b->cap - b->end < n) {
        if (b->cap - len >= n) {
            /* Enough space in all: move the bytes to the front. */
            memmove(b->data, b->data + b->start, len);
            b->start = 0;
            b->end = len;
        } else {
            size_t want = b->cap ? b->cap : JN_BUF_SIZE;
            while (want - len < n)
                want *= 2;
            if (jn_buf_grow(b, want) != 0)
                return JN_ENOMEM;
        }
    }
    memcpy(b->data + b->end, p, n);
    b->end += n;
    return 0;
}
