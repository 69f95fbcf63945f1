/* Moves a message body from one buffer to another, decoding its framing on
 * the way in and applying the framing of the other side on the way out
 * (Content-Length as is, chunked re-encoded, or close-delimited). It moves
 * only what fits, which is how backpressure reaches the reading side. */
#ifndef JN_HTTP_BODY_H
#define JN_HTTP_BODY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/h1/h1_parse.h"

struct jn_body {
    enum jn_h1_body in;   /* framing of the source */
    bool out_chunked;     /* re-encode as chunked toward the destination */
    bool done;            /* the whole body has been moved */
    bool src_eof;         /* set by the caller when a close-delimited source ended */
    bool hold_end;        /* set by the caller: the source's end does not end the body... */
    bool src_done;        /* ...it sets this instead, and jn_body_end adds a tail */
    uint64_t remaining;   /* JN_H1_BODY_LENGTH: bytes still to come */
    uint64_t moved;       /* body bytes moved so far */
    uint64_t limit;       /* 0: none; a longer body fails the pump (request_limits) */
    bool too_big;         /* the pump failed on limit: nothing past it was moved */
    struct jn_h1_chunked chunked;
};

void jn_body_init(struct jn_body *b, enum jn_h1_body in, uint64_t length, bool out_chunked);
/* Frees what b holds (kept chunked trailers). */
void jn_body_free(struct jn_body *b);
/* Moves what it can from src to dst. Returns 1 when something moved, 0 when
 * stalled (src empty or dst full), JN_EINVAL on bad framing (*err set),
 * JN_ETOOBIG (too_big set, *err set) when the body would pass b->limit: the
 * bytes past it, and the body's end, are never written to dst. */
int jn_body_pump(struct jn_body *b, struct jn_buf *src, struct jn_buf *dst, const char **err);
/* With hold_end, once src_done: writes tail (framed like the body) and the
 * body's end. Returns 0, or JN_EAGAIN when dst has no room for it yet. */
int jn_body_end(struct jn_body *b, struct jn_buf *dst, const char *tail, size_t n);

#endif
