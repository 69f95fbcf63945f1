/* LD_PRELOAD shim for wrk (bench/run.py, part 7): every TLS connection a full handshake.
 *
 * wrk reuses one SSL object per connection slot: on close it calls SSL_shutdown and then
 * SSL_clear, which keeps the last session (with TLS 1.3, the server's ticket), so the next
 * connection of that slot resumes it. Seen with nginx's $ssl_session_reused: with
 * `-H "Connection: close"` all but the first connection of each slot were resumptions.
 * This shim drops the session after SSL_clear, so that each new connection is a full
 * handshake, and counts full and resumed handshakes; when JN_TLS_COUNTS names a file,
 * a line "full N resumed M" is appended to it when wrk exits, for the harness to check
 * (appended: any other process that inherits LD_PRELOAD, such as timeout(1), adds its own
 * line of zeros instead of overwriting wrk's).
 * Built by run.py into its temporary directory: cc -shared -fPIC -O2 -o x.so x.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
int SSL_session_reused(const SSL *s);
SSL_SESSION *SSL_get_session(const SSL *s);
int SSL_set_session(SSL *s, SSL_SESSION *session);

static unsigned long full_count, resumed_count;

int SSL_clear(SSL *s)
{
    static int (*real)(SSL *);
    if (!real)
        real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    if (SSL_get_session(s)) /* a handshake was made on this connection */
        __atomic_fetch_add(SSL_session_reused(s) ? &resumed_count : &full_count, 1,
                           __ATOMIC_RELAXED);
    int r = real(s);
    SSL_set_session(s, NULL);
    return r;
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("JN_TLS_COUNTS");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "full %lu resumed %lu\n", full_count, resumed_count);
        fclose(f);
    }
}
