/* libFuzzer target for the gateway policies with the real front ends and
 * proxy: HTTP/1.1 (or HTTP/2 when option bit 0 sends the preface) requests
 * from the input go through routes whose chains hold every policy: key_auth
 * (header and query), basic_auth (bcrypt on the offload path, which runs
 * inline here and posts its result to the loop), jwt (HS256 with a secret
 * file: the seeds carry valid tokens), forward_auth (to the fake upstream),
 * acl, ip_filter behind trusted_proxies, cors, request_limits, rate_limit,
 * concurrency_limit and header variables. The harness is fuzz_worker.h's.
 *
 * Input: byte 0 holds options (bits below), byte 1 the size of the pieces
 * the bytes are written in (0 = all at once); the rest is what the client
 * sends. FUZZ_TRACE=1 sends the logs to stderr. */
#define FUZZ_NAME "fuzz_gateway"
#include "fuzz_worker.h"

enum {
    OPT_HTTP2 = 1 << 0,      /* the HTTP/2 preface goes first */
    OPT_HALF_CLOSE = 1 << 1, /* the client shuts its sending side after the input */
    OPT_TIMERS = 1 << 2,     /* then every timer fires */
    OPT_JSON_LOG = 1 << 3,
    OPT_BIG_BODY = 1 << 4,
    OPT_UP_SHIFT = 5, /* bits 5-6: how the fake upstream answers */
};

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* The bcrypt hash of "pw" at cost 4 (fast enough to fuzz through). */
#define BCRYPT_PW "$2b$04$X1X2X9eLGWx9jWD5usdiI.lw4jBlKkLBDW4tn5KGv7chGR0qN1bxa"

/* %s: the secret file; %u: the fake upstream's port (three times). */
static const char yaml_fmt[] =
    "workers: 1\n"
    "listeners:\n"
    "  - { name: plain, address: 127.0.0.1:1 }\n"
    "access_log: { path: none }\n"
    "trusted_proxies: [127.0.0.1/32, 10.0.0.0/8]\n"
    "consumers:\n"
    "  - { name: alice, groups: [paid], api_keys: [ { key: k-alice } ],\n"
    "      basic: { username: alice, password_hash: \"" BCRYPT_PW "\" } }\n"
    "  - { name: bob, api_keys: [ { key: k-bob } ] }\n"
    "upstreams:\n"
    "  up: { servers: [ { address: 127.0.0.1:%u } ] }\n"
    "  auth: { servers: [ { address: 127.0.0.1:%u } ] }\n"
    "policies:\n"
    "  - cors: { origins: [\"https://a.test\", \"https://*.b.test\"], credentials: true,\n"
    "            headers: [X-Api-Key], expose_headers: [X-Up] }\n"
    "  - request_limits: { max_body_size: 4k, max_headers: 40, max_url_length: 1k }\n"
    "  - ip_filter: { deny: [192.0.2.0/24, \"2001:db8::/32\"] }\n"
    "routes:\n"
    "  - name: key\n"
    "    match: { path_prefix: /key }\n"
    "    upstream: up\n"
    "    request_headers: { set: { X-Consumer: \"${consumer}\", X-Client: \"${client_ip}\" } }\n"
    "    policies:\n"
    "      - key_auth: { query: api_key }\n"
    "      - acl: { allow_groups: [paid] }\n"
    "      - rate_limit: { limit: 5, window: 1s, key: consumer }\n"
    "  - name: basic\n"
    "    match: { path_prefix: /basic }\n"
    "    upstream: up\n"
    "    policies:\n"
    "      - basic_auth: { realm: fuzz }\n"
    "      - concurrency_limit: { max: 2, key: consumer }\n"
    "  - name: jwt\n"
    "    match: { path_prefix: /jwt }\n"
    "    upstream: up\n"
    "    response_headers: { set: { X-Sub: \"${jwt.sub}\" } }\n"
    "    policies:\n"
    "      - jwt: { algorithms: [HS256], secret_file: %s, claims_to_headers: { sub: X-User },\n"
    "               token_from: [\"header:Authorization\", \"query:token\", \"cookie:tok\"] }\n"
    "      - rate_limit: { limit: 3, window: 1s, algorithm: token_bucket, burst: 3,\n"
    "                      key: \"header:X-Tenant\" }\n"
    "  - name: fwd\n"
    "    match: { path_prefix: /fwd }\n"
    "    upstream: up\n"
    "    policies:\n"
    "      - forward_auth: { upstream: auth, path: /check, copy_response_headers: [X-Up],\n"
    "                        timeout: 1s }\n"
    "  - name: open\n"
    "    match: { path_prefix: / }\n"
    "    respond: { status: 200, body: \"open\\n\" }\n";

static struct jn_config *config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsigned port = fuzz_setup();
    char secret[] = "/tmp/fuzz_gateway_secret_XXXXXX";
    int fd = mkstemp(secret);
    if (fd < 0 || write(fd, "fuzz-secret", 11) != 11)
        abort();
    close(fd);
    char yaml[8192];
    int n = snprintf(yaml, sizeof(yaml), yaml_fmt, port, port, secret);
    config = fuzz_config(yaml, (size_t)n);
    unlink(secret); /* read at load */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t opt = data[0];
    fuzz_run(config, data + 2, size - 2, data[1], opt & OPT_HTTP2 ? preface : "",
             opt & OPT_HALF_CLOSE, (enum up_answer)((opt >> OPT_UP_SHIFT) & 3),
             opt & OPT_BIG_BODY, opt & OPT_JSON_LOG, opt & OPT_TIMERS);
    return 0;
}
