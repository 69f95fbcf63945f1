/* W3C Trace Context (https://www.w3.org/TR/trace-context/): a request's
 * traceparent is passed on with Junction's own span as the parent, or a new
 * trace is started when it is missing or invalid; tracestate goes with a
 * valid traceparent only. The trace id is written in the access log. */
#ifndef JN_HTTP_TRACE_H
#define JN_HTTP_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "http/fields.h"
#include "http/msg.h"

#define JN_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */

struct jn_traceparent {
    char trace_id[33]; /* 32 lower-case hex digits, NUL-terminated */
    char parent_id[17]; /* 16 */
    uint8_t flags;
};

/* Parses one traceparent value. Returns true when it is valid: two
 * lower-case hex digits of version other than ff; for version 00 exactly
 * the 55 characters of its format; for a later version at least those,
 * followed by '-' when longer; lower-case hex ids, neither all zeros. */
bool jn_trace_parse(struct jn_slice v, struct jn_traceparent *out);

/* Writes "00-TRACE-SPAN-FLAGS" (JN_TRACEPARENT_LEN characters, no NUL). */
void jn_trace_format(const char *trace_id, const char *span_id, uint8_t flags, char *out);

/* A new random id of n bytes (a multiple of 8) as 2n lower-case hex
 * digits and a NUL, never all zeros. Per-thread generator seeded from getrandom: unique, not secret. */
void jn_trace_random_hex(char *out, size_t n);

/* The request's trace: reads the traceparent and tracestate fields of f,
 * keeps the trace id (or makes one), makes Junction's span id, and leaves
 * in f the traceparent to send upstream (value in the caller's out, which
 * must outlive f's use) and tracestate only when the traceparent was valid.
 * trace_id gets 33 bytes. Returns 0 or JN_ETOOBIG (no room in f). */
int jn_trace_take(struct jn_fields *f, char *trace_id, char out[JN_TRACEPARENT_LEN]);

#endif
