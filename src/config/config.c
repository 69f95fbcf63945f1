/* Configuration snapshots: loading (YAML parsing, then load.c's schema
 * walk, then the router), error collection, and the reference count that
 * frees a snapshot when its last user lets go. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/metrics.h"
#include "config/config.h"
#include "config/load.h"
#include "core/common.h"
#include "core/log.h"
#include "route/router.h"
#include "tls/tls.h"
#include "tls/tls_client.h"

/* Past this many, more errors only bury the first ones (and cost memory). */
#define JN_CFG_MAX_ERRORS 1000
/* Configuration files are small; a huge one is a mistake (say, a log file). */
#define JN_CFG_MAX_FILE (16u << 20)
/* Node visits allowed beyond the node count: what aliases may add. */
#define JN_CFG_ALIAS_BUDGET 100000

static void jn_cfg_push(struct jn_cfg_errors *errs, char *msg)
{
    if (errs->count == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        char **msgs = realloc(errs->msgs, cap * sizeof(*msgs));
        if (msgs == NULL) {
            free(msg); /* nothing better to do: the load fails anyway */
            return;
        }
        errs->msgs = msgs;
        errs->cap = cap;
    }
    errs->msgs[errs->count++] = msg;
}

void jn_cfg_error(struct jn_cfg_errors *errs, struct jn_cfg_pos pos, const char *fmt, ...)
{
    char text[1024], *msg;
    va_list ap;
    if (errs == NULL || errs->count >= JN_CFG_MAX_ERRORS)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (errs->count == JN_CFG_MAX_ERRORS - 1)
        snprintf(text, sizeof(text), "too many errors; the rest are not reported");
    const char *file = pos.file != NULL ? pos.file : "<config>";
    int n = pos.line == 0 ? snprintf(NULL, 0, "%s: %s", file, text)
                          : snprintf(NULL, 0, "%s:%u:%u: %s", file, pos.line, pos.column, text);
    if (n < 0 || (msg = malloc((size_t)n + 1)) == NULL)
        return;
    if (pos.line == 0)
        snprintf(msg, (size_t)n + 1, "%s: %s", file, text);
    else
        snprintf(msg, (size_t)n + 1, "%s:%u:%u: %s", file, pos.line, pos.column, text);
    jn_cfg_push(errs, msg);
}

void jn_cfg_errors_free(struct jn_cfg_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->count; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    *errs = (struct jn_cfg_errors){0};
}

static void jn_config_free(struct jn_config *cfg)
{
    for (struct jn_cfg_cleanup *c = cfg->cleanups; c != NULL; c = c->next)
        c->fn(c->arg);
    if (cfg->parent != NULL) { /* the rest is the parent's */
        struct jn_config *parent = cfg->parent;
        jn_arena_free(&cfg->arena);
        free(cfg);
        jn_config_unref(parent);
        return;
    }
    if (cfg->router != NULL)
        jn_router_free(cfg->router);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        pcre2_code_free(cfg->routes[i].match.regex);
        pcre2_code_free(cfg->routes[i].rewrite.regex);
    }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].tls != NULL)
            jn_tls_server_free(cfg->listeners[i].tls->server);
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (cfg->upstreams[i].tls != NULL)
            jn_tls_client_free(cfg->upstreams[i].tls->client);
    jn_arena_free(&cfg->arena);
    free(cfg);
}

struct jn_cfg_upstream *jn_cfg_find_upstream(const struct jn_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (strcmp(cfg->upstreams[i].name, name) == 0)
            return &cfg->upstreams[i];
    return NULL;
}

long jn_cfg_find_server(const struct jn_cfg_upstream *up, const struct sockaddr_storage *addr)
{
    for (size_t i = 0; i < up->nservers; i++)
        if (jn_sockaddr_equal(&up->servers[i].addr, addr))
            return (long)i;
    return -1;
}

int jn_config_on_free(struct jn_config *cfg, void (*fn)(void *arg), void *arg)
{
    struct jn_cfg_cleanup *c = jn_arena_calloc(&cfg->arena, 1, sizeof(*c));
    if (c == NULL)
        return JN_ENOMEM;
    *c = (struct jn_cfg_cleanup){ fn, arg, cfg->cleanups };
    cfg->cleanups = c;
    return 0;
}

