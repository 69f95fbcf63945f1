/* Decoder of the chunked transfer coding (RFC 9112 7.1): a byte-driven state
 * machine for the framing, so input may be split anywhere, and zero-copy views
 * of the chunk data. */
#include <stdlib.h>
#include <string.h>

#include "http/h1/h1_parse.h"

#include "http/h1/h1_chars.h"

/* Longest chunk-size line, extensions included, and largest trailer section.
 * Both are far above what real senders use and small enough that a peer
 * cannot make the decoder spin on framing. */
#define JN_H1_CHUNK_LINE_MAX 4096
#define JN_H1_TRAILER_MAX (16 * 1024)

/* Sizes past 2^63 are refused: nothing that large is real, and it keeps the
 * count safe to hand to signed file offsets further on. */
#define JN_H1_CHUNK_SIZE_MAX ((uint64_t)INT64_MAX)

/* The zero state is the start of a chunk-size line, so a zeroed struct
 * jn_h1_chunked is ready for a new body. */
enum jn_h1_chunk_state {
    JN_H1_CS_SIZE_START = 0,  /* first hex digit of chunk-size */
    JN_H1_CS_SIZE,            /* further hex digits */
    JN_H1_CS_EXT_BWS,         /* BWS that only a ';' may follow */
    JN_H1_CS_EXT_NAME_START,  /* after ';': BWS, then a name */
    JN_H1_CS_EXT_NAME,        /* inside chunk-ext-name */
    JN_H1_CS_EXT_NAME_BWS,    /* BWS after the name: '=' or ';' follows */
    JN_H1_CS_EXT_VALUE_START, /* after '=': BWS, then a token or a quoted string */
    JN_H1_CS_EXT_TOKEN,       /* inside a token value */
    JN_H1_CS_EXT_QUOTED,      /* inside a quoted-string value */
    JN_H1_CS_EXT_ESCAPE,      /* after a backslash in a quoted string */
    JN_H1_CS_EXT_QUOTE_END,   /* just after the closing quote */
    JN_H1_CS_SIZE_LF,         /* CR seen at the end of the size line */
    JN_H1_CS_DATA,            /* remaining bytes of chunk data */
    JN_H1_CS_DATA_CR,         /* the CRLF after chunk data */
    JN_H1_CS_DATA_LF,
    JN_H1_CS_TRAILER_START,   /* start of a trailer line or of the final empty line */
    JN_H1_CS_TRAILER_NAME,
    JN_H1_CS_TRAILER_VALUE,
    JN_H1_CS_TRAILER_LF,      /* CR seen at the end of a trailer line */
    JN_H1_CS_END_LF,          /* CR seen on the final empty line */
    JN_H1_CS_DONE,
    JN_H1_CS_FAILED,
};

/* Outcomes of feeding one framing byte. */
enum { JN_H1_STEP_MORE = 0, JN_H1_STEP_LINE_END = 1 };

static int jn_h1_chunk_fail(const char **err, const char *why)
{
    *err = why;
    return JN_EINVAL;
}

/* CR or LF in a state where the size line may end; -1 for other bytes. */
static int jn_h1_size_line_end(struct jn_h1_chunked *st, unsigned char c)
{
    if (c == '\r') {
        st->state = JN_H1_CS_SIZE_LF;
        return JN_H1_STEP_MORE;
    }
    if (c == '\n')
        return JN_H1_STEP_LINE_END;
    return -1;
}

static int jn_h1_size_digit(struct jn_h1_chunked *st, unsigned char c, const char **err)
{
    int d = jn_hex_digit_value(c);
    if (d < 0) {
        if (st->state == JN_H1_CS_SIZE_START)
            return jn_h1_chunk_fail(err, "missing chunk size");
        if (c == ';')
            st->state = JN_H1_CS_EXT_NAME_START;
        else if (jn_h1_is_ows(c))
            st->state = JN_H1_CS_EXT_BWS;
        else if (jn_h1_size_line_end(st, c) < 0)
            return jn_h1_chunk_fail(err, "invalid chunk size");
        return c == '\n' ? JN_H1_STEP_LINE_END : JN_H1_STEP_MORE;
    }
    if (st->remaining > (JN_H1_CHUNK_SIZE_MAX - (uint64_t)d) / 16)
        return jn_h1_chunk_fail(err, "chunk size too large");
    st->remaining = st->remaining * 16 + (uint64_t)d;
    st->state = JN_H1_CS_SIZE;
    return JN_H1_STEP_MORE;
}

/* quoted-string content (RFC 9110 5.6.4): qdtext and quoted-pair. */
static int jn_h1_ext_quoted(struct jn_h1_chunked *st, unsigned char c)
{
    if (st->state == JN_H1_CS_EXT_ESCAPE) {
        if (!jn_h1_is_value_byte(c))
            return -1;
        st->state = JN_H1_CS_EXT_QUOTED;
    } else if (c == '"') {
        st->state = JN_H1_CS_EXT_QUOTE_END;
    } else if (c == '\\') {
        st->state = JN_H1_CS_EXT_ESCAPE;
    } else if (!jn_h1_is_value_byte(c)) {
        return -1;
    }
    return JN_H1_STEP_MORE;
}

