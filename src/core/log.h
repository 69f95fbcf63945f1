/* Error log: leveled, one line per message, safe to call from any thread.
 * Kept apart from the access log (http/access_log.h). */
#ifndef JN_CORE_LOG_H
#define JN_CORE_LOG_H

enum jn_log_level { JN_LOG_ERR = 0, JN_LOG_WARN = 1, JN_LOG_INFO = 2, JN_LOG_DEBUG = 3 };

/* Opens the error log ("stderr", "stdout" or a file path). Returns 0 or JN_EIO. */
int jn_log_open(const char *path, int level);
void jn_log_set_level(int level);
/* Parses "error", "warn", "info", "debug". Returns the level or -1. */
int jn_log_level_from_name(const char *name);
void jn_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
