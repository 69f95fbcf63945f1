/* Subrequests over an upstream's pooled HTTP/1.1 connections. See
 * subrequest.h. One attempt at a time: a connection (pooled or new), the
 * request head written, the answer's head parsed, its body decoded into a
 * bounded buffer when wanted. A pooled connection the server had closed is
 * replayed once on a fresh one (a GET without a body is safe to repeat); a
 * failed connect goes to another server when the upstream's retries allow. */
#include "http/subrequest.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/body.h"

#define LINE_MAX_BYTES 8192
#define HEAD_MAX_BYTES 32768
#define MAX_TRIES 12
#define DISCARD_BYTES 4096 /* the buffer a dropped body passes through */

struct jn_subreq {
    struct jn_upstream_rt *up;   /* borrowed */
    struct jn_buf_pool *bufs;    /* borrowed */
    char *target;                /* owned: "/path?query" */
    size_t target_len;
    char *lines;                 /* owned: the field lines, serialised once */
    size_t lines_len;
    char tag[96];
    size_t max_body;
    bool skip_2xx_body;
    bool discard;                /* the answer's body is read and dropped */
    jn_subreq_done_fn *done;
    void *arg;                   /* borrowed */
    struct jn_timer timer;       /* the deadline of the whole exchange */
    struct jn_timer kick;        /* the first pass, from the loop */
    struct jn_upconn *uc;        /* owned while an attempt runs */
    struct jn_upwait wait;       /* queued for a connection (limits:) */
    int server;                  /* the attempt's server, -1 none */
    bool counted;                /* counted in up->in_flight[server] */
    bool replayed;               /* replayed once after a stale pooled connection */
    int tried[MAX_TRIES];
    uint8_t ntried;
    bool has_hash;
    uint64_t hash;               /* for hashing balancers, when has_hash */
    uint64_t t_attempt_us;       /* for latency-aware balancers */
    struct jn_buf req_out;       /* the request head on its way */
    struct jn_buf resp_in;       /* the answer as read */
    struct jn_h1_scan scan;
    bool eof;
    char *head;                  /* owned: a copy of the answer's head, once in */
    size_t head_len;
    uint16_t status;
    bool keep_alive;
    bool reusable;               /* the connection may go back to the pool */
    struct jn_body body;
    struct jn_buf body_buf;      /* owned (malloc): the decoded body (max_body + 1 bytes), or
                                    the small buffer a dropped one passes through */
};

static void drive(struct jn_subreq *r);

static const char *server_name(const struct jn_subreq *r)
{
    return r->server >= 0 ? r->up->cfg->servers[r->server].address : "-";
}

/* Ends the attempt: the connection pooled (keep) or closed. */
static void drop_attempt(struct jn_subreq *r, bool keep)
{
    struct jn_upconn *uc = r->uc;
    if (r->counted) {
        r->up->in_flight[r->server]--;
        r->counted = false;
    }
    if (uc == NULL)
        return;
    r->uc = NULL;
    jn_upconn_finish(uc, keep);
}

static void destroy(struct jn_subreq *r)
{
    jn_upwait_cancel(&r->wait);
    drop_attempt(r, false);
    jn_timer_stop(r->up->loop, &r->timer);
    jn_timer_stop(r->up->loop, &r->kick);
    jn_buf_release(r->bufs, &r->req_out);
    jn_buf_release(r->bufs, &r->resp_in);
    jn_body_free(&r->body);
    free(r->body_buf.data);
    free(r->head);
    free(r->target);
    free(r->lines);
    free(r);
}

static const struct jn_h1_limits limits = { LINE_MAX_BYTES, HEAD_MAX_BYTES,
                                            JN_SUBREQ_MAX_HEADERS };

