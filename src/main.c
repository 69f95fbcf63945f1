/* Junction: command line, signals and start-up. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "core/log.h"
#include "core/offload.h"
#include "health/check.h"
#include "health/state.h"
#include "policy/chain.h"
#include "server/runtime.h"
#include "server/worker.h"

static const char usage[] =
    "usage: junction -c FILE          run with the configuration FILE\n"
    "       junction check -c FILE    validate FILE and exit (0 when valid)\n"
    "       junction --version        print the version\n"
    "       junction --help           print this help\n";

static struct jn_config *load(const char *path)
{
    struct jn_cfg_errors errs = { 0 };
    struct jn_config *cfg = jn_config_load_file(path, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    if (cfg == NULL && errs.count == 0)
        fprintf(stderr, "%s: cannot load configuration\n", path);
    jn_cfg_errors_free(&errs);
    return cfg;
}

static uint32_t worker_count(const struct jn_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

/* Signals are taken synchronously by the main thread; workers never see them. */
static int run(struct jn_config *cfg, const char *file)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (jn_log_open(cfg->error_log.path, cfg->error_log.level) != 0) {
        fprintf(stderr, "error log %s: %s\n", cfg->error_log.path, strerror(errno));
        return 1;
    }
    uint32_t n = worker_count(cfg);
    if (jn_pools_create(cfg) != 0) {
        jn_log(JN_LOG_ERR, "out of memory");
        return 1;
    }
    if (jn_policies_start(cfg) != 0 || jn_offload_start(n) != 0) {
        jn_pools_destroy();
        return 1;
    }
    jn_runtime_init(cfg, file, n);
    if (jn_workers_start(cfg, n) != 0) {
        jn_runtime_destroy();
        jn_offload_stop();
        jn_pools_destroy();
        return 1;
    }
    if (jn_health_start(cfg) != 0) {
        jn_log(JN_LOG_ERR, "cannot start the health check thread");
        jn_offload_stop();
        jn_workers_shutdown();
        jn_runtime_destroy();
        jn_pools_destroy();
        return 1;
    }
    if (jn_admin_start(cfg) != 0) {
        jn_offload_stop();
        jn_workers_shutdown();
        jn_health_stop();
        jn_runtime_destroy();
        jn_pools_destroy();
        return 1;
    }
    jn_log(JN_LOG_INFO, "junction %s started: %u worker%s, %zu listener%s", JN_VERSION, n,
           n == 1 ? "" : "s", cfg->nlisteners, cfg->nlisteners == 1 ? "" : "s");
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            jn_log(JN_LOG_WARN, "SIGHUP: configuration reload is not available yet; ignored");
            continue;
        }
        jn_log(JN_LOG_INFO, "signal %d: stopping accepting, draining requests in flight", sig);
        break;
    }
    jn_admin_stop(); /* before the workers it asks for counters stop */
    jn_offload_stop(); /* before the loops its tasks report to are gone */
    jn_workers_shutdown();
    jn_health_stop();
    jn_runtime_destroy();
    jn_pools_destroy();
    jn_log(JN_LOG_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
            printf("junction %s\n", JN_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "check") == 0 && i == 1) {
            check = true;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else {
            fprintf(stderr, "junction: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (file == NULL) {
        fputs(usage, stderr);
        return 2;
    }
    struct jn_config *cfg = load(file);
    if (cfg == NULL)
        return 1;
    if (check) {
        printf("%s: configuration is valid\n", file);
        jn_config_unref(cfg);
        return 0;
    }
    int rc = run(cfg, file);
    jn_config_unref(cfg);
    return rc;
}