/* Where a byte may go after BWS or a name inside a chunk extension. */
static int jn_h1_ext_separator(struct jn_h1_chunked *st, unsigned char c, bool may_assign)
{
    if (c == ';')
        st->state = JN_H1_CS_EXT_NAME_START;
    else if (c == '=' && may_assign)
        st->state = JN_H1_CS_EXT_VALUE_START;
    else if (!jn_h1_is_ows(c))
        return -1;
    return JN_H1_STEP_MORE;
}

/* chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
 * Extensions are checked and dropped: no coding we support gives them a
 * meaning, and a lax scan here is how two parsers come to disagree on where
 * the size line ends. Returns a step outcome, or -1 on a bad byte. */
static int jn_h1_ext_byte(struct jn_h1_chunked *st, unsigned char c)
{
    switch (st->state) {
    case JN_H1_CS_EXT_BWS:
        return jn_h1_ext_separator(st, c, false);
    case JN_H1_CS_EXT_NAME_START:
    case JN_H1_CS_EXT_VALUE_START:
        if (jn_h1_is_ows(c))
            return JN_H1_STEP_MORE;
        if (c == '"' && st->state == JN_H1_CS_EXT_VALUE_START) {
            st->state = JN_H1_CS_EXT_QUOTED;
            return JN_H1_STEP_MORE;
        }
        if (!jn_h1_is_tchar(c))
            return -1;
        st->state = st->state == JN_H1_CS_EXT_NAME_START ? JN_H1_CS_EXT_NAME : JN_H1_CS_EXT_TOKEN;
        return JN_H1_STEP_MORE;
    case JN_H1_CS_EXT_NAME:
    case JN_H1_CS_EXT_TOKEN:
        if (jn_h1_is_tchar(c))
            return JN_H1_STEP_MORE;
        if (c == '\r' || c == '\n')
            return jn_h1_size_line_end(st, c);
        if (jn_h1_is_ows(c)) {
            st->state = st->state == JN_H1_CS_EXT_NAME ? JN_H1_CS_EXT_NAME_BWS : JN_H1_CS_EXT_BWS;
            return JN_H1_STEP_MORE;
        }
        return jn_h1_ext_separator(st, c, st->state == JN_H1_CS_EXT_NAME);
    case JN_H1_CS_EXT_NAME_BWS:
        return jn_h1_ext_separator(st, c, true);
    case JN_H1_CS_EXT_QUOTE_END:
        if (c == '\r' || c == '\n')
            return jn_h1_size_line_end(st, c);
        if (jn_h1_is_ows(c)) {
            st->state = JN_H1_CS_EXT_BWS;
            return JN_H1_STEP_MORE;
        }
        return jn_h1_ext_separator(st, c, false);
    default:
        return jn_h1_ext_quoted(st, c);
    }
}

/* One byte of a chunk-size line: chunk-size [ chunk-ext ] CRLF. */
static int jn_h1_size_line_byte(struct jn_h1_chunked *st, unsigned char c, const char **err)
{
    if (++st->line_len > JN_H1_CHUNK_LINE_MAX)
        return jn_h1_chunk_fail(err, "chunk size line too long");
    switch (st->state) {
    case JN_H1_CS_SIZE_START:
    case JN_H1_CS_SIZE:
        return jn_h1_size_digit(st, c, err);
    case JN_H1_CS_SIZE_LF:
        if (c != '\n')
            return jn_h1_chunk_fail(err, "bare CR in chunk size line");
        return JN_H1_STEP_LINE_END;
    default: {
        int rc = jn_h1_ext_byte(st, c);
        return rc < 0 ? jn_h1_chunk_fail(err, "invalid chunk extension") : rc;
    }
    }
}

/* One byte of the trailer section: field lines, then an empty line. The
 * fields are checked like header fields and then dropped. */