/* Hands the outcome to the owner, then frees r. Returns -1 (r is gone). */
static int finish(struct jn_subreq *r, const char *error)
{
    jn_upwait_cancel(&r->wait);
    drop_attempt(r, error == NULL && r->reusable);
    jn_timer_stop(r->up->loop, &r->timer);
    jn_timer_stop(r->up->loop, &r->kick);
    struct jn_h1_header hdrs[JN_SUBREQ_MAX_HEADERS];
    struct jn_subreq_answer a = { .error = error };
    if (error == NULL) {
        /* The copy of a head that parsed once parses again. */
        struct jn_h1_scan scan = { 0 };
        struct jn_h1_message m;
        if (jn_h1_parse_response(r->head, r->head_len, &limits, hdrs, JN_ARRAY_LEN(hdrs), &scan,
                                 false, &m) > 0) {
            a.status = r->status;
            a.headers = hdrs;
            a.nheaders = m.nheaders;
            if (r->body_buf.data != NULL && !r->discard) {
                a.body = jn_buf_head(&r->body_buf);
                a.body_len = jn_buf_len(&r->body_buf);
            }
        } else {
            a.error = "invalid response";
        }
    }
    r->done(r->arg, &a);
    destroy(r);
    return -1;
}

/* Logs a failed attempt and tells passive health about it. */
static void note_failure(struct jn_subreq *r, const char *why, enum jn_outcome o)
{
    if (r->server >= 0 && o != JN_OUT_LOCAL)
        jn_upstream_report(r->up, (uint32_t)r->server, o);
    jn_log(JN_LOG_WARN, "upstream %s: server %s: %s (%s)", r->up->cfg->name, server_name(r), why,
           r->tag);
}

static void conn_event(struct jn_upconn *uc)
{
    drive(uc->owner);
}

static void deadline(struct jn_subreq *r)
{
    const char *why = "timeout while queued for a connection";
    enum jn_outcome o = JN_OUT_LOCAL;
    if (r->uc != NULL && r->uc->connected) {
        why = "response timeout";
        o = JN_OUT_TIMEOUT;
    } else if (r->uc != NULL) {
        why = "connect timeout";
        o = JN_OUT_CONNECT;
    }
    note_failure(r, why, o);
    finish(r, why);
}

static void conn_timeout(struct jn_upconn *uc)
{
    deadline(uc->owner);
}

static void timer_fired(struct jn_loop *loop, struct jn_timer *t)
{
    deadline(t->data);
}

static void kick_fired(struct jn_loop *loop, struct jn_timer *t)
{
    drive(t->data);
}

static struct jn_subreq *of_wait(struct jn_upwait *w)
{
    return (struct jn_subreq *)(void *)((char *)w - offsetof(struct jn_subreq, wait));
}

static void queue_ready(struct jn_upwait *w);
static void queue_expired(struct jn_upwait *w);

/* Starts an attempt on r->server, or queues r at the server's connection
 * limit (r->uc stays NULL until queue_ready). Returns NULL, or why neither
 * could be done. */
static const char *attempt(struct jn_subreq *r, int flags)
{
    struct jn_upconn *uc = NULL;
    const char *err = NULL;
    int rc = jn_upconn_get(r->up, (uint32_t)r->server, flags, &uc, &err);
    if (rc == JN_ETOOBIG) {
        r->wait.ready = queue_ready;
        r->wait.expired = queue_expired;
        if (r->up->cfg->limits.max_pending > 0 &&
            jn_upwait_start(r->up, (uint32_t)r->server, &r->wait) == 0)
            return NULL;
        return "connection limit reached";
    }
    if (rc != 0)
        return err != NULL ? err : "connect failed";
    r->uc = uc;
    uc->owner = r;
    uc->on_event = conn_event;
    uc->on_timeout = conn_timeout;
    r->up->in_flight[r->server]++;
    r->counted = true;
    r->scan = (struct jn_h1_scan){ 0 };
    r->eof = false;
    r->t_attempt_us = jn_clock_us();
    jn_buf_consume(&r->resp_in, jn_buf_len(&r->resp_in));
    jn_buf_consume(&r->req_out, jn_buf_len(&r->req_out));
    const char *host = r->up->cfg->servers[r->server].address;
    rc = jn_buf_put(&r->req_out, "GET ", 4);
    rc |= jn_buf_put(&r->req_out, r->target, r->target_len);
    rc |= jn_buf_put(&r->req_out, " HTTP/1.1\r\nHost: ", 17);
    rc |= jn_buf_put(&r->req_out, host, strlen(host));
    rc |= jn_buf_put(&r->req_out, "\r\n", 2);
    rc |= jn_buf_put(&r->req_out, r->lines, r->lines_len);
    rc |= jn_buf_put(&r->req_out, "\r\n", 2);
    return rc != 0 ? "out of memory" : NULL;
}

