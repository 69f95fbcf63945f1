/* Arena allocator: chunks chained newest first, freed all at once. */
#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct jn_arena_chunk {
    struct jn_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

void jn_arena_init(struct jn_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
}

void *jn_arena_alloc(struct jn_arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    size = (size + align - 1) & ~(align - 1);
    if (size == 0)
        size = align;
    struct jn_arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < size) {
        size_t want = size > a->chunk_size ? size : a->chunk_size;
        c = malloc(sizeof(*c) + want);
        if (c == NULL)
            return NULL;
        c->size = want;
        c->used = 0;
        /* A big allocation gets its own chunk behind the current one so the
         * space left in the current chunk is not wasted. */
        if (a->head != NULL && want > a->chunk_size) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

void *jn_arena_calloc(struct jn_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = jn_arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

char *jn_arena_strndup(struct jn_arena *a, const char *s, size_t len)
{
    char *p = jn_arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *jn_arena_strdup(struct jn_arena *a, const char *s)
{
    return jn_arena_strndup(a, s, strlen(s));
}

void jn_arena_free(struct jn_arena *a)
{
    struct jn_arena_chunk *c = a->head;
    while (c != NULL) {
        struct jn_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void jn_arena_reset(struct jn_arena *a)
{
    struct jn_arena_chunk *keep = NULL, *c = a->head;
    while (c != NULL) {
        struct jn_arena_chunk *next = c->next;
        if (next == NULL && c->size == a->chunk_size)
            keep = c;
        else
            free(c);
        c = next;
    }
    if (keep != NULL) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
}
