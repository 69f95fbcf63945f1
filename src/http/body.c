/* Body transfer between buffers with framing translation. */
#include "http/body.h"

#include <stdio.h>
#include <stdlib.h>

/* Room for "ffffffffffffffff\r\n" before and "\r\n" after a chunk. */
#define CHUNK_OVERHEAD 24

void jn_body_init(struct jn_body *b, enum jn_h1_body in, uint64_t length, bool out_chunked)
{
    *b = (struct jn_body){ .in = in, .out_chunked = out_chunked, .remaining = length };
    if (in == JN_H1_BODY_NONE || (in == JN_H1_BODY_LENGTH && length == 0))
        b->done = true;
}

void jn_body_free(struct jn_body *b)
{
    free(b->chunked.trailers);
    b->chunked.trailers = NULL;
}

static int emit(struct jn_body *b, struct jn_buf *dst, const char *p, size_t n)
{
    if (b->limit != 0 && b->moved + n > b->limit) {
        b->too_big = true;
        return JN_ETOOBIG;
    }
    if (b->out_chunked) {
        char line[24];
        int k = snprintf(line, sizeof(line), "%zx\r\n", n);
        jn_buf_append(dst, line, (size_t)k);
        jn_buf_append(dst, p, n);
        jn_buf_append(dst, "\r\n", 2);
    } else {
        jn_buf_append(dst, p, n);
    }
    b->moved += n;
    return 1;
}

/* The closing "0\r\n\r\n" of a re-encoded body. Returns false when it does not fit yet. */
static bool finish(struct jn_body *b, struct jn_buf *dst)
{
    if (b->hold_end) {
        b->src_done = true; /* the caller ends it, with jn_body_end */
        return false;
    }
    if (b->out_chunked) {
        if (jn_buf_room(dst) < 5)
            return false;
        jn_buf_append(dst, "0\r\n\r\n", 5);
    }
    b->done = true;
    return true;
}

/* Largest data piece that fits in dst with its framing, 0 when dst is too full. */
static size_t fit(const struct jn_body *b, struct jn_buf *dst)
{
    size_t room = jn_buf_room(dst);
    if (!b->out_chunked)
        return room;
    return room > CHUNK_OVERHEAD * 2 ? room - CHUNK_OVERHEAD : 0;
}

static int pump_chunked(struct jn_body *b, struct jn_buf *src, struct jn_buf *dst, const char **err)
{
    int moved = 0;
    while (!jn_buf_empty(src)) {
        size_t max = fit(b, dst);
        if (max == 0)
            return moved;
        size_t used = 0;
        struct jn_slice data;
        size_t in_len = JN_MIN(jn_buf_len(src), max);
        int rc = jn_h1_chunked_decode(&b->chunked, jn_buf_head(src), in_len, &used, &data, err);
        if (rc < 0 && rc != JN_EAGAIN)
            return JN_EINVAL;
        if (rc == JN_H1_CHUNK_DATA && emit(b, dst, data.ptr, data.len) < 0) {
            *err = "request body too large";
            return JN_ETOOBIG;
        }
        jn_buf_consume(src, used);
        moved |= used > 0;
        if (rc == JN_H1_CHUNK_DONE) {
            b->in = JN_H1_BODY_NONE; /* remember the input side ended */
            break;
        }
        if (rc == JN_EAGAIN && used == 0)
            break;
    }
    if (b->in == JN_H1_BODY_NONE && finish(b, dst))
        moved = 1;
    return moved;
}

int jn_body_pump(struct jn_body *b, struct jn_buf *src, struct jn_buf *dst, const char **err)
{
    if (b->done)
        return 0;
    if (b->in == JN_H1_BODY_CHUNKED || b->in == JN_H1_BODY_NONE)
        return pump_chunked(b, src, dst, err);
    int moved = 0;
    size_t n = JN_MIN(jn_buf_len(src), fit(b, dst));
    if (b->in == JN_H1_BODY_LENGTH && n > b->remaining)
        n = (size_t)b->remaining;
    if (n > 0) {
        moved = emit(b, dst, jn_buf_head(src), n);
        if (moved < 0) {
            *err = "request body too large";
            return JN_ETOOBIG;
        }
        jn_buf_consume(src, n);
        if (b->in == JN_H1_BODY_LENGTH)
            b->remaining -= n;
    }
    bool ended = (b->in == JN_H1_BODY_LENGTH) ? b->remaining == 0 : (b->src_eof && jn_buf_empty(src));
    if (ended && finish(b, dst))
        moved = 1;
    return moved;
}

int jn_body_end(struct jn_body *b, struct jn_buf *dst, const char *tail, size_t n)
{
    if (b->done || !b->src_done)
        return 0;
    if (jn_buf_room(dst) < n + CHUNK_OVERHEAD * 2)
        return JN_EAGAIN;
    if (n > 0)
        emit(b, dst, tail, n); /* response bodies only: no limit */
    b->hold_end = false;
    finish(b, dst);
    return 0;
}
