/* libFuzzer target for the HTTP/1.1 response parser and the chunked decoder.
 * Each message is parsed whole, then split at a point chosen from the data,
 * then fed byte by byte: the three must agree, since incremental parsing may
 * not change a verdict. A byte of each message decides whether it answers a
 * HEAD request. Interim and pipelined responses are followed; chunked bodies
 * go through the decoder the same three ways. The driver is in
 * fuzz_h1_common.h. */
#include "fuzz_h1_common.h"

static bool jn_fuzz_head_request; /* the current message answers a HEAD */

static void jn_fuzz_begin_response(const char *buf, size_t len)
{
    jn_fuzz_head_request = (unsigned char)buf[len / 2] % 5 == 0;
}

static int jn_fuzz_parse_response(const char *buf, size_t len, struct jn_h1_scan *scan,
                                  struct jn_fuzz_head *h)
{
    return jn_h1_parse_response(buf, len, &jn_fuzz_limits, h->fields, JN_FUZZ_FIELDS, scan,
                                jn_fuzz_head_request, &h->msg);
}

static void jn_fuzz_check_rejected_response(const struct jn_h1_message *m)
{
    JN_FUZZ_CHECK(m->error_status == 502);
}

static void jn_fuzz_check_accepted_response(const char *buf, size_t n,
                                            const struct jn_h1_message *m)
{
    JN_FUZZ_CHECK(n <= jn_fuzz_limits.max_request_line + jn_fuzz_limits.max_header_size + 2);
    JN_FUZZ_CHECK(memcmp(buf, "HTTP/1.", 7) == 0);
    JN_FUZZ_CHECK(m->status >= 100 && m->status <= 599);
    JN_FUZZ_CHECK(jn_fuzz_inside(m->reason, buf, n) && jn_fuzz_clean_value(m->reason, false));
    bool bodiless = jn_fuzz_head_request || m->status < 200 || m->status == 204 || m->status == 304;
    JN_FUZZ_CHECK(!bodiless || m->body == JN_H1_BODY_NONE);
    JN_FUZZ_CHECK(m->body != JN_H1_BODY_CLOSE || !m->keep_alive);
}

static void jn_fuzz_same_response(const struct jn_h1_message *x, const struct jn_h1_message *y)
{
    JN_FUZZ_CHECK(x->status == y->status && jn_fuzz_slice_same(x->reason, y->reason));
}

static const struct jn_fuzz_h1_ops jn_fuzz_response_ops = {
    .begin = jn_fuzz_begin_response,
    .parse = jn_fuzz_parse_response,
    .check_rejected = jn_fuzz_check_rejected_response,
    .check_accepted = jn_fuzz_check_accepted_response,
    .same_accepted = jn_fuzz_same_response,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return jn_fuzz_h1_run(&jn_fuzz_response_ops, data, size);
}
