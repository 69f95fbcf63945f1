/* Error log: each message is formatted into one buffer and written with a
 * single write(2), so lines from different threads never interleave. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

static _Atomic int log_fd = 2;
static _Atomic int log_level = JN_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int jn_log_level_from_name(const char *name)
{
    for (size_t i = 0; i < JN_ARRAY_LEN(level_names); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void jn_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

int jn_log_open(const char *path, int level)
{
    int fd;
    if (strcmp(path, "stderr") == 0)
        fd = 2;
    else if (strcmp(path, "stdout") == 0)
        fd = 1;
    else {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return JN_EIO;
    }
    int old = atomic_exchange(&log_fd, fd);
    if (old > 2)
        close(old);
    jn_log_set_level(level);
    return 0;
}

void jn_log(int level, const char *fmt, ...)
{
    if (level > atomic_load(&log_level))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : JN_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    int saved = errno;
    ssize_t w = write(atomic_load(&log_fd), line, len);
    JN_UNUSED(w); /* nowhere left to report a failed log write */
    errno = saved;
}
