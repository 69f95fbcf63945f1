/* The driver shared by the HTTP/1.1 request and response fuzz targets: each
 * message head is parsed whole, split and byte by byte, and the verdicts must
 * agree; chunked bodies go through the decoder the same three ways; pipelined
 * messages are followed. A target supplies only what depends on the kind of
 * message, as a struct jn_fuzz_h1_ops. Static functions: include it from one
 * fuzz target's .c file only. */
#ifndef JN_TESTS_FUZZ_H1_COMMON_H
#define JN_TESTS_FUZZ_H1_COMMON_H

#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1/h1_parse.h"

#define JN_FUZZ_FIELDS 32
#define JN_FUZZ_MESSAGES 8

/* Small limits, so that the fuzzer reaches them. */
static const struct jn_h1_limits jn_fuzz_limits = { 300, 1200, 20 };

struct jn_fuzz_head {
    int rc;
    struct jn_h1_header fields[JN_FUZZ_FIELDS];
    struct jn_h1_message msg;
};

struct jn_fuzz_body {
    int rc;
    size_t consumed;
    const char *err;
    uint64_t data_len;
    uint64_t data_hash;
};

/* What a target adds to the shared driver. */
struct jn_fuzz_h1_ops {
    /* Called once per message before it is parsed; may be NULL. */
    void (*begin)(const char *buf, size_t len);
    /* Parses buf[0..len) into h->fields and h->msg; returns the parser's result. */
    int (*parse)(const char *buf, size_t len, struct jn_h1_scan *scan, struct jn_fuzz_head *h);
    /* Checks a rejected message (m->error is already known to be set). */
    void (*check_rejected)(const struct jn_h1_message *m);
    /* Checks an accepted head of n bytes, beyond the checks every kind shares. */
    void (*check_accepted)(const char *buf, size_t n, const struct jn_h1_message *m);
    /* Checks that two accepted parses agree on the fields of this kind. */
    void (*same_accepted)(const struct jn_h1_message *x, const struct jn_h1_message *y);
};

#define JN_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static bool jn_fuzz_inside(struct jn_slice s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.len <= len && s.ptr - buf <= (ptrdiff_t)(len - s.len));
}

/* No control bytes but HTAB; a trimmed value also has no OWS at its ends
 * (a reason phrase is not trimmed: it may start with a space). */
