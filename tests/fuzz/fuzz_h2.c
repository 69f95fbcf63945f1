/* libFuzzer target for the HTTP/2 front end (http/h2/h2_server.c) with the
 * real proxy behind it: the input, after the client preface the harness
 * writes first, goes to a real client connection through a socketpair, and
 * a worker's event loop is run by hand until everything settles. What
 * Junction writes back is read and dropped. Routes answer locally (200, 204,
 * 404, errors 400/431...), or go to a fake upstream in this process (its
 * answer chosen by the input) or to one that refuses connections (502).
 * Each input builds and tears down its own worker, so ASan, UBSan and
 * LeakSanitizer judge each input alone.
 *
 * Input: byte 0 holds options (bits below), byte 1 the size of the pieces
 * the frames are written in (0 = all at once, else 1..255 bytes, so that
 * frames arrive split across reads); the rest are frames.
 *
 * FUZZ_TRACE=1 (or FUZZ_H2_TRACE=1) sends the error and access logs to stderr (a seed's
 * access log lines show which answers it reaches). */
#define FUZZ_NAME "fuzz_h2"
#include "fuzz_worker.h"

enum {
    OPT_SMALL_LIMITS = 1 << 0, /* the configuration with tiny http2: limits */
    OPT_HALF_CLOSE = 1 << 1,   /* the client shuts its sending side after the input */
    OPT_TIMERS = 1 << 2,       /* then every timer fires (idle GOAWAY, 504, slow client) */
    OPT_JSON_LOG = 1 << 3,     /* access log as JSON rather than text */
    OPT_BIG_BODY = 1 << 4,     /* the fake upstream's body outgrows windows and buffers */
    OPT_UP_SHIFT = 5,          /* bits 5-6: how the fake upstream answers (enum below) */
};

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* %u: the fake upstream's port; %s: the http2:/http: sections of a variant.
 * The listener is never opened: the harness hands the worker its socket. */
static const char yaml_fmt[] =
    "workers: 1\n"
    "listeners:\n"
    "  - { name: plain, address: 127.0.0.1:1 }\n"
    "access_log: { path: none }\n"
    "%s"
    "upstreams:\n"
    "  up:\n"
    "    servers: [ { address: 127.0.0.1:%u } ]\n"
    "  down:\n"
    "    retries: { attempts: 1 }\n"
    "    servers: [ { address: 127.0.0.1:1 } ]\n"
    "routes:\n"
    "  - { name: local, match: { path: /local }, respond: { status: 200, body: \"local\\n\","
    " headers: { Content-Type: text/plain } } }\n"
    "  - { name: empty, match: { path: /empty, methods: [GET, HEAD] }, respond: { status: 204 } }\n"
    "  - { name: up, match: { path_prefix: /up }, upstream: up, strip_prefix: /up,\n"
    "      request_headers: { set: { X-Gw: j }, remove: [X-Drop] },\n"
    "      response_headers: { add: { X-Via-Fuzz: \"1\" } } }\n"
    "  - { name: down, match: { path_prefix: /down }, upstream: down }\n"
    "  - { name: hosted, match: { host: a.test, path_prefix: /h }, respond: { body: hosted } }\n";

static const char *const variants[2] = {
    "",
    "http: { max_headers: 8 }\n"
    "http2: { max_concurrent_streams: 3, max_header_list_size: 1k, initial_window_size: 1k,\n"
    "         connection_window_size: 64k, max_continuations: 1, reset_burst: 2,\n"
    "         reset_rate: 1, max_control_frames: 10 }\n",
};

static struct jn_config *configs[2];
static struct jn_config *configs[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsigned port = fuzz_setup();
    for (size_t i = 0; i < 2; i++) {
        char yaml[4096];
        int n = snprintf(yaml, sizeof(yaml), yaml_fmt, variants[i], port);
        configs[i] = fuzz_config(yaml, (size_t)n);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t opt = data[0];
    /* The preface makes the connection HTTP/2 (h2c by prior knowledge):
     * it is there before the first read, as a client's first segment. */
    fuzz_run(configs[opt & OPT_SMALL_LIMITS ? 1 : 0], data + 2, size - 2, data[1], preface,
             opt & OPT_HALF_CLOSE, (enum up_answer)((opt >> OPT_UP_SHIFT) & 3),
             opt & OPT_BIG_BODY, opt & OPT_JSON_LOG, opt & OPT_TIMERS);
    return 0;
}
