/* Shared basics for every layer: byte views, error codes, small helpers.
 * Depends on nothing but libc. */
#ifndef JN_CORE_COMMON_H
#define JN_CORE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A view into bytes owned by someone else (a read buffer, a config snapshot).
 * Never freed through the slice; valid only as long as its owner says. */
struct jn_slice {
    const char *ptr;
    size_t len;
};

#define JN_SLICE_LIT(s) ((struct jn_slice){ (s), sizeof(s) - 1 })
#define JN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define JN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define JN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define JN_UNUSED(x) ((void)(x))

/* Under AddressSanitizer the object caches step aside, so that every
 * use after free is seen. */
#if defined(__SANITIZE_ADDRESS__)
#define JN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JN_ASAN 1
#endif
#endif

/* Error codes: functions return 0 or one of these (negative). */
enum {
    JN_OK = 0,
    JN_EAGAIN = -1,   /* need more input / would block */
    JN_EINVAL = -2,   /* malformed input */
    JN_ENOMEM = -3,   /* allocation failed */
    JN_EIO = -4,      /* system call failed, errno says why */
    JN_ETOOBIG = -5,  /* a configured limit was exceeded */
    JN_ENOTSUP = -6,  /* understood but not implemented */
    JN_ECLOSED = -7,  /* peer closed */
    JN_ETIMEOUT = -8, /* a timer fired */
};

static inline bool jn_slice_eq(struct jn_slice a, struct jn_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline char jn_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Returns the value of a hex digit of either case (0..15), or -1 for any
 * other byte. Shared by the chunk-size parser and percent-decoding. */
static inline int jn_hex_digit_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ASCII case-insensitive comparison of a slice with a C string. */
static inline bool jn_slice_ieq(struct jn_slice a, const char *s)
{
    size_t n = strlen(s);
    if (a.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (jn_lower(a.ptr[i]) != jn_lower(s[i]))
            return false;
    return true;
}

static inline bool jn_slice_ieq_slice(struct jn_slice a, struct jn_slice b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (jn_lower(a.ptr[i]) != jn_lower(b.ptr[i]))
            return false;
    return true;
}

#endif
