/* Choosing and reaching an upstream server: pick, connect or queue, and
 * failures with their retries. See proxy_upstream.h. */
#include "http/proxy_upstream.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "balance/hash_key.h"
#include "balance/sticky.h"
#include "core/log.h"
#include "http/front.h"
#include "http/h1/h1_server.h"
#include "http/h2/h2_client.h"
#include "http/proxy.h"
#include "tls/tls_client.h"

static void upstream_event(struct jn_upconn *uc);
static void upstream_timeout(struct jn_upconn *uc);
static void queue_ready(struct jn_upwait *w);
static void queue_expired(struct jn_upwait *w);

/* The server is at its max_connections: wait for a slot when the queue
 * allows, else 503 at once (a circuit breaker, not a pile-up). */
static void wait_for_slot(struct jn_stream *s)
{
    s->wait.ready = queue_ready;
    s->wait.expired = queue_expired;
    if (s->up->cfg->limits.max_pending > 0 &&
        jn_upwait_start(s->up, (uint32_t)s->server, &s->wait) == 0)
        return;
    jn_log(JN_LOG_WARN, "upstream %s: server %s: connection limit reached (request %s)",
           s->up->cfg->name, s->up->cfg->servers[s->server].address, s->request_id);
    jn_stream_respond_error(s, 503, "upstream server busy");
}

void jn_proxy_connect(struct jn_stream *s, int flags)
{
    if (s->h2up != NULL) {
        jn_h2up_start(s); /* HTTP/2: a stream on a session, not a connection */
        return;
    }
    const char *err = NULL;
    struct jn_upconn *uc = NULL;
    if (!s->retryable)
        flags |= JN_UPCONN_VERIFY;
    int rc = jn_upconn_get(s->up, (uint32_t)s->server, flags, &uc, &err);
    if (rc == JN_ETOOBIG) {
        wait_for_slot(s);
        return;
    }
    if (rc != 0) {
        jn_log(JN_LOG_ERR, "upstream %s: connect to %s failed: %s", s->up->cfg->name,
               s->up->cfg->servers[s->server].address, err);
        jn_stream_respond_error(s, 502, "upstream connect failed");
        return;
    }
    s->uc = uc;
    uc->owner = s;
    uc->on_event = upstream_event;
    uc->on_timeout = upstream_timeout;
    const struct jn_cfg_timeouts *t = &s->gen->cfg->timeouts;
    jn_timer_set(s->up->loop, &uc->timer,
                 uc->connected ? t->upstream_response : t->upstream_connect);
    s->t_upstream_us = jn_clock_us(); /* latency EWMA and ewma balancing want more than ms */
}

/* A stream answered locally while it waited (a client timeout, a bad
 * body) cancels its wait; these guards only keep a late wake harmless. */
static void queue_ready(struct jn_upwait *w)
{
    struct jn_stream *s = (struct jn_stream *)((char *)w - offsetof(struct jn_stream, wait));
    if (s->phase != JN_STREAM_UPSTREAM || s->uc != NULL)
        return;
    jn_proxy_connect(s, 0);
    s->front->wake(s);
}

static void queue_expired(struct jn_upwait *w)
{
    struct jn_stream *s = (struct jn_stream *)((char *)w - offsetof(struct jn_stream, wait));
    if (s->phase != JN_STREAM_UPSTREAM || s->uc != NULL)
        return;
    jn_log(JN_LOG_WARN, "upstream %s: server %s: queue timeout (request %s)", s->up->cfg->name,
           s->up->cfg->servers[s->server].address, s->request_id);
    jn_stream_respond_error(s, 503, "upstream queue timeout");
    s->front->wake(s);
}

/* Sticky sessions first, then the balancer. Hashing balancers and sticky
 * cookies read the request's fields, valid while jn_proxy_start runs. */
int jn_proxy_pick(struct jn_stream *s)
{
    const struct jn_cfg_upstream *cfg = s->up->cfg;
    if (cfg->hash_key != NULL) {
        jn_hash_key(cfg->hash_key, &s->req, s->client_ip, &s->hash);
        s->has_hash = true;
    }
    struct jn_slice v;
    if (s->up->sticky != NULL && jn_request_cookie(&s->req, cfg->sticky.cookie, &v)) {
        int i = jn_sticky_find(cfg, (const char(*)[JN_STICKY_TOKEN_LEN + 1])s->up->sticky, v);
        if (i >= 0 && jn_upstream_usable(s->up, (uint32_t)i)) {
            s->sticky_hit = true;
            return i;
        }
    }
    return jn_upstream_pick(s->up, s->has_hash ? &s->hash : NULL);
}

