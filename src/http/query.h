/* Query strings: form-encoded parameters ('+' a space, %XX a byte) read in
 * place, decoding on the fly, for the router's query matchers and the
 * hashing balancers' query keys. */
#ifndef JN_HTTP_QUERY_H
#define JN_HTTP_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/common.h"

/* Decodes the byte of form-encoded text at enc[*i] (a malformed escape
 * stands for itself) and moves *i past it. */
unsigned char jn_form_byte(const char *enc, size_t len, size_t *i);
/* True when enc, decoded, equals want[0..wlen). */
bool jn_form_eq(const char *enc, size_t len, const char *want, size_t wlen);
/* Finds the first parameter whose decoded name is name[0..nlen) in a raw
 * query string (no '?'). On success sets *value to its raw, still encoded
 * value (empty when it has no '=') and returns true. */
bool jn_query_find(struct jn_slice query, const char *name, size_t nlen, struct jn_slice *value);
/* Writes q without every parameter whose decoded name is one of names[0..n)
 * at out (q.len bytes at most), the others kept in their order; returns the
 * length written. */
size_t jn_query_without(struct jn_slice q, const char *const *names, size_t n, char *out);
/* Removes every parameter named name from *q (a copy in arena when there
 * is one: a credential must not go upstream). Returns false when memory
 * ran out. */
bool jn_query_hide(struct jn_arena *arena, struct jn_slice *q, const char *name);

#endif
