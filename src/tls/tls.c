/* TLS termination with OpenSSL 3: one SSL_CTX per certificate of a listener,
 * the certificate chosen by SNI, client certificates, session tickets under
 * the listener's rotating keys, and the non-blocking TLS transport that a
 * client connection reads and writes through. */
#include "tls/tls.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "tls/ticket_keys.h"

/* Mozilla's "intermediate" TLS 1.2 list: forward secrecy and AEAD only.
 * DHE is left out: it needs parameters and is slow, and every client that
 * still speaks TLS 1.2 knows ECDHE. TLS 1.3 suites keep OpenSSL's default,
 * which is already the modern set. */
#define JN_TLS_DEFAULT_CIPHERS                                                                     \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* One certificate: its context and the DNS names it answers for. */
struct jn_tls_cert_ctx {
    SSL_CTX *ctx; /* owned */
    char **names; /* owned: lower-case SAN DNS names, or the CN when there is none */
    size_t nnames;
};

struct jn_tls_server {
    struct jn_tls_cert_ctx *certs; /* owned; certs[0] is the default */
    size_t ncerts;
    bool h2; /* ALPN offers h2 (http2.enabled) */
    struct jn_ticket_keys *tickets; /* owned: shared by every context and worker */
};

bool jn_tls_name_match(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* One label only: "*.b.test" covers "x.b.test", not "y.x.b.test"
         * nor "b.test" (RFC 6125 6.4.3, as browsers do). */
        const char *dot = strchr(name, '.');
        if (dot == NULL || dot == name)
            return false;
        return strcasecmp(pattern + 1, dot) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

/* The certificate for name: an exact name wins over a wildcard; no match
 * gives the default (0). */
static size_t pick_cert(const struct jn_tls_server *s, const char *name)
{
    for (int wild = 0; wild < 2; wild++)
        for (size_t i = 0; i < s->ncerts; i++)
            for (size_t j = 0; j < s->certs[i].nnames; j++) {
                const char *p = s->certs[i].names[j];
                if ((p[0] == '*') == (wild == 1) && jn_tls_name_match(p, name))
                    return i;
            }
    return 0;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    const struct jn_tls_server *s = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL)
        return SSL_TLSEXT_ERR_NOACK; /* no SNI: the default certificate */
    size_t i = pick_cert(s, name);
    if (i != 0 && SSL_set_SSL_CTX(ssl, s->certs[i].ctx) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* h2 first (when enabled), then http/1.1. A client that offers neither
 * goes on without ALPN, and so with HTTP/1.1, rather than being refused.
 * SSL_select_next_proto walks the server's list in order, so a client
 * offering both gets h2 whatever its own order. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    const struct jn_tls_server *s = arg;
    const unsigned char *protos = s->h2 ? both : both + 3;
    unsigned int len = s->h2 ? sizeof(both) - 1 : sizeof(both) - 4;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, protos, len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Encrypted keys are not supported: without this OpenSSL would prompt on the
 * terminal for a pass phrase. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

const char *jn_tls_reason(void)
{
    unsigned long e = ERR_peek_error(); /* the first: the cause, not its echoes */
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown OpenSSL error";
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Session tickets under the listener's ring of keys (ticket_keys.c): the
 * newest key encrypts, an older one of the ring decrypts and asks for a new
 * ticket (2), an unknown name means a full handshake (0). Encryption that
 * fails issues no ticket rather than failing the handshake. */
static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc)
{
    struct jn_tls_server *s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    struct jn_ticket_key key;
    int rc;
    if (enc) {
        rc = jn_ticket_keys_current(s->tickets, monotonic_ms(), &key) == 0 &&
                     RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) == 1 &&
                     EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key.aes, iv) == 1
                 ? 1
                 : 0;
        if (rc == 1)
            memcpy(name, key.name, sizeof(key.name));
    } else {
        rc = (int)jn_ticket_keys_find(s->tickets, name, monotonic_ms(), &key);
        if (rc != 0 && EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key.aes, iv) != 1)
            rc = 0;
    }
    if (rc != 0) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof(key.hmac)),
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_MAC_CTX_set_params(mac, params) != 1)
            rc = 0;
    }
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}

/* The session id context: sessions (cached or in tickets) resume only where
 * it is the same. Every context of a listener has the same, so that a
 * session survives the switch made by SNI; it covers the client certificate
 * settings, so that a session made where no certificate was verified can
 * never resume where one must be (OpenSSL also refuses to resume without
 * one when it verifies peers). */
