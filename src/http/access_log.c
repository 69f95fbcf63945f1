/* Access log lines. The text format is:
 *   TIME CLIENT "METHOD PATH" STATUS BYTES UPSTREAM DURATION_MS UPSTREAM_MS ROUTE REQUEST_ID
 *   TRACE_ID
 * with "-" for a missing field. */
#include "http/access_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/h1/h1_server.h"
#include "http/query.h"

/* Copies s into out as JSON string content (without quotes). */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s != NULL && *s != '\0' && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return n;
}

static void timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* The target without the query parameters that carry credentials (in
 * s->arena); the target itself when it holds none. */
static const char *redacted(struct jn_stream *s, const struct jn_config *cfg)
{
    const char *q = s->path != NULL ? strchr(s->path, '?') : NULL;
    if (q == NULL)
        return s->path;
    struct jn_slice query = { q + 1, strlen(q + 1) };
    size_t plen = (size_t)(q - s->path);
    char *out = jn_arena_alloc(&s->arena, plen + 1 + query.len + 1);
    if (out == NULL)
        return "-"; /* never the credential */
    memcpy(out, s->path, plen);
    size_t len = jn_query_without(query, cfg->secret_params, cfg->nsecret_params, out + plen + 1);
    out[plen] = '?';
    out[len > 0 ? plen + 1 + len : plen] = '\0';
    return out;
}

void jn_access_log_write(struct jn_stream *s)
{
    struct jn_worker *w = s->gen->worker;
    if (w->access_fd < 0)
        return;
    char line[4096], when[64], method[64], path[2048];
    timestamp(when, sizeof(when));
    json_escape(method, sizeof(method), s->method);
    const struct jn_config *cfg = s->gen->cfg;
    json_escape(path, sizeof(path), cfg->nsecret_params == 0 ? s->path : redacted(s, cfg));
    const char *upstream =
        s->up != NULL && s->server >= 0 ? s->up->cfg->servers[s->server].address : "-";
    const char *route = s->route != NULL ? s->route->name : "-";
    uint64_t now = jn_loop_now(&w->loop);
    long long up_ms = s->t_upstream_head ? (long long)(s->t_upstream_head - s->t_upstream) : -1;
    bool traced = s->trace_id[0] != '\0';
    int n;
    if (w->access_json)
        n = snprintf(line, sizeof(line),
                     "{\"time\":\"%s\",\"client\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                     "\"status\":%u,\"bytes\":%llu,\"upstream\":\"%s\",\"duration_ms\":%llu,"
                     "\"upstream_ms\":%lld,\"route\":\"%s\",\"request_id\":\"%s\","
                     "\"trace_id\":%s%s%s}\n",
                     when, s->client_ip, method, path, s->status, (unsigned long long)s->bytes_sent,
                     upstream, (unsigned long long)(now - s->t_start), up_ms, route, s->request_id,
                     traced ? "\"" : "", traced ? s->trace_id : "null", traced ? "\"" : "");
    else
        n = snprintf(line, sizeof(line), "%s %s \"%s %s\" %u %llu %s %llu %lld %s %s %s\n", when,
                     s->client_ip, method, path, s->status, (unsigned long long)s->bytes_sent,
                     upstream, (unsigned long long)(now - s->t_start), up_ms, route, s->request_id,
                     traced ? s->trace_id : "-");
    if (n > 0)
        jn_buf_put(&w->access_buf, line, JN_MIN((size_t)n, sizeof(line) - 1));
    if (jn_buf_len(&w->access_buf) > 32768)
        jn_access_log_flush(w);
}

void jn_access_log_flush(struct jn_worker *w)
{
    while (!jn_buf_empty(&w->access_buf)) {
        ssize_t n = write(w->access_fd, jn_buf_head(&w->access_buf), jn_buf_len(&w->access_buf));
        if (n <= 0)
            break; /* the log must never stall the proxy: drop what cannot be written */
        jn_buf_consume(&w->access_buf, (size_t)n);
    }
    jn_buf_consume(&w->access_buf, jn_buf_len(&w->access_buf));
}
