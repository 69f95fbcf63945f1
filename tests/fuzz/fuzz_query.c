/* libFuzzer target for the readers of untrusted query strings and header
 * values that are not the HTTP/1 parser: jn_query_find / jn_form_eq (the
 * router's query matchers) and jn_hash_key (the hashing balancers' keys).
 * Input: the first byte picks the key kind; the rest is split at the first
 * newline into a query string and a Cookie header value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balance/hash_key.h"
#include "http/query.h"

static const char *const keys[] = { "client_ip", "path", "header:cookie", "cookie:sid",
                                    "query:id", "query:a b", "header:x-user", "cookie:" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *key = keys[data[0] % (sizeof(keys) / sizeof(keys[0]))];
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(rest, '\n', len);
    size_t qlen = nl ? (size_t)(nl - rest) : len;
    /* Copies so that ASan sees any read past either part. */
    char *query = malloc(qlen + 1), *cookie = malloc(len - qlen + 1);
    memcpy(query, rest, qlen);
    size_t clen = nl ? len - qlen - 1 : 0;
    memcpy(cookie, nl ? nl + 1 : "", clen);
    struct jn_slice v;
    if (jn_query_find((struct jn_slice){ query, qlen }, "id", 2, &v)) {
        if (v.ptr < query || v.ptr + v.len > query + qlen)
            abort();
        jn_form_eq(v.ptr, v.len, "42", 2);
    }
    struct jn_http_field fields[1] = { { JN_SLICE_LIT("Cookie"), { cookie, clen } } };
    struct jn_http_request req = { .path = JN_SLICE_LIT("/p"), .query = { query, qlen },
                                   .fields = fields, .nfields = 1 };
    uint64_t h1, h2;
    bool a = jn_hash_key(key, &req, "127.0.0.1", &h1);
    bool b = jn_hash_key(key, &req, "127.0.0.1", &h2);
    if (a != b || h1 != h2) /* a key must hash the same every time */
        abort();
    free(query);
    free(cookie);
    return 0;
}
