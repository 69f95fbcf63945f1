/* The admin: section: where the admin API listens and the file holding its
 * bearer token (docs/operations.md). The token is read at load, so a reload
 * picks up a new one. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config/load.h"
#include "core/common.h"

/* A token file is a few dozen bytes; anything large is a wrong path. */
#define JN_ADMIN_TOKEN_MAX 4096

static void jn_ld_set_admin_address(struct jn_ld *ld, const struct jn_ld_key *key,
                                    yaml_node_t *value, void *obj)
{
    struct jn_cfg_admin *a = obj;
    const char *err = NULL;
    char *s = jn_ld_string(ld, value, key->name, "an address");
    if (s == NULL)
        return;
    if (jn_parse_address(s, &a->addr, &a->addrlen, &err) != JN_OK) {
        jn_ld_error(ld, value, "address: invalid address %s: %s", jn_ld_quote(ld, s, strlen(s)),
                    err);
        return;
    }
    a->address = s;
}

/* Drops one trailing "\n" or "\r\n": editors add it, and it is never part
 * of a token. */
size_t jn_cfg_token_trim(const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '\n')
        len--;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    return len;
}

/* Reads the token into the snapshot; reports at the value's position. */
static void jn_ld_read_token(struct jn_ld *ld, yaml_node_t *value, struct jn_cfg_admin *a)
{
    char buf[JN_ADMIN_TOKEN_MAX + 1];
    FILE *f = fopen(a->token_file, "rb");
    if (f == NULL) {
        jn_ld_error(ld, value, "token_file: cannot open %s: %s",
                    jn_ld_quote(ld, a->token_file, strlen(a->token_file)), strerror(errno));
        return;
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || n > JN_ADMIN_TOKEN_MAX) {
        jn_ld_error(ld, value, "token_file: %s", failed ? "cannot read the file"
                                                        : "the file is larger than 4 KiB");
        return;
    }
    n = jn_cfg_token_trim(buf, n);
    if (n == 0 || memchr(buf, '\n', n) != NULL || memchr(buf, '\0', n) != NULL) {
        jn_ld_error(ld, value, "token_file: %s",
                    n == 0 ? "the file is empty (an empty token would let anyone in)"
                           : "the token must be one line without NUL bytes");
        return;
    }
    a->token = jn_ld_strdup(ld, buf, n);
    a->token_len = a->token != NULL ? n : 0;
    memset(buf, 0, sizeof(buf));
}

static void jn_ld_set_token_file(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value,
                                 void *obj)
{
    struct jn_cfg_admin *a = obj;
    a->token_file = jn_ld_nonempty(ld, value, key->name, "a file path");
    if (a->token_file != NULL)
        jn_ld_read_token(ld, value, a);
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: only this host can connect. */
static bool jn_ld_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

enum { JN_ADM_ADDRESS, JN_ADM_TOKEN_FILE };
static const struct jn_ld_key jn_admin_keys[] = {
    [JN_ADM_ADDRESS] = JN_LD_REQ("address", jn_ld_set_admin_address, 0),
    [JN_ADM_TOKEN_FILE] = JN_LD_KEY("token_file", jn_ld_set_token_file, 0),
};
static const struct jn_ld_table jn_admin_table = JN_LD_TABLE("admin", jn_admin_keys);

void jn_ld_set_admin(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct jn_cfg_admin *a = &((struct jn_config *)obj)->admin;
    struct jn_ld_found found[JN_ARRAY_LEN(jn_admin_keys)];
    if (!jn_ld_map(ld, value, &jn_admin_table, a, found))
        return;
    a->enabled = true;
    a->pos = jn_ld_pos(ld, value);
    /* Anyone who can reach a non-loopback address could change the pool:
     * such a listener is refused rather than opened without a token. */
    if (a->address != NULL && found[JN_ADM_TOKEN_FILE].key == NULL && !jn_ld_is_loopback(&a->addr))
        jn_ld_error(ld, found[JN_ADM_ADDRESS].value,
                    "admin: %s is not a loopback address, so a token_file is required "
                    "(there is no default token)",
                    jn_ld_quote(ld, a->address, strlen(a->address)));
}
