/* libFuzzer target for the configuration loader: any bytes go to
 * jn_config_load_buffer, and everything is freed again (ASan/LSan watch).
 * Besides memory errors it checks the loader's contract: a load fails
 * exactly when it reports errors, every message is "fuzz.yaml:LINE:COL: ..."
 * (or "fuzz.yaml: ..."), and a loaded snapshot holds only validated values,
 * including paths that request normalisation (http/path.c) leaves unchanged.
 *
 * Standalone, before the router and balancers exist:
 *   clang -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -DJN_CONFIG_TEST_STUBS -o /tmp/fuzz_config tests/fuzz/fuzz_config.c \
 *     src/config/[a-z]*.c src/core/arena.c src/http/path.c -lyaml -lpcre2-8 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/common.h"
#include "http/path.h"

#ifdef JN_CONFIG_TEST_STUBS
/* Stand-ins for route/router.c and balance/balance.c: compile the regexes
 * so that the snapshot's free path handles real PCRE2 codes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "route/router.h"

static pcre2_code *jn_fuzz_compile(const char *pattern, bool *failed)
{
    int code;
    PCRE2_SIZE offset;
    if (pattern == NULL)
        return NULL;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &offset, NULL);
    *failed |= re == NULL;
    return re;
}

struct jn_router *jn_router_build(struct jn_config *cfg, struct jn_cfg_errors *errs)
{
    bool failed = false;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct jn_cfg_route *r = &cfg->routes[i];
        r->match.regex = jn_fuzz_compile(r->match.path_regex, &failed);
        r->rewrite.regex = jn_fuzz_compile(r->rewrite.pattern, &failed);
    }
    if (failed)
        jn_cfg_error(errs, (struct jn_cfg_pos){cfg->file, 1, 1}, "invalid regular expression");
    return failed ? NULL : malloc(1);
}

void jn_router_free(struct jn_router *r)
{
    free(r);
}

bool jn_lb_known(const char *name)
{
    return strcmp(name, "round_robin") == 0;
}
#endif

#define JN_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "contract broken: %s (line %d)\n", #cond, __LINE__);                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void jn_fuzz_check_message(const char *msg)
{
    const char *p = msg + strlen("fuzz.yaml");
    JN_FUZZ_CHECK(strncmp(msg, "fuzz.yaml", strlen("fuzz.yaml")) == 0);
    if (p[0] == ':' && p[1] >= '1' && p[1] <= '9') {
        p += strspn(p + 1, "0123456789") + 1;
        JN_FUZZ_CHECK(p[0] == ':' && p[1] >= '1' && p[1] <= '9');
        p += strspn(p + 1, "0123456789") + 1;
    }
    JN_FUZZ_CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
}

/* A configured path must be what normalisation makes of itself. */
static void jn_fuzz_check_path(const char *path, const struct jn_cfg_http *http)
{
    if (path == NULL)
        return;
    struct jn_path_opts opts = {http->merge_slashes, http->escaped_slashes};
    struct jn_slice in = {path, strlen(path)}, out, query, authority;
    char *buf = malloc(in.len + 1);
    const char *err = NULL;
    JN_FUZZ_CHECK(buf != NULL);
    JN_FUZZ_CHECK(jn_path_normalize(in, &opts, buf, &out, &query, &authority, &err) == 0);
    JN_FUZZ_CHECK(jn_slice_eq(in, out));
    free(buf);
}

static void jn_fuzz_check_kv(const struct jn_cfg_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        JN_FUZZ_CHECK(kv[i].name != NULL && kv[i].value != NULL);
        JN_FUZZ_CHECK(strlen(kv[i].value) == kv[i].value_len);
        JN_FUZZ_CHECK(strpbrk(kv[i].value, "\r\n") == NULL);
    }
}

static void jn_fuzz_check_route(const struct jn_config *cfg, const struct jn_cfg_route *r)
{
    JN_FUZZ_CHECK(r->name != NULL);
    JN_FUZZ_CHECK(r->respond.enabled != (r->upstream != NULL));
    if (r->upstream != NULL)
        JN_FUZZ_CHECK(r->upstream >= cfg->upstreams &&
                      r->upstream < cfg->upstreams + cfg->nupstreams);
    JN_FUZZ_CHECK(!r->respond.enabled || (r->respond.status >= 100 && r->respond.status <= 599));
    jn_fuzz_check_path(r->match.path, &cfg->http);
    jn_fuzz_check_path(r->match.path_prefix, &cfg->http);
    jn_fuzz_check_path(r->strip_prefix, &cfg->http);
    JN_FUZZ_CHECK((r->match.path != NULL) + (r->match.path_prefix != NULL) +
                      (r->match.path_regex != NULL) <=
                  1);
    for (size_t i = 0; i < r->match.nmethods; i++)
        JN_FUZZ_CHECK(strpbrk(r->match.methods[i], "abcdefghijklmnopqrstuvwxyz") == NULL);
    jn_fuzz_check_kv(r->match.headers, r->match.nheaders);
    jn_fuzz_check_kv(r->request_headers.set, r->request_headers.nset);
    jn_fuzz_check_kv(r->request_headers.add, r->request_headers.nadd);
    jn_fuzz_check_kv(r->response_headers.set, r->response_headers.nset);
    jn_fuzz_check_kv(r->response_headers.add, r->response_headers.nadd);
    jn_fuzz_check_kv(r->respond.headers, r->respond.nheaders);
}

static void jn_fuzz_check_config(const struct jn_config *cfg)
{
    JN_FUZZ_CHECK(cfg->nlisteners > 0 && cfg->workers <= 256 && cfg->router != NULL);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        JN_FUZZ_CHECK(cfg->listeners[i].name != NULL && cfg->listeners[i].addrlen > 0);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct jn_cfg_upstream *up = &cfg->upstreams[i];
        JN_FUZZ_CHECK(up->name != NULL && up->balance != NULL && up->nservers > 0);
        for (size_t j = 0; j < up->nservers; j++)
            JN_FUZZ_CHECK(up->servers[j].weight >= 1 && up->servers[j].weight <= 1000);
    }
    for (size_t i = 0; i < cfg->nroutes; i++)
        jn_fuzz_check_route(cfg, &cfg->routes[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jn_cfg_errors errs = {0};
    struct jn_config *cfg = jn_config_load_buffer("fuzz.yaml", (const char *)data, size, &errs);
    JN_FUZZ_CHECK((cfg == NULL) == (errs.count > 0));
    for (size_t i = 0; i < errs.count; i++)
        jn_fuzz_check_message(errs.msgs[i]);
    if (cfg != NULL) {
        jn_fuzz_check_config(cfg);
        jn_config_ref(cfg);
        jn_config_unref(cfg);
        jn_config_unref(cfg);
    }
    jn_cfg_errors_free(&errs);
    return 0;
}
