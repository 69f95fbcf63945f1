/* Character classes of RFC 9110/9112 shared by the HTTP/1 header parser and
 * the chunked decoder. Private to src/http/h1. */
#ifndef JN_HTTP_H1_CHARS_H
#define JN_HTTP_H1_CHARS_H

#include <stdbool.h>
#include <string.h>

#include "core/common.h"

/* tchar: the bytes a token (method, field name, coding name) may hold. */
static inline bool jn_h1_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return memchr(extra, c, sizeof(extra) - 1) != NULL;
}

static inline bool jn_h1_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* field-vchar, SP or HTAB: every byte a field value may hold. obs-text
 * (0x80-0xFF) is kept because deployed servers still send Latin-1 values. */
static inline bool jn_h1_is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

#endif
