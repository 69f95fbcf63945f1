/* The process's running state: which snapshot is in service, reloads of the
 * file, and server changes made at run time (docs/operations.md).
 *
 * The file's snapshot is the base. Runtime changes are kept as an overlay
 * of per-server edits; each change derives a new snapshot from the base
 * with the whole overlay applied (jn_config_derive shares everything but
 * the upstreams), so policies' state (rate-limit counters, key caches)
 * lives on through changes. A reload loads a new base and keeps the overlay
 * entries the file did not contradict: for each server, the last writer
 * wins. */
#include "server/runtime.h"

#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/common.h"
#include "core/log.h"
#include "health/check.h"
#include "health/state.h"
#include "policy/chain.h"
#include "server/worker.h"

enum ov_kind { OV_ADDED, OV_CHANGED, OV_REMOVED };

/* One server edited at run time. */
struct ov_entry {
    char *upstream;   /* owned */
    char *address;    /* owned: as the first change wrote it */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum ov_kind kind;
    uint32_t weight;  /* ADDED, CHANGED: what runs */
    bool drain;
    /* The file's entry for the server when the edit was made: a reload that
     * finds it otherwise means the file was edited since, and wins. */
    bool file_has;
    uint32_t file_weight;
    bool file_drain;
};

struct overlay {
    struct ov_entry *v; /* owned */
    size_t n;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct jn_config *base;    /* one reference: the file's snapshot */
static struct jn_config *current; /* one reference: what runs (base or derived from it) */
static struct overlay overlay;
static char *file;                /* owned */
static struct jn_runtime_info info;

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void overlay_free(struct overlay *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].upstream);
        free(o->v[i].address);
    }
    free(o->v);
    *o = (struct overlay){ 0 };
}

static int overlay_copy(struct overlay *dst, const struct overlay *src)
{
    *dst = (struct overlay){ .v = calloc(src->n + 1, sizeof(*dst->v)) };
    if (dst->v == NULL)
        return JN_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        struct ov_entry *e = &dst->v[dst->n];
        *e = src->v[i];
        e->upstream = strdup(src->v[i].upstream);
        e->address = strdup(src->v[i].address);
        dst->n++;
        if (e->upstream == NULL || e->address == NULL) {
            overlay_free(dst);
            return JN_ENOMEM;
        }
    }
    return 0;
}

static const struct jn_cfg_server *find_server(const struct jn_cfg_upstream *up,
                                               const struct sockaddr_storage *addr)
{
    long i = up != NULL ? jn_cfg_find_server(up, addr) : -1;
    return i >= 0 ? &up->servers[i] : NULL;
}

static struct ov_entry *find_entry(struct overlay *o, const char *upstream,
                                   const struct sockaddr_storage *addr)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->v[i].upstream, upstream) == 0 && jn_sockaddr_equal(&o->v[i].addr, addr))
            return &o->v[i];
    return NULL;
}

static void entry_drop(struct overlay *o, struct ov_entry *e)
{
    free(e->upstream);
    free(e->address);
    *e = o->v[--o->n];
}

/* ---- applying the overlay to a snapshot ---- */

/* Rebuilds up's servers in cfg's arena: the file's, minus removed ones, with
 * edited weights and drains, then the added ones. */
static int apply_upstream(struct jn_config *cfg, struct jn_cfg_upstream *up,
                          const struct overlay *o)
{
    size_t extra = 0;
    for (size_t i = 0; i < o->n; i++)
        extra += o->v[i].kind == OV_ADDED && strcmp(o->v[i].upstream, up->name) == 0;
    struct jn_cfg_server *v = jn_arena_calloc(&cfg->arena, up->nservers + extra + 1, sizeof(*v));
    if (v == NULL)
        return JN_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < up->nservers; i++) {
        const struct jn_cfg_server *s = &up->servers[i];
        struct ov_entry *e = find_entry((struct overlay *)o, up->name, &s->addr);
        if (e != NULL && e->kind == OV_REMOVED)
            continue;
        v[n] = *s;
        if (e != NULL) {
            v[n].weight = e->weight;
            v[n].drain = e->drain;
        }
        n++;
    }
    for (size_t i = 0; i < o->n; i++) {
        const struct ov_entry *e = &o->v[i];
        if (e->kind != OV_ADDED || strcmp(e->upstream, up->name) != 0)
            continue;
        char *address = jn_arena_strdup(&cfg->arena, e->address);
        if (address == NULL)
            return JN_ENOMEM;
        v[n++] = (struct jn_cfg_server){ .address = address, .addr = e->addr,
                                         .addrlen = e->addrlen, .weight = e->weight,
                                         .drain = e->drain,
                                         .pos = { .file = "admin API" } };
    }
    up->servers = v;
    up->nservers = n;
    return 0;
}

