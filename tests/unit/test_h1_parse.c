/* Unit tests of the HTTP/1.1 head parser and chunked decoder
 * (src/http/h1/h1_parse.c, src/http/h1/h1_chunked.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1/h1_parse.h"

#define MAX_FIELDS 64

static const struct jn_h1_limits h1_limits = { 256, 1024, 16 };

/* Each parse works on an exact-size heap copy, so that AddressSanitizer
 * catches any read past the bytes handed to the parser. */
struct h1_run {
    char *buf;
    struct jn_h1_header headers[MAX_FIELDS];
    struct jn_h1_message msg;
    int rc;
};

static struct h1_run *h1_run_new(const char *bytes, size_t len)
{
    struct h1_run *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    r->buf = malloc(len ? len : 1);
    cr_assert_not_null(r->buf);
    memcpy(r->buf, bytes, len);
    return r;
}

static void h1_run_free(struct h1_run *r)
{
    free(r->buf);
    free(r);
}

static struct h1_run *parse_request_lim(const char *bytes, size_t len,
                                        const struct jn_h1_limits *lim, size_t max)
{
    struct h1_run *r = h1_run_new(bytes, len);
    struct jn_h1_scan scan = { 0 };
    r->rc = jn_h1_parse_request(r->buf, len, lim, r->headers, max, &scan, &r->msg);
    return r;
}

static struct h1_run *parse_request(const char *bytes, size_t len)
{
    return parse_request_lim(bytes, len, &h1_limits, MAX_FIELDS);
}

static struct h1_run *parse_response(const char *bytes, size_t len, bool head)
{
    struct h1_run *r = h1_run_new(bytes, len);
    struct jn_h1_scan scan = { 0 };
    r->rc = jn_h1_parse_response(r->buf, len, &h1_limits, r->headers, MAX_FIELDS, &scan, head,
                                 &r->msg);
    return r;
}

#define REQ(lit) parse_request((lit), sizeof(lit) - 1)
#define RESP(lit, head) parse_response((lit), sizeof(lit) - 1, (head))

static bool slice_is(struct jn_slice s, const char *text)
{
    return jn_slice_eq(s, (struct jn_slice){ text, strlen(text) });
}

static void check_rejected(struct h1_run *r, int rc, unsigned status, const char *why)
{
    cr_assert_eq(r->rc, rc, "rc %d, want %d (%s)", r->rc, rc, r->msg.error);
    cr_assert_eq(r->msg.error_status, status, "status %u, want %u", r->msg.error_status, status);
    cr_assert_not_null(r->msg.error);
    cr_assert_str_eq(r->msg.error, why);
    h1_run_free(r);
}

#define REJECT(lit, rc, status, why) check_rejected(REQ(lit), (rc), (status), (why))
#define REJECT_400(lit, why) REJECT(lit, JN_EINVAL, 400, why)
#define REJECT_RESP(lit, rc, why) check_rejected(RESP(lit, false), (rc), 502, (why))

static void check_accepted(struct h1_run *r)
{
    cr_assert_gt(r->rc, 0, "rejected: %s", r->msg.error ? r->msg.error : "(need more)");
    cr_assert_eq((size_t)r->rc, r->msg.header_bytes);
    cr_assert_eq(r->msg.error_status, 0);
}

/* ---- valid requests ------------------------------------------------------ */

Test(h1_request, test_simple_get_is_parsed)
{
    const char req[] = "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    struct h1_run *r = REQ(req);
    check_accepted(r);
    cr_assert(slice_is(r->msg.method, "GET"));
    cr_assert(slice_is(r->msg.target, "/a?b=c"));
    cr_assert_eq(r->msg.version_minor, 1);
    cr_assert_eq(r->msg.nheaders, 2);
    cr_assert(slice_is(r->msg.headers[0].name, "Host"));
    cr_assert(slice_is(r->msg.headers[0].value, "example.com"));
    cr_assert(slice_is(r->msg.headers[1].name, "Accept"));
    cr_assert(slice_is(r->msg.headers[1].value, "*/*"));
    cr_assert(slice_is(r->msg.host, "example.com"));
    cr_assert_eq(r->msg.header_bytes, sizeof(req) - 1);
    cr_assert_eq(r->msg.body, JN_H1_BODY_NONE);
    cr_assert(r->msg.keep_alive);
    cr_assert_not(r->msg.upgrade);
    cr_assert_not(r->msg.expect_continue);
    h1_run_free(r);
}

Test(h1_request, test_views_point_into_the_caller_buffer)
{
    struct h1_run *r = REQ("POST /x HTTP/1.1\r\nHost: h\r\nX-A: v\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.method.ptr, r->buf);
    cr_assert_eq(r->msg.target.ptr, r->buf + 5);
    cr_assert_eq(r->msg.headers, r->headers);
    cr_assert_eq(r->msg.headers[1].name.ptr, r->buf + 27);
    cr_assert_eq(r->msg.headers[1].value.ptr, r->buf + 32);
    h1_run_free(r);
}

Test(h1_request, test_header_values_are_trimmed)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost:h\r\nA: \t x y \t \r\nB:\r\nC:   \r\n\r\n");
    check_accepted(r);
    cr_assert(slice_is(r->msg.headers[0].value, "h"));
    cr_assert(slice_is(r->msg.headers[1].value, "x y"));
    cr_assert_eq(r->msg.headers[2].value.len, 0);
    cr_assert_eq(r->msg.headers[3].value.len, 0);
    h1_run_free(r);
}

Test(h1_request, test_htab_and_obs_text_in_values_are_accepted)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost: h\r\nX: a\tb \xe9\xff\x80\r\n\r\n");
    check_accepted(r);
    cr_assert(slice_is(r->msg.headers[1].value, "a\tb \xe9\xff\x80"));
    h1_run_free(r);
}

Test(h1_request, test_bare_lf_line_endings_are_accepted)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\nHost: h\nX: y\n\n");
    check_accepted(r);
    cr_assert_eq(r->msg.header_bytes, 29);
    cr_assert(slice_is(r->msg.headers[1].value, "y"));
    h1_run_free(r);
}

