/* Query strings read in place. */
#include "http/query.h"

#include <string.h>

unsigned char jn_form_byte(const char *enc, size_t len, size_t *i)
{
    unsigned char c = (unsigned char)enc[*i];
    if (c == '+') {
        c = ' ';
    } else if (c == '%' && len - *i >= 3) {
        int hi = jn_hex_digit_value((unsigned char)enc[*i + 1]);
        int lo = jn_hex_digit_value((unsigned char)enc[*i + 2]);
        if (hi >= 0 && lo >= 0) {
            c = (unsigned char)(hi * 16 + lo);
            *i += 2;
        }
    }
    (*i)++;
    return c;
}

bool jn_form_eq(const char *enc, size_t len, const char *want, size_t wlen)
{
    size_t i = 0, j = 0;
    while (i < len) {
        if (j == wlen || jn_form_byte(enc, len, &i) != (unsigned char)want[j])
            return false;
        j++;
    }
    return j == wlen;
}

bool jn_query_find(struct jn_slice q, const char *name, size_t nlen, struct jn_slice *value)
{
    size_t i = 0;
    while (i < q.len) {
        const char *p = q.ptr + i;
        const char *amp = memchr(p, '&', q.len - i);
        size_t plen = amp ? (size_t)(amp - p) : q.len - i;
        const char *eq = memchr(p, '=', plen);
        size_t name_len = eq ? (size_t)(eq - p) : plen;
        if (plen > 0 && jn_form_eq(p, name_len, name, nlen)) {
            size_t voff = eq ? name_len + 1 : plen;
            *value = (struct jn_slice){ p + voff, plen - voff };
            return true;
        }
        i += plen + 1;
    }
    return false;
}

static bool named(const char *p, size_t len, const char *const *names, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (jn_form_eq(p, len, names[k], strlen(names[k])))
            return true;
    return false;
}

size_t jn_query_without(struct jn_slice q, const char *const *names, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < q.len;) {
        const char *p = q.ptr + i;
        const char *amp = memchr(p, '&', q.len - i);
        size_t plen = amp ? (size_t)(amp - p) : q.len - i;
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        if (!named(p, nlen, names, n)) {
            if (len > 0)
                out[len++] = '&';
            memcpy(out + len, p, plen);
            len += plen;
        }
        i += plen + 1;
    }
    return len;
}

bool jn_query_hide(struct jn_arena *arena, struct jn_slice *q, const char *name)
{
    struct jn_slice found;
    if (!jn_query_find(*q, name, strlen(name), &found))
        return true;
    char *out = jn_arena_alloc(arena, q->len + 1);
    if (out == NULL)
        return false;
    size_t len = jn_query_without(*q, &name, 1, out);
    *q = (struct jn_slice){ out, len };
    return true;
}
