/* The offload pool: a mutex-guarded FIFO and a condition variable; the work
 * queued is rare and slow (a bcrypt check takes milliseconds), so a lock
 * costs nothing that matters here. */
#include "core/offload.h"

#include <stdlib.h>

#include "core/common.h"

#define MAX_THREADS 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static struct jn_task *head, *tail;
static pthread_t threads[MAX_THREADS];
static unsigned nthreads;
static bool stopping;

static void *run(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == NULL && !stopping)
            pthread_cond_wait(&ready, &lock);
        struct jn_task *t = stopping ? NULL : head;
        if (t != NULL) {
            head = t->next;
            if (head == NULL)
                tail = NULL;
        }
        pthread_mutex_unlock(&lock);
        if (t == NULL)
            return NULL;
        if (t->work != NULL)
            t->work(t);
        jn_loop_post(t->loop, t);
    }
}

int jn_offload_start(unsigned n)
{
    if (nthreads > 0)
        return 0;
    n = JN_MIN(JN_MAX(n, 1u), (unsigned)MAX_THREADS);
    stopping = false;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&threads[i], NULL, run, NULL) != 0) {
            jn_offload_stop();
            return JN_EIO;
        }
        nthreads++;
    }
    return 0;
}

/* Hands t back to its loop without running its work. */
static void skip(struct jn_task *t)
{
    t->skipped = true;
    jn_loop_post(t->loop, t);
}

void jn_offload_stop(void)
{
    pthread_mutex_lock(&lock);
    stopping = true;
    struct jn_task *queued = head;
    head = tail = NULL;
    pthread_cond_broadcast(&ready);
    pthread_mutex_unlock(&lock);
    /* The work queued (bcrypt checks, a burst of them maybe) would hold
     * the shutdown for its whole length: its owners hear it was skipped. */
    while (queued != NULL) {
        struct jn_task *next = queued->next;
        skip(queued);
        queued = next;
    }
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL); /* each finishes the work it runs */
    pthread_mutex_lock(&lock);
    nthreads = 0;
    pthread_mutex_unlock(&lock);
}

void jn_offload(struct jn_task *t)
{
    t->next = NULL;
    t->skipped = false;
    pthread_mutex_lock(&lock);
    if (stopping) {
        pthread_mutex_unlock(&lock);
        skip(t);
        return;
    }
    if (nthreads == 0) {
        pthread_mutex_unlock(&lock);
        if (t->work != NULL)
            t->work(t);
        jn_loop_post(t->loop, t);
        return;
    }
    if (tail != NULL)
        tail->next = t;
    else
        head = t;
    tail = t;
    pthread_cond_signal(&ready);
    pthread_mutex_unlock(&lock);
}
