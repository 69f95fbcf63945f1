/* Unit tests of ${variables} in route header values (policy/route_headers.c):
 * the templates the loader splits, their expansion from stream variables,
 * and the guard that keeps a variable's control characters (a JWT claim
 * carrying CR LF) from ever reaching a header. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "http/fields.h"
#include "http/stream.h"
#include "policy/chain.h"

static const char yaml[] = "listeners:\n"
                           "  - name: l\n"
                           "    address: 127.0.0.1:1\n"
                           "upstreams:\n"
                           "  app:\n"
                           "    servers: [ { address: 127.0.0.1:2 } ]\n"
                           "routes:\n"
                           "  - name: r\n"
                           "    match: { path_prefix: / }\n"
                           "    upstream: app\n"
                           "    request_headers:\n"
                           "      set: { X-Sub: \"sub=${jwt.sub}\", X-Lit: \"a$${b}$c\" }\n"
                           "      add: { X-Role: \"${jwt.role}@${client_ip}\" }\n"
                           "    response_headers:\n"
                           "      set: { X-Plain: \"v\" }\n";

static struct jn_config *cfg;
static struct jn_stream *s;

static void setup(void)
{
    struct jn_cfg_errors errs = {0};
    cfg = jn_config_load_buffer("t.yaml", yaml, strlen(yaml), &errs);
    cr_assert_not_null(cfg, "%s", errs.count ? errs.msgs[0] : "");
    jn_cfg_errors_free(&errs);
    s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);
    jn_arena_init(&s->arena, 1024);
    strcpy(s->client_ip, "10.0.0.7");
}

static void teardown(void)
{
    jn_arena_free(&s->arena);
    free(s);
    jn_config_unref(cfg);
}

TestSuite(header_vars, .init = setup, .fini = teardown);

static const char *field(const struct jn_fields *f, const char *name)
{
    static char out[256];
    struct jn_slice v = jn_http_field_get(f->v, f->n, name);
    if (v.ptr == NULL)
        return NULL;
    cr_assert_lt(v.len, sizeof(out));
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
    return out;
}

static struct jn_slice sl(const char *text)
{
    return (struct jn_slice){text, strlen(text)};
}

static int apply(struct jn_fields *f)
{
    return jn_route_headers_apply(s, f, &cfg->routes[0].request_headers);
}

Test(header_vars, templates_are_split_at_load_and_literals_unescaped)
{
    const struct jn_cfg_header_ops *ops = &cfg->routes[0].request_headers;
    cr_assert(ops->templated);
    cr_assert_eq(ops->set_tmpl[0].nparts, 2);
    cr_assert_eq(ops->set_tmpl[1].nparts, 0); /* no variable: a plain literal */
    cr_assert_str_eq(ops->set[1].value, "a${b}$c");
    cr_assert_not(cfg->routes[0].response_headers.templated);
}

Test(header_vars, values_are_expanded_from_stream_variables)
{
    struct jn_http_field v[8];
    struct jn_fields f = {v, 0, 8};
    cr_assert_eq(jn_stream_var_set(s, "jwt.sub", sl("alice")), 0);
    cr_assert_eq(jn_stream_var_set(s, "jwt.role", sl("admin")), 0);
    cr_assert_eq(apply(&f), 0);
    cr_assert_str_eq(field(&f, "x-sub"), "sub=alice");
    cr_assert_str_eq(field(&f, "x-lit"), "a${b}$c");
    cr_assert_str_eq(field(&f, "x-role"), "admin@10.0.0.7");
}

Test(header_vars, a_missing_or_empty_value_leaves_the_field_out_and_set_removes_it)
{
    struct jn_http_field v[8];
    struct jn_fields f = {v, 0, 8};
    jn_fields_add(&f, sl("X-Sub"), sl("sub=forged-by-client"));
    cr_assert_eq(jn_stream_var_set(s, "jwt.role", sl("")), 0);
    cr_assert_eq(apply(&f), 0);
    cr_assert_null(field(&f, "x-sub"));
    cr_assert_null(field(&f, "x-role"));
    cr_assert_str_eq(field(&f, "x-lit"), "a${b}$c");
}

Test(header_vars, control_characters_in_a_value_drop_the_field)
{
    static const char *const bad[] = {"alice\r\nX-Admin: 1", "a\nb", "a\rb", "tab\there",
                                      "nul\x01", "del\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct jn_http_field v[8];
        struct jn_fields f = {v, 0, 8};
        jn_fields_add(&f, sl("X-Sub"), sl("from-client"));
        cr_assert_eq(jn_stream_var_set(s, "jwt.sub", sl(bad[i])), 0);
        cr_assert_eq(jn_stream_var_set(s, "jwt.role", sl(bad[i])), 0);
        cr_assert_eq(apply(&f), 0);
        cr_assert_null(field(&f, "x-sub"), "%zu", i);
        cr_assert_null(field(&f, "x-role"), "%zu", i);
        cr_assert_null(field(&f, "x-admin"), "%zu", i);
        for (size_t k = 0; k < f.n; k++)
            for (size_t c = 0; c < f.v[k].value.len; c++)
                cr_assert_geq((unsigned char)f.v[k].value.ptr[c], 0x20);
    }
}

Test(header_vars, a_later_value_of_a_variable_wins)
{
    struct jn_http_field v[8];
    struct jn_fields f = {v, 0, 8};
    cr_assert_eq(jn_stream_var_set(s, "jwt.sub", sl("bad\r\n")), 0);
    cr_assert_eq(jn_stream_var_set(s, "jwt.sub", sl("bob")), 0);
    cr_assert_eq(apply(&f), 0);
    cr_assert_str_eq(field(&f, "x-sub"), "sub=bob");
}
