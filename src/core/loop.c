/* Event loop: epoll plus a binary min-heap of timers keyed by deadline.
 * Timers are re-armed constantly (every read moves an idle deadline), so the
 * heap supports O(log n) removal by index rather than lazy deletion. */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

#define JN_LOOP_BATCH 256

uint64_t jn_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t jn_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t jn_loop_now(const struct jn_loop *loop)
{
    return loop->now_ms;
}

static void heap_swap(struct jn_loop *l, size_t a, size_t b)
{
    struct jn_timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->heap_index = a;
    l->heap[b]->heap_index = b;
}

static void heap_up(struct jn_loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->when_ms <= l->heap[i]->when_ms)
            break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(struct jn_loop *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->nheap && l->heap[c]->when_ms < l->heap[m]->when_ms)
            m = c;
        if (c + 1 < l->nheap && l->heap[c + 1]->when_ms < l->heap[m]->when_ms)
            m = c + 1;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

void jn_timer_init(struct jn_timer *t, jn_timer_fn cb, void *data)
{
    t->when_ms = 0;
    t->heap_index = (size_t)-1;
    t->cb = cb;
    t->data = data;
}

void jn_timer_stop(struct jn_loop *l, struct jn_timer *t)
{
    size_t i = t->heap_index;
    if (i == (size_t)-1)
        return;
    t->heap_index = (size_t)-1;
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    l->heap[i]->heap_index = i;
    heap_up(l, i);
    heap_down(l, l->heap[i]->heap_index);
}

int jn_timer_set(struct jn_loop *l, struct jn_timer *t, uint64_t ms)
{
    uint64_t when = l->now_ms + ms;
    if (jn_timer_active(t)) {
        uint64_t old = t->when_ms;
        t->when_ms = when;
        if (when < old)
            heap_up(l, t->heap_index);
        else
            heap_down(l, t->heap_index);
        return 0;
    }
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 64;
        struct jn_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL)
            return JN_ENOMEM;
        l->heap = h;
        l->capheap = cap;
    }
    t->when_ms = when;
    t->heap_index = l->nheap;
    l->heap[l->nheap++] = t;
    heap_up(l, t->heap_index);
    return 0;
}

void jn_loop_post(struct jn_loop *l, struct jn_task *t)
{
    pthread_mutex_lock(&l->post_lock);
    t->next = l->posted;
    l->posted = t;
    pthread_mutex_unlock(&l->post_lock);
    jn_loop_wake(l);
}

/* Runs the posted tasks in the order they came. */
static void run_posted(struct jn_loop *l)
{
    pthread_mutex_lock(&l->post_lock);
    struct jn_task *t = l->posted, *fifo = NULL;
    l->posted = NULL;
    pthread_mutex_unlock(&l->post_lock);
    while (t != NULL) {
        struct jn_task *next = t->next;
        t->next = fifo;
        fifo = t;
        t = next;
    }
    while (fifo != NULL) {
        struct jn_task *next = fifo->next;
        fifo->done(fifo); /* may free fifo */
        fifo = next;
    }
}

static void wake_cb(struct jn_loop *l, struct jn_io *io, uint32_t events)
{
    uint64_t v;
    while (read(io->fd, &v, sizeof(v)) > 0)
        ;
    run_posted(l);
    if (l->on_wake)
        l->on_wake(l);
}

int jn_loop_init(struct jn_loop *l)
{
    *l = (struct jn_loop){ .epfd = -1, .wakefd = -1 };
    pthread_mutex_init(&l->post_lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wakefd < 0) {
        jn_loop_destroy(l);
        return JN_EIO;
    }
    l->now_ms = jn_clock_ms();
    l->wake_io = (struct jn_io){ .fd = l->wakefd, .cb = wake_cb, .data = l };
    if (jn_io_add(l, &l->wake_io, EPOLLIN) != 0) {
        jn_loop_destroy(l);
        return JN_EIO;
    }
    return 0;
}

void jn_loop_destroy(struct jn_loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    free(l->heap);
    l->heap = NULL;
    l->epfd = l->wakefd = -1;
    /* Tasks still posted belong to owners that are going away with the
     * loop: their done runs so they can free themselves. */
    run_posted(l);
    pthread_mutex_destroy(&l->post_lock);
}

void jn_loop_stop(struct jn_loop *l)
{
    l->stop = true;
}

void jn_loop_wake(struct jn_loop *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->wakefd, &one, sizeof(one));
    JN_UNUSED(w); /* a full counter already means "wake up" */
}

int jn_io_add(struct jn_loop *l, struct jn_io *io, uint32_t events)
{
    struct epoll_event ev = { .events = events | EPOLLET, .data.ptr = io };
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0 ? 0 : JN_EIO;
}

int jn_io_mod(struct jn_loop *l, struct jn_io *io, uint32_t events)
{
    struct epoll_event ev = { .events = events | EPOLLET, .data.ptr = io };
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == 0 ? 0 : JN_EIO;
}

void jn_io_del(struct jn_loop *l, struct jn_io *io)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

static void run_timers(struct jn_loop *l)
{
    while (l->nheap > 0 && l->heap[0]->when_ms <= l->now_ms) {
        struct jn_timer *t = l->heap[0];
        jn_timer_stop(l, t);
        t->cb(l, t);
    }
}

static int next_timeout(const struct jn_loop *l)
{
    if (l->nheap == 0)
        return -1;
    uint64_t when = l->heap[0]->when_ms;
    if (when <= l->now_ms)
        return 0;
    uint64_t d = when - l->now_ms;
    return d > 60000 ? 60000 : (int)d;
}

int jn_loop_run(struct jn_loop *l)
{
    struct epoll_event evs[JN_LOOP_BATCH];
    while (!l->stop) {
        int n = epoll_wait(l->epfd, evs, JN_LOOP_BATCH, next_timeout(l));
        l->now_ms = jn_clock_ms();
        for (int i = 0; i < n; i++) {
            struct jn_io *io = evs[i].data.ptr;
            io->cb(l, io, evs[i].events);
        }
        run_timers(l);
        if (l->on_idle)
            l->on_idle(l);
    }
    return 0;
}
