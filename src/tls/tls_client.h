/* TLS towards upstream servers with OpenSSL 3: an upstream's client context
 * (built at configuration load, owned by the snapshot), and the client side
 * of a connection, which then reads and writes through the TLS transport of
 * tls.h. See docs/tls.md, "TLS to upstreams". */
#ifndef JN_TLS_TLS_CLIENT_H
#define JN_TLS_TLS_CLIENT_H

#include <stddef.h>

#include "config/config.h"
#include "net/transport.h"

struct ssl_session_st;

/* What a failed jn_tls_client_new is about, so that the loader can point
 * at the right YAML value. */
enum jn_tls_client_fault {
    JN_TLS_CLIENT_FAULT_CA,    /* the ca file */
    JN_TLS_CLIENT_FAULT_CERT,  /* the client certificate file */
    JN_TLS_CLIENT_FAULT_KEY,   /* its key, or a key that does not match */
    JN_TLS_CLIENT_FAULT_OTHER, /* out of memory or an OpenSSL failure */
};

struct jn_tls_client;

/* Builds the client context of an upstream's tls: section: verification
 * (with tls->ca, or the system's default store), the client certificate.
 * Returns the context, or NULL with *fault and a message in err. */
struct jn_tls_client *jn_tls_client_new(const struct jn_cfg_upstream_tls *tls,
                                        enum jn_tls_client_fault *fault, char *err, size_t errcap);
/* Frees the context (connections keep their own references). NULL is fine. */
void jn_tls_client_free(struct jn_tls_client *c);
/* Offers only h2 by ALPN (protocol: h2), on connections started from now. */
void jn_tls_client_offer_h2(struct jn_tls_client *c);

/* Starts the client side of a TLS connection on t->fd to the server at
 * address ("host:port" as configured): sets t's ops to the TLS transport,
 * t->ssl and t->handshaking. The name sent (SNI) and checked is tls->sni,
 * else the address's host when it is a name; an IP address is checked
 * against the certificate's IP addresses and never sent. session, when not
 * NULL, is where this connection's server keeps the last session it gave
 * (resumed now, replaced when the server sends a new one); it must outlive
 * t->ssl. Returns 0, or JN_ENOMEM. */
int jn_tls_client_start(const struct jn_tls_client *c, const struct jn_cfg_upstream_tls *tls,
                        const char *address, struct ssl_session_st **session,
                        struct jn_transport *t);
/* Drives the handshake as jn_tls_handshake does (0, JN_EAGAIN or JN_EIO with
 * *why set to a static or OpenSSL reason). */
int jn_tls_client_handshake(struct jn_transport *t, const char **why);
/* After a failed handshake: why the server's certificate was refused
 * ("hostname mismatch", "unable to get local issuer certificate"), or NULL
 * when verification was not what failed. A static string. */
const char *jn_tls_client_verify_error(const struct jn_transport *t);
/* True when the handshake resumed an earlier session. */
bool jn_tls_client_resumed(const struct jn_transport *t);
/* Frees a session kept by jn_tls_client_start (NULL is fine). */
void jn_tls_session_free(struct ssl_session_st *session);

#endif
