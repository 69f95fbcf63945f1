/* The admin API's changes: servers added, changed and removed at run time,
 * and reloads of the file. Every body is checked whole before anything is
 * asked of the runtime, so a refused request changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/api.h"
#include "core/log.h"
#include "server/runtime.h"

/* Parses the body as one JSON object; false (rs set to 400) otherwise. */
static bool parse_body(const struct jn_admin_request *rq, struct jn_admin_response *rs,
                       json_t **out)
{
    json_error_t e;
    *out = NULL;
    if (rq->body_len == 0) {
        jn_admin_reply_error(rs, 400, "a JSON object is required as the request body");
        return false;
    }
    json_t *v = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &e);
    if (v == NULL) {
        jn_admin_reply_error(rs, 400, "invalid JSON at line %d, column %d: %s", e.line,
                             e.column, e.text);
        return false;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        jn_admin_reply_error(rs, 400, "the body must be a JSON object");
        return false;
    }
    *out = v;
    return true;
}

/* Reads the optional weight and drain of obj into c; false (rs set) when a
 * field is of the wrong type or out of range, or not one of allowed. */
static bool read_fields(json_t *obj, const char *const *allowed, size_t nallowed,
                        struct jn_server_change *c, struct jn_admin_response *rs)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < nallowed; i++)
            known = known || strcmp(key, allowed[i]) == 0;
        if (!known) {
            jn_admin_reply_error(rs, 400, "unknown field '%.64s'", key);
            return false;
        }
    }
    json_t *w = json_object_get(obj, "weight"), *d = json_object_get(obj, "drain");
    if (w != NULL && (!json_is_integer(w) || json_integer_value(w) < 1 ||
                      json_integer_value(w) > 1000)) {
        jn_admin_reply_error(rs, 400, "weight: expected an integer from 1 to 1000");
        return false;
    }
    if (d != NULL && !json_is_boolean(d)) {
        jn_admin_reply_error(rs, 400, "drain: expected true or false");
        return false;
    }
    c->weight = w != NULL ? (int64_t)json_integer_value(w) : -1;
    c->drain = d != NULL ? json_is_true(d) : -1;
    return true;
}

/* The runtime's answer as HTTP: 400, 404, 409, or 501 while the runtime
 * cannot change servers. */
static int change_status(int rc)
{
    switch (rc) {
    case JN_EINVAL: return 400;
    case JN_ENOTFOUND: return 404;
    case JN_EEXISTS: return 409;
    case JN_ENOTSUP: return 501;
    default: return 500;
    }
}

/* Applies c; on success answers the server as it is now with status. */
static void apply(const struct jn_server_change *c, int status, struct jn_admin_response *rs)
{
    char err[256] = "";
    int rc = jn_runtime_change(c, err, sizeof(err));
    if (rc != 0) {
        jn_admin_reply_error(rs, change_status(rc), "%s", err[0] ? err : "change refused");
        return;
    }
    static const char *const verbs[] = { "added", "changed", "removed" };
    jn_log(JN_LOG_INFO, "admin: upstream %s: server %s %s", c->upstream, c->address,
           verbs[c->op]);
    if (c->op == JN_SERVER_REMOVE) {
        jn_admin_reply_json(rs, 200, json_pack("{s:s}", "removed", c->address));
        return;
    }
    struct jn_config *cfg = jn_runtime_config();
    long u = cfg != NULL ? jn_admin_find_upstream(cfg, c->upstream) : -1;
    long j = u >= 0 ? jn_admin_find_server(cfg, (size_t)u, c->address) : -1;
    if (j < 0)
        jn_admin_reply_error(rs, 500, "the change was applied but the server is not found");
    else
        jn_admin_reply_json(rs, status, jn_admin_server_json(cfg, (size_t)u, (size_t)j));
    jn_config_unref(cfg);
}

/* Checks the upstream (and server) exist in the current snapshot, so that
 * the answer is a 404 whatever the runtime supports. *address becomes the
 * server's address as the snapshot writes it. */
static bool find_target(const char *upstream, const char **address, char *buf, size_t cap,
                        struct jn_admin_response *rs)
{
    struct jn_config *cfg = jn_runtime_config();
    long u = cfg != NULL ? jn_admin_find_upstream(cfg, upstream) : -1;
    long j = u >= 0 && address != NULL ? jn_admin_find_server(cfg, (size_t)u, *address) : -1;
    bool ok = u >= 0 && (address == NULL || j >= 0);
    if (u < 0)
        jn_admin_reply_error(rs, 404, "no upstream named '%s'", upstream);
    else if (!ok)
        jn_admin_reply_error(rs, 404, "upstream %s has no server %s", upstream, *address);
    else if (address != NULL) {
        snprintf(buf, cap, "%s", cfg->upstreams[u].servers[j].address);
        *address = buf;
    }
    jn_config_unref(cfg);
    return ok;
}