/* Closes the stream's upstream connection, if any: it is in an unknown
 * state and must not be pooled. */
void jn_proxy_drop_upconn(struct jn_stream *s)
{
    if (s->h2up != NULL)
        jn_h2up_release(s);
    if (s->uc != NULL) {
        jn_upconn_close(s->uc);
        s->uc = NULL;
    }
}

/* The request may go to another server after failing with o: attempts
 * left, the condition listed in retry_on, and safe to repeat.
 * Nothing was sent when a connect failed; otherwise only idempotent
 * requests without a body are repeated, since a body streamed upstream is
 * not kept for a second send. */
static bool may_retry(struct jn_stream *s, enum jn_outcome o, uint16_t status)
{
    const struct jn_cfg_retries *r = &s->up->cfg->retries;
    if (s->resp_head_sent || s->ntried >= r->attempts || s->ntried >= JN_ARRAY_LEN(s->tried))
        return false;
    bool listed = false;
    if (o == JN_OUT_CONNECT)
        listed = r->on & JN_RETRY_CONNECT;
    else if (o == JN_OUT_RESET)
        listed = r->on & JN_RETRY_RESET;
    else if (o == JN_OUT_TIMEOUT)
        listed = r->on & JN_RETRY_TIMEOUT;
    for (size_t i = 0; status != 0 && i < r->nstatus; i++)
        listed = listed || r->status[i] == status;
    return listed && (o == JN_OUT_CONNECT || s->retryable);
}

/* Another usable server not tried yet, when the retry budget allows one
 * more retry; else -1. The budget is asked last, so that a retry with
 * nowhere to go spends none of it. */
static int other_server(struct jn_stream *s)
{
    s->tried[s->ntried] = s->server;
    int next = jn_upstream_pick_other(s->up, s->has_hash ? &s->hash : NULL, s->tried,
                                      (size_t)s->ntried + 1);
    if (next >= 0 && !jn_upstream_retry_allowed(s->up))
        return -1;
    return next;
}

/* Sends the request again, to server next (from other_server). */
static void retry_on(struct jn_stream *s, int next, enum jn_outcome o)
{
    jn_log(JN_LOG_INFO, "upstream %s: retrying request %s on %s after %s failed", s->up->cfg->name,
           s->request_id, s->up->cfg->servers[next].address,
           s->up->cfg->servers[s->server].address);
    s->tried[s->ntried++] = s->server;
    s->up->in_flight[s->server]--;
    s->server = next;
    s->up->in_flight[s->server]++;
    s->sticky_hit = false;
    s->upstream_eof = false;
    s->req_write_failed = false;
    s->resp_scan = (struct jn_h1_scan){ 0 };
    jn_buf_consume(&s->resp_in, jn_buf_len(&s->resp_in));
    if (o != JN_OUT_CONNECT) {
        /* A bodiless request: its head is still at the buffer's start. */
        s->req_out.start = 0;
        s->req_out.end = s->req_head_len;
    }
    jn_proxy_connect(s, 0);
}

/* The upstream failed. A request that is safe to replay, on a reused
 * connection that the server closed before answering, is replayed once on a
 * fresh connection to the same server (the server did nothing wrong: it
 * closed an idle connection). Otherwise the failure counts against the
 * server, the request may be retried on another, or the client gets
 * 502/504, or loses the connection when part of the response was sent. */
