/* The process's running state: which snapshot is current, reloads and
 * runtime server changes (docs/operations.md). */
#include "server/runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "core/common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct jn_config *current; /* one reference held */
static struct jn_runtime_info info;

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void jn_runtime_init(struct jn_config *cfg, const char *file, uint32_t nworkers)
{
    (void)file;
    jn_config_ref(cfg);
    current = cfg;
    info = (struct jn_runtime_info){ .generation = 1, .started_unix_ms = wall_ms(),
                                     .workers = nworkers };
}

void jn_runtime_destroy(void)
{
    pthread_mutex_lock(&lock);
    if (current != NULL)
        jn_config_unref(current);
    current = NULL;
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

int jn_runtime_reload(struct jn_cfg_errors *errs)
{
    jn_cfg_error(errs, (struct jn_cfg_pos){ .file = "reload" }, "reload is not available yet");
    return JN_ENOTSUP;
}

int jn_runtime_change(const struct jn_server_change *c, char *err, size_t errlen)
{
    (void)c;
    snprintf(err, errlen, "runtime changes are not available yet");
    return JN_ENOTSUP;
}