static bool jn_fuzz_clean_value(struct jn_slice v, bool trimmed)
{
    if (trimmed && v.len > 0 && (v.ptr[0] == ' ' || v.ptr[0] == '\t' ||
                                 v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* The contract of a verdict, whatever the input. */
static void jn_fuzz_check_head(const struct jn_fuzz_h1_ops *ops, const char *buf, size_t len,
                               const struct jn_fuzz_head *h)
{
    const struct jn_h1_message *m = &h->msg;
    if (h->rc == JN_EAGAIN) {
        JN_FUZZ_CHECK(m->error == NULL && m->error_status == 0);
        return;
    }
    if (h->rc < 0) {
        JN_FUZZ_CHECK(m->error != NULL);
        ops->check_rejected(m);
        return;
    }
    size_t n = (size_t)h->rc;
    JN_FUZZ_CHECK(n == m->header_bytes && n <= len && m->error == NULL);
    JN_FUZZ_CHECK(buf[n - 1] == '\n' && m->version_minor <= 1);
    JN_FUZZ_CHECK(m->nheaders <= jn_fuzz_limits.max_headers && m->headers == h->fields);
    for (size_t i = 0; i < m->nheaders; i++) {
        JN_FUZZ_CHECK(jn_h1_is_token(m->headers[i].name));
        JN_FUZZ_CHECK(jn_fuzz_inside(m->headers[i].name, buf, n));
        JN_FUZZ_CHECK(jn_fuzz_inside(m->headers[i].value, buf, n));
        JN_FUZZ_CHECK(jn_fuzz_clean_value(m->headers[i].value, true));
    }
    JN_FUZZ_CHECK(m->body != JN_H1_BODY_LENGTH || m->content_length > 0);
    JN_FUZZ_CHECK(m->body != JN_H1_BODY_CHUNKED || m->version_minor == 1);
    ops->check_accepted(buf, n, m);
}

static bool jn_fuzz_slice_same(struct jn_slice a, struct jn_slice b)
{
    return a.ptr == b.ptr && a.len == b.len;
}

/* Two parses of the same bytes must give the same verdict and views. */
static void jn_fuzz_same_head(const struct jn_fuzz_h1_ops *ops, const struct jn_fuzz_head *a,
                              const struct jn_fuzz_head *b)
{
    const struct jn_h1_message *x = &a->msg, *y = &b->msg;
    JN_FUZZ_CHECK(a->rc == b->rc);
    JN_FUZZ_CHECK(x->error == y->error && x->error_status == y->error_status);
    if (a->rc <= 0)
        return;
    JN_FUZZ_CHECK(x->version_minor == y->version_minor && x->nheaders == y->nheaders);
    JN_FUZZ_CHECK(x->header_bytes == y->header_bytes && x->body == y->body);
    JN_FUZZ_CHECK(x->content_length == y->content_length && x->keep_alive == y->keep_alive);
    JN_FUZZ_CHECK(x->upgrade == y->upgrade);
    for (size_t i = 0; i < x->nheaders; i++) {
        JN_FUZZ_CHECK(jn_fuzz_slice_same(x->headers[i].name, y->headers[i].name));
        JN_FUZZ_CHECK(jn_fuzz_slice_same(x->headers[i].value, y->headers[i].value));
    }
    ops->same_accepted(x, y);
}

static int jn_fuzz_parse(const struct jn_fuzz_h1_ops *ops, const char *buf, size_t len,
                         struct jn_h1_scan *scan, struct jn_fuzz_head *h)
{
    h->rc = ops->parse(buf, len, scan, h);
    return h->rc;
}

/* Parses buf[0..cut) with the bytes after it poisoned, so that a read past
 * the length given is caught, then the whole if more is needed. */
static void jn_fuzz_parse_split(const struct jn_fuzz_h1_ops *ops, const char *buf, size_t len,
                                size_t cut, struct jn_fuzz_head *h)
{
    struct jn_h1_scan scan = { 0 };
    ASAN_POISON_MEMORY_REGION(buf + cut, len - cut);
    int rc = jn_fuzz_parse(ops, buf, cut, &scan, h);
    ASAN_UNPOISON_MEMORY_REGION(buf + cut, len - cut);
    if (rc == JN_EAGAIN)
        jn_fuzz_parse(ops, buf, len, &scan, h);
}

static void jn_fuzz_parse_bytewise(const struct jn_fuzz_h1_ops *ops, const char *buf, size_t len,
                                   struct jn_fuzz_head *h)
{
    struct jn_h1_scan scan = { 0 };
    h->rc = JN_EAGAIN;
    for (size_t i = 0; i <= len && h->rc == JN_EAGAIN; i++)
        jn_fuzz_parse(ops, buf, i, &scan, h);
}

/* Decodes a chunked body from in[0..len), the input arriving first up to
 * cut and then step bytes at a time (step 0: all the rest at once). */
static void jn_fuzz_decode(const char *in, size_t len, size_t cut, size_t step,
                           struct jn_fuzz_body *b)
{
    struct jn_h1_chunked st = { .keep_trailers = true };
    size_t avail = cut;
    *b = (struct jn_fuzz_body){ .data_hash = 1469598103934665603ULL };
    for (;;) {
        size_t used = 0;
        struct jn_slice data;
        /* in the split runs, bytes not yet delivered are poisoned */
        if (step == 0)
            ASAN_POISON_MEMORY_REGION(in + avail, len - avail);
        b->rc = jn_h1_chunked_decode(&st, in + b->consumed, avail - b->consumed, &used, &data,
                                     &b->err);
        if (step == 0)
            ASAN_UNPOISON_MEMORY_REGION(in + avail, len - avail);
        JN_FUZZ_CHECK(used <= avail - b->consumed);
        b->consumed += used;
        if (b->rc == JN_H1_CHUNK_DATA) {
            JN_FUZZ_CHECK(data.len > 0 && data.ptr + data.len == in + b->consumed);
            for (size_t i = 0; i < data.len; i++)
                b->data_hash = (b->data_hash ^ (unsigned char)data.ptr[i]) * 1099511628211ULL;
            b->data_len += data.len;
            continue;
        }
        if (b->rc != JN_EAGAIN || avail == len)
            break;
        JN_FUZZ_CHECK(b->consumed == avail);
        avail = step == 0 ? len : JN_MIN(len, avail + step);
    }
    JN_FUZZ_CHECK(b->rc == JN_EAGAIN || b->rc == JN_EINVAL || b->rc == JN_H1_CHUNK_DONE);
    JN_FUZZ_CHECK(b->rc != JN_EINVAL || b->err != NULL);
    if (b->rc == JN_H1_CHUNK_DONE) {
        /* The kept trailer section parses into fields, each a view into it,
         * every name a non-empty token. */
        struct jn_slice names[64], values[64];
        size_t n = jn_h1_trailer_fields(&st, names, values, 64);
        for (size_t i = 0; i < n; i++) {
            JN_FUZZ_CHECK(names[i].len > 0 && jn_h1_is_token(names[i]));
            JN_FUZZ_CHECK(names[i].ptr >= st.trailers &&
                          values[i].ptr + values[i].len <= st.trailers + st.trailer_bytes);
        }
    }
    free(st.trailers);
}

/* Where to split an input in two: chosen from its bytes, so that the fuzzer
 * can steer it. */
static size_t jn_fuzz_cut(const char *buf, size_t len)
{
    if (len == 0)
        return 0;
    return (((size_t)(unsigned char)buf[0] << 8) | (unsigned char)buf[len - 1]) % (len + 1);
}

/* Decodes the body three ways. Returns the bytes it took, or 0 when the
 * body did not end within the input. */
static size_t jn_fuzz_chunked(const char *in, size_t len)
{
    struct jn_fuzz_body whole, split, bytewise;
    size_t cut = jn_fuzz_cut(in, len);
    jn_fuzz_decode(in, len, len, 0, &whole);
    jn_fuzz_decode(in, len, cut, 0, &split);
    jn_fuzz_decode(in, len, 0, 1, &bytewise);
    const struct jn_fuzz_body *other[] = { &split, &bytewise };
    for (size_t i = 0; i < 2; i++) {
        JN_FUZZ_CHECK(other[i]->rc == whole.rc && other[i]->consumed == whole.consumed);
        JN_FUZZ_CHECK(other[i]->err == whole.err || whole.rc != JN_EINVAL);
        JN_FUZZ_CHECK(other[i]->data_len == whole.data_len);
        JN_FUZZ_CHECK(other[i]->data_hash == whole.data_hash);
    }
    return whole.rc == JN_H1_CHUNK_DONE ? whole.consumed : 0;
}

/* Parses one message head three ways. Returns the bytes of the head and
 * body, or 0 when no further message can follow. */
static size_t jn_fuzz_message(const struct jn_fuzz_h1_ops *ops, const char *buf, size_t len)
{
    static struct jn_fuzz_head whole, split, bytewise;
    size_t cut = jn_fuzz_cut(buf, len);
    if (ops->begin != NULL)
        ops->begin(buf, len);
    jn_fuzz_parse(ops, buf, len, &(struct jn_h1_scan){ 0 }, &whole);
    jn_fuzz_check_head(ops, buf, len, &whole);
    jn_fuzz_parse_split(ops, buf, len, cut, &split);
    jn_fuzz_same_head(ops, &whole, &split);
    jn_fuzz_parse_bytewise(ops, buf, len, &bytewise);
    jn_fuzz_same_head(ops, &whole, &bytewise);
    if (whole.rc <= 0)
        return 0;
    size_t head = (size_t)whole.rc;
    switch (whole.msg.body) {
    case JN_H1_BODY_NONE:
        return head;
    case JN_H1_BODY_LENGTH:
        return whole.msg.content_length <= len - head ? head + whole.msg.content_length : 0;
    case JN_H1_BODY_CHUNKED: {
        size_t body = jn_fuzz_chunked(buf + head, len - head);
        return body ? head + body : 0;
    }
    default: /* JN_H1_BODY_CLOSE (responses only): the rest is body */
        return 0;
    }
}

/* The body of LLVMFuzzerTestOneInput: up to JN_FUZZ_MESSAGES messages in a row. */
static int jn_fuzz_h1_run(const struct jn_fuzz_h1_ops *ops, const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* a copy we own, so that parts of it can be poisoned */
    char *buf = malloc(size);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    size_t off = 0;
    for (int i = 0; i < JN_FUZZ_MESSAGES && off < size; i++) {
        size_t used = jn_fuzz_message(ops, buf + off, size - off);
        if (used == 0)
            break;
        off += used;
    }
    free(buf);
    return 0;
}

#endif
