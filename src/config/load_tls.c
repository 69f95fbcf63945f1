/* The tls: sections: a listener's (certificates, versions, ciphers, client
 * certificates and session ticket keys) and an upstream's (verification of
 * its servers, SNI, a client certificate). Certificates, keys and CA files
 * are loaded here, at configuration load, so that a file that cannot be used
 * stops start-up (and `junction check`) with its name and position instead
 * of failing the first handshake. */
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#include "config/load.h"
#include "core/common.h"
#include "tls/tls.h"
#include "tls/tls_client.h"

static void jn_ld_set_tls_version(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                  void *obj)
{
    const char *s = jn_ld_scalar(ld, value, key->name, "\"1.2\" or \"1.3\"");
    if (s == NULL)
        return;
    if (strcmp(s, "1.2") == 0)
        ((struct jn_cfg_tls *)obj)->min_version = JN_TLS_1_2;
    else if (strcmp(s, "1.3") == 0)
        ((struct jn_cfg_tls *)obj)->min_version = JN_TLS_1_3;
    else
        jn_ld_error(ld, value, "%s: invalid value %s (expected one of: 1.2, 1.3)", key->name,
                    jn_ld_quote(ld, s, strlen(s)));
}

/* A cipher string: kept with its position, checked by OpenSSL when the
 * contexts are built. */
static void jn_ld_set_cipher_string(struct jn_ld *ld, const struct jn_ld_key *key,
                                    yaml_node_t *value, void *obj)
{
    struct jn_cfg_tls *tls = obj;
    char *s = jn_ld_nonempty(ld, value, key->name, "an OpenSSL cipher string");
    if (s == NULL)
        return;
    bool suites = strcmp(key->name, "ciphersuites") == 0;
    *(suites ? &tls->ciphersuites : &tls->ciphers) = s;
    *(suites ? &tls->ciphersuites_pos : &tls->ciphers_pos) = jn_ld_pos(ld, value);
}

/* A file path, with its position for the messages of the load. */
static void jn_ld_set_tls_file(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                               void *obj)
{
    struct jn_cfg_tls_cert *c = obj;
    char *s = jn_ld_nonempty(ld, value, key->name, "a file path");
    if (s == NULL)
        return;
    bool is_key = strcmp(key->name, "key") == 0;
    *(is_key ? &c->key : &c->cert) = s;
    *(is_key ? &c->key_pos : &c->cert_pos) = jn_ld_pos(ld, value);
}

static const struct jn_ld_key jn_tls_cert_keys[] = {
    JN_LD_REQ("cert", jn_ld_set_tls_file, 0),
    JN_LD_REQ("key", jn_ld_set_tls_file, 0),
};
static const struct jn_ld_table jn_tls_cert_table = JN_LD_TABLE("certificate", jn_tls_cert_keys);

static void jn_ld_set_certificates(struct jn_ld *ld, const struct jn_ld_key *key,
                                   yaml_node_t *value, void *obj)
{
    struct jn_cfg_tls *tls = obj;
    if (!jn_ld_expect(ld, value, YAML_SEQUENCE_NODE, key->name, "a list"))
        return;
    size_t n = jn_ld_seq_len(value);
    if (n == 0) {
        jn_ld_error(ld, value, "%s: at least one certificate is required", key->name);
        return;
    }
    tls->certs = jn_ld_calloc(ld, n, sizeof(*tls->certs));
    if (tls->certs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = jn_ld_seq_item(ld, value, i);
        struct jn_cfg_tls_cert *c = &tls->certs[tls->ncerts];
        if (item == NULL || !jn_ld_map(ld, item, &jn_tls_cert_table, c, NULL))
            continue;
        c->pos = jn_ld_pos(ld, item);
        if (c->cert != NULL && c->key != NULL)
            tls->ncerts++;
    }
}

/* client_ca: the CA bundle, loaded with the contexts (jn_ld_listener_tls). */
static void jn_ld_set_client_ca(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                void *obj)
{
    struct jn_cfg_tls *tls = obj;
    char *s = jn_ld_nonempty(ld, value, key->name, "a file path");
    if (s == NULL)
        return;
    tls->client_ca = s;
    tls->client_ca_pos = jn_ld_pos(ld, value);
}