Test(h1_request, test_mixed_line_endings_are_accepted)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost: h\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.header_bytes, 26);
    h1_run_free(r);
    r = REQ("GET / HTTP/1.1\nHost: h\r\n\n");
    check_accepted(r);
    cr_assert_eq(r->msg.header_bytes, 25);
    h1_run_free(r);
}

Test(h1_request, test_request_without_fields_on_http10_is_accepted)
{
    struct h1_run *r = REQ("GET / HTTP/1.0\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.version_minor, 0);
    cr_assert_eq(r->msg.nheaders, 0);
    cr_assert_eq(r->msg.host.len, 0);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_request, test_one_leading_empty_line_is_skipped)
{
    struct h1_run *r = REQ("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    check_accepted(r);
    cr_assert(slice_is(r->msg.method, "GET"));
    cr_assert_eq(r->msg.header_bytes, 2 + 16 + 9 + 2);
    h1_run_free(r);
    r = REQ("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.header_bytes, 1 + 16 + 9 + 2);
    h1_run_free(r);
}

Test(h1_request, test_two_leading_empty_lines_are_rejected)
{
    REJECT_400("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "empty request line");
}

Test(h1_request, test_target_forms_are_accepted)
{
    const char *ok[] = {
        "GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET //double/%2F?q=a/b&c=d%20 HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t i = 0; i < JN_ARRAY_LEN(ok); i++) {
        struct h1_run *r = parse_request(ok[i], strlen(ok[i]));
        check_accepted(r);
        h1_run_free(r);
    }
}

Test(h1_request, test_target_form_not_matching_the_method_is_rejected)
{
    REJECT_400("GET foo HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request target form");
    REJECT_400("GET * HTTP/1.1\r\nHost: h\r\n\r\n", "asterisk target needs OPTIONS");
    REJECT_400("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT needs a host:port target");
    REJECT_400("CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT needs a host:port target");
    REJECT_400("CONNECT h: HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT needs a host:port target");
    REJECT_400("CONNECT :80 HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT needs a host:port target");
    REJECT_400("CONNECT a/b:80 HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT needs a host:port target");
    REJECT_400("CONNECT h:8x HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT needs a host:port target");
}

Test(h1_request, test_incomplete_head_needs_more_bytes)
{
    const char *partial[] = { "", "G", "GET / HTTP/1.1", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\n",
                              "GET / HTTP/1.1\r\nHost: h\r\n", "GET / HTTP/1.1\r\nHost: h\r\n\r",
                              "\r", "\r\n", "\n" };
    for (size_t i = 0; i < JN_ARRAY_LEN(partial); i++) {
        struct h1_run *r = parse_request(partial[i], strlen(partial[i]));
        cr_assert_eq(r->rc, JN_EAGAIN, "'%s' gave %d", partial[i], r->rc);
        cr_assert_eq(r->msg.error_status, 0);
        h1_run_free(r);
    }
}

/* ---- request framing and connection ------------------------------------- */

Test(h1_framing, test_request_with_content_length_has_a_length_body)
{
    struct h1_run *r = REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.body, JN_H1_BODY_LENGTH);
    cr_assert_eq(r->msg.content_length, 42);
    h1_run_free(r);
}

Test(h1_framing, test_request_with_zero_content_length_has_no_body)
{
    struct h1_run *r = REQ("POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.body, JN_H1_BODY_NONE);
    h1_run_free(r);
}

Test(h1_framing, test_request_without_framing_fields_has_no_body)
{
    struct h1_run *r = REQ("POST / HTTP/1.1\r\nHost: h\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.body, JN_H1_BODY_NONE);
    h1_run_free(r);
}

Test(h1_framing, test_largest_content_length_is_accepted)
{
    struct h1_run *r =
        REQ("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.content_length, UINT64_MAX);
    h1_run_free(r);
}

Test(h1_framing, test_chunked_request_has_a_chunked_body)
{
    struct h1_run *r = REQ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.body, JN_H1_BODY_CHUNKED);
    h1_run_free(r);
}

Test(h1_framing, test_transfer_encoding_is_compared_case_insensitively)
{
    struct h1_run *r = REQ("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:  ChUnKeD \r\n\r\n");
    check_accepted(r);
    cr_assert_eq(r->msg.body, JN_H1_BODY_CHUNKED);
    h1_run_free(r);
}

Test(h1_connection, test_http11_keeps_alive_by_default)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    check_accepted(r);
    cr_assert(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_connection, test_connection_close_token_ends_keep_alive)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n");
    check_accepted(r);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
    r = REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: ,\r\nConnection: close\r\n\r\n");
    check_accepted(r);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_connection, test_close_as_a_substring_does_not_end_keep_alive)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, x-close\r\n\r\n");
    check_accepted(r);
    cr_assert(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_connection, test_http10_keeps_alive_only_when_asked)
{
    struct h1_run *r = REQ("GET / HTTP/1.0\r\n\r\n");
    check_accepted(r);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
    r = REQ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    check_accepted(r);
    cr_assert(r->msg.keep_alive);
    h1_run_free(r);
    r = REQ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    check_accepted(r);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_connection, test_upgrade_needs_both_connection_token_and_upgrade_field)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
                           "Upgrade: websocket\r\n\r\n");
    check_accepted(r);
    cr_assert(r->msg.upgrade);
    h1_run_free(r);
    r = REQ("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
    check_accepted(r);
    cr_assert_not(r->msg.upgrade);
    h1_run_free(r);
    r = REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n");
    check_accepted(r);
    cr_assert_not(r->msg.upgrade);
    h1_run_free(r);
}

Test(h1_connection, test_expect_100_continue_is_reported)
{
    struct h1_run *r = REQ("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n");
    check_accepted(r);
    cr_assert(r->msg.expect_continue);
    h1_run_free(r);
    r = REQ("PUT / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n");
    check_accepted(r);
    cr_assert_not(r->msg.expect_continue);
    h1_run_free(r);
}

Test(h1_connection, test_invalid_connection_option_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nConnection: clo se\r\n\r\n", "invalid Connection");
}

/* ---- request rejections -------------------------------------------------- */

Test(h1_reject, test_content_length_with_transfer_encoding_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
               "Transfer-Encoding: chunked\r\n\r\n",
               "both Content-Length and Transfer-Encoding");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
               "Content-Length: 5\r\n\r\n",
               "both Content-Length and Transfer-Encoding");
}

Test(h1_reject, test_duplicate_content_length_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
               "duplicate Content-Length");
}

