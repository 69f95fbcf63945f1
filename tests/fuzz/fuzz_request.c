/* libFuzzer target for the HTTP/1.1 request parser and the chunked decoder.
 * Each message is parsed whole, then split at a point chosen from the data,
 * then fed byte by byte: the three must agree, since incremental parsing may
 * not change a verdict. Pipelined requests are followed; chunked bodies go
 * through the decoder the same three ways. Views and verdicts are checked
 * against the parser's contract. The driver is in fuzz_h1_common.h. */
#include "fuzz_h1_common.h"

static int jn_fuzz_parse_request(const char *buf, size_t len, struct jn_h1_scan *scan,
                                 struct jn_fuzz_head *h)
{
    return jn_h1_parse_request(buf, len, &jn_fuzz_limits, h->fields, JN_FUZZ_FIELDS, scan, &h->msg);
}

static void jn_fuzz_check_rejected_request(const struct jn_h1_message *m)
{
    JN_FUZZ_CHECK(m->error_status == 400 || m->error_status == 414 || m->error_status == 431 ||
                  m->error_status == 501);
}

static void jn_fuzz_check_accepted_request(const char *buf, size_t n, const struct jn_h1_message *m)
{
    JN_FUZZ_CHECK(n <= jn_fuzz_limits.max_request_line + jn_fuzz_limits.max_header_size + 4);
    JN_FUZZ_CHECK(jn_h1_is_token(m->method) && jn_fuzz_inside(m->method, buf, n));
    JN_FUZZ_CHECK(m->target.len > 0 && jn_fuzz_inside(m->target, buf, n));
    JN_FUZZ_CHECK(jn_fuzz_inside(m->host, buf, n));
    JN_FUZZ_CHECK(m->version_minor == 0 || m->host.ptr != NULL);
    JN_FUZZ_CHECK(m->body == JN_H1_BODY_NONE || m->body == JN_H1_BODY_LENGTH ||
                  m->body == JN_H1_BODY_CHUNKED);
}

static void jn_fuzz_same_request(const struct jn_h1_message *x, const struct jn_h1_message *y)
{
    JN_FUZZ_CHECK(jn_fuzz_slice_same(x->method, y->method));
    JN_FUZZ_CHECK(jn_fuzz_slice_same(x->target, y->target));
    JN_FUZZ_CHECK(jn_fuzz_slice_same(x->host, y->host));
    JN_FUZZ_CHECK(x->expect_continue == y->expect_continue);
}

static const struct jn_fuzz_h1_ops jn_fuzz_request_ops = {
    .parse = jn_fuzz_parse_request,
    .check_rejected = jn_fuzz_check_rejected_request,
    .check_accepted = jn_fuzz_check_accepted_request,
    .same_accepted = jn_fuzz_same_request,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return jn_fuzz_h1_run(&jn_fuzz_request_ops, data, size);
}