static void jn_ld_set_verify_client(struct jn_ld *ld, const struct jn_ld_key *key,
                                    yaml_node_t *value, void *obj)
{
    struct jn_cfg_tls *tls = obj;
    const char *s = jn_ld_scalar(ld, value, key->name, "required or optional");
    if (s == NULL)
        return;
    if (strcmp(s, "required") == 0)
        tls->verify_client = JN_TLS_VERIFY_REQUIRED;
    else if (strcmp(s, "optional") == 0)
        tls->verify_client = JN_TLS_VERIFY_OPTIONAL;
    else {
        jn_ld_error(ld, value, "%s: invalid value %s (expected one of: required, optional)",
                    key->name, jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    tls->verify_client_pos = jn_ld_pos(ld, value);
}

static void jn_ld_set_subject_header(struct jn_ld *ld, const struct jn_ld_key *key,
                                     yaml_node_t *value, void *obj)
{
    struct jn_cfg_tls *tls = obj;
    char *s = jn_ld_string(ld, value, key->name, "a header name");
    if (s == NULL)
        return;
    if (!jn_ld_is_token(s, strlen(s))) {
        jn_ld_error(ld, value, "%s: %s is not a valid header name", key->name,
                    jn_ld_quote(ld, s, strlen(s)));
        return;
    }
    tls->client_subject_header = s;
    tls->client_subject_header_pos = jn_ld_pos(ld, value);
}

#define JN_HOUR_MS (60 * 60 * 1000)

static const struct jn_ld_key jn_tls_keys[] = {
    JN_LD_REQ("certificates", jn_ld_set_certificates, 0),
    JN_LD_KEY("min_version", jn_ld_set_tls_version, 0),
    JN_LD_KEY("ciphers", jn_ld_set_cipher_string, 0),
    JN_LD_KEY("ciphersuites", jn_ld_set_cipher_string, 0),
    JN_LD_KEY("client_ca", jn_ld_set_client_ca, 0),
    JN_LD_KEY("verify_client", jn_ld_set_verify_client, 0),
    JN_LD_KEY("client_subject_header", jn_ld_set_subject_header, 0),
    JN_LD_NUM("ticket_key_rotation", jn_ld_set_duration,
              offsetof(struct jn_cfg_tls, ticket_key_rotation), 1000, 7 * 24 * JN_HOUR_MS),
};
static const struct jn_ld_table jn_tls_table = JN_LD_TABLE("tls", jn_tls_keys);

/* verify_client and client_subject_header mean nothing without client_ca:
 * refused rather than silently ignored. */
static void jn_ld_tls_client_auth(struct jn_ld *ld, struct jn_cfg_tls *tls)
{
    if (tls->client_ca == NULL) {
        if (tls->verify_client != JN_TLS_VERIFY_NONE)
            jn_ld_error_at(ld, tls->verify_client_pos,
                           "verify_client: needs client_ca (the CAs that sign client "
                           "certificates)");
        if (tls->client_subject_header != NULL)
            jn_ld_error_at(ld, tls->client_subject_header_pos,
                           "client_subject_header: needs client_ca (no client certificate "
                           "is asked for without it)");
        return;
    }
    if (tls->verify_client == JN_TLS_VERIFY_NONE)
        tls->verify_client = JN_TLS_VERIFY_REQUIRED;
}

void jn_ld_set_tls(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct jn_cfg_listener *l = obj;
    struct jn_cfg_tls *tls = jn_ld_calloc(ld, 1, sizeof(*tls));
    size_t before = ld->nerrors;
    if (tls == NULL)
        return;
    tls->ticket_key_rotation = JN_HOUR_MS;
    if (!jn_ld_map(ld, value, &jn_tls_table, tls, NULL))
        return;
    jn_ld_tls_client_auth(ld, tls);
    /* A section with errors is not half used: the contexts are built from
     * a section that read cleanly (jn_ld_listener_tls). */
    if (ld->nerrors == before)
        l->tls = tls;
}

/* Where a fault of jn_tls_server_add is to be shown. */
static struct jn_cfg_pos jn_ld_tls_fault_pos(const struct jn_cfg_tls *tls,
                                             const struct jn_cfg_tls_cert *c,
                                             enum jn_tls_fault fault)
{
    switch (fault) {
    case JN_TLS_FAULT_CERT:
        return c->cert_pos;
    case JN_TLS_FAULT_KEY:
        return c->key_pos;
    case JN_TLS_FAULT_CIPHERS:
        return tls->ciphers_pos.line ? tls->ciphers_pos : c->pos;
    case JN_TLS_FAULT_CIPHERSUITES:
        return tls->ciphersuites_pos.line ? tls->ciphersuites_pos : c->pos;
    case JN_TLS_FAULT_CLIENT_CA:
        return tls->client_ca_pos;
    default:
        return c->pos;
    }
}

void jn_ld_listener_tls(struct jn_ld *ld, struct jn_cfg_listener *l)
{
    struct jn_cfg_tls *tls = l->tls;
    if (tls == NULL)
        return;
    /* Owned by the snapshot from here on. */
    tls->server = jn_tls_server_new(tls->ticket_key_rotation);
    if (tls->server == NULL) {
        jn_ld_oom(ld);
        return;
    }
    for (size_t i = 0; i < tls->ncerts; i++) {
        enum jn_tls_fault fault;
        char err[512];
        if (jn_tls_server_add(tls->server, tls, &tls->certs[i], &fault, err, sizeof(err)) == 0)
            continue;
        ld->nerrors++;
        jn_cfg_error(ld->errs, jn_ld_tls_fault_pos(tls, &tls->certs[i], fault), "tls: %s", err);
        /* A bad cipher string or CA file would be reported once per certificate. */
        if (fault == JN_TLS_FAULT_CIPHERS || fault == JN_TLS_FAULT_CIPHERSUITES ||
            fault == JN_TLS_FAULT_CLIENT_CA)
            return;
    }
}

/* ---- an upstream's tls: (TLS to its servers) ---- */

/* A file path of the upstream section, with its position. */
static void jn_ld_set_upstream_tls_file(struct jn_ld *ld, const struct jn_ld_key *key,
                                        yaml_node_t *value, void *obj)
{
    struct jn_cfg_upstream_tls *tls = obj;
    char *s = jn_ld_nonempty(ld, value, key->name, "a file path");
    if (s == NULL)
        return;
    struct jn_cfg_pos pos = jn_ld_pos(ld, value);
    if (strcmp(key->name, "ca") == 0) {
        tls->ca = s;
        tls->ca_pos = pos;
    } else if (strcmp(key->name, "cert") == 0) {
        tls->cert = s;
        tls->cert_pos = pos;
    } else {
        tls->key = s;
        tls->key_pos = pos;
    }
}

/* Returns NULL when s may be sent as SNI and checked against a
 * certificate's DNS names, else why not. */
static const char *jn_ld_sni_error(const char *s)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1)
        return "is an IP address (SNI carries host names only; leave sni out to check the "
               "server's IP address)";
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return "must be 1 to 253 characters long";
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63)
                return "labels (between dots) must be 1 to 63 characters long";
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            label++;
        } else {
            return "must be a host name (letters, digits, '-', '_' and dots)";
        }
    }
    return NULL;
}

