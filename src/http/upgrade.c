/* HTTP/1.1 Upgrade to WebSocket: the handshake's fields, the 101, and the
 * tunnel after it. The tunnel copies bytes through the client's transport
 * (plain or TLS, so no splice) and the upstream socket, using the client
 * connection's own buffers: c->in carries client -> upstream, c->out
 * upstream -> client. A full buffer stops the read that fills it, which is
 * the backpressure: each direction holds at most one buffer in Junction. */
#include "http/upgrade.h"

#include <sys/socket.h>

#include "core/log.h"
#include "http/h1/h1_server.h"
#include "http/h1/h1_write.h"
#include "http/proxy.h"
#include "http/proxy_upstream.h"
#include "policy/chain.h"
#include "tls/tls.h"

#define MAX_RESPONSE_FIELDS (256 + 32)

static struct jn_slice cs(const char *s)
{
    return (struct jn_slice){s, strlen(s)};
}

/* True when the comma-separated list v has the element token
 * (case-insensitive, optional whitespace around elements). */
static bool list_has(struct jn_slice v, const char *token)
{
    const char *p = v.ptr, *end = v.ptr + v.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',')
            p++;
        const char *stop = p;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if (stop > start && jn_slice_ieq((struct jn_slice){start, (size_t)(stop - start)}, token))
            return true;
    }
    return false;
}

/* True when some field called name lists token. */
static bool field_lists(const struct jn_h1_message *m, const char *name, const char *token)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (jn_slice_ieq(m->headers[i].name, name) && list_has(m->headers[i].value, token))
            return true;
    return false;
}

bool jn_upgrade_is_websocket(const struct jn_h1_message *m)
{
    return m->upgrade && m->version_minor >= 1 && m->body == JN_H1_BODY_NONE &&
           jn_slice_eq(m->method, cs("GET")) && field_lists(m, "upgrade", "websocket");
}

int jn_upgrade_add_fields(struct jn_fields *f)
{
    int rc = jn_fields_add(f, cs("Connection"), cs("Upgrade"));
    rc |= jn_fields_add(f, cs("Upgrade"), cs("websocket"));
    return rc ? JN_ETOOBIG : 0;
}

/* tunnel_idle passed: re-armed lazily from last_active, since moving a
 * heap entry on every byte would cost more than this check. */
static void tunnel_timeout(struct jn_upconn *uc)
{
    struct jn_stream *s = uc->owner;
    struct jn_loop *loop = s->up->loop;
    uint64_t idle = s->gen->cfg->timeouts.tunnel_idle;
    uint64_t quiet = jn_loop_now(loop) - s->tunnel.last_active;
    if (quiet < idle) {
        jn_timer_set(loop, &uc->timer, idle - quiet);
        return;
    }
    jn_log(JN_LOG_DEBUG, "client %s: websocket tunnel idle for %llu ms; closed (request %s)",
           s->client->peer, (unsigned long long)quiet, s->request_id);
    s->error = "tunnel idle timeout";
    jn_client_close(s->client); /* frees s and closes uc */
}

/* Writes the client's 101 head: the upstream's fields without hop-by-hop
 * ones, the route's response actions, the upgrade fields again. */
static int write_101(struct jn_stream *s, const struct jn_h1_message *m)
{
    struct jn_http_field fields[MAX_RESPONSE_FIELDS];
    struct jn_fields f = {fields, 0, JN_ARRAY_LEN(fields)};
    for (size_t i = 0; i < m->nheaders && f.n < f.cap; i++)
        fields[f.n++] = (struct jn_http_field){m->headers[i].name, m->headers[i].value};
    jn_h1_strip_hop_by_hop(&f);
    struct jn_http_response resp = {.status = 101, .fields = fields, .nfields = f.n};
    jn_chain_response(s, &resp, &f);
    int rc = jn_fields_set(&f, cs("X-Request-Id"), cs(s->request_id));
    rc |= jn_upgrade_add_fields(&f);
    struct jn_buf *out = jn_client_out(s->client);
    size_t before = jn_buf_len(out);
    rc |= jn_h1_write_response_head(out, 101, &f);
    s->bytes_sent += jn_buf_len(out) - before;
    return rc ? JN_ENOMEM : 0;
}

