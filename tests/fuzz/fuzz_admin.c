/* libFuzzer target for the admin API's request handling above the HTTP/1.1
 * parser: path splitting and percent-decoding, the bearer token check,
 * routing, and the JSON validation of change bodies. The input is
 * "METHOD\nTARGET\nAUTHORIZATION\nBODY". The runtime holds one snapshot
 * with an admin token and no workers. Besides memory errors it checks that
 * every answer has a status and a body of the length it says. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/api.h"
#include "health/state.h"
#include "server/runtime.h"

static const char yaml[] = "listeners: [ { name: p, address: '127.0.0.1:1' } ]\n"
                           "upstreams:\n"
                           "  app: { servers: [ { address: 127.0.0.1:2 }, "
                           "{ address: 127.0.0.1:3, weight: 2 } ] }\n"
                           "routes: [ { name: r, match: { path_prefix: / }, upstream: app } ]\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_buffer("fuzz.yaml", yaml, sizeof(yaml) - 1, &errs);
    if (cfg == NULL || jn_pools_create(cfg, NULL) != 0)
        abort();
    cfg->admin.token = "tok"; /* a string literal: the snapshot never frees it */
    cfg->admin.token_len = 3;
    jn_runtime_init(cfg, "fuzz.yaml", 0);
    jn_config_unref(cfg);
    return 0;
}

/* The next '\n'-ended piece of data as a slice; the rest stays in *d. */
static struct jn_slice piece(const char **d, size_t *n)
{
    const char *nl = memchr(*d, '\n', *n);
    size_t len = nl != NULL ? (size_t)(nl - *d) : *n;
    struct jn_slice s = { *d, len };
    *d += len + (nl != NULL);
    *n -= len + (nl != NULL);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1); /* exact size: ASan sees any overread */
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    const char *d = copy;
    size_t n = size;
    struct jn_slice method = piece(&d, &n), target = piece(&d, &n), auth = piece(&d, &n);
    struct jn_h1_header h = { JN_SLICE_LIT("Authorization"), auth };
    struct jn_admin_request rq = { .method = method, .target = target, .headers = &h,
                                   .nheaders = 1, .body = d, .body_len = n,
                                   .metrics_only = size > 0 && data[0] == 'M' };
    struct jn_admin_response rs = { 0 };
    jn_admin_handle(&rq, &rs);
    if (rs.status < 200 || rs.status > 599 || (rs.len > 0 && rs.body == NULL))
        abort();
    if (rs.len > 0 && rs.body[rs.len - 1] == '\0')
        abort(); /* the length counts the text, never a terminator */
    free(rs.body);
    free(copy);
    return 0;
}
