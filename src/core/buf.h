/* Byte buffers and the per-thread pool they come from. A connection holds a
 * buffer only while it has bytes in flight and gives it back when idle, so an
 * idle keep-alive connection costs no buffer memory. */
#ifndef JN_CORE_BUF_H
#define JN_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define JN_BUF_SIZE 16384

/* Bytes live in data[start..end); free space is data[end..cap). */
struct jn_buf {
    char *data; /* owned: from the pool (cap == JN_BUF_SIZE) or malloc (larger) */
    size_t cap;
    size_t start;
    size_t end;
};

/* Per-thread free list of JN_BUF_SIZE blocks. */
struct jn_buf_pool {
    void *free_list; /* owned: chain of free blocks */
    size_t nfree;
    size_t max_free; /* blocks kept beyond this are returned to malloc */
};

void jn_buf_pool_init(struct jn_buf_pool *pool, size_t max_free);
void jn_buf_pool_destroy(struct jn_buf_pool *pool);

/* Gives b storage if it has none. Returns 0 or JN_ENOMEM. */
int jn_buf_acquire(struct jn_buf_pool *pool, struct jn_buf *b);
/* Returns b's storage to the pool; b must be empty or its bytes are dropped. */
void jn_buf_release(struct jn_buf_pool *pool, struct jn_buf *b);
/* Grows b to hold at least cap bytes (bytes kept). Returns 0 or JN_ENOMEM. */
int jn_buf_grow(struct jn_buf *b, size_t cap);

static inline size_t jn_buf_len(const struct jn_buf *b)
{
    return b->end - b->start;
}
static inline bool jn_buf_empty(const struct jn_buf *b)
{
    return b->end == b->start;
}
static inline const char *jn_buf_head(const struct jn_buf *b)
{
    return b->data + b->start;
}
/* Free space at the tail after moving bytes to the front when that helps. */
size_t jn_buf_room(struct jn_buf *b);
static inline char *jn_buf_tail(struct jn_buf *b)
{
    return b->data + b->end;
}
void jn_buf_consume(struct jn_buf *b, size_t n);
/* Appends n bytes; returns 0 or JN_ETOOBIG when they do not fit. */
int jn_buf_append(struct jn_buf *b, const void *p, size_t n);
/* Reads from fd into the free space. Returns bytes read, 0 on EOF,
 * JN_EAGAIN when nothing is ready, JN_EIO on error. *drained is set when the
 * socket has nothing more to give: with edge-triggered readiness a short
 * read means the queue was emptied, and new bytes will raise a new edge, so
 * the caller need not spend a system call to hear EAGAIN. */
ssize_t jn_buf_read_fd(struct jn_buf *b, int fd, bool *drained);
/* Writes buffered bytes to fd. Returns bytes written (maybe 0 with JN_EAGAIN
 * meaning "would block"), or JN_EIO. */
ssize_t jn_buf_write_fd(struct jn_buf *b, int fd);

/* Appends n bytes, growing b (beyond the pool size if needed). Returns 0 or JN_ENOMEM. */
int jn_buf_put(struct jn_buf *b, const void *p, size_t n);

#endif
