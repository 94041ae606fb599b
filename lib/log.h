/*
 * log.h - levelled logging for every TraceVault daemon and tool.
 *
 * Messages go to stderr when running in the foreground, to syslog otherwise.
 * Every message is prefixed with the program name and, at debug level, the
 * calling function.  Callers must never pass key bytes, API keys or trace
 * content: log text is assumed to be safe to ship to any log collector.
 */
#ifndef TV_LOG_H
#define TV_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set the program name (not copied: pass a string literal or argv[0]),
 * the destination (to_syslog != 0: syslog with LOG_DAEMON) and the level. */
void log_init(const char *progname, int to_syslog, enum log_level level);

/* Change the level at run time (e.g. from a -v flag). */
void log_set_level(enum log_level level);

/* Parse "error", "warn", "info" or "debug"; returns -1 if unknown. */
int log_level_parse(const char *name);

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *func, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __func__, __VA_ARGS__)

/* Copy SRC into DST (capacity CAP, NUL-terminated) with control bytes, DEL
 * and backslash escaped (\n, \xNN, \\); every message goes through this, so
 * a name containing a newline cannot forge a log line.  Returns the length. */
size_t log_escape(char *dst, size_t cap, const char *src);

/* Log at error level and exit(1). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