static void jn_ld_set_sni(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                          void *obj)
{
    char *s = jn_ld_string(ld, value, key->name, "a host name");
    const char *err = s != NULL ? jn_ld_sni_error(s) : NULL;
    if (err != NULL)
        jn_ld_error(ld, value, "%s: %s %s", key->name, jn_ld_quote(ld, s, strlen(s)), err);
    else if (s != NULL)
        ((struct jn_cfg_upstream_tls *)obj)->sni = s;
}

enum { JN_UT_VERIFY, JN_UT_CA, JN_UT_SNI, JN_UT_CERT, JN_UT_KEY };
static const struct jn_ld_key jn_upstream_tls_keys[] = {
    [JN_UT_VERIFY] =
        JN_LD_KEY("verify", jn_ld_set_bool, offsetof(struct jn_cfg_upstream_tls, verify)),
    [JN_UT_CA] = JN_LD_KEY("ca", jn_ld_set_upstream_tls_file, 0),
    [JN_UT_SNI] = JN_LD_KEY("sni", jn_ld_set_sni, 0),
    [JN_UT_CERT] = JN_LD_KEY("cert", jn_ld_set_upstream_tls_file, 0),
    [JN_UT_KEY] = JN_LD_KEY("key", jn_ld_set_upstream_tls_file, 0),
};
static const struct jn_ld_table jn_upstream_tls_table = JN_LD_TABLE("tls", jn_upstream_tls_keys);

void jn_ld_set_upstream_tls(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                            void *obj)
{
    struct jn_cfg_upstream *up = obj;
    struct jn_cfg_upstream_tls *tls = jn_ld_calloc(ld, 1, sizeof(*tls));
    struct jn_ld_found found[JN_ARRAY_LEN(jn_upstream_tls_keys)];
    size_t before = ld->nerrors;
    if (tls == NULL)
        return;
    tls->verify = true;
    tls->pos = jn_ld_pos(ld, value);
    if (!jn_ld_map(ld, value, &jn_upstream_tls_table, tls, found))
        return;
    /* A client certificate is its two files, or none. */
    if (found[JN_UT_CERT].key != NULL && found[JN_UT_KEY].key == NULL)
        jn_ld_error(ld, found[JN_UT_CERT].key, "cert: needs key (the client certificate's key)");
    if (found[JN_UT_KEY].key != NULL && found[JN_UT_CERT].key == NULL)
        jn_ld_error(ld, found[JN_UT_KEY].key, "key: needs cert (the client certificate)");
    /* The context is built from a section that read cleanly (jn_ld_upstream_tls). */
    if (ld->nerrors == before)
        up->tls = tls;
}

void jn_ld_upstream_tls(struct jn_ld *ld, struct jn_cfg_upstream *up)
{
    struct jn_cfg_upstream_tls *tls = up->tls;
    enum jn_tls_client_fault fault;
    char err[512];
    if (tls == NULL)
        return;
    tls->client = jn_tls_client_new(tls, &fault, err, sizeof(err)); /* owned by the snapshot */
    if (tls->client != NULL)
        return;
    struct jn_cfg_pos pos = fault == JN_TLS_CLIENT_FAULT_CA     ? tls->ca_pos
                            : fault == JN_TLS_CLIENT_FAULT_CERT ? tls->cert_pos
                            : fault == JN_TLS_CLIENT_FAULT_KEY  ? tls->key_pos
                                                                : tls->pos;
    if (pos.line == 0)
        pos = tls->pos; /* the system's store: the section is all there is to show */
    jn_ld_error_at(ld, pos, "tls: %s", err);
}
