/* W3C Trace Context: parsing and passing on traceparent. See trace.h. */
#include "http/trace.h"

#include <string.h>
#include <sys/random.h>

#include "core/common.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10; /* upper case is invalid (the spec says lower case only) */
    return -1;
}

/* n lower-case hex digits, not all zeros, copied to out with a NUL. */
static bool hex_id(const char *p, size_t n, char *out)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (hexval(p[i]) < 0)
            return false;
        nonzero |= p[i] != '0';
        out[i] = p[i];
    }
    out[n] = '\0';
    return nonzero;
}

bool jn_trace_parse(struct jn_slice v, struct jn_traceparent *out)
{
    const char *p = v.ptr;
    if (p == NULL || v.len < JN_TRACEPARENT_LEN)
        return false;
    int hi = hexval(p[0]), lo = hexval(p[1]);
    if (hi < 0 || lo < 0 || (hi == 15 && lo == 15))
        return false; /* version ff is forbidden */
    bool v00 = hi == 0 && lo == 0;
    if (v00 ? v.len != JN_TRACEPARENT_LEN : v.len > JN_TRACEPARENT_LEN && p[55] != '-')
        return false;
    if (p[2] != '-' || p[35] != '-' || p[52] != '-')
        return false;
    if (!hex_id(p + 3, 32, out->trace_id) || !hex_id(p + 36, 16, out->parent_id))
        return false;
    int f1 = hexval(p[53]), f2 = hexval(p[54]);
    if (f1 < 0 || f2 < 0)
        return false;
    out->flags = (uint8_t)(f1 << 4 | f2);
    return true;
}

static const char digits[] = "0123456789abcdef";

void jn_trace_format(const char *trace_id, const char *span_id, uint8_t flags, char *out)
{
    memcpy(out, "00-", 3);
    memcpy(out + 3, trace_id, 32);
    out[35] = '-';
    memcpy(out + 36, span_id, 16);
    out[52] = '-';
    out[53] = digits[flags >> 4];
    out[54] = digits[flags & 15];
}

/* xoshiro-style generators would do as well; splitmix64 is short and its
 * outputs never repeat within 2^64 calls of one thread. */
static _Thread_local uint64_t rng_state;

static uint64_t next64(void)
{
    if (rng_state == 0 && getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state))
        rng_state = (uint64_t)(uintptr_t)&rng_state ^ 0x9e3779b97f4a7c15u;
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void jn_trace_random_hex(char *out, size_t n)
{
    for (;;) {
        uint64_t any = 0;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = next64();
            any |= r;
            for (int k = 15; k >= 0; k--, r >>= 4)
                out[2 * i + (size_t)k] = digits[r & 15];
        }
        out[2 * n] = '\0';
        if (any != 0)
            return;
    }
}

int jn_trace_take(struct jn_fields *f, char *trace_id, char out[JN_TRACEPARENT_LEN])
{
    size_t at = 0, nparent = 0;
    bool state = false;
    for (size_t i = 0; i < f->n; i++) {
        size_t len = f->v[i].name.len; /* lengths first: most fields are neither */
        if (len == 11 && jn_slice_ieq(f->v[i].name, "traceparent")) {
            at = i;
            nparent++;
        } else if (len == 10 && jn_slice_ieq(f->v[i].name, "tracestate")) {
            state = true;
        }
    }
    struct jn_traceparent in;
    /* Two traceparent fields are as good as none (the spec's rule). */
    bool valid = nparent == 1 && jn_trace_parse(f->v[at].value, &in);
    char span[17];
    jn_trace_random_hex(span, 8);
    if (valid) {
        memcpy(trace_id, in.trace_id, 33);
    } else {
        jn_trace_random_hex(trace_id, 16);
        in.flags = 0x01; /* sampled: Junction records every request it starts */
    }
    jn_trace_format(trace_id, span, in.flags, out);
    struct jn_slice value = { out, JN_TRACEPARENT_LEN };
    int rc = 0;
    if (nparent == 1) {
        f->v[at].value = value; /* in place, before any removal moves the fields */
    } else {
        if (nparent > 1)
            jn_fields_remove(f, "traceparent");
        rc = jn_fields_add(f, (struct jn_slice){ "traceparent", 11 }, value);
    }
    if (!valid && state)
        jn_fields_remove(f, "tracestate");
    return rc == 0 ? 0 : JN_ETOOBIG;
}
