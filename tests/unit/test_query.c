/* Unit tests of the query parameters left out of a query (src/http/query.c):
 * what key_auth and jwt keep from the upstream and the access log from
 * its lines. */
#include <criterion/criterion.h>
#include <string.h>

#include "http/query.h"

static const char *without(const char *q, const char *const *names, size_t n, char *out)
{
    size_t len = jn_query_without((struct jn_slice){ q, strlen(q) }, names, n, out);
    out[len] = '\0';
    return out;
}

Test(query, without_removes_every_named_parameter_and_keeps_the_order)
{
    char out[128];
    const char *names[] = { "api_key", "access_token" };
    cr_expect_str_eq(without("a=1&api_key=K&b=2", names, 1, out), "a=1&b=2");
    cr_expect_str_eq(without("api_key=K", names, 1, out), "");
    cr_expect_str_eq(without("api_key=K&api_key=L&x", names, 1, out), "x");
    cr_expect_str_eq(without("api%5Fkey=K&api_key2=L", names, 1, out), "api_key2=L");
    cr_expect_str_eq(without("access_token=T&z=9&api_key", names, 2, out), "z=9");
    cr_expect_str_eq(without("a=1&&b=2", names, 2, out), "a=1&&b=2");
    cr_expect_str_eq(without("a=1", names, 0, out), "a=1");
}

Test(query, hide_rewrites_the_query_only_when_the_parameter_is_there)
{
    struct jn_arena arena;
    jn_arena_init(&arena, 1024);
    const char *q = "a=1&token=T";
    struct jn_slice s = { q, strlen(q) };
    cr_assert(jn_query_hide(&arena, &s, "other"));
    cr_expect_eq(s.ptr, q);
    cr_assert(jn_query_hide(&arena, &s, "token"));
    cr_expect_eq(s.len, 3);
    cr_expect_eq(memcmp(s.ptr, "a=1", 3), 0);
    jn_arena_free(&arena);
}
