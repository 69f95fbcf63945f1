/* Junction: command line, signals and start-up. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "core/log.h"
#include "core/offload.h"
#include "health/check.h"
#include "health/state.h"
#include "policy/chain.h"
#include "net/listener.h"
#include "server/runtime.h"
#include "server/upgrade.h"
#include "server/worker.h"

static const char usage[] =
    "usage: junction -c FILE          run with the configuration FILE\n"
    "       junction -c FILE --upgrade  take over the listening sockets of the Junction\n"
    "                                 running FILE, then serve (zero-downtime upgrade)\n"
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

static char self_exe[4096]; /* this binary's path, read at start: what SIGUSR2 runs */

/* Where upgrades meet (config upgrade_socket); NULL when turned off. */
static const char *upgrade_path(const struct jn_config *cfg, const char *file, char *buf,
                                size_t cap)
{
    if (cfg->upgrade_socket != NULL)
        return strcmp(cfg->upgrade_socket, "none") == 0 ? NULL : cfg->upgrade_socket;
    snprintf(buf, cap, "%s.upgrade.sock", file);
    return buf;
}

/* SIGUSR2: starts the binary now at this one's path with --upgrade; it
 * takes the sockets over through the upgrade socket. */
static void spawn_upgrade(const char *file)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl(self_exe, self_exe, "-c", file, "--upgrade", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        jn_log(JN_LOG_ERR, "SIGUSR2: cannot start %s: %s", self_exe, strerror(errno));
    else
        jn_log(JN_LOG_INFO, "SIGUSR2: started %s --upgrade (pid %d)", self_exe, (int)pid);
}

static void reap_children(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            jn_log(JN_LOG_ERR, "upgrade: the new process (pid %d) failed (status %d); still "
                               "serving", (int)pid, status);
}

/* SIGHUP reloads the file; SIGUSR2 starts an upgrade; SIGTERM and SIGINT
 * stop gracefully, as does a replacement taking the sockets over. */
static void control_loop(int sfd, int *ufd, const char *file)
{
    for (;;) {
        struct pollfd pfd[2] = { { sfd, POLLIN, 0 }, { *ufd, POLLIN, 0 } };
        if (poll(pfd, *ufd >= 0 ? 2 : 1, -1) < 0)
            continue;
        if (*ufd >= 0 && (pfd[1].revents & POLLIN) && jn_upgrade_serve(ufd))
            return;
        struct signalfd_siginfo si;
        if (!(pfd[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        if (si.ssi_signo == SIGHUP) {
            jn_log(JN_LOG_INFO, "SIGHUP: reloading the configuration");
            struct jn_cfg_errors errs = { 0 };
            jn_runtime_reload(&errs); /* logs what happened */
            jn_cfg_errors_free(&errs);
        } else if (si.ssi_signo == SIGUSR2) {
            spawn_upgrade(file);
        } else if (si.ssi_signo == SIGCHLD) {
            reap_children();
        } else {
            jn_log(JN_LOG_INFO, "signal %u: stopping accepting, draining requests in flight",
                   si.ssi_signo);
            return;
        }
    }
}

/* After start: tells the process being replaced, and listens for the next
 * replacement. */
static int upgrade_ready(const struct jn_config *cfg, const char *file, int from)
{
    size_t unused = jn_listen_inherited_close();
    if (unused > 0)
        jn_log(JN_LOG_INFO, "upgrade: %zu handed-over socket%s not used by this configuration "
                            "closed", unused, unused == 1 ? "" : "s");
    if (from >= 0 && jn_upgrade_finish(from) != 0)
        jn_log(JN_LOG_WARN, "upgrade: the old process did not confirm; it may still accept");
    char buf[4096], err[512];
    const char *path = upgrade_path(cfg, file, buf, sizeof(buf));
    int ufd = path != NULL ? jn_upgrade_listen(path, err, sizeof(err)) : -1;
    if (path != NULL && ufd < 0)
        jn_log(JN_LOG_WARN, "%s: binary upgrades are not available (set upgrade_socket)", err);
    return ufd;
}

/* Signals are taken synchronously by the main thread (a signalfd); workers
 * never see them. from is the connection to the process being replaced
 * (--upgrade), or -1. */
static int run(struct jn_config *cfg, const char *file, int from)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "signalfd: %s\n", strerror(errno));
        return 1;
    }
    if (jn_log_open(cfg->error_log.path, cfg->error_log.level) != 0) {
        fprintf(stderr, "error log %s: %s\n", cfg->error_log.path, strerror(errno));
        close(sfd);
        return 1;
    }
    uint32_t n = worker_count(cfg);
    if (jn_pools_create(cfg, NULL) != 0) {
        jn_log(JN_LOG_ERR, "out of memory");
        close(sfd);
        return 1;
    }
    if (jn_policies_start(cfg) != 0 || jn_offload_start(n) != 0) {
        close(sfd);
        return 1;
    }
    jn_runtime_init(cfg, file, n);
    if (jn_workers_start(cfg, n) != 0) {
        jn_runtime_destroy();
        jn_offload_stop();
        close(sfd);
        return 1;
    }
    if (jn_health_start(cfg) != 0) {
        jn_log(JN_LOG_ERR, "cannot start the health check thread");
        jn_offload_stop();
        jn_workers_shutdown();
        jn_runtime_destroy();
        close(sfd);
        return 1;
    }
    if (jn_admin_start(cfg) != 0) {
        jn_offload_stop();
        jn_workers_shutdown();
        jn_health_stop();
        jn_runtime_destroy();
        close(sfd);
        return 1;
    }
    jn_upgrade_add_source(jn_runtime_listen_fds);
    jn_upgrade_add_source(jn_admin_fds);
    jn_log(JN_LOG_INFO, "junction %s started: %u worker%s, %zu listener%s%s", JN_VERSION, n,
           n == 1 ? "" : "s", cfg->nlisteners, cfg->nlisteners == 1 ? "" : "s",
           from >= 0 ? " (upgrade)" : "");
    int ufd = upgrade_ready(cfg, file, from);
    control_loop(sfd, &ufd, file);
    if (ufd >= 0) { /* still ours: not handed to a replacement */
        char buf[4096];
        close(ufd);
        unlink(upgrade_path(cfg, file, buf, sizeof(buf)));
    }
    jn_admin_stop(); /* before the workers it asks for counters stop */
    jn_offload_stop(); /* before the loops its tasks report to are gone */
    jn_workers_shutdown();
    jn_health_stop();
    jn_runtime_destroy();
    close(sfd);
    jn_log(JN_LOG_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    bool check = false, upgrade = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
            printf("junction %s\n", JN_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "check") == 0 && i == 1) {
            check = true;
        } else if (strcmp(argv[i], "--upgrade") == 0) {
            upgrade = true;
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
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    self_exe[len > 0 ? len : 0] = '\0';
    int from = -1;
    if (upgrade) {
        char buf[4096], err[512];
        const char *path = upgrade_path(cfg, file, buf, sizeof(buf));
        if (path == NULL || (from = jn_upgrade_fetch(path, err, sizeof(err))) < 0) {
            fprintf(stderr, "junction: %s\n", path == NULL ? "upgrade_socket is none" : err);
            jn_config_unref(cfg);
            return 1;
        }
    }
    int rc = run(cfg, file, from);
    jn_config_unref(cfg);
    return rc;
}