/* The snapshot to run: b itself (one more reference) when o is empty, else
 * one derived from it. NULL when out of memory. */
static struct jn_config *with_overlay(struct jn_config *b, const struct overlay *o)
{
    if (o->n == 0) {
        jn_config_ref(b);
        return b;
    }
    struct jn_config *cfg = jn_config_derive(b);
    for (size_t i = 0; cfg != NULL && i < cfg->nupstreams; i++) {
        if (apply_upstream(cfg, &cfg->upstreams[i], o) != 0) {
            jn_config_unref(cfg);
            cfg = NULL;
        }
    }
    return cfg;
}

/* Puts cfg in service: shared pool state (carried over from what runs),
 * then every worker, then the health checker. On failure nothing changed
 * and err says why. Takes over the caller's reference on success. */
static int publish(struct jn_config *cfg, char *err, size_t errlen)
{
    cfg->generation = info.generation + 1;
    /* The checker stops first, so that no verdict lands in the old state
     * after it was carried over; it borrows the snapshot it probes. */
    jn_health_stop();
    int rc = jn_pools_create(cfg, current);
    if (rc != 0)
        snprintf(err, errlen, "out of memory");
    else
        rc = jn_workers_swap(cfg, err, errlen);
    struct jn_config *probed = rc == 0 ? cfg : current;
    if (jn_health_start(probed) != 0)
        jn_log(JN_LOG_ERR, "cannot restart the health check thread: servers keep their last "
                           "verdict");
    if (rc != 0)
        return rc;
    jn_config_unref(current);
    current = cfg;
    info.generation = cfg->generation;
    return 0;
}

void jn_runtime_init(struct jn_config *cfg, const char *path, uint32_t nworkers)
{
    jn_config_ref(cfg);
    base = cfg;
    jn_config_ref(cfg);
    current = cfg;
    file = path != NULL ? strdup(path) : NULL;
    info = (struct jn_runtime_info){ .generation = cfg->generation, .started_unix_ms = wall_ms(),
                                     .workers = nworkers };
}

void jn_runtime_destroy(void)
{
    pthread_mutex_lock(&lock);
    jn_config_unref(current);
    jn_config_unref(base);
    current = base = NULL;
    overlay_free(&overlay);
    free(file);
    file = NULL;
    pthread_mutex_unlock(&lock);
}

struct jn_config *jn_runtime_config(void)
{
    pthread_mutex_lock(&lock);
    struct jn_config *cfg = current;
    if (cfg != NULL)
        jn_config_ref(cfg);
    pthread_mutex_unlock(&lock);
    return cfg;
}

void jn_runtime_get_info(struct jn_runtime_info *out)
{
    pthread_mutex_lock(&lock);
    *out = info;
    pthread_mutex_unlock(&lock);
}

/* ---- reload ---- */