static bool address_ok(const char *address, struct jn_admin_response *rs)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *err = NULL;
    if (jn_parse_address(address, &ss, &len, &err) != 0) {
        jn_admin_reply_error(rs, 400, "address: invalid address '%.100s': %s", address, err);
        return false;
    }
    return true;
}

/* True (rs set to 409) when the upstream has the address already. */
static bool duplicate(const char *upstream, const char *address, struct jn_admin_response *rs)
{
    struct jn_config *cfg = jn_runtime_config();
    long u = cfg != NULL ? jn_admin_find_upstream(cfg, upstream) : -1;
    long j = u >= 0 ? jn_admin_find_server(cfg, (size_t)u, address) : -1;
    if (j >= 0)
        jn_admin_reply_error(rs, 409, "upstream %s already has server %s", upstream,
                             cfg->upstreams[u].servers[j].address);
    jn_config_unref(cfg);
    return j >= 0;
}

void jn_admin_add_server(const char *upstream, const struct jn_admin_request *rq,
                         struct jn_admin_response *rs)
{
    static const char *const allowed[] = { "address", "weight", "drain" };
    struct jn_server_change c = { .op = JN_SERVER_ADD, .upstream = upstream };
    json_t *body;
    if (!parse_body(rq, rs, &body))
        return;
    const char *address = json_string_value(json_object_get(body, "address"));
    if (!read_fields(body, allowed, JN_ARRAY_LEN(allowed), &c, rs)) {
        /* rs says why */
    } else if (address == NULL) {
        jn_admin_reply_error(rs, 400, "address: required, a string such as \"127.0.0.1:9002\"");
    } else if (address_ok(address, rs) && find_target(upstream, NULL, NULL, 0, rs) &&
               !duplicate(upstream, address, rs)) {
        c.address = address;
        apply(&c, 201, rs);
    }
    json_decref(body);
}

void jn_admin_set_server(const char *upstream, const char *address,
                         const struct jn_admin_request *rq, struct jn_admin_response *rs)
{
    static const char *const allowed[] = { "weight", "drain" };
    struct jn_server_change c = { .op = JN_SERVER_SET, .upstream = upstream };
    char buf[JN_ADMIN_SEGMENT_MAX + 1];
    json_t *body;
    if (!parse_body(rq, rs, &body))
        return;
    if (!read_fields(body, allowed, JN_ARRAY_LEN(allowed), &c, rs)) {
        /* rs says why */
    } else if (c.weight < 0 && c.drain < 0) {
        jn_admin_reply_error(rs, 400, "nothing to change: give weight and/or drain");
    } else if (find_target(upstream, &address, buf, sizeof(buf), rs)) {
        c.address = address;
        apply(&c, 200, rs);
    }
    json_decref(body);
}

void jn_admin_remove_server(const char *upstream, const char *address,
                            const struct jn_admin_request *rq, struct jn_admin_response *rs)
{
    struct jn_server_change c = { .op = JN_SERVER_REMOVE, .upstream = upstream,
                                  .weight = -1, .drain = -1 };
    char buf[JN_ADMIN_SEGMENT_MAX + 1];
    if (rq->body_len != 0) {
        jn_admin_reply_error(rs, 400, "DELETE takes no body");
        return;
    }
    if (find_target(upstream, &address, buf, sizeof(buf), rs)) {
        c.address = address;
        apply(&c, 200, rs);
    }
}

void jn_admin_reload(struct jn_admin_response *rs)
{
    struct jn_cfg_errors errs = { 0 };
    int rc = jn_runtime_reload(&errs);
    if (rc == 0) {
        struct jn_runtime_info info;
        jn_runtime_get_info(&info);
        jn_admin_reply_json(rs, 200, json_pack("{s:b, s:I}", "applied", 1, "generation",
                                               (json_int_t)info.generation));
    } else {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < errs.count; i++)
            json_array_append_new(list, json_string(errs.msgs[i]));
        int status = rc == JN_EINVAL ? 400 : rc == JN_ENOTSUP ? 501 : 500;
        jn_admin_reply_json(rs, status, json_pack("{s:b, s:o*}", "applied", 0, "errors", list));
    }
    jn_cfg_errors_free(&errs);
}