Test(h1_reject, test_conflicting_content_length_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n",
               "duplicate Content-Length");
}

Test(h1_reject, test_content_length_list_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
               "Content-Length is not a number");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n",
               "Content-Length is not a number");
}

Test(h1_reject, test_non_digit_content_length_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
               "Content-Length is not a number");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
               "Content-Length is not a number");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n",
               "Content-Length is not a number");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n",
               "Content-Length is not a number");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1.0\r\n\r\n",
               "Content-Length is not a number");
}

Test(h1_reject, test_overflowing_content_length_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
               "Content-Length too large");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
               "Content-Length too large");
}

Test(h1_reject, test_empty_content_length_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", "empty Content-Length");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:   \r\n\r\n", "empty Content-Length");
}

Test(h1_reject, test_whitespace_before_colon_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost : h\r\n\r\n", "whitespace before colon");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 5\r\n\r\n",
               "whitespace before colon");
}

Test(h1_reject, test_obs_fold_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", "obsolete line folding");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", "obsolete line folding");
}

Test(h1_reject, test_field_line_starting_with_whitespace_after_request_line_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\n Host: h\r\n\r\n", "obsolete line folding");
}

Test(h1_reject, test_bare_cr_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\rHost: h\r\n\r\n", "bare CR");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", "bare CR");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", "bare CR");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", "bare CR");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", "bare CR");
    REJECT_400("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", "bare CR");
    REJECT_400("GE\rT / HTTP/1.1\r\nHost: h\r\n\r\n", "bare CR");
}

Test(h1_reject, test_bare_cr_is_rejected_before_the_head_is_complete)
{
    REJECT_400("GET / HTTP/1.1\r\nX: a\rb", "bare CR");
    REJECT_400("GET / HTT\rP", "bare CR");
}

Test(h1_reject, test_nul_in_header_value_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", "NUL in header value");
}

Test(h1_reject, test_nul_in_header_name_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX\0Y: a\r\n\r\n", "NUL in header name");
}

Test(h1_reject, test_control_byte_in_header_value_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n",
               "control character in header value");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",
               "control character in header value");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\x0b\r\n\r\n",
               "control character in header value");
}

Test(h1_reject, test_control_byte_in_header_name_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX\x01: a\r\n\r\n",
               "control character in header name");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX\tY: a\r\n\r\n", "whitespace before colon");
}

Test(h1_reject, test_empty_header_name_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\n: value\r\n\r\n", "empty header name");
}

Test(h1_reject, test_non_token_header_name_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX(y): a\r\n\r\n", "invalid header name");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\n\"X\": a\r\n\r\n", "invalid header name");
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: a\r\n\r\n", "invalid header name");
}

Test(h1_reject, test_header_line_without_colon_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: h\r\nJustAName\r\n\r\n", "header line without colon");
}

Test(h1_reject, test_missing_host_on_http11_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "missing Host");
}

Test(h1_reject, test_duplicate_host_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "duplicate Host");
    REJECT_400("GET / HTTP/1.0\r\nhost: a\r\nHOST: b\r\n\r\n", "duplicate Host");
}

Test(h1_reject, test_invalid_host_is_rejected)
{
    REJECT_400("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid Host");
    REJECT_400("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid Host");
    REJECT_400("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", "invalid Host");
}

Test(h1_reject, test_fragment_in_target_is_rejected)
{
    REJECT_400("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", "fragment in request target");
}

Test(h1_reject, test_invalid_version_is_rejected)
{
    REJECT_400("GET / HTTP/1.2\r\nHost: h\r\n\r\n", "invalid HTTP version");
    REJECT_400("GET / HTTP/2.0\r\nHost: h\r\n\r\n", "invalid HTTP version");
    REJECT_400("GET / http/1.1\r\nHost: h\r\n\r\n", "invalid HTTP version");
    REJECT_400("GET / HTTP/1.10\r\nHost: h\r\n\r\n", "invalid HTTP version");
    REJECT_400("GET / HTTP/1\r\nHost: h\r\n\r\n", "invalid HTTP version");
    REJECT_400("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", "invalid HTTP version");
    REJECT_400("GET / garbage\r\nHost: h\r\n\r\n", "invalid HTTP version");
    REJECT_400("GET /\r\nHost: h\r\n\r\n", "missing HTTP version");
    REJECT_400("GET \r\nHost: h\r\n\r\n", "missing request target");
}

