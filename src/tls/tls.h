/* TLS termination with OpenSSL 3: the server contexts of a listener (built
 * at configuration load, owned by the snapshot), certificate choice by SNI,
 * and the TLS transport of a client connection. See docs/tls.md. */
#ifndef JN_TLS_TLS_H
#define JN_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "net/transport.h"

/* What a failed jn_tls_server_add is about, so that the loader can point
 * at the right YAML value. */
enum jn_tls_fault {
    JN_TLS_FAULT_CERT,         /* the certificate file */
    JN_TLS_FAULT_KEY,          /* the key file, or a key that does not match */
    JN_TLS_FAULT_CIPHERS,      /* the ciphers string */
    JN_TLS_FAULT_CIPHERSUITES, /* the ciphersuites string */
    JN_TLS_FAULT_CLIENT_CA,    /* the client_ca file */
    JN_TLS_FAULT_OTHER,        /* out of memory or an OpenSSL failure */
};

struct jn_tls_server;

/* An empty server (no certificate yet) with its ring of session ticket keys,
 * rotated every ticket_key_rotation_ms (> 0). Returns NULL when out of
 * memory. */
struct jn_tls_server *jn_tls_server_new(uint64_t ticket_key_rotation_ms);
/* Loads one certificate (PEM chain) and its key into a new OpenSSL context
 * set up from tls (versions, ciphers, ALPN, sessions and tickets, client
 * certificates). The first one added is the default. Returns 0, or JN_EINVAL
 * with *fault and a message in err. */
int jn_tls_server_add(struct jn_tls_server *s, const struct jn_cfg_tls *tls,
                      const struct jn_cfg_tls_cert *cert, enum jn_tls_fault *fault, char *err,
                      size_t errcap);
/* The reason of OpenSSL's first queued error, for people (static text). */
const char *jn_tls_reason(void);
/* True when path can be opened for reading, else false with err set:
 * "No such file or directory" says more than OpenSSL's reason would. */
bool jn_tls_readable(const char *path, char *err, size_t errcap);
/* Whether ALPN offers h2 besides http/1.1 (set once the whole
 * configuration is read, before any connection). */
void jn_tls_server_offer_h2(struct jn_tls_server *s, bool on);
/* True when the handshake on t chose h2 by ALPN. */
bool jn_tls_alpn_is_h2(const struct jn_transport *t);
/* Frees every context (connections keep their own references). NULL is fine. */
void jn_tls_server_free(struct jn_tls_server *s);

/* True when name (an SNI host name) is covered by pattern, a certificate DNS
 * name: equal ignoring case, or "*.example.com" matching exactly one label
 * in front of "example.com". */
bool jn_tls_name_match(const char *pattern, const char *name);

/* SSL_read/SSL_write on t->ssl, for both sides of TLS (tls_client.c starts
 * the client side). */
extern const struct jn_transport_ops jn_transport_tls;

/* Starts the server side of a TLS connection on t->fd: sets t's ops to the
 * TLS transport, t->ssl and t->handshaking. Returns 0 or JN_ENOMEM. */
int jn_tls_conn_start(struct jn_tls_server *s, struct jn_transport *t);
/* Drives the handshake without blocking. Returns 0 when it is over,
 * JN_EAGAIN when it waits for readiness (t->read_wants_write /
 * t->write_wants_read tell which: neither means it waits to read), JN_EIO
 * when it failed (with *why set to a static or OpenSSL reason). */
int jn_tls_handshake(struct jn_transport *t, const char **why);
/* The *why of a peer that closed during the handshake (compare by address):
 * TCP probes do that all day, so it is not worth an info line. */
extern const char jn_tls_closed_in_handshake[];
/* After the handshake: the subject of the client's verified certificate in
 * RFC 2253 form ("CN=alice,O=Example"), malloc'd into *subject (the caller
 * owns it), or NULL when the client sent none. Characters that may not
 * appear in a header value never appear in it. Returns 0 or JN_ENOMEM. */
int jn_tls_client_subject(const struct jn_transport *t, char **subject);
/* Sends close_notify when that is still allowed (best effort, never blocks). */
void jn_tls_conn_shutdown(struct jn_transport *t);
/* Frees t->ssl. */
void jn_tls_conn_free(struct jn_transport *t);

#endif
