/* libFuzzer target for the W3C trace context reader (http/trace.c): any
 * bytes as one or two traceparent values and a tracestate. Checks what the
 * parser promises: a value it accepts is re-formatted to the same ids and
 * flags and parses again; what jn_trace_take leaves in the fields is always
 * a valid version 00 traceparent, and tracestate survives only with a
 * valid one. Input: split at newlines into traceparent, [traceparent,]
 * tracestate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/trace.h"

static void check_parse(const char *v, size_t len)
{
    struct jn_traceparent tp;
    if (!jn_trace_parse((struct jn_slice){ v, len }, &tp))
        return;
    char again[JN_TRACEPARENT_LEN];
    jn_trace_format(tp.trace_id, tp.parent_id, tp.flags, again);
    struct jn_traceparent tp2;
    if (!jn_trace_parse((struct jn_slice){ again, sizeof(again) }, &tp2) ||
        memcmp(&tp, &tp2, sizeof(tp)) != 0 || memcmp(again + 3, v + 3, 52) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copies so that ASan sees any read past a part. */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    struct jn_slice parts[3];
    size_t nparts = 0;
    for (char *p = buf, *end = buf + size; nparts < 3;) {
        char *nl = nparts < 2 ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        parts[nparts++] = (struct jn_slice){ p, len };
        check_parse(p, len);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    /* One part: traceparent; two: and tracestate; three: two traceparents. */
    struct jn_http_field fields[8];
    struct jn_fields f = { fields, nparts, 8 };
    for (size_t i = 0; i < nparts; i++)
        fields[i] = (struct jn_http_field){ i == nparts - 1 && i > 0
                                                ? (struct jn_slice){ "tracestate", 10 }
                                                : (struct jn_slice){ "traceparent", 11 },
                                            parts[i] };
    char trace_id[33], out[JN_TRACEPARENT_LEN];
    struct jn_traceparent in;
    bool valid_in = nparts < 3 && jn_trace_parse(parts[0], &in);
    if (jn_trace_take(&f, trace_id, out) != 0)
        abort();
    struct jn_slice tp = jn_http_field_get(f.v, f.n, "traceparent");
    struct jn_traceparent got;
    if (tp.len != JN_TRACEPARENT_LEN || !jn_trace_parse(tp, &got) || memcmp(tp.ptr, "00-", 3) != 0 ||
        strcmp(got.trace_id, trace_id) != 0)
        abort();
    if (valid_in && (strcmp(got.trace_id, in.trace_id) != 0 || got.flags != in.flags))
        abort();
    bool state = jn_http_field_get(f.v, f.n, "tracestate").ptr != NULL;
    if (state && !valid_in)
        abort();
    free(buf);
    return 0;
}