Test(h1_reject, test_non_token_method_is_rejected)
{
    REJECT_400("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
    REJECT_400("G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
    REJECT_400(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
    REJECT_400("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
}

Test(h1_reject, test_non_visible_byte_in_target_is_rejected)
{
    REJECT_400("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", "invalid byte in request target");
    REJECT_400("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", "invalid byte in request target");
    REJECT_400("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", "invalid byte in request target");
    REJECT_400("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", "invalid byte in request target");
}

Test(h1_reject, test_more_than_one_space_in_request_line_is_rejected)
{
    REJECT_400("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "more than one space in request line");
    REJECT_400("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", "more than one space in request line");
}

/* Builds "GET /aaa... HTTP/1.1" with a request line of exactly n bytes. */
static size_t long_request(char *buf, size_t cap, size_t n, const char *rest)
{
    size_t tail = strlen(" HTTP/1.1");
    cr_assert_lt(n + strlen(rest) + 2, cap);
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', n - 5 - tail);
    memcpy(buf + n - tail, " HTTP/1.1", tail);
    memcpy(buf + n, rest, strlen(rest));
    return n + strlen(rest);
}

Test(h1_limits, test_request_line_at_the_limit_is_accepted)
{
    char req[512];
    size_t n = long_request(req, sizeof(req), 256, "\r\nHost: h\r\n\r\n");
    struct h1_run *r = parse_request(req, n);
    check_accepted(r);
    h1_run_free(r);
}

Test(h1_limits, test_request_line_too_long_is_rejected_with_414)
{
    char req[512];
    size_t n = long_request(req, sizeof(req), 257, "\r\nHost: h\r\n\r\n");
    check_rejected(parse_request(req, n), JN_ETOOBIG, 414, "request line too long");
}

Test(h1_limits, test_request_line_too_long_is_rejected_before_its_end_arrives)
{
    char req[512];
    memcpy(req, "GET /", 5);
    memset(req + 5, 'a', sizeof(req) - 5);
    struct h1_run *r = parse_request(req, 256);
    cr_assert_eq(r->rc, JN_EAGAIN);
    h1_run_free(r);
    check_rejected(parse_request(req, 257), JN_ETOOBIG, 414, "request line too long");
}

Test(h1_limits, test_cr_ending_a_line_at_the_limit_is_not_counted)
{
    char req[512];
    size_t n = long_request(req, sizeof(req), 256, "\r");
    struct h1_run *r = parse_request(req, n);
    cr_assert_eq(r->rc, JN_EAGAIN);
    h1_run_free(r);
}

/* A request whose header section (fields and final empty line) is n bytes. */
static size_t sized_request(char *buf, size_t cap, size_t n)
{
    const char *start = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    size_t fixed = strlen(start) - 16 + 4; /* header part of start, plus two CRLF */
    cr_assert_lt(16 + n, cap);
    memcpy(buf, start, strlen(start));
    memset(buf + strlen(start), 'v', n - fixed);
    memcpy(buf + strlen(start) + n - fixed, "\r\n\r\n", 4);
    return 16 + n;
}

Test(h1_limits, test_header_section_at_the_limit_is_accepted)
{
    char req[2048];
    size_t n = sized_request(req, sizeof(req), 1024);
    struct h1_run *r = parse_request(req, n);
    check_accepted(r);
    cr_assert_eq(r->msg.header_bytes, 16 + 1024);
    h1_run_free(r);
}

Test(h1_limits, test_header_section_too_large_is_rejected_with_431)
{
    char req[2048];
    size_t n = sized_request(req, sizeof(req), 1025);
    check_rejected(parse_request(req, n), JN_ETOOBIG, 431, "header section too large");
}

Test(h1_limits, test_header_section_too_large_is_rejected_before_its_end_arrives)
{
    char req[2048];
    size_t n = sized_request(req, sizeof(req), 1500);
    check_rejected(parse_request(req, n - 100), JN_ETOOBIG, 431, "header section too large");
}

static size_t many_fields(char *buf, size_t cap, size_t nfields)
{
    size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 1; i < nfields; i++)
        n += (size_t)snprintf(buf + n, cap - n, "X-%zu: v\r\n", i);
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    cr_assert_lt(n, cap);
    return n;
}

Test(h1_limits, test_header_count_at_the_limit_is_accepted)
{
    char req[1024];
    size_t n = many_fields(req, sizeof(req), 16);
    struct h1_run *r = parse_request(req, n);
    check_accepted(r);
    cr_assert_eq(r->msg.nheaders, 16);
    h1_run_free(r);
}

Test(h1_limits, test_too_many_header_fields_are_rejected_with_431)
{
    char req[1024];
    size_t n = many_fields(req, sizeof(req), 17);
    check_rejected(parse_request(req, n), JN_ETOOBIG, 431, "too many header fields");
}

Test(h1_limits, test_header_array_size_caps_the_field_count)
{
    char req[1024];
    size_t n = many_fields(req, sizeof(req), 5);
    struct h1_run *r = parse_request_lim(req, n, &h1_limits, 5);
    check_accepted(r);
    h1_run_free(r);
    n = many_fields(req, sizeof(req), 6);
    check_rejected(parse_request_lim(req, n, &h1_limits, 5), JN_ETOOBIG, 431,
                   "too many header fields");
}

/* ---- transfer codings ---------------------------------------------------- */

Test(h1_coding, test_unsupported_transfer_coding_is_rejected_with_501)
{
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", JN_ENOTSUP,
           501, "unsupported transfer coding");
}

Test(h1_coding, test_codings_from_several_fields_are_combined)
{
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           JN_ENOTSUP, 501, "unsupported transfer coding");
}

Test(h1_coding, test_chunked_not_last_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
               "chunked is not the final transfer coding");
}

Test(h1_coding, test_request_coding_without_chunked_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
               "chunked is not the final transfer coding");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
               "chunked is not the final transfer coding");
}

Test(h1_coding, test_chunked_applied_twice_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
               "chunked applied more than once");
}

Test(h1_coding, test_transfer_encoding_on_http10_is_rejected)
{
    REJECT_400("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
               "Transfer-Encoding in an HTTP/1.0 message");
}

Test(h1_coding, test_malformed_transfer_encoding_is_rejected)
{
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n",
               "invalid Transfer-Encoding");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n",
               "invalid Transfer-Encoding");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n",
               "invalid Transfer-Encoding");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a=b\r\n\r\n",
               "invalid Transfer-Encoding");
    REJECT_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
               "invalid Transfer-Encoding");
}

/* ---- incremental parsing -------------------------------------------------- */

Test(h1_incremental, test_scan_state_beyond_the_buffer_starts_over)
{
    const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct h1_run *r = h1_run_new(req, sizeof(req) - 1);
    struct jn_h1_scan scan = { 100, 50 }; /* left over from a longer buffer */
    r->rc = jn_h1_parse_request(r->buf, sizeof(req) - 1, &h1_limits, r->headers, MAX_FIELDS,
                                &scan, &r->msg);
    check_accepted(r);
    h1_run_free(r);
}

static const char full_request[] = "POST /upload?x=1 HTTP/1.1\r\n"
                                   "Host: example.com:8080\r\n"
                                   "User-Agent: test\r\n"
                                   "Transfer-Encoding: chunked\r\n"
                                   "Connection: keep-alive\r\n"
                                   "Expect: 100-continue\r\n"
                                   "\r\n";

