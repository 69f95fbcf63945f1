/* TLS towards upstream servers: one SSL_CTX per upstream that verifies the
 * server's chain and name, and the client side of its connections. Bytes
 * then move through the TLS transport of tls.c, as on a client connection. */
#include "tls/tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "tls/tls.h"

struct jn_tls_client {
    SSL_CTX *ctx; /* owned */
    bool h2;      /* ALPN offers h2 instead of http/1.1 (protocol: h2) */
};

void jn_tls_client_offer_h2(struct jn_tls_client *c)
{
    c->h2 = true;
}

/* A new session from a server (TLS 1.3 sends them after the handshake):
 * kept in the slot of the connection's server, replacing the older one. */
static int new_session(SSL *ssl, SSL_SESSION *session)
{
    SSL_SESSION **slot = SSL_get_app_data(ssl);
    if (slot == NULL || !SSL_SESSION_is_resumable(session))
        return 0;
    SSL_SESSION_free(*slot);
    *slot = session;
    return 1; /* the slot holds the reference */
}

static int load_verify(SSL_CTX *ctx, const struct jn_cfg_upstream_tls *tls,
                       enum jn_tls_client_fault *fault, char *err, size_t errcap)
{
    *fault = JN_TLS_CLIENT_FAULT_CA;
    if (tls->ca == NULL) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            snprintf(err, errcap, "cannot load the system's CA store: %s", jn_tls_reason());
            return JN_EINVAL;
        }
    } else {
        if (!jn_tls_readable(tls->ca, err, errcap))
            return JN_EINVAL;
        if (SSL_CTX_load_verify_locations(ctx, tls->ca, NULL) != 1) {
            snprintf(err, errcap, "cannot load CA file %s: %s", tls->ca, jn_tls_reason());
            return JN_EINVAL;
        }
    }
    SSL_CTX_set_verify(ctx, tls->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return 0;
}

static int load_client_cert(SSL_CTX *ctx, const struct jn_cfg_upstream_tls *tls,
                            enum jn_tls_client_fault *fault, char *err, size_t errcap)
{
    if (tls->cert == NULL)
        return 0;
    *fault = JN_TLS_CLIENT_FAULT_CERT;
    if (!jn_tls_readable(tls->cert, err, errcap))
        return JN_EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1) {
        snprintf(err, errcap, "cannot load certificate %s: %s", tls->cert, jn_tls_reason());
        return JN_EINVAL;
    }
    *fault = JN_TLS_CLIENT_FAULT_KEY;
    if (!jn_tls_readable(tls->key, err, errcap))
        return JN_EINVAL;
    if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errcap, "cannot load key %s: %s", tls->key, jn_tls_reason());
        return JN_EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errcap, "key %s does not match certificate %s", tls->key, tls->cert);
        return JN_EINVAL;
    }
    return 0;
}

/* Encrypted keys are not supported: without this OpenSSL would prompt on the
 * terminal for a pass phrase. */
static int client_no_password(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

static void ctx_setup(SSL_CTX *ctx)
{
    /* A server that ends a response by closing without close_notify is an
     * EOF, as on a plain connection: HTTP framing tells a truncated body. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, client_no_password);
    /* Sessions are kept per worker and server (new_session), not in
     * OpenSSL's cache, which would be shared by every thread. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
}

struct jn_tls_client *jn_tls_client_new(const struct jn_cfg_upstream_tls *tls,
                                        enum jn_tls_client_fault *fault, char *err, size_t errcap)
{
    *fault = JN_TLS_CLIENT_FAULT_OTHER;
    snprintf(err, errcap, "out of memory");
    ERR_clear_error();
    struct jn_tls_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL)
        goto fail;
    ctx_setup(c->ctx);
    if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1) {
        snprintf(err, errcap, "%s", jn_tls_reason());
        goto fail;
    }
    if (load_verify(c->ctx, tls, fault, err, errcap) != 0 ||
        load_client_cert(c->ctx, tls, fault, err, errcap) != 0)
        goto fail;
    ERR_clear_error();
    return c;
fail:
    jn_tls_client_free(c);
    ERR_clear_error();
    return NULL;
}

void jn_tls_client_free(struct jn_tls_client *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

/* The host part of "host:port" or "[v6]:port" into out. */
static void address_host(const char *address, char *out, size_t cap)
{
    const char *start = address, *end;
    if (address[0] == '[') {
        start = address + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(address, ':');
    }
    size_t n = end != NULL ? (size_t)(end - start) : strlen(start);
    n = JN_MIN(n, cap - 1);
    memcpy(out, start, n);
    out[n] = '\0';
}

static bool is_ip(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* SNI and the name or address the certificate must show. */
static bool set_peer_name(SSL *ssl, const struct jn_cfg_upstream_tls *tls, const char *address)
{
    char host[256];
    address_host(address, host, sizeof(host));
    const char *name = tls->sni != NULL ? tls->sni : is_ip(host) ? NULL : host;
    if (name != NULL && SSL_set_tlsext_host_name(ssl, name) != 1)
        return false;
    if (!tls->verify)
        return true;
    /* Wildcards cover one whole label, as for the names of a listener. */
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (name != NULL)
        return SSL_set1_host(ssl, name) == 1;
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
}

int jn_tls_client_start(const struct jn_tls_client *c, const struct jn_cfg_upstream_tls *tls,
                        const char *address, struct ssl_session_st **session,
                        struct jn_transport *t)
{
    static const unsigned char http1[] = "\x08http/1.1", h2[] = "\x02h2";
    const unsigned char *alpn = c->h2 ? h2 : http1;
    unsigned int alpn_len = c->h2 ? sizeof(h2) - 1 : sizeof(http1) - 1;
    ERR_clear_error();
    SSL *ssl = SSL_new(c->ctx);
    if (ssl == NULL)
        return JN_ENOMEM;
    if (SSL_set_fd(ssl, t->fd) != 1 || !set_peer_name(ssl, tls, address) ||
        SSL_set_alpn_protos(ssl, alpn, alpn_len) != 0) {
        SSL_free(ssl);
        ERR_clear_error();
        return JN_ENOMEM;
    }
    if (session != NULL) {
        SSL_set_app_data(ssl, session);
        if (*session != NULL)
            SSL_set_session(ssl, *session); /* a refused session is a full handshake */
    }
    SSL_set_connect_state(ssl);
    ERR_clear_error();
    t->ssl = ssl;
    t->ops = &jn_transport_tls;
    t->handshaking = true;
    return 0;
}

int jn_tls_client_handshake(struct jn_transport *t, const char **why)
{
    return jn_tls_handshake(t, why);
}

const char *jn_tls_client_verify_error(const struct jn_transport *t)
{
    long v = t->ssl != NULL ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}

bool jn_tls_client_resumed(const struct jn_transport *t)
{
    return t->ssl != NULL && SSL_session_reused(t->ssl);
}

void jn_tls_session_free(struct ssl_session_st *session)
{
    SSL_SESSION_free(session);
}