static int set_session_context(SSL_CTX *ctx, const struct jn_cfg_tls *tls)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char verify = (char)('0' + tls->verify_client);
    const char *ca = tls->client_ca ? tls->client_ca : "";
    EVP_MD_CTX *d = EVP_MD_CTX_new();
    int ok = d != NULL && EVP_DigestInit_ex(d, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(d, "junction", 8) == 1 && EVP_DigestUpdate(d, &verify, 1) == 1 &&
             EVP_DigestUpdate(d, ca, strlen(ca) + 1) == 1 && EVP_DigestFinal_ex(d, md, &mdlen) == 1;
    EVP_MD_CTX_free(d);
    if (mdlen > SSL_MAX_SID_CTX_LENGTH)
        mdlen = SSL_MAX_SID_CTX_LENGTH;
    return ok && SSL_CTX_set_session_id_context(ctx, md, mdlen) == 1 ? 0 : JN_EINVAL;
}

/* Settings shared by every context of a listener. */
static int ctx_setup(SSL_CTX *ctx, struct jn_tls_server *s, const struct jn_cfg_tls *tls,
                     enum jn_tls_fault *fault)
{
    int min = tls->min_version == JN_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    /* Renegotiation only serves attacks on a server; a truncated stream
     * without close_notify is still caught by HTTP framing, so an EOF is an
     * EOF as on a plain connection. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Buffers move (jn_buf_room compacts) and grow between retries; idle
     * connections give their TLS buffers back, like their plain ones. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Read ahead (as nginx does): one read(2) takes a record's header and body
     * together, and whatever follows, instead of one read for the 5-byte
     * header and one for the body. Safe with tls_read, which goes on until
     * OpenSSL itself wants more bytes from the socket, so bytes that OpenSSL
     * read ahead are never left waiting for an edge. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (!SSL_CTX_set_min_proto_version(ctx, min)) {
        *fault = JN_TLS_FAULT_OTHER;
        return JN_EINVAL;
    }
    if (!SSL_CTX_set_cipher_list(ctx, tls->ciphers ? tls->ciphers : JN_TLS_DEFAULT_CIPHERS)) {
        *fault = JN_TLS_FAULT_CIPHERS;
        return JN_EINVAL;
    }
    if (tls->ciphersuites != NULL && !SSL_CTX_set_ciphersuites(ctx, tls->ciphersuites)) {
        *fault = JN_TLS_FAULT_CIPHERSUITES;
        return JN_EINVAL;
    }
    /* Resumption: a server-side session cache (TLS 1.2 session ids) and
     * tickets under the listener's rotating keys. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    /* One TLS 1.3 ticket per handshake, not OpenSSL's two: a client keeps
     * one per connection, and each costs an encryption and a record (15%
     * of a full handshake's CPU here; see bench/RESULTS.md). */
    SSL_CTX_set_num_tickets(ctx, 1);
    if (set_session_context(ctx, tls) != 0) {
        *fault = JN_TLS_FAULT_OTHER;
        return JN_EINVAL;
    }
    SSL_CTX_set_app_data(ctx, s);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, s);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    return 0;
}

bool jn_tls_readable(const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

/* Client certificates: the CAs that sign them (also named to clients in
 * the CertificateRequest) and whether one is required. */
static int client_auth_setup(SSL_CTX *ctx, const struct jn_cfg_tls *tls, char *err, size_t errcap)
{
    if (tls->verify_client == JN_TLS_VERIFY_NONE || tls->client_ca == NULL)
        return 0;
    if (!jn_tls_readable(tls->client_ca, err, errcap))
        return JN_EINVAL;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tls->client_ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, tls->client_ca, NULL) != 1) {
        snprintf(err, errcap, "cannot load client CA %s: %s", tls->client_ca,
                 ERR_peek_error() ? jn_tls_reason() : "no certificate in the file");
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return JN_EINVAL;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    int mode = SSL_VERIFY_PEER;
    if (tls->verify_client == JN_TLS_VERIFY_REQUIRED)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return 0;
}

static int load_pair(SSL_CTX *ctx, const struct jn_cfg_tls_cert *cert, enum jn_tls_fault *fault,
                     char *err, size_t errcap)
{
    *fault = JN_TLS_FAULT_CERT;
    if (!jn_tls_readable(cert->cert, err, errcap))
        return JN_EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert->cert) != 1) {
        snprintf(err, errcap, "cannot load certificate %s: %s", cert->cert, jn_tls_reason());
        return JN_EINVAL;
    }
    *fault = JN_TLS_FAULT_KEY;
    if (!jn_tls_readable(cert->key, err, errcap))
        return JN_EINVAL;
    unsigned long e;
    if (SSL_CTX_use_PrivateKey_file(ctx, cert->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
            ERR_GET_REASON(e) == SSL_R_PRIVATE_KEY_MISMATCH)
            snprintf(err, errcap, "key %s does not match certificate %s", cert->key, cert->cert);
        else
            snprintf(err, errcap, "cannot load key %s: %s", cert->key, jn_tls_reason());
        return JN_EINVAL;
    }
    return 0;
}

