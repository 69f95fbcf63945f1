/* Unit tests of request-target normalisation (src/http/path.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"

static const struct jn_path_opts path_opts_default = {true, JN_SLASH_KEEP};

struct path_result {
    int rc;
    char out[512];
    char path[512];
    char query[512];
    char authority[512];
    bool has_authority;
    const char *err;
};

static void slice_to_cstr(struct jn_slice s, char *dst, size_t cap)
{
    cr_assert_lt(s.len, cap);
    if (s.len)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
}

/* Normalises target into r, checking the contract on the way: the output
 * fits target.len + 1 bytes, is NUL-terminated and is a view of out. */
static void path_run(const char *target, const struct jn_path_opts *opts, struct path_result *r)
{
    memset(r, 0, sizeof(*r));
    size_t len = strlen(target);
    char *copy = malloc(len ? len : 1); /* exact size: ASan catches reads past the target */
    cr_assert_not_null(copy);
    memcpy(copy, target, len);
    char *out = malloc(len + 1);
    cr_assert_not_null(out);
    struct jn_slice path = {0}, query = {0}, authority = {0};
    r->rc = jn_path_normalize((struct jn_slice){copy, len}, opts, out, &path, &query, &authority,
                              &r->err);
    if (r->rc == 0) {
        cr_assert_eq(path.ptr, out);
        cr_assert_eq(out[path.len], '\0');
        slice_to_cstr(path, r->path, sizeof(r->path));
        slice_to_cstr(query, r->query, sizeof(r->query));
        r->has_authority = authority.ptr != NULL;
        if (r->has_authority)
            slice_to_cstr(authority, r->authority, sizeof(r->authority));
    } else {
        cr_assert_eq(r->rc, JN_EINVAL);
        cr_assert_not_null(r->err);
    }
    free(out);
    free(copy);
}

static void expect_path(const char *target, const char *want)
{
    struct path_result r;
    path_run(target, &path_opts_default, &r);
    cr_assert_eq(r.rc, 0, "%s: rejected (%s)", target, r.err);
    cr_assert_str_eq(r.path, want, "%s", target);
}

static void expect_path_opts(const char *target, bool merge, enum jn_escaped_slash slash,
                             const char *want)
{
    struct jn_path_opts opts = {merge, slash};
    struct path_result r;
    path_run(target, &opts, &r);
    cr_assert_eq(r.rc, 0, "%s: rejected (%s)", target, r.err);
    cr_assert_str_eq(r.path, want, "%s", target);
}

static void expect_reject_opts(const char *target, const struct jn_path_opts *opts)
{
    struct path_result r;
    path_run(target, opts, &r);
    cr_assert_eq(r.rc, JN_EINVAL, "%s: accepted as %s", target, r.path);
}

static void expect_reject(const char *target)
{
    expect_reject_opts(target, &path_opts_default);
}

Test(path, plain_paths_are_unchanged)
{
    expect_path("/", "/");
    expect_path("/users", "/users");
    expect_path("/users/", "/users/");
    expect_path("/a/b/c.html", "/a/b/c.html");
    expect_path("/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~");
}

Test(path, dot_segments_are_removed)
{
    expect_path("/a/./b", "/a/b");
    expect_path("/a/b/../c", "/a/c");
    expect_path("/public/../admin", "/admin");
    expect_path("/a/b/c/./../../g", "/a/g");
    expect_path("/a/.", "/a/");
    expect_path("/a/..", "/");
    expect_path("/a/b/..", "/a/");
    expect_path("/.", "/");
    expect_path("/./", "/");
    expect_path("/a/./", "/a/");
}

Test(path, dot_dot_never_climbs_above_root)
{
    expect_path("/..", "/");
    expect_path("/../..", "/");
    expect_path("/../admin", "/admin");
    expect_path("/a/../../../etc/passwd", "/etc/passwd");
    expect_path("/../../a/..", "/");
}