int jn_upgrade_start(struct jn_stream *s, const struct jn_h1_message *m, size_t head_len)
{
    struct jn_client *c = s->client;
    if (!field_lists(m, "upgrade", "websocket")) {
        jn_proxy_upstream_fail(s, 502, "101 Switching Protocols to another protocol than websocket",
                               JN_OUT_RESET);
        return -1;
    }
    jn_proxy_judge_response(s, 101); /* passive health: a success (never retried) */
    s->status = 101;
    if (write_101(s, m) != 0) {
        s->error = "out of memory for the 101 head";
        jn_client_close(c);
        return -1;
    }
    /* Bytes the upstream sent right after its head are the tunnel's first. */
    jn_buf_consume(&s->resp_in, head_len);
    size_t early = jn_buf_len(&s->resp_in);
    if (early > 0 && jn_buf_put(&c->out, jn_buf_head(&s->resp_in), early) != 0) {
        s->error = "out of memory for the tunnel";
        jn_client_close(c);
        return -1;
    }
    s->bytes_sent += early;
    jn_buf_consume(&s->resp_in, early);
    jn_buf_release(&c->worker->bufs, &s->resp_in);
    struct jn_loop *loop = &c->worker->loop;
    s->resp_head_sent = true;
    s->upstream_keep_alive = false; /* the connection is the tunnel's: never pooled */
    s->t_upstream_head = jn_loop_now(loop);
    s->tunnel.upstream_eof = s->upstream_eof;
    s->tunnel.last_active = jn_loop_now(loop);
    s->phase = JN_STREAM_TUNNEL;
    /* Only tunnel_idle applies from here: no client body or upstream
     * response timeout cuts a quiet WebSocket. */
    jn_timer_stop(loop, &c->timer);
    s->uc->on_timeout = tunnel_timeout;
    jn_timer_set(loop, &s->uc->timer, s->gen->cfg->timeouts.tunnel_idle);
    return 1;
}

/* Client -> upstream through c->in. Returns 1 on progress, 0 stalled, JN_EIO
 * when either side failed. */
static int pump_to_upstream(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    struct jn_upconn *uc = s->uc;
    int progress = 0;
    if (!jn_buf_empty(&c->in) && uc->can_write) {
        size_t before = jn_buf_len(&c->in);
        ssize_t n = jn_buf_write_fd(&c->in, uc->io.fd);
        if (n == JN_EIO)
            return JN_EIO;
        if (n == JN_EAGAIN)
            uc->can_write = false;
        progress = jn_buf_len(&c->in) != before;
    }
    if (!c->eof) {
        int n = jn_client_read(c); /* reads nothing while c->in is full */
        if (n == JN_EIO)
            return JN_EIO;
        if (n >= 0)
            progress = 1; /* bytes, or the client's end (c->eof) */
    }
    if (c->eof && jn_buf_empty(&c->in) && !s->tunnel.to_upstream_shut) {
        shutdown(uc->io.fd, SHUT_WR);
        s->tunnel.to_upstream_shut = true;
        progress = 1;
    }
    return progress;
}

/* Upstream -> client through c->out. Same returns. */
static int pump_to_client(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    struct jn_upconn *uc = s->uc;
    size_t before = jn_buf_len(&c->out);
    if (jn_client_flush(c) != 0)
        return JN_EIO;
    int progress = jn_buf_len(&c->out) != before;
    if (!s->tunnel.upstream_eof && uc->can_read && jn_buf_acquire(&c->worker->bufs, &c->out) == 0) {
        bool drained;
        ssize_t n = jn_buf_read_fd(&c->out, uc->io.fd, &drained);
        if (drained && !uc->hup)
            uc->can_read = false;
        if (n == JN_EIO)
            return JN_EIO;
        if (n > 0)
            s->bytes_sent += (uint64_t)n;
        if (n == 0)
            s->tunnel.upstream_eof = true;
        progress |= n >= 0;
    }
    if (s->tunnel.upstream_eof && jn_buf_empty(&c->out) && !s->tunnel.to_client_shut) {
        jn_tls_conn_shutdown(&c->tp); /* close_notify goes before the FIN */
        shutdown(c->io.fd, SHUT_WR);
        s->tunnel.to_client_shut = true;
        progress = 1;
    }
    return progress;
}

void jn_upgrade_drive(struct jn_stream *s)
{
    struct jn_client *c = s->client;
    bool moved = false;
    for (;;) {
        int up = pump_to_upstream(s);
        int down = up < 0 ? 0 : pump_to_client(s);
        if (up < 0 || down < 0) {
            /* A reset or a failed write: what was on its way cannot all
             * arrive, and the peer is told at once by the close. */
            jn_log(JN_LOG_DEBUG, "client %s: websocket tunnel failed; closed (request %s)", c->peer,
                   s->request_id);
            s->error = "tunnel connection failed";
            jn_client_close(c);
            return;
        }
        if (s->tunnel.to_upstream_shut && s->tunnel.to_client_shut) {
            jn_client_close(c); /* both ends passed on: over (logged now) */
            return;
        }
        if (up == 0 && down == 0)
            break;
        moved = true;
    }
    if (moved)
        s->tunnel.last_active = jn_loop_now(&c->worker->loop);
    if (jn_buf_empty(&c->in)) /* a quiet tunnel holds no buffer */
        jn_buf_release(&c->worker->bufs, &c->in);
}