/* A slot may be free at the server r waits for: try again. */
static void queue_ready(struct jn_upwait *w)
{
    struct jn_subreq *r = of_wait(w);
    const char *err = attempt(r, 0);
    if (err != NULL) {
        note_failure(r, err, JN_OUT_LOCAL);
        finish(r, err);
        return;
    }
    drive(r);
}

static void queue_expired(struct jn_upwait *w)
{
    struct jn_subreq *r = of_wait(w);
    note_failure(r, "queue timeout", JN_OUT_LOCAL);
    finish(r, "queue timeout");
}

/* A connect failed: another server when retries allow it. Returns 1 when
 * an attempt started, -1 when r finished. */
static int connect_failed(struct jn_subreq *r, const char *why)
{
    note_failure(r, why, JN_OUT_CONNECT);
    drop_attempt(r, false);
    const struct jn_cfg_retries *rt = &r->up->cfg->retries;
    if (r->ntried < JN_ARRAY_LEN(r->tried))
        r->tried[r->ntried++] = r->server;
    if (!(rt->on & JN_RETRY_CONNECT) || r->ntried > rt->attempts ||
        r->ntried >= JN_ARRAY_LEN(r->tried))
        return finish(r, why);
    int next = jn_upstream_pick_other(r->up, r->has_hash ? &r->hash : NULL, r->tried, r->ntried);
    if (next < 0 || !jn_upstream_retry_allowed(r->up))
        return finish(r, why);
    r->server = next;
    const char *err = attempt(r, 0);
    if (err != NULL) {
        note_failure(r, err, JN_OUT_LOCAL);
        return finish(r, err);
    }
    return 1;
}

/* The exchange failed with o. A pooled connection that failed before any
 * byte of an answer was most likely closed by the server while idle: the
 * request goes again once, on a fresh connection. Returns 1 when it did,
 * -1 when r finished. */
static int failed(struct jn_subreq *r, const char *why, enum jn_outcome o)
{
    bool replay = r->uc != NULL && r->uc->reused && !r->replayed && r->head == NULL &&
                  jn_buf_empty(&r->resp_in) && o == JN_OUT_RESET;
    if (replay) {
        r->replayed = true;
        drop_attempt(r, false);
        const char *err = attempt(r, JN_UPCONN_FRESH);
        if (err == NULL)
            return 1;
        why = err;
        o = JN_OUT_LOCAL;
    }
    note_failure(r, why, o);
    return finish(r, why);
}

/* The answer is in: passive health and latency-aware balancers see it. */
static int answered(struct jn_subreq *r)
{
    const struct jn_cfg_outlier *ol = &r->up->cfg->outlier;
    bool bad = false;
    for (size_t i = 0; ol->enabled && i < ol->nfailure_status; i++)
        bad = bad || ol->failure_status[i] == r->status;
    jn_upstream_report(r->up, (uint32_t)r->server, bad ? JN_OUT_STATUS : JN_OUT_OK);
    uint64_t now = jn_clock_us();
    jn_upstream_observe(r->up, (uint32_t)r->server, now - r->t_attempt_us, now);
    return finish(r, NULL);
}

/* The answer's head is parsed (m, rc bytes): keeps a copy, then either ends
 * (a 2xx whose body is not wanted) or gets ready for the body. Returns 0 to
 * go on, -1 when r finished. */
