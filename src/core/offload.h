/* A small pool of threads for work that must not run on an event loop
 * (bcrypt, blocking file or DNS work): the loop queues a task, a pool thread
 * runs its work, and the loop that queued it runs its done. */
#ifndef JN_CORE_OFFLOAD_H
#define JN_CORE_OFFLOAD_H

#include "core/loop.h"

/* Starts n threads (at least 1). Returns 0 or JN_EIO. Idempotent. */
int jn_offload_start(unsigned n);
/* Stops the threads once each has finished the work it is running. The
 * tasks still queued, and those queued later, do not run their work: they
 * are posted to their loop with t->skipped set, so that their done can
 * answer (503) or free them. Call before the loops tasks post to are gone. */
void jn_offload_stop(void);
/* Queues t: t->work runs on a pool thread, then t->done on t->loop.
 * Thread-safe. Without a started pool (never started: unit tests), work
 * runs here and done is posted; after jn_offload_stop, see above. */
void jn_offload(struct jn_task *t);

#endif
