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
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; s != NULL && *s != '\0' && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[ch >> 4];
            out[n + 5] = hex[ch & 15];
            n += 6;
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return n;
}

/* A line being built: appends stop at the end of the storage, keeping room
 * for the newline (a line too long is cut, never left without its end). */
struct line {
    char *p;
    size_t n, cap;
};

static void put(struct line *l, const char *s, size_t len)
{
    len = JN_MIN(len, l->cap - 1 - l->n);
    memcpy(l->p + l->n, s, len);
    l->n += len;
}

static void put_str(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void put_u64(struct line *l, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(l, tmp + i, sizeof(tmp) - i);
}

static void put_i64(struct line *l, int64_t v)
{
    if (v < 0) {
        put(l, "-", 1);
        put_u64(l, (uint64_t)0 - (uint64_t)v);
        return;
    }
    put_u64(l, (uint64_t)v);
}

/* UTC, millisecond precision. The text up to the seconds is formatted once
 * per second and thread: gmtime_r and snprintf on every line were most of
 * the access log's cost (bench part 9). */
static void put_time(struct line *l)
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    char frac[4] = { (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10),
                     'Z' };
    put(l, cached, 20);
    put(l, frac, 4);
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

static void json_line(struct line *l, struct jn_stream *s, const char *method, const char *path,
                      const char *upstream, const char *route, uint64_t dur, int64_t up_ms)
{
    put_str(l, "{\"time\":\"");
    put_time(l);
    put_str(l, "\",\"client\":\"");
    put_str(l, s->client_ip);
    put_str(l, "\",\"method\":\"");
    put_str(l, method);
    put_str(l, "\",\"path\":\"");
    put_str(l, path);
    put_str(l, "\",\"status\":");
    put_u64(l, s->status);
    put_str(l, ",\"bytes\":");
    put_u64(l, s->bytes_sent);
    put_str(l, ",\"upstream\":\"");
    put_str(l, upstream);
    put_str(l, "\",\"duration_ms\":");
    put_u64(l, dur);
    put_str(l, ",\"upstream_ms\":");
    put_i64(l, up_ms);
    put_str(l, ",\"route\":\"");
    put_str(l, route);
    put_str(l, "\",\"request_id\":\"");
    put_str(l, s->request_id);
    if (s->trace_id[0] != '\0') {
        put_str(l, "\",\"trace_id\":\"");
        put_str(l, s->trace_id);
        put_str(l, "\"}");
    } else {
        put_str(l, "\",\"trace_id\":null}");
    }
}

static void text_line(struct line *l, struct jn_stream *s, const char *method, const char *path,
                      const char *upstream, const char *route, uint64_t dur, int64_t up_ms)
{
    put_time(l);
    put(l, " ", 1);
    put_str(l, s->client_ip);
    put(l, " \"", 2);
    put_str(l, method);
    put(l, " ", 1);
    put_str(l, path);
    put(l, "\" ", 2);
    put_u64(l, s->status);
    put(l, " ", 1);
    put_u64(l, s->bytes_sent);
    put(l, " ", 1);
    put_str(l, upstream);
    put(l, " ", 1);
    put_u64(l, dur);
    put(l, " ", 1);
    put_i64(l, up_ms);
    put(l, " ", 1);
    put_str(l, route);
    put(l, " ", 1);
    put_str(l, s->request_id);
    put(l, " ", 1);
    put_str(l, s->trace_id[0] != '\0' ? s->trace_id : "-");
}

void jn_access_log_write(struct jn_stream *s)
{
    struct jn_worker *w = s->gen->worker;
    if (w->access_fd < 0)
        return;
    char buf[4096], method[64], path[2048];
    json_escape(method, sizeof(method), s->method);
    const struct jn_config *cfg = s->gen->cfg;
    json_escape(path, sizeof(path), cfg->nsecret_params == 0 ? s->path : redacted(s, cfg));
    const char *upstream =
        s->up != NULL && s->server >= 0 ? s->up->cfg->servers[s->server].address : "-";
    const char *route = s->route != NULL ? s->route->name : "-";
    uint64_t dur = jn_loop_now(&w->loop) - s->t_start;
    int64_t up_ms = s->t_upstream_head ? (int64_t)(s->t_upstream_head - s->t_upstream) : -1;
    struct line l = { buf, 0, sizeof(buf) };
    if (w->access_json)
        json_line(&l, s, method, path, upstream, route, dur, up_ms);
    else
        text_line(&l, s, method, path, upstream, route, dur, up_ms);
    buf[l.n++] = '\n'; /* put always leaves room for it */
    jn_buf_put(&w->access_buf, buf, l.n);
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