static int take_head(struct jn_subreq *r, const struct jn_h1_message *m, size_t len)
{
    r->head = malloc(len);
    if (r->head == NULL)
        return failed(r, "out of memory", JN_OUT_LOCAL);
    memcpy(r->head, jn_buf_head(&r->resp_in), len);
    r->head_len = len;
    r->status = m->status;
    r->keep_alive = m->keep_alive;
    jn_buf_consume(&r->resp_in, len);
    if (r->skip_2xx_body && m->status >= 200 && m->status < 300) {
        /* The body is not wanted. A short one is read and dropped, so
         * that the connection can be pooled again (and the server never
         * sees a reset); one without a length, or a long one, is left
         * unread with its connection. */
        r->discard = true;
        if (m->body == JN_H1_BODY_CLOSE ||
            (m->body == JN_H1_BODY_LENGTH && m->content_length > r->max_body))
            return answered(r);
    }
    if (m->body == JN_H1_BODY_LENGTH && m->content_length > r->max_body)
        return failed(r, "response body too large", JN_OUT_LOCAL);
    jn_body_init(&r->body, m->body, m->content_length, false);
    r->body_buf.cap = r->discard ? DISCARD_BYTES : r->max_body + 1;
    r->body_buf.data = malloc(r->body_buf.cap);
    if (r->body_buf.data == NULL)
        return failed(r, "out of memory", JN_OUT_LOCAL);
    return 0;
}

/* Makes what it can of the bytes read so far. Returns 0 when it needs more,
 * 1 when a new attempt started, -1 when r finished. */
static int process(struct jn_subreq *r)
{
    while (r->head == NULL) {
        if (jn_buf_empty(&r->resp_in) && !r->eof)
            return 0;
        struct jn_h1_header hdrs[JN_SUBREQ_MAX_HEADERS];
        struct jn_h1_message m;
        int rc = jn_h1_parse_response(jn_buf_head(&r->resp_in), jn_buf_len(&r->resp_in), &limits,
                                      hdrs, JN_ARRAY_LEN(hdrs), &r->scan, false, &m);
        if (rc == JN_EAGAIN && !r->eof)
            return 0;
        if (rc == JN_EAGAIN)
            return failed(r,
                          jn_buf_empty(&r->resp_in) ? "connection closed before the response"
                                                    : "truncated response header",
                          JN_OUT_RESET);
        if (rc < 0)
            return failed(r, m.error ? m.error : "invalid response", JN_OUT_RESET);
        if (m.status == 101)
            return failed(r, "unexpected 101 Switching Protocols", JN_OUT_RESET);
        if (m.status >= 200) {
            if (take_head(r, &m, (size_t)rc) < 0)
                return -1;
            break;
        }
        jn_buf_consume(&r->resp_in, (size_t)rc); /* 100, 103: not the answer */
        r->scan = (struct jn_h1_scan){ 0 };
    }
    const char *err = NULL;
    r->body.src_eof = r->eof;
    int moved;
    do {
        moved = jn_body_pump(&r->body, &r->resp_in, &r->body_buf, &err);
        if (moved < 0)
            return failed(r, err ? err : "invalid response body framing", JN_OUT_RESET);
        if (r->discard) /* dropped as it passes, so the next pass has room */
            jn_buf_consume(&r->body_buf, jn_buf_len(&r->body_buf));
    } while (r->discard && moved > 0 && !r->body.done && !jn_buf_empty(&r->resp_in));
    if (r->discard && r->body.moved > r->max_body && !r->body.done)
        return answered(r); /* left unread: the connection is closed */
    if (jn_buf_len(&r->body_buf) > r->max_body)
        return failed(r, "response body too large", JN_OUT_LOCAL);
    if (r->body.done) {
        r->reusable = r->keep_alive && r->body.in != JN_H1_BODY_CLOSE &&
                      jn_buf_empty(&r->resp_in) && !r->eof;
        return answered(r);
    }
    if (r->eof)
        return failed(r, "upstream closed before the end of the response body", JN_OUT_RESET);
    return 0;
}

/* Reads once. Returns 1 when something came (or the end), 0 when nothing
 * is ready, -1 when r finished. */
static int read_once(struct jn_subreq *r)
{
    struct jn_upconn *uc = r->uc;
    if (!uc->can_read || r->eof)
        return 0;
    if (jn_buf_acquire(r->bufs, &r->resp_in) != 0)
        return failed(r, "out of memory", JN_OUT_LOCAL);
    if (jn_buf_room(&r->resp_in) == 0) {
        /* Only a head larger than a pooled buffer fills it: the body is
         * moved out as it comes. */
        size_t limit = LINE_MAX_BYTES + HEAD_MAX_BYTES + 4;
        if (r->resp_in.cap >= limit)
            return failed(r, "response header too large", JN_OUT_RESET);
        if (jn_buf_grow(&r->resp_in, limit) != 0)
            return failed(r, "out of memory", JN_OUT_LOCAL);
    }
    ssize_t n = jn_upconn_read(uc, &r->resp_in);
    if (n == JN_EAGAIN)
        return 0;
    if (n < 0)
        return failed(r, "connection reset while reading the response", JN_OUT_RESET);
    if (n == 0)
        r->eof = true;
    return 1;
}

