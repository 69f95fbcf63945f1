/* Unit tests for body transfer with framing translation. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "http/body.h"

static struct jn_buf make_buf(size_t cap)
{
    struct jn_buf b = { .data = malloc(cap), .cap = cap };
    return b;
}

static void put(struct jn_buf *b, const char *s)
{
    cr_assert_eq(jn_buf_append(b, s, strlen(s)), 0);
}

static char *take(struct jn_buf *b)
{
    char *s = strndup(jn_buf_head(b), jn_buf_len(b));
    jn_buf_consume(b, jn_buf_len(b));
    return s;
}

Test(body, content_length_body_stops_at_its_length)
{
    struct jn_buf src = make_buf(256), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_LENGTH, 5, false);
    put(&src, "helloGET / HTTP/1.1");
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 1);
    cr_assert(b.done);
    char *out = take(&dst);
    cr_assert_str_eq(out, "hello");
    cr_assert_eq(jn_buf_len(&src), strlen("GET / HTTP/1.1")); /* the next request stays */
    free(out);
    free(src.data);
    free(dst.data);
}

Test(body, chunked_input_is_reencoded_without_extensions_or_trailers)
{
    struct jn_buf src = make_buf(256), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_CHUNKED, 0, true);
    put(&src, "5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n");
    while (jn_body_pump(&b, &src, &dst, &err) > 0)
        ;
    cr_assert(b.done);
    char *out = take(&dst);
    cr_assert_str_eq(out, "5\r\nhello\r\n0\r\n\r\n");
    free(out);
    free(src.data);
    free(dst.data);
}

Test(body, chunked_input_fed_byte_by_byte_gives_the_same_data)
{
    const char *wire = "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
    struct jn_buf src = make_buf(64), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_CHUNKED, 0, false);
    for (size_t i = 0; wire[i] != '\0'; i++) {
        jn_buf_append(&src, &wire[i], 1);
        cr_assert_geq(jn_body_pump(&b, &src, &dst, &err), 0);
    }
    cr_assert(b.done);
    char *out = take(&dst);
    cr_assert_str_eq(out, "abc0123456789");
    free(out);
    free(src.data);
    free(dst.data);
}

Test(body, close_delimited_input_becomes_chunked_and_ends_at_eof)
{
    struct jn_buf src = make_buf(256), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_CLOSE, 0, true);
    put(&src, "abc");
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 1);
    cr_assert_not(b.done);
    b.src_eof = true;
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 1);
    cr_assert(b.done);
    char *out = take(&dst);
    cr_assert_str_eq(out, "3\r\nabc\r\n0\r\n\r\n");
    free(out);
    free(src.data);
    free(dst.data);
}

Test(body, a_full_destination_stalls_without_losing_bytes)
{
    struct jn_buf src = make_buf(256), dst = make_buf(4);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_LENGTH, 10, false);
    put(&src, "0123456789");
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 1);
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 0); /* stalled: dst full */
    char *first = take(&dst);
    cr_assert_str_eq(first, "0123");
    while (!b.done) {
        cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 1);
        free(take(&dst));
    }
    cr_assert_eq(b.moved, 10);
    free(first);
    free(src.data);
    free(dst.data);
}

Test(body, bad_chunk_framing_is_an_error)
{
    struct jn_buf src = make_buf(256), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_CHUNKED, 0, true);
    put(&src, "zz\r\nabc\r\n");
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), JN_EINVAL);
    cr_assert_not_null(err);
    free(src.data);
    free(dst.data);
}

Test(body, a_held_end_lets_the_caller_add_a_tail_before_the_last_chunk)
{
    struct jn_buf src = make_buf(256), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_CLOSE, 0, true);
    b.hold_end = true;
    put(&src, "hello");
    b.src_eof = true;
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 1);
    cr_assert(b.src_done && !b.done); /* the source ended; the body goes on */
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 0);
    cr_assert_eq(jn_body_end(&b, &dst, "tail", 4), 0);
    cr_assert(b.done);
    char *out = take(&dst);
    cr_assert_str_eq(out, "5\r\nhello\r\n4\r\ntail\r\n0\r\n\r\n");
    free(out);
    free(src.data);
    free(dst.data);
}

Test(body, a_tail_that_does_not_fit_waits_for_room)
{
    struct jn_buf src = make_buf(64), dst = make_buf(64);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_LENGTH, 2, false);
    b.hold_end = true;
    put(&src, "ok");
    jn_body_pump(&b, &src, &dst, &err);
    cr_assert(b.src_done);
    char big[64] = { 0 };
    cr_assert_eq(jn_body_end(&b, &dst, big, sizeof(big)), JN_EAGAIN);
    cr_assert(!b.done);
    cr_assert_eq(jn_body_end(&b, &dst, "t", 1), 0);
    char *out = take(&dst);
    cr_assert_str_eq(out, "okt");
    free(out);
    free(src.data);
    free(dst.data);
}

Test(body, a_chunked_body_past_its_limit_fails_before_the_excess_or_the_end_moves)
{
    struct jn_buf src = make_buf(256), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_CHUNKED, 0, true);
    b.limit = 8;
    put(&src, "5\r\nhello\r\n4\r\nworl\r\n0\r\n\r\n");
    int rc;
    while ((rc = jn_body_pump(&b, &src, &dst, &err)) > 0)
        ;
    cr_assert_eq(rc, JN_ETOOBIG);
    cr_assert(b.too_big);
    cr_assert_not(b.done);
    cr_assert_str_eq(err, "request body too large");
    char *out = take(&dst);
    cr_assert_str_eq(out, "5\r\nhello\r\n"); /* never the 4 bytes, never the last chunk */
    free(out);
    free(src.data);
    free(dst.data);
}

Test(body, a_body_of_exactly_its_limit_passes_and_one_byte_more_fails)
{
    struct jn_buf src = make_buf(256), dst = make_buf(256);
    struct jn_body b;
    const char *err = NULL;
    jn_body_init(&b, JN_H1_BODY_CLOSE, 0, false); /* an HTTP/2 body without a length */
    b.limit = 5;
    put(&src, "hello");
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), 1);
    b.src_eof = true;
    cr_assert_geq(jn_body_pump(&b, &src, &dst, &err), 0);
    cr_assert(b.done);
    cr_assert_not(b.too_big);
    jn_buf_consume(&dst, jn_buf_len(&dst));
    jn_body_init(&b, JN_H1_BODY_CLOSE, 0, false);
    b.limit = 5;
    put(&src, "hello!");
    cr_assert_eq(jn_body_pump(&b, &src, &dst, &err), JN_ETOOBIG);
    cr_assert_eq(jn_buf_len(&dst), 0); /* the piece that crosses is not cut: not moved at all */
    free(src.data);
    free(dst.data);
}
