/* Event loop: one per worker thread, epoll for readiness and a binary heap of
 * timers. Nothing in it is shared between threads except the wake-up eventfd. */
#ifndef JN_CORE_LOOP_H
#define JN_CORE_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jn_loop;
struct jn_io;
struct jn_timer;

/* Work handed between threads (core/offload.c): a pool thread runs work,
 * then the loop that posted it runs done. Embedded in its owner, which
 * keeps it alive until done ran. */
struct jn_task {
    void (*work)(struct jn_task *t); /* on a pool thread; NULL: nothing */
    void (*done)(struct jn_task *t); /* on loop's thread, afterwards */
    struct jn_loop *loop;            /* borrowed: where done runs */
    struct jn_task *next;            /* queue link */
    bool skipped;                    /* set by the pool: work did not run (shutdown) */
};

typedef void (*jn_io_fn)(struct jn_loop *loop, struct jn_io *io, uint32_t events);
typedef void (*jn_timer_fn)(struct jn_loop *loop, struct jn_timer *t);

/* A file descriptor watched by the loop. Embedded in its owner. */
struct jn_io {
    int fd;
    jn_io_fn cb;
    void *data; /* borrowed: the owner */
};

/* A one-shot timer. Embedded in its owner; idle when heap_index == SIZE_MAX. */
struct jn_timer {
    uint64_t when_ms;
    size_t heap_index;
    jn_timer_fn cb;
    void *data; /* borrowed: the owner */
};

struct jn_loop {
    int epfd;
    int wakefd;          /* eventfd: other threads write to wake this loop */
    struct jn_io wake_io;
    bool stop;
    uint64_t now_ms;     /* monotonic, refreshed once per iteration */
    struct jn_timer **heap; /* owned array of borrowed timers */
    size_t nheap, capheap;
    void (*on_wake)(struct jn_loop *loop); /* called when woken; may be NULL */
    void (*on_idle)(struct jn_loop *loop); /* called after each batch of events; may be NULL */
    void *data;          /* borrowed: the worker */
    pthread_mutex_t post_lock;             /* guards posted, the only state other threads touch */
    struct jn_task *posted;                /* tasks whose done waits to run here, newest first */
};

/* Returns 0 or JN_EIO. */
int jn_loop_init(struct jn_loop *loop);
void jn_loop_destroy(struct jn_loop *loop);
/* Runs until jn_loop_stop; returns 0. */
int jn_loop_run(struct jn_loop *loop);
void jn_loop_stop(struct jn_loop *loop);
/* Thread-safe: has t->done run on loop's thread soon (before on_wake). */
void jn_loop_post(struct jn_loop *loop, struct jn_task *t);
/* Thread-safe: makes the loop call on_wake soon. */
void jn_loop_wake(struct jn_loop *loop);
uint64_t jn_loop_now(const struct jn_loop *loop);
uint64_t jn_clock_ms(void);
/* Monotonic microseconds, read from the clock (not cached). */
uint64_t jn_clock_us(void);

/* Registers io->fd edge-triggered for events (EPOLLIN/EPOLLOUT...). Returns 0 or JN_EIO. */
int jn_io_add(struct jn_loop *loop, struct jn_io *io, uint32_t events);
int jn_io_mod(struct jn_loop *loop, struct jn_io *io, uint32_t events);
void jn_io_del(struct jn_loop *loop, struct jn_io *io);

void jn_timer_init(struct jn_timer *t, jn_timer_fn cb, void *data);
/* (Re)arms t to fire after ms milliseconds. Returns 0 or JN_ENOMEM. */
int jn_timer_set(struct jn_loop *loop, struct jn_timer *t, uint64_t ms);
void jn_timer_stop(struct jn_loop *loop, struct jn_timer *t);
static inline bool jn_timer_active(const struct jn_timer *t)
{
    return t->heap_index != (size_t)-1;
}

#endif