static int add_name(struct jn_tls_cert_ctx *c, const unsigned char *p, int len)
{
    if (len <= 0 || memchr(p, '\0', (size_t)len) != NULL)
        return 0; /* not a usable host name: ignored */
    char **names = realloc(c->names, (c->nnames + 1) * sizeof(*names));
    if (names == NULL)
        return JN_ENOMEM;
    c->names = names;
    char *s = malloc((size_t)len + 1);
    if (s == NULL)
        return JN_ENOMEM;
    for (int i = 0; i < len; i++)
        s[i] = jn_lower((char)p[i]);
    s[len] = '\0';
    c->names[c->nnames++] = s;
    return 0;
}

/* The DNS names of the SAN extension; the subject's CN only when there is
 * none (as clients do, RFC 6125 6.4.4). */
static int cert_names(struct jn_tls_cert_ctx *c, X509 *x)
{
    int rc = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS)
            rc = add_name(c, ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(gens);
    if (rc != 0 || c->nnames > 0)
        return rc;
    const X509_NAME *subject = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx < 0)
        return 0;
    unsigned char *cn = NULL;
    int len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
    if (len >= 0)
        rc = add_name(c, cn, len);
    OPENSSL_free(cn);
    return rc;
}

struct jn_tls_server *jn_tls_server_new(uint64_t ticket_key_rotation_ms)
{
    struct jn_tls_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->tickets = jn_ticket_keys_new(ticket_key_rotation_ms, monotonic_ms());
    if (s->tickets == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

static void cert_ctx_free(struct jn_tls_cert_ctx *c)
{
    SSL_CTX_free(c->ctx);
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
}

int jn_tls_server_add(struct jn_tls_server *s, const struct jn_cfg_tls *tls,
                      const struct jn_cfg_tls_cert *cert, enum jn_tls_fault *fault, char *err,
                      size_t errcap)
{
    struct jn_tls_cert_ctx c = {0};
    int rc = JN_EINVAL;
    *fault = JN_TLS_FAULT_OTHER;
    snprintf(err, errcap, "out of memory");
    ERR_clear_error();
    struct jn_tls_cert_ctx *grown = realloc(s->certs, (s->ncerts + 1) * sizeof(*grown));
    if (grown == NULL)
        return JN_ENOMEM;
    s->certs = grown;
    c.ctx = SSL_CTX_new(TLS_server_method());
    if (c.ctx == NULL)
        goto fail;
    if (ctx_setup(c.ctx, s, tls, fault) != 0) {
        if (*fault == JN_TLS_FAULT_CIPHERS || *fault == JN_TLS_FAULT_CIPHERSUITES)
            snprintf(err, errcap, "%s: no cipher of the list is known to OpenSSL",
                     *fault == JN_TLS_FAULT_CIPHERS ? "ciphers" : "ciphersuites");
        else
            snprintf(err, errcap, "%s", jn_tls_reason());
        goto fail;
    }
    if (client_auth_setup(c.ctx, tls, err, errcap) != 0) {
        *fault = JN_TLS_FAULT_CLIENT_CA;
        goto fail;
    }
    if ((rc = load_pair(c.ctx, cert, fault, err, errcap)) != 0)
        goto fail;
    *fault = JN_TLS_FAULT_OTHER;
    if ((rc = cert_names(&c, SSL_CTX_get0_certificate(c.ctx))) != 0)
        goto fail;
    s->certs[s->ncerts++] = c;
    ERR_clear_error();
    return 0;
fail:
    cert_ctx_free(&c);
    ERR_clear_error();
    return rc != 0 ? rc : JN_EINVAL;
}

void jn_tls_server_offer_h2(struct jn_tls_server *s, bool on)
{
    s->h2 = on;
}

bool jn_tls_alpn_is_h2(const struct jn_transport *t)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;
    if (t->ssl != NULL)
        SSL_get0_alpn_selected(t->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

void jn_tls_server_free(struct jn_tls_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ncerts; i++)
        cert_ctx_free(&s->certs[i]);
    free(s->certs);
    jn_ticket_keys_free(s->tickets);
    free(s);
}

/* The transport. With edge-triggered readiness a read must go on until
 * OpenSSL asks for more bytes from the socket: SSL_read gives one record at
 * a time, and plaintext it already decrypted (SSL_pending) raises no new
 * edge, so a short read means nothing. */
static ssize_t tls_read(struct jn_transport *t, struct jn_buf *b, bool *drained)
{
    size_t room = jn_buf_room(b);
    ssize_t total = 0;
    *drained = false;
    t->read_wants_write = false;
    while (room > 0) {
        size_t n = 0;
        ERR_clear_error();
        if (SSL_read_ex(t->ssl, jn_buf_tail(b), room, &n) == 1) {
            b->end += n;
            room -= n;
            total += (ssize_t)n;
            continue;
        }
        switch (SSL_get_error(t->ssl, 0)) {
        case SSL_ERROR_WANT_READ:
            *drained = true;
            return total > 0 ? total : JN_EAGAIN;
        case SSL_ERROR_WANT_WRITE:
            t->read_wants_write = true;
            return total > 0 ? total : JN_EAGAIN;
        case SSL_ERROR_ZERO_RETURN:
            return total; /* close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
        default:
            t->failed = true;
            ERR_clear_error();
            return total > 0 ? total : JN_EIO;
        }
    }
    return total > 0 ? total : JN_EAGAIN;
}

static ssize_t tls_write(struct jn_transport *t, struct jn_buf *b)
{
    t->write_wants_read = false;
    while (!jn_buf_empty(b)) {
        size_t n = 0;
        ERR_clear_error();
        if (SSL_write_ex(t->ssl, jn_buf_head(b), jn_buf_len(b), &n) == 1) {
            jn_buf_consume(b, n);
            continue;
        }
        switch (SSL_get_error(t->ssl, 0)) {
        case SSL_ERROR_WANT_WRITE:
            return JN_EAGAIN;
        case SSL_ERROR_WANT_READ:
            t->write_wants_read = true;
            return JN_EAGAIN;
        default:
            t->failed = true;
            ERR_clear_error();
            return JN_EIO;
        }
    }
    return 0;
}

const struct jn_transport_ops jn_transport_tls = {tls_read, tls_write};

int jn_tls_conn_start(struct jn_tls_server *s, struct jn_transport *t)
{
    SSL *ssl = SSL_new(s->certs[0].ctx);
    if (ssl == NULL)
        return JN_ENOMEM;
    if (SSL_set_fd(ssl, t->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return JN_ENOMEM;
    }
    SSL_set_accept_state(ssl);
    t->ssl = ssl;
    t->ops = &jn_transport_tls;
    t->handshaking = true;
    return 0;
}

const char jn_tls_closed_in_handshake[] = "connection closed during the handshake";

int jn_tls_handshake(struct jn_transport *t, const char **why)
{
    ERR_clear_error();
    errno = 0; /* SSL_ERROR_SYSCALL with errno 0 means the peer closed */
    int r = SSL_do_handshake(t->ssl);
    t->read_wants_write = false;
    if (r == 1) {
        t->handshaking = false;
        return 0;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return JN_EAGAIN;
    if (e == SSL_ERROR_WANT_WRITE) {
        t->read_wants_write = true;
        return JN_EAGAIN;
    }
    t->failed = true;
    if (e == SSL_ERROR_SSL)
        *why = jn_tls_reason();
    else if (e == SSL_ERROR_SYSCALL && errno != 0)
        *why = strerror(errno);
    else
        *why = jn_tls_closed_in_handshake;
    ERR_clear_error();
    return JN_EIO;
}

int jn_tls_client_subject(const struct jn_transport *t, char **subject)
{
    *subject = NULL;
    X509 *peer = t->ssl != NULL ? SSL_get0_peer_certificate(t->ssl) : NULL;
    /* Only a verified certificate: without client_ca none is asked for, and
     * with it a failed verification fails the handshake. */
    if (peer == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return 0;
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    if (b == NULL || X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) < 0 ||
        (n = BIO_get_mem_data(b, &data)) < 0 || (*subject = malloc((size_t)n + 1)) == NULL) {
        BIO_free(b);
        ERR_clear_error();
        return JN_ENOMEM;
    }
    /* RFC 2253 escaping leaves no control or 8-bit byte; kept for safety,
     * since the subject may go into a header. */
    for (long i = 0; i < n; i++)
        (*subject)[i] = data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '?';
    (*subject)[n] = '\0';
    BIO_free(b);
    return 0;
}

void jn_tls_conn_shutdown(struct jn_transport *t)
{
    if (t->ssl == NULL || t->failed || t->handshaking ||
        (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* one try: a full socket simply means no close_notify */
    ERR_clear_error();
}

void jn_tls_conn_free(struct jn_transport *t)
{
    SSL_free(t->ssl);
    t->ssl = NULL;
}