void jn_proxy_upstream_fail(struct jn_stream *s, uint16_t status, const char *why,
                            enum jn_outcome o)
{
    struct jn_upconn *uc = s->uc;
    bool replay = uc != NULL && uc->reused && s->retryable && !s->retried && status == 502 &&
                  !s->resp_head_sent && jn_buf_empty(&s->resp_in);
    jn_proxy_drop_upconn(s);
    if (replay) {
        s->retried = true;
        s->upstream_eof = false;
        s->req_write_failed = false;
        s->resp_scan = (struct jn_h1_scan){ 0 };
        s->req_out.start = 0; /* the head is still at the buffer's start: nothing followed it */
        s->req_out.end = s->req_head_len;
        jn_proxy_connect(s, JN_UPCONN_FRESH);
        return;
    }
    jn_upstream_report(s->up, (uint32_t)s->server, o);
    jn_log(JN_LOG_WARN, "upstream %s: server %s: %s (request %s)", s->up->cfg->name,
           s->up->cfg->servers[s->server].address, why, s->request_id);
    int next = may_retry(s, o, 0) ? other_server(s) : -1;
    if (next >= 0) {
        retry_on(s, next, o);
        return;
    }
    if (s->resp_head_sent) {
        s->error = why;
        s->client_keep_alive = false;
        s->front->abort(s); /* may free s */
        return;
    }
    jn_stream_respond_error(s, status, why);
}

/* A failed TLS handshake to a server counts as a failed connect (retried
 * elsewhere, seen by outlier detection); the message says what OpenSSL
 * refused. Kept in the stream's arena for the access log. */
static const char *tls_failure(struct jn_stream *s, const char *why)
{
    const char *verify = jn_tls_client_verify_error(&s->uc->tp);
    const char *fmt = verify != NULL ? "upstream TLS certificate verify failed: %s"
                                     : "upstream TLS handshake failed: %s";
    const char *what = verify != NULL ? verify : why;
    int n = snprintf(NULL, 0, fmt, what);
    char *msg = n > 0 ? jn_arena_alloc(&s->arena, (size_t)n + 1) : NULL;
    if (msg == NULL)
        return "upstream TLS handshake failed";
    snprintf(msg, (size_t)n + 1, fmt, what);
    return msg;
}

bool jn_proxy_check_connected(struct jn_stream *s)
{
    struct jn_upconn *uc = s->uc;
    if (uc->connected)
        return true;
    const char *why = NULL;
    int rc = jn_upconn_finish_connect(uc, &why);
    if (rc < 0 && uc->tcp_connected)
        why = tls_failure(s, why);
    if (rc < 0) {
        jn_proxy_upstream_fail(s, 502, why, JN_OUT_CONNECT);
        /* A retry may have taken a pooled connection, ready now: no
         * readiness edge would announce it, so the relay goes on at once. */
        return s->phase == JN_STREAM_UPSTREAM && s->uc != NULL && s->uc != uc && s->uc->connected;
    }
    if (rc == 0)
        return false;
    jn_timer_set(s->up->loop, &uc->timer, s->gen->cfg->timeouts.upstream_response);
    return true;
}

/* Passive health sees every response status; one that retry_on lists is
 * retried on another server when that is allowed. Returns true when the
 * request was retried (the response is dropped with its connection). */
bool jn_proxy_judge_response(struct jn_stream *s, uint16_t status)
{
    const struct jn_cfg_outlier *o = &s->up->cfg->outlier;
    bool failed = false;
    for (size_t i = 0; o->enabled && i < o->nfailure_status; i++)
        failed = failed || o->failure_status[i] == status;
    jn_upstream_report(s->up, (uint32_t)s->server, failed ? JN_OUT_STATUS : JN_OUT_OK);
    if (status < 500 || !may_retry(s, JN_OUT_STATUS, status))
        return false;
    int next = other_server(s);
    if (next < 0)
        return false;
    jn_proxy_drop_upconn(s);
    retry_on(s, next, JN_OUT_STATUS);
    return true;
}

static void upstream_event(struct jn_upconn *uc)
{
    struct jn_stream *s = uc->owner;
    s->front->wake(s);
}

/* The connect or response deadline passed. */
static void upstream_timeout(struct jn_upconn *uc)
{
    struct jn_stream *s = uc->owner;
    struct jn_client *c = s->client;
    const struct jn_front_ops *front = s->front;
    if (uc->connected)
        jn_proxy_upstream_fail(s, 504, "upstream response timeout", JN_OUT_TIMEOUT);
    else
        jn_proxy_upstream_fail(s, 504, "upstream connect timeout", JN_OUT_CONNECT);
    if (front->alive(c, s))
        front->wake(s);
    else if (!c->closed)
        jn_client_drive(c); /* a reset stream of a connection that goes on */
}