Test(h1_incremental, test_request_fed_one_byte_at_a_time_matches_the_whole)
{
    size_t len = sizeof(full_request) - 1;
    struct h1_run *whole = parse_request(full_request, len);
    check_accepted(whole);
    struct h1_run *r = h1_run_new(full_request, len);
    struct jn_h1_scan scan = { 0 };
    for (size_t i = 0; i < len; i++) {
        r->rc = jn_h1_parse_request(r->buf, i, &h1_limits, r->headers, MAX_FIELDS, &scan, &r->msg);
        cr_assert_eq(r->rc, JN_EAGAIN, "prefix of %zu bytes gave %d", i, r->rc);
        /* the search never looks back more than a CR waiting for its LF */
        cr_assert_geq(scan.scanned + 1, i);
    }
    r->rc = jn_h1_parse_request(r->buf, len, &h1_limits, r->headers, MAX_FIELDS, &scan, &r->msg);
    check_accepted(r);
    cr_assert_eq(r->rc, whole->rc);
    cr_assert_eq(r->msg.nheaders, whole->msg.nheaders);
    cr_assert_eq(r->msg.body, JN_H1_BODY_CHUNKED);
    cr_assert(r->msg.expect_continue);
    cr_assert(r->msg.keep_alive);
    cr_assert(slice_is(r->msg.host, "example.com:8080"));
    for (size_t i = 0; i < r->msg.nheaders; i++) {
        cr_assert(jn_slice_eq(r->msg.headers[i].name, whole->msg.headers[i].name));
        cr_assert(jn_slice_eq(r->msg.headers[i].value, whole->msg.headers[i].value));
    }
    h1_run_free(r);
    h1_run_free(whole);
}

Test(h1_incremental, test_crlf_split_across_reads_is_joined)
{
    const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct h1_run *r = h1_run_new(req, sizeof(req) - 1);
    struct jn_h1_scan scan = { 0 };
    size_t cuts[] = { 14, 15, 16, 24, 25, 26 };
    for (size_t i = 0; i < JN_ARRAY_LEN(cuts); i++) {
        r->rc = jn_h1_parse_request(r->buf, cuts[i], &h1_limits, r->headers, MAX_FIELDS, &scan,
                                    &r->msg);
        cr_assert_eq(r->rc, JN_EAGAIN, "cut %zu", cuts[i]);
    }
    r->rc = jn_h1_parse_request(r->buf, sizeof(req) - 1, &h1_limits, r->headers, MAX_FIELDS,
                                &scan, &r->msg);
    check_accepted(r);
    h1_run_free(r);
}

Test(h1_incremental, test_pipelined_requests_are_parsed_one_after_the_other)
{
    const char two[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                       "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhello"
                       "GET /three HTTP/1.1\r\nHost: c\r\n\r\n";
    struct h1_run *r = h1_run_new(two, sizeof(two) - 1);
    size_t off = 0;
    const char *targets[] = { "/one", "/two", "/three" };
    for (size_t i = 0; i < 3; i++) {
        struct jn_h1_scan scan = { 0 };
        r->rc = jn_h1_parse_request(r->buf + off, sizeof(two) - 1 - off, &h1_limits, r->headers,
                                    MAX_FIELDS, &scan, &r->msg);
        check_accepted(r);
        cr_assert(slice_is(r->msg.target, targets[i]));
        off += r->msg.header_bytes;
        if (r->msg.body == JN_H1_BODY_LENGTH)
            off += r->msg.content_length;
    }
    cr_assert_eq(off, sizeof(two) - 1);
    h1_run_free(r);
}

Test(h1_incremental, test_bytes_after_the_head_are_not_parsed)
{
    struct h1_run *r = REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n\x01\r garbage");
    check_accepted(r);
    cr_assert_eq(r->msg.header_bytes, 27);
    h1_run_free(r);
}

/* ---- responses ------------------------------------------------------------ */

Test(h1_response, test_simple_response_is_parsed)
{
    struct h1_run *r = RESP("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: x\r\n\r\nabc", false);
    check_accepted(r);
    cr_assert_eq(r->msg.status, 200);
    cr_assert(slice_is(r->msg.reason, "OK"));
    cr_assert_eq(r->msg.version_minor, 1);
    cr_assert_eq(r->msg.nheaders, 2);
    cr_assert_eq(r->msg.body, JN_H1_BODY_LENGTH);
    cr_assert_eq(r->msg.content_length, 3);
    cr_assert_eq(r->msg.header_bytes, 49);
    cr_assert(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_response, test_reason_phrase_may_be_empty_or_missing)
{
    struct h1_run *r = RESP("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false);
    check_accepted(r);
    cr_assert_eq(r->msg.status, 404);
    cr_assert_eq(r->msg.reason.len, 0);
    h1_run_free(r);
    r = RESP("HTTP/1.0 404\r\nContent-Length: 0\r\n\r\n", false);
    check_accepted(r);
    cr_assert_eq(r->msg.status, 404);
    cr_assert_eq(r->msg.reason.len, 0);
    h1_run_free(r);
    r = RESP("HTTP/1.1 500 Internal  Server\tError \xe9\r\nContent-Length: 0\r\n\r\n", false);
    check_accepted(r);
    cr_assert(slice_is(r->msg.reason, "Internal  Server\tError \xe9"));
    h1_run_free(r);
}

Test(h1_response, test_response_without_host_is_accepted)
{
    struct h1_run *r = RESP("HTTP/1.1 204 No Content\r\n\r\n", false);
    check_accepted(r);
    cr_assert_eq(r->msg.host.len, 0);
    h1_run_free(r);
}

static void check_response_body(const char *resp, bool head, enum jn_h1_body body)
{
    struct h1_run *r = parse_response(resp, strlen(resp), head);
    check_accepted(r);
    cr_assert_eq(r->msg.body, body, "%s: body %d, want %d", resp, r->msg.body, body);
    h1_run_free(r);
}

Test(h1_response, test_response_framing_follows_rfc9112)
{
    check_response_body("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, JN_H1_BODY_NONE);
    check_response_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true,
                        JN_H1_BODY_NONE);
    check_response_body("HTTP/1.1 100 Continue\r\n\r\n", false, JN_H1_BODY_NONE);
    check_response_body("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                        "Upgrade: websocket\r\n\r\n", false, JN_H1_BODY_NONE);
    check_response_body("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false,
                        JN_H1_BODY_NONE);
    check_response_body("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false,
                        JN_H1_BODY_NONE);
    check_response_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false,
                        JN_H1_BODY_CHUNKED);
    check_response_body("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", false, JN_H1_BODY_LENGTH);
    check_response_body("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, JN_H1_BODY_NONE);
    check_response_body("HTTP/1.1 200 OK\r\n\r\n", false, JN_H1_BODY_CLOSE);
    check_response_body("HTTP/1.0 200 OK\r\n\r\n", false, JN_H1_BODY_CLOSE);
}

Test(h1_response, test_body_until_close_ends_keep_alive)
{
    struct h1_run *r = RESP("HTTP/1.1 200 OK\r\n\r\n", false);
    check_accepted(r);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_response, test_response_keep_alive_follows_version_and_connection)
{
    struct h1_run *r = RESP("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false);
    check_accepted(r);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
    r = RESP("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", false);
    check_accepted(r);
    cr_assert(r->msg.keep_alive);
    h1_run_free(r);
    r = RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n", false);
    check_accepted(r);
    cr_assert_not(r->msg.keep_alive);
    h1_run_free(r);
}

Test(h1_response, test_response_upgrade_is_reported)
{
    struct h1_run *r = RESP("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocket\r\n\r\n", false);
    check_accepted(r);
    cr_assert(r->msg.upgrade);
    h1_run_free(r);
}

Test(h1_response, test_invalid_status_line_is_rejected_with_502)
{
    REJECT_RESP("HTTP/1.1 20 OK\r\n\r\n", JN_EINVAL, "invalid status line");
    REJECT_RESP("HTTP/1.1 2000 OK\r\n\r\n", JN_EINVAL, "invalid status line");
    REJECT_RESP("HTTP/1.1  200 OK\r\n\r\n", JN_EINVAL, "invalid status line");
    REJECT_RESP("HTTP/1.1 200\tOK\r\n\r\n", JN_EINVAL, "invalid status line");
    REJECT_RESP("HTTP/1.1 2x0 OK\r\n\r\n", JN_EINVAL, "invalid status code");
    REJECT_RESP("HTTP/1.1 099 Low\r\n\r\n", JN_EINVAL, "invalid status code");
    REJECT_RESP("HTTP/1.1 600 High\r\n\r\n", JN_EINVAL, "invalid status code");
    REJECT_RESP("HTTP/1.2 200 OK\r\n\r\n", JN_EINVAL, "invalid HTTP version");
    REJECT_RESP("HTTP/2 200 OK\r\n\r\n", JN_EINVAL, "invalid HTTP version");
    REJECT_RESP("http/1.1 200 OK\r\n\r\n", JN_EINVAL, "invalid HTTP version");
    REJECT_RESP("ICY 200 OK\r\n\r\n", JN_EINVAL, "invalid HTTP version");
    REJECT_RESP("HTTP/1.1 200 O\x01K\r\n\r\n", JN_EINVAL, "control character in reason phrase");
}

Test(h1_response, test_response_framing_errors_are_rejected_with_502)
{
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                JN_EINVAL, "both Content-Length and Transfer-Encoding");
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", JN_EINVAL,
                "duplicate Content-Length");
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", JN_EINVAL,
                "Content-Length is not a number");
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", JN_ENOTSUP,
                "unsupported transfer coding");
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", JN_EINVAL,
                "chunked is not the final transfer coding");
    REJECT_RESP("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", JN_EINVAL,
                "Transfer-Encoding in an HTTP/1.0 message");
}

