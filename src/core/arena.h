/* Arena allocator: many small allocations freed together with their owner
 * (a configuration snapshot, a request). Not thread-safe; one owner at a time. */
#ifndef JN_CORE_ARENA_H
#define JN_CORE_ARENA_H

#include <stddef.h>

struct jn_arena_chunk;

struct jn_arena {
    struct jn_arena_chunk *head; /* owned: chunks, newest first */
    size_t chunk_size;           /* default size of a new chunk */
};

/* Prepares an empty arena; nothing is allocated until the first use. */
void jn_arena_init(struct jn_arena *a, size_t chunk_size);
/* Returns size bytes aligned for any type, or NULL when memory runs out. */
void *jn_arena_alloc(struct jn_arena *a, size_t size);
/* Like jn_arena_alloc, zero-filled. */
void *jn_arena_calloc(struct jn_arena *a, size_t n, size_t size);
/* Copies len bytes into the arena and NUL-terminates them. */
char *jn_arena_strndup(struct jn_arena *a, const char *s, size_t len);
char *jn_arena_strdup(struct jn_arena *a, const char *s);
/* Empties the arena but keeps its oldest chunk when it has the default size,
 * so an object reused for the next request does not go back to malloc. */
void jn_arena_reset(struct jn_arena *a);
/* Frees every chunk; the arena is empty and reusable afterwards. */
void jn_arena_free(struct jn_arena *a);

#endif