static int jn_h1_trailer_byte(struct jn_h1_chunked *st, unsigned char c, const char **err)
{
    if (++st->trailer_bytes > JN_H1_TRAILER_MAX)
        return jn_h1_chunk_fail(err, "trailer section too large");
    if (st->keep_trailers) {
        /* Kept whole, final empty line included: bounded by the limit above. */
        if (st->trailers == NULL && (st->trailers = malloc(JN_H1_TRAILER_MAX)) == NULL)
            return jn_h1_chunk_fail(err, "out of memory for trailers");
        st->trailers[st->trailer_bytes - 1] = (char)c;
    }
    switch (st->state) {
    case JN_H1_CS_TRAILER_START:
        if (c == '\r' || c == '\n') {
            st->state = c == '\r' ? JN_H1_CS_END_LF : JN_H1_CS_DONE;
            return JN_H1_STEP_MORE;
        }
        if (jn_h1_is_ows(c))
            return jn_h1_chunk_fail(err, "obsolete line folding in trailer");
        if (c == ':')
            return jn_h1_chunk_fail(err, "empty trailer field name");
        if (!jn_h1_is_tchar(c))
            return jn_h1_chunk_fail(err, "invalid trailer field name");
        st->state = JN_H1_CS_TRAILER_NAME;
        return JN_H1_STEP_MORE;
    case JN_H1_CS_TRAILER_NAME:
        if (c == ':')
            st->state = JN_H1_CS_TRAILER_VALUE;
        else if (jn_h1_is_ows(c))
            return jn_h1_chunk_fail(err, "whitespace before colon in trailer");
        else if (!jn_h1_is_tchar(c))
            return jn_h1_chunk_fail(err, "invalid trailer field name");
        return JN_H1_STEP_MORE;
    case JN_H1_CS_TRAILER_VALUE:
        if (c == '\r' || c == '\n')
            st->state = c == '\r' ? JN_H1_CS_TRAILER_LF : JN_H1_CS_TRAILER_START;
        else if (!jn_h1_is_value_byte(c))
            return jn_h1_chunk_fail(err, "control character in trailer");
        return JN_H1_STEP_MORE;
    default: /* TRAILER_LF or END_LF */
        if (c != '\n')
            return jn_h1_chunk_fail(err, "bare CR in trailer");
        st->state = st->state == JN_H1_CS_END_LF ? JN_H1_CS_DONE : JN_H1_CS_TRAILER_START;
        return JN_H1_STEP_MORE;
    }
}

static void jn_h1_next_size_line(struct jn_h1_chunked *st)
{
    st->state = JN_H1_CS_SIZE_START;
    st->remaining = 0;
    st->line_len = 0;
}

/* The CRLF (or bare LF) that must follow chunk data. */
static int jn_h1_data_end_byte(struct jn_h1_chunked *st, unsigned char c, const char **err)
{
    if (st->state == JN_H1_CS_DATA_CR && c == '\r')
        st->state = JN_H1_CS_DATA_LF;
    else if (c == '\n')
        jn_h1_next_size_line(st);
    else
        return jn_h1_chunk_fail(err, "chunk data not followed by CRLF");
    return JN_H1_STEP_MORE;
}

/* Feeds one framing byte (never chunk data) to the state machine. */
static int jn_h1_chunk_step(struct jn_h1_chunked *st, unsigned char c, const char **err)
{
    if (st->state == JN_H1_CS_DATA_CR || st->state == JN_H1_CS_DATA_LF)
        return jn_h1_data_end_byte(st, c, err);
    if (st->state >= JN_H1_CS_TRAILER_START)
        return jn_h1_trailer_byte(st, c, err);
    int rc = jn_h1_size_line_byte(st, c, err);
    if (rc != JN_H1_STEP_LINE_END)
        return rc;
    if (st->remaining == 0) { /* last-chunk: the trailer section follows */
        st->state = JN_H1_CS_TRAILER_START;
        st->trailer_bytes = 0;
    } else {
        st->state = JN_H1_CS_DATA;
    }
    return JN_H1_STEP_MORE;
}

int jn_h1_chunked_decode(struct jn_h1_chunked *st, const char *in, size_t len, size_t *consumed,
                         struct jn_slice *data, const char **err)
{
    size_t pos = 0;

    *consumed = 0;
    *data = (struct jn_slice){ NULL, 0 };
    if (st->state == JN_H1_CS_DONE)
        return JN_H1_CHUNK_DONE;
    if (st->state == JN_H1_CS_FAILED)
        return jn_h1_chunk_fail(err, "chunked body already failed");
    while (pos < len) {
        if (st->state == JN_H1_CS_DATA) {
            size_t n = (size_t)JN_MIN(st->remaining, (uint64_t)(len - pos));
            *data = (struct jn_slice){ in + pos, n };
            st->remaining -= n;
            if (st->remaining == 0)
                st->state = JN_H1_CS_DATA_CR;
            *consumed = pos + n;
            return JN_H1_CHUNK_DATA;
        }
        int rc = jn_h1_chunk_step(st, (unsigned char)in[pos], err);
        if (rc < 0) {
            st->state = JN_H1_CS_FAILED;
            *consumed = pos; /* the offending byte, for the log */
            return rc;
        }
        pos++;
        if (st->state == JN_H1_CS_DONE) {
            *consumed = pos;
            return JN_H1_CHUNK_DONE;
        }
    }
    *consumed = pos;
    return JN_EAGAIN;
}

size_t jn_h1_trailer_fields(const struct jn_h1_chunked *st, struct jn_slice *names,
                            struct jn_slice *values, size_t max)
{
    size_t n = 0, at = 0, len = st->trailers != NULL ? st->trailer_bytes : 0;
    while (at < len && n < max) {
        size_t end = at;
        while (end < len && st->trailers[end] != '\n')
            end++;
        size_t line_end = end > at && st->trailers[end - 1] == '\r' ? end - 1 : end;
        const char *line = st->trailers + at;
        const char *colon = memchr(line, ':', line_end - at);
        if (colon != NULL) {
            const char *v = colon + 1, *ve = st->trailers + line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            names[n] = (struct jn_slice){ line, (size_t)(colon - line) };
            values[n++] = (struct jn_slice){ v, (size_t)(ve - v) };
        }
        at = end + 1;
    }
    return n;
}