/* One pass on the attempt. Returns 1 when a new attempt started (go again),
 * 0 when waiting for an event, -1 when r finished. */
static int step(struct jn_subreq *r)
{
    struct jn_upconn *uc = r->uc;
    if (uc == NULL)
        return 0; /* queued for a connection */
    if (!uc->connected) {
        const char *why = NULL;
        int rc = jn_upconn_finish_connect(uc, &why);
        if (rc < 0)
            return connect_failed(r, why != NULL ? why : "connect failed");
        if (rc == 0)
            return 0;
    }
    if (!jn_buf_empty(&r->req_out) && uc->can_write &&
        jn_upconn_write(uc, &r->req_out) == JN_EIO)
        return failed(r, "connection reset while sending the request", JN_OUT_RESET);
    for (;;) {
        int rc = process(r);
        if (rc != 0)
            return rc;
        rc = read_once(r);
        if (rc <= 0)
            return rc;
    }
}

static void drive(struct jn_subreq *r)
{
    while (step(r) > 0) {
    }
}

/* The field lines once: "Name: value\r\n" each. */
static char *serialise_fields(const struct jn_fields *f, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->v[i].name.len + f->v[i].value.len + 4;
    char *p = malloc(n + 1), *at = p;
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < f->n; i++) {
        memcpy(at, f->v[i].name.ptr, f->v[i].name.len);
        at += f->v[i].name.len;
        memcpy(at, ": ", 2);
        at += 2;
        memcpy(at, f->v[i].value.ptr, f->v[i].value.len);
        at += f->v[i].value.len;
        memcpy(at, "\r\n", 2);
        at += 2;
    }
    *len = n;
    return p;
}

struct jn_subreq *jn_subreq_start(const struct jn_subreq_params *p, const char **err)
{
    struct jn_subreq *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        *err = "out of memory";
        return NULL;
    }
    r->up = p->up;
    r->bufs = p->bufs;
    r->server = -1;
    r->max_body = p->max_body;
    r->skip_2xx_body = p->skip_2xx_body;
    r->done = p->done;
    r->arg = p->arg;
    snprintf(r->tag, sizeof(r->tag), "%s", p->tag != NULL ? p->tag : "subrequest");
    jn_timer_init(&r->timer, timer_fired, r);
    jn_timer_init(&r->kick, kick_fired, r);
    r->target = malloc(p->target.len + 1);
    r->lines = serialise_fields(p->fields, &r->lines_len);
    if (r->target == NULL || r->lines == NULL) {
        *err = "out of memory";
        destroy(r);
        return NULL;
    }
    memcpy(r->target, p->target.ptr, p->target.len);
    r->target_len = p->target.len;
    jn_upstream_count_request(r->up);
    r->has_hash = p->hash != NULL;
    r->hash = p->hash != NULL ? *p->hash : 0;
    r->server = jn_upstream_pick(r->up, p->hash);
    if (r->server < 0) {
        *err = "no upstream server available";
        destroy(r);
        return NULL;
    }
    const char *why = attempt(r, 0);
    if (why != NULL) {
        note_failure(r, why, JN_OUT_LOCAL);
        *err = why;
        destroy(r);
        return NULL;
    }
    /* Even a pooled connection, writable now, is first driven from the
     * loop: done never runs inside this call. */
    if (jn_timer_set(r->up->loop, &r->timer, p->timeout_ms) != 0 ||
        jn_timer_set(r->up->loop, &r->kick, 0) != 0) {
        *err = "out of memory";
        destroy(r);
        return NULL;
    }
    return r;
}

void jn_subreq_cancel(struct jn_subreq *r)
{
    if (r != NULL)
        destroy(r);
}