Test(h1_response, test_response_field_errors_are_rejected_with_502)
{
    REJECT_RESP("HTTP/1.1 200 OK\r\nX : y\r\n\r\n", JN_EINVAL, "whitespace before colon");
    REJECT_RESP("HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n", JN_EINVAL, "obsolete line folding");
    REJECT_RESP("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", JN_EINVAL, "bare CR");
    REJECT_RESP("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", JN_EINVAL, "NUL in header value");
}

Test(h1_response, test_response_limits_are_rejected_with_502)
{
    char resp[2048];
    size_t n = (size_t)snprintf(resp, sizeof(resp), "HTTP/1.1 200 ");
    memset(resp + n, 'r', 300);
    n += 300;
    n += (size_t)snprintf(resp + n, sizeof(resp) - n, "\r\n\r\n");
    check_rejected(parse_response(resp, n, false), JN_ETOOBIG, 502, "status line too long");
    n = (size_t)snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nX: ");
    memset(resp + n, 'v', 1100);
    n += 1100;
    check_rejected(parse_response(resp, n, false), JN_ETOOBIG, 502, "header section too large");
}

Test(h1_response, test_response_fed_one_byte_at_a_time_is_parsed)
{
    const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\nX: y\r\n\n";
    struct h1_run *r = h1_run_new(resp, sizeof(resp) - 1);
    struct jn_h1_scan scan = { 0 };
    for (size_t i = 0; i < sizeof(resp) - 1; i++) {
        r->rc = jn_h1_parse_response(r->buf, i, &h1_limits, r->headers, MAX_FIELDS, &scan, false,
                                     &r->msg);
        cr_assert_eq(r->rc, JN_EAGAIN);
    }
    r->rc = jn_h1_parse_response(r->buf, sizeof(resp) - 1, &h1_limits, r->headers, MAX_FIELDS,
                                 &scan, false, &r->msg);
    check_accepted(r);
    cr_assert_eq(r->msg.body, JN_H1_BODY_CHUNKED);
    cr_assert_eq(r->msg.nheaders, 2);
    h1_run_free(r);
}

Test(h1_response, test_response_does_not_skip_a_leading_empty_line)
{
    REJECT_RESP("\r\nHTTP/1.1 200 OK\r\n\r\n", JN_EINVAL, "invalid HTTP version");
}

/* ---- chunked decoder ------------------------------------------------------ */

struct decoded {
    int rc;
    size_t consumed; /* total bytes consumed from the input */
    char data[32768];
    size_t len;
    const char *err;
};

/* Runs the decoder over in, delivering step bytes more each time it asks,
 * as a socket would. */
static void decode(const char *bytes, size_t len, size_t step, struct decoded *d)
{
    struct jn_h1_chunked st = { 0 };
    char *in = malloc(len ? len : 1);
    cr_assert_not_null(in);
    memcpy(in, bytes, len);
    memset(d, 0, sizeof(*d));
    size_t avail = JN_MIN(len, step);
    for (;;) {
        size_t used = 0;
        struct jn_slice data;
        d->rc = jn_h1_chunked_decode(&st, in + d->consumed, avail - d->consumed, &used, &data,
                                     &d->err);
        d->consumed += used;
        if (d->rc == JN_H1_CHUNK_DATA) {
            cr_assert_gt(data.len, 0);
            cr_assert_lt(d->len + data.len, sizeof(d->data));
            memcpy(d->data + d->len, data.ptr, data.len);
            d->len += data.len;
            continue;
        }
        if (d->rc != JN_EAGAIN || avail == len)
            break;
        cr_assert_eq(d->consumed, avail, "EAGAIN must consume everything");
        avail = JN_MIN(len, avail + step);
    }
    free(in);
}

