/* HTTP/1.1 message parser (RFC 9112), strict and incremental.
 *
 * The header section is parsed from the start of the caller's buffer each time
 * more bytes arrive; a small scan state remembers how far the search for the
 * end of the section got, so feeding one byte at a time costs O(n) overall.
 * Every name, value, method and target is a view into the caller's buffer
 * (zero copy): the buffer must not move while the views are used. */
#ifndef JN_HTTP_H1_PARSE_H
#define JN_HTTP_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

struct jn_h1_header {
    struct jn_slice name;
    struct jn_slice value; /* leading and trailing whitespace trimmed */
};

struct jn_h1_limits {
    size_t max_request_line; /* 414 when the request line alone exceeds it */
    size_t max_header_size;  /* 431 when the header section (the field lines and the empty
                              * line after them, start line excluded) exceeds it */
    size_t max_headers;      /* 431 when there are more header lines; <= header array size */
};

enum jn_h1_body {
    JN_H1_BODY_NONE,    /* no body (Content-Length: 0 or absent on a request, 204, 304, HEAD...) */
    JN_H1_BODY_LENGTH,  /* content_length bytes follow */
    JN_H1_BODY_CHUNKED, /* chunked transfer coding follows */
    JN_H1_BODY_CLOSE,   /* response only: body runs until the server closes */
};

/* Filled by the parsers. headers points at the caller's array. */
struct jn_h1_message {
    /* request */
    struct jn_slice method;
    struct jn_slice target;
    /* response */
    uint16_t status;
    struct jn_slice reason;
    /* both */
    uint8_t version_minor; /* HTTP/1.x */
    struct jn_h1_header *headers;
    size_t nheaders;
    size_t header_bytes; /* bytes of the start line and header section, final CRLF included */
    enum jn_h1_body body;
    uint64_t content_length; /* valid when body == JN_H1_BODY_LENGTH */
    bool keep_alive;         /* from the version and Connection */
    bool expect_continue;    /* request had Expect: 100-continue */
    bool upgrade;            /* Connection: upgrade with an Upgrade header */
    struct jn_slice host;    /* value of the single Host header, if any */
    /* on error */
    uint16_t error_status;   /* 400, 414, 431, 501, 502 (response side) */
    const char *error;       /* static, for logs: "duplicate Content-Length" */
};

/* Scan state between calls on the same message; zero it for a new message. */
struct jn_h1_scan {
    size_t scanned;  /* bytes already known not to end the header section */
    size_t line_end; /* offset just past the start line's LF once seen, else 0 */
};

/* Parses a request header section from buf[0..len).
 * Returns the header byte count (> 0) when the section is complete and valid,
 * JN_EAGAIN when more bytes are needed, JN_EINVAL / JN_ETOOBIG / JN_ENOTSUP on
 * a request to reject: msg->error_status and msg->error say how.
 * headers/max give the array that receives header views. */
int jn_h1_parse_request(const char *buf, size_t len, const struct jn_h1_limits *lim,
                        struct jn_h1_header *headers, size_t max, struct jn_h1_scan *scan,
                        struct jn_h1_message *msg);

/* Parses a response header section. head_request and the status decide framing
 * (HEAD, 1xx, 204, 304 have no body). Same return convention; errors carry 502. */
int jn_h1_parse_response(const char *buf, size_t len, const struct jn_h1_limits *lim,
                         struct jn_h1_header *headers, size_t max, struct jn_h1_scan *scan,
                         bool head_request, struct jn_h1_message *msg);

/* Incremental decoder of the chunked transfer coding, trailers included
 * (trailers are checked for syntax and discarded: they never affect framing). */
struct jn_h1_chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line_len;    /* bytes of the current size or trailer line, for limits */
    size_t trailer_bytes;
    bool keep_trailers; /* set by the caller: keep the trailer section's bytes... */
    char *trailers;     /* ...here (malloc, owned by the caller once set; NULL = none) */
};

/* Parses the trailer section kept by a chunked decoder ("name: value"
 * lines, already checked) into fields, views into it. Returns their number. */
size_t jn_h1_trailer_fields(const struct jn_h1_chunked *st, struct jn_slice *names,
                            struct jn_slice *values, size_t max);

enum { JN_H1_CHUNK_DATA = 1, JN_H1_CHUNK_DONE = 2 };

/* Consumes framing from in[0..len). Returns JN_H1_CHUNK_DATA with *data set to
 * a view of body bytes (consumed included in *consumed), JN_H1_CHUNK_DONE when
 * the last chunk and trailers are through, JN_EAGAIN when all of in was
 * consumed without producing data, or JN_EINVAL on bad framing (*err set).
 * Call again with the rest of the input after each DATA. */
int jn_h1_chunked_decode(struct jn_h1_chunked *st, const char *in, size_t len, size_t *consumed,
                         struct jn_slice *data, const char **err);

/* True when s is a token (RFC 9110 5.6.2): one or more tchars. */
bool jn_h1_is_token(struct jn_slice s);

#endif