struct jn_config *jn_config_derive(struct jn_config *base)
{
    struct jn_config *cfg = malloc(sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    *cfg = *base;
    jn_arena_init(&cfg->arena, 4096);
    cfg->cleanups = NULL;
    cfg->pools = NULL;
    atomic_init(&cfg->refs, 1);
    cfg->upstreams = jn_arena_calloc(&cfg->arena, base->nupstreams ? base->nupstreams : 1,
                                     sizeof(*cfg->upstreams));
    for (size_t i = 0; cfg->upstreams != NULL && i < base->nupstreams; i++) {
        struct jn_cfg_upstream *up = &cfg->upstreams[i];
        *up = base->upstreams[i];
        up->servers = jn_arena_calloc(&cfg->arena, up->nservers ? up->nservers : 1,
                                      sizeof(*up->servers));
        if (up->servers == NULL) {
            cfg->upstreams = NULL;
            break;
        }
        memcpy(up->servers, base->upstreams[i].servers, up->nservers * sizeof(*up->servers));
    }
    if (cfg->upstreams == NULL) {
        jn_arena_free(&cfg->arena);
        free(cfg);
        return NULL;
    }
    jn_config_ref(base);
    cfg->parent = base;
    return cfg;
}

void jn_config_ref(struct jn_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
}

void jn_config_unref(struct jn_config *cfg)
{
    /* acq_rel: every user's reads of the snapshot happen before the free. */
    if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        jn_config_free(cfg);
}

/* The defaults documented in docs/configuration.md. */
static bool jn_config_defaults(struct jn_config *cfg)
{
    cfg->workers = 0;
    cfg->timeouts = (struct jn_cfg_timeouts){
        .client_header = 10000,
        .client_body = 30000,
        .client_idle = 60000,
        .upstream_connect = 5000,
        .upstream_response = 60000,
        .upstream_idle = 60000,
        .drain = 10000,
        .tunnel_idle = 60 * 60 * 1000,
    };
    cfg->http = (struct jn_cfg_http){
        .max_request_line = 8 << 10,
        .max_header_size = 32 << 10,
        .max_headers = 100,
        .merge_slashes = true,
        .escaped_slashes = JN_SLASH_KEEP,
    };
    cfg->http2 = (struct jn_cfg_http2){
        .enabled = true,
        .max_concurrent_streams = 100,
        .max_header_list_size = 64 << 10,
        .initial_window_size = 64 << 10,
        .connection_window_size = 1 << 20,
        .max_continuations = 8,
        .reset_burst = 200,
        .reset_rate = 50,
        .max_control_frames = 1000,
    };
    cfg->access_log.path = jn_arena_strdup(&cfg->arena, "stdout");
    cfg->access_log.format = JN_LOGFMT_JSON;
    cfg->error_log.path = jn_arena_strdup(&cfg->arena, "stderr");
    cfg->error_log.level = JN_LOG_INFO;
    cfg->metrics.enabled = true;
    return cfg->access_log.path != NULL && cfg->error_log.path != NULL;
}

static struct jn_config *jn_config_new(const char *name)
{
    struct jn_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    jn_arena_init(&cfg->arena, 16 << 10);
    atomic_init(&cfg->refs, 1);
    cfg->generation = 1;
    cfg->file = jn_arena_strdup(&cfg->arena, name != NULL ? name : "<config>");
    if (cfg->file == NULL || !jn_config_defaults(cfg)) {
        jn_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Reader errors (bad encoding, control bytes) carry a byte offset only. */
static struct jn_cfg_pos jn_cfg_offset_pos(const char *file, const char *data, size_t len,
                                           size_t offset)
{
    struct jn_cfg_pos pos = {file, 1, 1};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (data[i] == '\n') {
            pos.line++;
            pos.column = 1;
        } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
            pos.column++; /* count characters, as libyaml's marks do */
        }
    }
    return pos;
}

static uint32_t jn_cfg_mark(size_t v)
{
    return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)v + 1;
}