#define DECODE(lit, step, d) decode((lit), sizeof(lit) - 1, (step), (d))

static void check_chunk_error(const char *bytes, size_t len, const char *why)
{
    static struct decoded d;
    size_t steps[] = { 1, len }; /* byte by byte, then all at once */
    for (size_t i = 0; i < JN_ARRAY_LEN(steps); i++) {
        decode(bytes, len, steps[i], &d);
        cr_assert_eq(d.rc, JN_EINVAL, "'%.*s' (step %zu) gave %d", (int)len, bytes, steps[i],
                     d.rc);
        cr_assert_str_eq(d.err, why);
    }
}

#define CHUNK_ERROR(lit, why) check_chunk_error((lit), sizeof(lit) - 1, (why))

Test(h1_chunked, test_chunked_body_is_decoded)
{
    static struct decoded d;
    const char body[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT";
    DECODE(body, 4096, &d);
    cr_assert_eq(d.rc, JN_H1_CHUNK_DONE);
    cr_assert_eq(d.len, 11);
    cr_assert_eq(memcmp(d.data, "hello world", 11), 0);
    cr_assert_eq(d.consumed, sizeof(body) - 1 - 4, "bytes after the body stay unconsumed");
}

Test(h1_chunked, test_chunked_body_fed_one_byte_at_a_time_is_decoded)
{
    static struct decoded d;
    const char body[] = "1a;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                        "3\r\n123\r\n0;last\r\nTrailer-One: x\r\nT2:\r\n\r\n";
    for (size_t step = 1; step <= 7; step++) {
        DECODE(body, step, &d);
        cr_assert_eq(d.rc, JN_H1_CHUNK_DONE, "step %zu: %d %s", step, d.rc, d.err);
        cr_assert_eq(d.len, 29);
        cr_assert_eq(memcmp(d.data, "abcdefghijklmnopqrstuvwxyz123", 29), 0);
        cr_assert_eq(d.consumed, sizeof(body) - 1);
    }
}

Test(h1_chunked, test_data_is_a_view_of_the_input)
{
    const char in[] = "4\r\nwxyz\r\n";
    struct jn_h1_chunked st = { 0 };
    size_t used;
    struct jn_slice data;
    const char *err = NULL;
    int rc = jn_h1_chunked_decode(&st, in, sizeof(in) - 1, &used, &data, &err);
    cr_assert_eq(rc, JN_H1_CHUNK_DATA);
    cr_assert_eq(data.ptr, in + 3);
    cr_assert_eq(data.len, 4);
    cr_assert_eq(used, 7);
    rc = jn_h1_chunked_decode(&st, in + used, sizeof(in) - 1 - used, &used, &data, &err);
    cr_assert_eq(rc, JN_EAGAIN);
    cr_assert_eq(used, 2);
}

Test(h1_chunked, test_bare_lf_is_accepted_in_chunked_framing)
{
    static struct decoded d;
    DECODE("3\nabc\n0\nX: y\n\n", 1, &d);
    cr_assert_eq(d.rc, JN_H1_CHUNK_DONE);
    cr_assert_eq(d.len, 3);
}

Test(h1_chunked, test_hex_digits_of_both_cases_and_leading_zeros_are_accepted)
{
    static struct decoded d;
    DECODE("00A\r\n0123456789\r\n0000\r\n\r\n", 3, &d);
    cr_assert_eq(d.rc, JN_H1_CHUNK_DONE);
    cr_assert_eq(d.len, 10);
    DECODE("b\r\n0123456789a\r\n0\r\n\r\n", 3, &d);
    cr_assert_eq(d.rc, JN_H1_CHUNK_DONE);
    cr_assert_eq(d.len, 11);
}

Test(h1_chunked, test_chunk_extensions_are_accepted_and_ignored)
{
    static struct decoded d;
    const char *ok[] = {
        "1;a\r\nx\r\n0\r\n\r\n",
        "1;a=b\r\nx\r\n0\r\n\r\n",
        "1 ; a = b ; c\r\nx\r\n0\r\n\r\n",
        "1;a=\"q;u\\\"o=t\\\\ed\"\r\nx\r\n0\r\n\r\n",
        "1;a=\"\";b=\"\t\xe9\"\r\nx\r\n0;z=1\r\n\r\n",
        "1;a=\"x\" ;b\r\nx\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < JN_ARRAY_LEN(ok); i++) {
        for (size_t step = 1; step <= 2; step++) {
            decode(ok[i], strlen(ok[i]), step, &d);
            cr_assert_eq(d.rc, JN_H1_CHUNK_DONE, "'%s': %s", ok[i], d.err);
            cr_assert_eq(d.len, 1);
        }
    }
}

Test(h1_chunked, test_malformed_chunk_extension_is_rejected)
{
    CHUNK_ERROR("1;\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;=b\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a=\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a \r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a=b \r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a=\"b\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a=\"b\"c\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a=b=c\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a\x01\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a=\"\x01\"\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a=\"\\\x01\"\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1;a\nb\r\nx\r\n", "missing chunk size");
}

Test(h1_chunked, test_empty_chunk_size_is_rejected)
{
    CHUNK_ERROR("\r\nx\r\n", "missing chunk size");
    CHUNK_ERROR(";a\r\nx\r\n", "missing chunk size");
    CHUNK_ERROR(" 1\r\nx\r\n", "missing chunk size");
    CHUNK_ERROR("+1\r\nx\r\n", "missing chunk size");
    CHUNK_ERROR("0x1\r\nx\r\n", "invalid chunk size");
}

Test(h1_chunked, test_junk_after_chunk_size_is_rejected)
{
    CHUNK_ERROR("1x\r\nx\r\n", "invalid chunk size");
    CHUNK_ERROR("1 \r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("1 2\r\nx\r\n", "invalid chunk extension");
    CHUNK_ERROR("-1\r\nx\r\n", "missing chunk size");
}

Test(h1_chunked, test_chunk_size_overflow_is_rejected)
{
    static struct decoded d;
    DECODE("7fffffffffffffff\r\nabc", 1, &d);
    cr_assert_eq(d.rc, JN_EAGAIN, "the largest size is accepted: %s", d.err);
    cr_assert_eq(d.len, 3);
    CHUNK_ERROR("8000000000000000\r\n", "chunk size too large");
    CHUNK_ERROR("ffffffffffffffffff\r\n", "chunk size too large");
    CHUNK_ERROR("100000000000000000000000000000001\r\n", "chunk size too large");
}

Test(h1_chunked, test_overlong_chunk_size_line_is_rejected)
{
    static char line[5000];
    memset(line, '0', sizeof(line));
    line[sizeof(line) - 3] = '1';
    line[sizeof(line) - 2] = '\r';
    line[sizeof(line) - 1] = '\n';
    check_chunk_error(line, sizeof(line), "chunk size line too long");
    memcpy(line, "1;a=", 4);
    memset(line + 4, 'b', sizeof(line) - 4);
    check_chunk_error(line, sizeof(line), "chunk size line too long");
}

Test(h1_chunked, test_size_line_at_the_length_limit_is_accepted)
{
    static char body[4096 + 16];
    static struct decoded d;
    memset(body, '0', 4096 - 3);
    memcpy(body + 4096 - 3, "1\r\nx\r\n0\r\n\r\n", 11);
    decode(body, 4096 + 8, 512, &d);
    cr_assert_eq(d.rc, JN_H1_CHUNK_DONE, "%s", d.err);
}

Test(h1_chunked, test_missing_crlf_after_chunk_data_is_rejected)
{
    CHUNK_ERROR("3\r\nabcX\r\n0\r\n\r\n", "chunk data not followed by CRLF");
    CHUNK_ERROR("3\r\nabc\rX0\r\n\r\n", "chunk data not followed by CRLF");
    CHUNK_ERROR("3\r\nabcd\r\n", "chunk data not followed by CRLF");
}

Test(h1_chunked, test_bare_cr_in_chunk_size_line_is_rejected)
{
    CHUNK_ERROR("3\rabc\r\n", "bare CR in chunk size line");
    CHUNK_ERROR("3;a=b\rabc\r\n", "bare CR in chunk size line");
}

Test(h1_chunked, test_trailer_fields_are_checked)
{
    CHUNK_ERROR("0\r\nX : y\r\n\r\n", "whitespace before colon in trailer");
    CHUNK_ERROR("0\r\nX\r\n\r\n", "invalid trailer field name");
    CHUNK_ERROR("0\r\nX(: y\r\n\r\n", "invalid trailer field name");
    CHUNK_ERROR("0\r\n(X: y\r\n\r\n", "invalid trailer field name");
    CHUNK_ERROR("0\r\n: y\r\n\r\n", "empty trailer field name");
    CHUNK_ERROR("0\r\nX: a\x01\r\n\r\n", "control character in trailer");
    CHUNK_ERROR("0\r\nX: a\0\r\n\r\n", "control character in trailer");
    CHUNK_ERROR("0\r\nX: a\r\n b\r\n\r\n", "obsolete line folding in trailer");
    CHUNK_ERROR("0\r\nX: a\rb\r\n\r\n", "bare CR in trailer");
    CHUNK_ERROR("0\r\n\rX", "bare CR in trailer");
}

Test(h1_chunked, test_oversized_trailer_section_is_rejected)
{
    static char body[20000];
    size_t n = 0;
    memcpy(body, "0\r\n", 3);
    n = 3;
    while (n + 100 < sizeof(body)) {
        memcpy(body + n, "X: ", 3);
        memset(body + n + 3, 'v', 95);
        memcpy(body + n + 98, "\r\n", 2);
        n += 100;
    }
    check_chunk_error(body, n, "trailer section too large");
}

Test(h1_chunked, test_decoder_stays_done_and_stays_failed)
{
    struct jn_h1_chunked st = { 0 };
    size_t used;
    struct jn_slice data;
    const char *err = NULL;
    cr_assert_eq(jn_h1_chunked_decode(&st, "0\r\n\r\nX", 6, &used, &data, &err), JN_H1_CHUNK_DONE);
    cr_assert_eq(used, 5);
    cr_assert_eq(jn_h1_chunked_decode(&st, "X", 1, &used, &data, &err), JN_H1_CHUNK_DONE);
    cr_assert_eq(used, 0);
    st = (struct jn_h1_chunked){ 0 };
    cr_assert_eq(jn_h1_chunked_decode(&st, "Z", 1, &used, &data, &err), JN_EINVAL);
    cr_assert_eq(used, 0);
    err = NULL;
    cr_assert_eq(jn_h1_chunked_decode(&st, "0\r\n\r\n", 5, &used, &data, &err), JN_EINVAL);
    cr_assert_not_null(err);
}

Test(h1_chunked, test_empty_input_needs_more_bytes)
{
    struct jn_h1_chunked st = { 0 };
    size_t used = 99;
    struct jn_slice data;
    const char *err = NULL;
    cr_assert_eq(jn_h1_chunked_decode(&st, "", 0, &used, &data, &err), JN_EAGAIN);
    cr_assert_eq(used, 0);
}

/* ---- tokens --------------------------------------------------------------- */

Test(h1_token, test_tokens_are_recognised)
{
    cr_assert(jn_h1_is_token(JN_SLICE_LIT("GET")));
    cr_assert(jn_h1_is_token(JN_SLICE_LIT("x-Custom_1.2!#$%&'*+^`|~")));
    cr_assert_not(jn_h1_is_token(JN_SLICE_LIT("")));
    cr_assert_not(jn_h1_is_token(JN_SLICE_LIT("a b")));
    cr_assert_not(jn_h1_is_token(JN_SLICE_LIT("a:b")));
    cr_assert_not(jn_h1_is_token(JN_SLICE_LIT("a\"")));
    cr_assert_not(jn_h1_is_token(JN_SLICE_LIT("\xe9")));
}
