/* The HTTP/1.1 side of a stream: responses serialised as HTTP/1.1 on the
 * client connection, request bodies read from it with their own framing. */
#include <string.h>

#include "http/front.h"
#include "http/h1/h1_server.h"
#include "http/h1/h1_write.h"
#include "http/proxy.h"
#include "http/stream.h"

static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){s, strlen(s)};
}

static bool body_allowed(const struct jn_stream *s, uint16_t status)
{
    return status >= 200 && status != 204 && status != 304;
}

static void h1_respond(struct jn_stream *s, uint16_t status, struct jn_fields *f, const char *body,
                       size_t len)
{
    struct jn_buf *out = jn_client_out(s->client);
    size_t before = jn_buf_len(out);
    bool with_body = body_allowed(s, status);
    if (with_body)
        jn_fields_add(f, cs("Content-Length"), jn_stream_u64(s, len));
    /* A request body left unread makes the connection close: its bytes
     * must not be taken for the next request. */
    bool close = !s->req_body.done || !s->client_keep_alive;
    if (close) {
        jn_fields_add(f, cs("Connection"), cs("close"));
        s->client_keep_alive = false;
    }
    jn_h1_write_response_head(out, status, f);
    if (with_body && !s->head_request)
        jn_buf_put(out, body, len);
    s->status = status;
    s->bytes_sent += jn_buf_len(out) - before;
    s->phase = JN_STREAM_DONE;
}

static void h1_response_head(struct jn_stream *s, uint16_t status, struct jn_fields *f,
                             const struct jn_h1_message *m)
{
    bool chunk_out = false;
    if (m->body == JN_H1_BODY_LENGTH || (s->head_request && m->content_length > 0)) {
        jn_fields_add(f, cs("Content-Length"), jn_stream_u64(s, m->content_length));
    } else if (m->body == JN_H1_BODY_NONE) {
        /* Content-Length: 0 (stripped with the other framing fields) must be
         * said again, or the client would read the body up to the close. */
        if (!s->head_request && body_allowed(s, status))
            jn_fields_add(f, cs("Content-Length"), cs("0"));
    } else if (m->body == JN_H1_BODY_CHUNKED || m->body == JN_H1_BODY_CLOSE) {
        /* HTTP/1.1 clients get chunked so the connection survives; 1.0
         * clients get the body up to the close. */
        chunk_out = s->req.version_minor >= 1;
        if (chunk_out)
            jn_fields_add(f, cs("Transfer-Encoding"), cs("chunked"));
        else
            s->client_keep_alive = false;
    }
    jn_body_init(&s->resp_body, m->body, m->content_length, chunk_out);
    if (!s->req_body.done)
        s->client_keep_alive = false; /* the rest of the request body is never read */
    if (!s->client_keep_alive || s->client->close_after)
        jn_fields_add(f, cs("Connection"), cs("close"));
    else if (s->req.version_minor == 0)
        jn_fields_add(f, cs("Connection"), cs("keep-alive"));
    struct jn_buf *out = jn_client_out(s->client);
    size_t before = jn_buf_len(out);
    jn_h1_write_response_head(out, status, f);
    s->bytes_sent += jn_buf_len(out) - before;
}

static void h1_continue_100(struct jn_stream *s)
{
    if (s->req.version_minor >= 1) /* an HTTP/1.0 client knows no 1xx */
        jn_buf_put(jn_client_out(s->client), "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static struct jn_buf *h1_body_out(struct jn_stream *s)
{
    return jn_client_out(s->client);
}

/* Client -> upstream: body bytes. */
static int h1_pump_request(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    if (s->req_body.done || s->req_write_failed)
        return 0;
    if (jn_buf_acquire(&c->worker->bufs, &s->req_out) != 0)
        return 0;
    int progress = 0;
    for (int pass = 0; pass < 2 && !s->req_body.done; pass++) {
        const char *err = NULL;
        int rc = jn_body_pump(&s->req_body, &c->in, &s->req_out, &err);
        if (rc < 0)
            return jn_proxy_bad_body(s, err);
        progress |= rc;
        /* Read only once what is buffered has been moved, so a client that
         * sent its whole body and then shut its side is not mistaken for one
         * that went away mid-body. */
        if (pass == 1 || !c->can_read || jn_buf_room(&c->in) == 0)
            break;
        int n = jn_client_read(c);
        if (n > 0) {
            progress = 1;
            jn_client_set_timer(c, JN_CT_BODY);
        } else if (n == 0 || n == JN_EIO) {
            c->eof = true;
            if (jn_buf_empty(&c->in) && !s->req_body.done) {
                s->error = "client closed during request body";
                jn_client_close(c);
                return -1;
            }
        }
    }
    return progress;
}

static int h1_flush(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    size_t before = jn_buf_len(&c->out);
    if (jn_client_flush(c) != 0)
        return JN_EIO;
    return jn_buf_len(&c->out) != before;
}

static bool h1_pending(const struct jn_stream *s)
{
    return !jn_buf_empty(&s->client->out);
}

static bool h1_alive(const struct jn_client *c, const struct jn_stream *s)
{
    /* Reads only the connection: s itself may be freed. */
    return !c->closed && c->stream == s;
}

static void h1_abort(struct jn_stream *s)
{
    jn_client_close(s->client);
}

static void h1_done(struct jn_stream *s)
{
    jn_client_stream_done(s->client, !s->client_keep_alive);
}

static void h1_wake(struct jn_stream *s)
{
    jn_client_drive(s->client);
}

static void h1_touch(struct jn_stream *s)
{
    jn_client_set_timer(s->client, JN_CT_BODY);
}

const struct jn_front_ops jn_front_h1 = {
    .respond = h1_respond,
    .continue_100 = h1_continue_100,
    .response_head = h1_response_head,
    .body_out = h1_body_out,
    .pump_request = h1_pump_request,
    .flush = h1_flush,
    .pending = h1_pending,
    .alive = h1_alive,
    .abort = h1_abort,
    .done = h1_done,
    .wake = h1_wake,
    .touch = h1_touch,
};