Test(path, names_with_dots_are_not_dot_segments)
{
    expect_path("/...", "/...");
    expect_path("/a/..b/c", "/a/..b/c");
    expect_path("/a/b../c", "/a/b../c");
    expect_path("/.hidden", "/.hidden");
    expect_path("/a/.../..", "/a/");
}

Test(path, encoded_dots_are_decoded_then_removed)
{
    expect_path("/%2e%2e/admin", "/admin");
    expect_path("/%2E%2E/admin", "/admin");
    expect_path("/public/%2e%2e/admin", "/admin");
    expect_path("/public/.%2e/admin", "/admin");
    expect_path("/public/%2e./admin", "/admin");
    expect_path("/a/%2e/b", "/a/b");
    expect_path("/a/%2e", "/a/");
}

Test(path, encoded_unreserved_characters_are_decoded)
{
    expect_path("/%41%62%7e%2D%5f%30", "/Ab~-_0");
    expect_path("/adm%69n", "/admin");
}

Test(path, other_encodings_are_kept_with_upper_case_hex)
{
    expect_path("/a%20b", "/a%20b");
    expect_path("/a%2a", "/a%2A");
    expect_path("/%c3%a9", "/%C3%A9");
    expect_path("/a%3bb", "/a%3Bb");
    expect_path("/%25", "/%25");
    expect_path("/%252e%252e/", "/%252e%252e/");
    expect_path("/%7f", "/%7F");
}

Test(path, encoded_slash_is_kept_by_default)
{
    expect_path("/a%2fb", "/a%2Fb");
    expect_path("/a%2Fb/../c", "/c");
    expect_path("/a/..%2f..%2fetc", "/a/..%2F..%2Fetc");
}

Test(path, encoded_slash_decoded_is_a_separator)
{
    expect_path_opts("/a%2Fb", true, JN_SLASH_DECODE, "/a/b");
    expect_path_opts("/a/b%2F..%2F..%2Fetc", true, JN_SLASH_DECODE, "/etc");
    expect_path_opts("/a%2F%2Fb", true, JN_SLASH_DECODE, "/a/b");
    expect_path_opts("/a%2F%2Fb", false, JN_SLASH_DECODE, "/a//b");
    expect_path_opts("/%2F", true, JN_SLASH_DECODE, "/");
}

Test(path, encoded_slash_rejected_when_configured)
{
    struct jn_path_opts opts = {true, JN_SLASH_REJECT};
    expect_reject_opts("/a%2Fb", &opts);
    expect_reject_opts("/a%2fb", &opts);
    expect_path_opts("/a/b", true, JN_SLASH_REJECT, "/a/b");
    /* the query is not a path: a %2F there is data */
    struct path_result r;
    path_run("/a?x=%2F", &opts, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.query, "x=%2F");
}

Test(path, duplicate_slashes_are_merged)
{
    expect_path("//a///b//", "/a/b/");
    expect_path("//", "/");
    expect_path("/a//../b", "/b");
}

Test(path, duplicate_slashes_kept_when_merge_is_off)
{
    expect_path_opts("//a///b//", false, JN_SLASH_KEEP, "//a///b//");
    expect_path_opts("/a//../b", false, JN_SLASH_KEEP, "/a/b");
    expect_path_opts("/.//a", false, JN_SLASH_KEEP, "//a");
    expect_path_opts("/a/b//..", false, JN_SLASH_KEEP, "/a/b/");
}

Test(path, invalid_escapes_are_rejected)
{
    expect_reject("/%");
    expect_reject("/a%");
    expect_reject("/a%2");
    expect_reject("/a%zz");
    expect_reject("/a%g0");
    expect_reject("/a%0");
    expect_reject("/%%41");
}

Test(path, encoded_nul_is_rejected)
{
    expect_reject("/a%00b");
    expect_reject("/%00");
}