/* Keeps the entries of o whose server the new file left as it was. */
static void overlay_rebase(struct overlay *o, const struct jn_config *b)
{
    for (size_t i = 0; i < o->n;) {
        struct ov_entry *e = &o->v[i];
        const struct jn_cfg_upstream *up = jn_cfg_find_upstream(b, e->upstream);
        const struct jn_cfg_server *s = find_server(up, &e->addr);
        bool same = up != NULL && (s != NULL) == e->file_has &&
                    (s == NULL || (s->weight == e->file_weight && s->drain == e->file_drain));
        if (same) {
            i++;
        } else {
            jn_log(JN_LOG_INFO, "reload: upstream %s: server %s: the file's entry wins over the "
                                "runtime change", e->upstream, e->address);
            entry_drop(o, e);
        }
    }
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void warn_restart_only(const struct jn_config *old, const struct jn_config *cfg)
{
    if (old->workers != cfg->workers)
        jn_log(JN_LOG_WARN, "reload: workers changed; it takes a restart (or an upgrade)");
    if (strcmp(old->error_log.path, cfg->error_log.path) != 0 ||
        old->error_log.level != cfg->error_log.level)
        jn_log(JN_LOG_WARN, "reload: error_log changed; it takes a restart (or an upgrade)");
    if (!same_str(old->admin.address, cfg->admin.address))
        jn_log(JN_LOG_WARN, "reload: admin address changed; it takes a restart (or an upgrade)");
    if (!same_str(old->metrics.address, cfg->metrics.address))
        jn_log(JN_LOG_WARN, "reload: metrics address changed; it takes a restart (or an "
                            "upgrade)");
    if (!same_str(old->upgrade_socket, cfg->upgrade_socket))
        jn_log(JN_LOG_WARN, "reload: upgrade_socket changed; it takes a restart");
}

static int reload_locked(struct jn_cfg_errors *errs)
{
    struct jn_config *b = jn_config_load_file(file, errs);
    if (b == NULL) {
        if (errs->count == 0)
            jn_cfg_error(errs, (struct jn_cfg_pos){ .file = file }, "cannot load configuration");
        return JN_EINVAL;
    }
    char err[512] = "";
    struct overlay o;
    struct jn_config *cfg = NULL;
    int rc = overlay_copy(&o, &overlay);
    if (rc == 0) {
        overlay_rebase(&o, b);
        if (jn_policies_start(b) != 0) {
            snprintf(err, sizeof(err), "a policy could not start (see the error log)");
            rc = JN_EIO;
        } else if ((cfg = with_overlay(b, &o)) == NULL) {
            snprintf(err, sizeof(err), "out of memory");
            rc = JN_ENOMEM;
        }
    } else {
        snprintf(err, sizeof(err), "out of memory");
    }
    if (rc == 0) {
        warn_restart_only(current, cfg);
        rc = publish(cfg, err, sizeof(err));
    }
    if (rc != 0) {
        jn_cfg_error(errs, (struct jn_cfg_pos){ .file = file }, "%s", err);
        jn_config_unref(cfg);
        jn_config_unref(b);
        overlay_free(&o);
        return JN_EINVAL;
    }
    jn_config_unref(base);
    base = b;
    overlay_free(&overlay);
    overlay = o;
    return 0;
}

int jn_runtime_reload(struct jn_cfg_errors *errs)
{
    pthread_mutex_lock(&lock);
    int rc = reload_locked(errs);
    info.last_reload_unix_ms = wall_ms();
    info.last_reload_ok = rc == 0;
    if (rc == 0) {
        info.reloads_ok++;
        jn_log(JN_LOG_INFO, "configuration reloaded from %s: generation %llu", file,
               (unsigned long long)info.generation);
    } else {
        info.reloads_failed++;
        for (size_t i = 0; i < errs->count; i++)
            jn_log(JN_LOG_ERR, "%s", errs->msgs[i]);
        jn_log(JN_LOG_ERR, "configuration reload failed (%zu error%s): still serving generation "
                           "%llu", errs->count, errs->count == 1 ? "" : "s",
               (unsigned long long)info.generation);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

/* ---- runtime server changes ---- */

/* Checks c against what runs and records it in o. */
static int overlay_edit(struct overlay *o, const struct jn_server_change *c,
                        const struct sockaddr_storage *addr, socklen_t len, char *err,
                        size_t errlen)
{
    const struct jn_cfg_upstream *up = jn_cfg_find_upstream(current, c->upstream);
    if (up == NULL) {
        snprintf(err, errlen, "no upstream named %s", c->upstream);
        return JN_ENOTFOUND;
    }
    const struct jn_cfg_server *now = find_server(up, addr);
    if (c->op == JN_SERVER_ADD && now != NULL) {
        snprintf(err, errlen, "upstream %s already has server %s", c->upstream, now->address);
        return JN_EEXISTS;
    }
    if (c->op != JN_SERVER_ADD && now == NULL) {
        snprintf(err, errlen, "upstream %s has no server %s", c->upstream, c->address);
        return JN_ENOTFOUND;
    }
    if (c->op == JN_SERVER_REMOVE && up->nservers == 1) {
        snprintf(err, errlen, "server %s is the last of upstream %s: add another one first",
                 c->address, c->upstream);
        return JN_EINVAL;
    }
    struct ov_entry *e = find_entry(o, c->upstream, addr);
    if (e == NULL) {
        const struct jn_cfg_server *f = find_server(jn_cfg_find_upstream(base, c->upstream), addr);
        e = &o->v[o->n++]; /* room for one more was made by overlay_copy */
        *e = (struct ov_entry){ .upstream = strdup(c->upstream), .address = strdup(c->address),
                                .addr = *addr, .addrlen = len, .kind = OV_CHANGED,
                                .weight = now != NULL ? now->weight : 1,
                                .drain = now != NULL && now->drain, .file_has = f != NULL,
                                .file_weight = f != NULL ? f->weight : 0,
                                .file_drain = f != NULL && f->drain };
        if (e->upstream == NULL || e->address == NULL) {
            snprintf(err, errlen, "out of memory");
            return JN_ENOMEM;
        }
        if (f == NULL)
            e->kind = OV_ADDED;
    }
    if (c->op == JN_SERVER_REMOVE) {
        if (e->file_has)
            e->kind = OV_REMOVED;
        else
            entry_drop(o, e); /* added at run time: nothing is left of it */
        return 0;
    }
    if (c->op == JN_SERVER_ADD) { /* a removed file server comes back, as written now */
        e->kind = e->file_has ? OV_CHANGED : OV_ADDED;
        e->weight = 1;
        e->drain = false;
    }
    if (c->weight >= 0)
        e->weight = (uint32_t)c->weight;
    if (c->drain >= 0)
        e->drain = c->drain != 0;
    if (e->kind == OV_CHANGED && e->weight == e->file_weight && e->drain == e->file_drain)
        entry_drop(o, e); /* back to the file's: no edit left */
    return 0;
}

static int check_change(const struct jn_server_change *c, struct sockaddr_storage *addr,
                        socklen_t *len, char *err, size_t errlen)
{
    const char *why = NULL;
    if (c->upstream == NULL || c->address == NULL) {
        snprintf(err, errlen, "an upstream and a server address are needed");
        return JN_EINVAL;
    }
    if (jn_parse_address(c->address, addr, len, &why) != 0) {
        snprintf(err, errlen, "address %s: %s", c->address, why);
        return JN_EINVAL;
    }
    in_port_t port = addr->ss_family == AF_INET6
                         ? ((struct sockaddr_in6 *)addr)->sin6_port
                         : ((struct sockaddr_in *)addr)->sin_port;
    if (port == 0 || c->address[0] == ':') {
        snprintf(err, errlen, "address %s: a server needs a host and a port other than 0",
                 c->address);
        return JN_EINVAL;
    }
    if (c->weight != -1 && (c->weight < 1 || c->weight > 1000)) {
        snprintf(err, errlen, "weight: %lld is out of range (1 to 1000)", (long long)c->weight);
        return JN_EINVAL;
    }
    if (c->drain < -1 || c->drain > 1) {
        snprintf(err, errlen, "drain: expected true or false");
        return JN_EINVAL;
    }
    return 0;
}

static const char *op_name(enum jn_server_op op)
{
    return op == JN_SERVER_ADD ? "added" : op == JN_SERVER_SET ? "changed" : "removed";
}

int jn_runtime_change(const struct jn_server_change *c, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t len = 0;
    int rc = check_change(c, &addr, &len, err, errlen);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&lock);
    struct overlay o;
    rc = overlay_copy(&o, &overlay);
    if (rc != 0)
        snprintf(err, errlen, "out of memory");
    else
        rc = overlay_edit(&o, c, &addr, len, err, errlen);
    struct jn_config *cfg = NULL;
    if (rc == 0) {
        /* Derived even with no edit left, so that the old snapshot's pool
         * state is not put back in service stale. */
        cfg = o.n > 0 ? with_overlay(base, &o) : jn_config_derive(base);
        if (cfg == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = JN_ENOMEM;
        } else if ((rc = publish(cfg, err, errlen)) != 0) {
            jn_config_unref(cfg);
        }
    }
    if (rc == 0) {
        overlay_free(&overlay);
        overlay = o;
        info.changes++;
        jn_log(JN_LOG_INFO, "admin: upstream %s: server %s %s: generation %llu", c->upstream,
               c->address, op_name(c->op), (unsigned long long)info.generation);
    } else {
        overlay_free(&o);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

size_t jn_runtime_listen_fds(int *out, size_t max)
{
    pthread_mutex_lock(&lock); /* no swap moves them meanwhile */
    size_t n = jn_workers_listen_fds(out, max);
    pthread_mutex_unlock(&lock);
    return n;
}

json_t *jn_runtime_changes_json(void)
{
    static const char *const kinds[] = { "added", "changed", "removed" };
    json_t *out = json_array();
    pthread_mutex_lock(&lock);
    for (size_t i = 0; out != NULL && i < overlay.n; i++) {
        const struct ov_entry *e = &overlay.v[i];
        json_t *o = e->kind == OV_REMOVED
                        ? json_pack("{s:s, s:s, s:s}", "upstream", e->upstream, "address",
                                    e->address, "change", kinds[e->kind])
                        : json_pack("{s:s, s:s, s:s, s:I, s:b}", "upstream", e->upstream,
                                    "address", e->address, "change", kinds[e->kind], "weight",
                                    (json_int_t)e->weight, "drain", e->drain);
        if (o != NULL)
            json_array_append_new(out, o);
    }
    pthread_mutex_unlock(&lock);
    return out;
}