static void jn_cfg_yaml_error(struct jn_ld *ld, const yaml_parser_t *p, const char *data,
                              size_t len)
{
    const char *file = ld->cfg->file, *problem = p->problem ? p->problem : "unknown error";
    struct jn_cfg_pos pos = {file, jn_cfg_mark(p->problem_mark.line),
                             jn_cfg_mark(p->problem_mark.column)};
    ld->nerrors++;
    if (p->error == YAML_MEMORY_ERROR) {
        jn_cfg_error(ld->errs, (struct jn_cfg_pos){file, 0, 0}, "out of memory parsing YAML");
    } else if (p->error == YAML_READER_ERROR) {
        pos = jn_cfg_offset_pos(file, data, len, p->problem_offset);
        jn_cfg_error(ld->errs, pos, "invalid input: %s", problem);
    } else if (p->context != NULL) {
        jn_cfg_error(ld->errs, pos, "YAML syntax error: %s (%s that starts at line %u, column %u)",
                     problem, p->context, jn_cfg_mark(p->context_mark.line),
                     jn_cfg_mark(p->context_mark.column));
    } else {
        jn_cfg_error(ld->errs, pos, "YAML syntax error: %s", problem);
    }
}

/* One file, one snapshot: a second document would be silently ignored. */
static void jn_config_single_document(struct jn_ld *ld, yaml_parser_t *parser, const char *data,
                                      size_t len)
{
    yaml_document_t next;
    if (!yaml_parser_load(parser, &next)) {
        jn_cfg_yaml_error(ld, parser, data, len);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&next);
    if (root != NULL)
        jn_ld_error(ld, root, "only one YAML document is allowed");
    yaml_document_delete(&next);
}

static void jn_config_parse(struct jn_ld *ld, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        jn_ld_oom(ld);
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        jn_cfg_yaml_error(ld, &parser, data, len);
        yaml_parser_delete(&parser);
        return;
    }
    ld->doc = &doc;
    ld->budget = (size_t)(doc.nodes.top - doc.nodes.start) + JN_CFG_ALIAS_BUDGET;
    jn_ld_document(ld, yaml_document_get_root_node(&doc));
    if (ld->nerrors == 0)
        jn_ld_document_json(ld, yaml_document_get_root_node(&doc));
    jn_config_single_document(ld, &parser, data, len);
    ld->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}

struct jn_config *jn_config_load_buffer(const char *name, const char *data, size_t len,
                                        struct jn_cfg_errors *errs)
{
    struct jn_config *cfg = jn_config_new(name);
    if (cfg == NULL) {
        jn_cfg_error(errs, (struct jn_cfg_pos){name, 0, 0}, "out of memory");
        return NULL;
    }
    struct jn_ld ld = {.cfg = cfg, .errs = errs};
    jn_config_parse(&ld, data != NULL ? data : "", data != NULL ? len : 0);
    /* The router sees only configurations that are otherwise valid, so it
     * never has to cope with half-filled routes. */
    if (ld.nerrors == 0 && (cfg->router = jn_router_build(cfg, errs)) == NULL)
        ld.nerrors++;
    if (ld.nerrors != 0) {
        jn_config_free(cfg);
        return NULL;
    }
    jn_metrics_assign(cfg); /* counters of names it shares with older snapshots go on */
    return cfg;
}

/* Reads all of path into a malloc'd buffer; NULL (reported) on failure. */
static char *jn_config_read(const char *path, size_t *len, struct jn_cfg_errors *errs)
{
    struct jn_cfg_pos pos = {path, 0, 0};
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL) {
        jn_cfg_error(errs, pos, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            /* Room for one byte past the limit tells "at the limit" from "beyond". */
            size_t want = JN_MIN(cap ? cap * 2 : 4096, (size_t)JN_CFG_MAX_FILE + 1);
            char *grown = cap <= JN_CFG_MAX_FILE ? realloc(buf, want) : NULL;
            if (grown == NULL) {
                jn_cfg_error(errs, pos,
                             cap > JN_CFG_MAX_FILE ? "file is larger than 16 MiB"
                                                   : "out of memory");
                goto fail;
            }
            buf = grown;
            cap = want;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        jn_cfg_error(errs, pos, "cannot read: %s", strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

struct jn_config *jn_config_load_file(const char *path, struct jn_cfg_errors *errs)
{
    size_t len;
    char *data = jn_config_read(path, &len, errs);
    if (data == NULL)
        return NULL;
    struct jn_config *cfg = jn_config_load_buffer(path, data, len, errs);
    free(data);
    return cfg;
}
