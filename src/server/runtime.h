/* The running process as operators see it: the current configuration
 * snapshot, reloads of the file, and server changes made at run time (the
 * admin API). Every function is thread-safe; changes are serialised by one
 * lock and reach every worker before they return. */
#ifndef JN_SERVER_RUNTIME_H
#define JN_SERVER_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct jn_worker;

/* The current snapshot, with one reference taken: jn_config_unref it. */
struct jn_config *jn_runtime_config(void);

struct jn_runtime_info {
    uint64_t generation;       /* of the current snapshot (1 at start, +1 per change) */
    uint64_t started_unix_ms;  /* wall clock when the process started */
    uint32_t workers;
    uint64_t reloads_ok;       /* file reloads applied (SIGHUP, POST /reload) */
    uint64_t reloads_failed;   /* file reloads refused (errors in the file) */
    uint64_t last_reload_unix_ms; /* 0 = none yet */
    bool last_reload_ok;
    uint64_t changes;          /* runtime server changes applied */
};
void jn_runtime_get_info(struct jn_runtime_info *out);

/* Re-reads the configuration file. Returns 0 when applied; otherwise
 * JN_EINVAL with every error in errs ("file:line:col: message") and nothing
 * changed. */
int jn_runtime_reload(struct jn_cfg_errors *errs);

enum jn_server_op { JN_SERVER_ADD, JN_SERVER_SET, JN_SERVER_REMOVE };

/* One runtime change to one server of one upstream. */
struct jn_server_change {
    enum jn_server_op op;
    const char *upstream;  /* name */
    const char *address;   /* "host:port" as the file writes servers */
    int64_t weight;        /* ADD, SET: 1..1000; -1 = unchanged (ADD: 1) */
    int drain;             /* ADD, SET: 0 or 1; -1 = unchanged (ADD: 0) */
};

/* Applies c to a new snapshot and swaps it in. Returns 0, or an error with a
 * message for people in err: JN_EINVAL (bad value: HTTP 400), JN_ENOENT-like
 * "not found" (no such upstream or server: HTTP 404) is JN_ENOTFOUND below,
 * JN_EEXISTS (ADD of an address the upstream has: HTTP 409). Nothing changes
 * on error. REMOVE takes the server out of new snapshots at once: requests in
 * flight on it finish on the old snapshot (drained), none is cut. */
enum { JN_ENOTFOUND = -100, JN_EEXISTS = -101 };
int jn_runtime_change(const struct jn_server_change *c, char *err, size_t errlen);

/* Starts the runtime on the first snapshot (one reference taken) with n
 * workers; main calls it before the workers start. */
void jn_runtime_init(struct jn_config *cfg, const char *file, uint32_t nworkers);
void jn_runtime_destroy(void);

/* The runtime server changes in force (GET /config): a JSON array of
 * {"upstream", "address", "change": "added"|"changed"|"removed", "weight",
 * "drain"}; new reference, NULL when out of memory. */
struct json_t;
struct json_t *jn_runtime_changes_json(void);

/* The workers' listening fds, for a binary upgrade (server/upgrade.h). */
size_t jn_runtime_listen_fds(int *out, size_t max);

/* Runs fn(w, arg) on every running worker's own thread, one after another,
 * and returns when all have run. For reading per-worker state (counters, the
 * in-flight requests of a pool) without sharing it. Not on a worker thread. */
void jn_workers_run_each(void (*fn)(struct jn_worker *w, void *arg), void *arg);

#endif