Test(path, characters_outside_the_path_set_are_rejected)
{
    const char *bad[] = {"/a b", "/a\"b", "/a<b", "/a>b", "/a\\b",  "/a^b",   "/a`b",      "/a{b",
                         "/a|b", "/a}b",  "/a[b", "/a]b", "/a\x01", "/a\x7f", "/a\xc3\xa9"};
    for (size_t i = 0; i < JN_ARRAY_LEN(bad); i++)
        expect_reject(bad[i]);
}

Test(path, nul_byte_in_target_is_rejected)
{
    char target[] = {'/', 'a', '\0', 'b'};
    char out[sizeof(target) + 1];
    struct jn_slice path, query, authority;
    const char *err = NULL;
    int rc = jn_path_normalize((struct jn_slice){target, sizeof(target)}, &path_opts_default, out,
                               &path, &query, &authority, &err);
    cr_assert_eq(rc, JN_EINVAL);
}

Test(path, fragment_is_rejected)
{
    expect_reject("/a#b");
    expect_reject("/a?q=1#frag");
    expect_reject("/#");
    expect_reject("http://h/a#b");
}

Test(path, asterisk_and_authority_forms_are_rejected)
{
    expect_reject("*");
    expect_reject("example.com:443");
    expect_reject("a/b");
    expect_reject("");
    expect_reject("?q");
    expect_reject("ftp://h/a");
}

Test(path, query_is_split_at_the_first_question_mark)
{
    struct path_result r;
    path_run("/a/../b?x=1&y=/../z?w", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.path, "/b");
    cr_assert_str_eq(r.query, "x=1&y=/../z?w");
    cr_assert_not(r.has_authority);
}

Test(path, query_is_raw_and_empty_when_absent)
{
    struct path_result r;
    path_run("/a?q=%41+b", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.query, "q=%41+b");
    path_run("/a", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.query, "");
    path_run("/a?", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.path, "/a");
    cr_assert_str_eq(r.query, "");
}

Test(path, query_with_invalid_bytes_is_rejected)
{
    expect_reject("/a?q=a b");
    expect_reject("/a?q=%zz");
    expect_reject("/a?q=100%");
    expect_reject("/a?q=<script>");
}

Test(path, absolute_form_returns_authority_and_path)
{
    struct path_result r;
    path_run("http://example.com:8080/p/../q?x=1", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert(r.has_authority);
    cr_assert_str_eq(r.authority, "example.com:8080");
    cr_assert_str_eq(r.path, "/q");
    cr_assert_str_eq(r.query, "x=1");
}

Test(path, absolute_form_with_empty_path_is_root)
{
    struct path_result r;
    path_run("http://example.com", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.authority, "example.com");
    cr_assert_str_eq(r.path, "/");
    cr_assert_str_eq(r.query, "");
    path_run("HTTPS://[::1]:443?a=b", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.authority, "[::1]:443");
    cr_assert_str_eq(r.path, "/");
    cr_assert_str_eq(r.query, "a=b");
}

Test(path, absolute_form_with_bad_authority_is_rejected)
{
    expect_reject("http://");
    expect_reject("http:///a");
    expect_reject("http://user@host/a");
    expect_reject("http://ho st/a");
    expect_reject("http://h%41/a");
    expect_reject("http:/h/a");
}

Test(path, origin_form_has_no_authority)
{
    struct path_result r;
    path_run("/x", &path_opts_default, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_not(r.has_authority);
}

/* Normalising a normalised path changes nothing: routing and the upstream
 * see the same string however often it passes through. */
Test(path, normalisation_is_idempotent)
{
    const char *targets[] = {"/a/./b/../c//d/", "/%2e%2e/x%2fy/%41", "/a/b/..", "//", "/%c3%a9/."};
    for (size_t i = 0; i < JN_ARRAY_LEN(targets); i++) {
        struct path_result once, twice;
        path_run(targets[i], &path_opts_default, &once);
        cr_assert_eq(once.rc, 0);
        path_run(once.path, &path_opts_default, &twice);
        cr_assert_eq(twice.rc, 0);
        cr_assert_str_eq(twice.path, once.path, "%s", targets[i]);
    }
}
