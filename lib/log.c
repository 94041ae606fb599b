/*
 * log.c - see log.h.  One process-wide destination; messages are formatted
 * into a stack buffer and written with a single write(2) so that lines from
 * several threads never interleave.
 */
#include "config.h"
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_prog = "tracevault";
static int log_to_syslog;
static enum log_level log_lvl = LOG_LVL_INFO;

void log_init(const char *progname, int to_syslog, enum log_level level)
{
    if (progname) {
        const char *slash = strrchr(progname, '/');
        log_prog = slash ? slash + 1 : progname;
    }
    log_to_syslog = to_syslog;
    log_lvl = level;
    if (to_syslog)
        openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
    log_lvl = level;
}

int log_level_parse(const char *name)
{
    static const char *names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

void log_vmsg(enum log_level level, const char *func, const char *fmt, va_list ap)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    static const char *tag[] = { "error", "warning", "info", "debug" };
    char buf[2048];
    int saved = errno;
    int n;

    if (level > log_lvl)
        return;
    if (log_to_syslog) {
        vsnprintf(buf, sizeof(buf), fmt, ap);
        syslog(prio[level], "%s", buf);
        errno = saved;
        return;
    }
    if (log_lvl >= LOG_LVL_DEBUG && func)
        n = snprintf(buf, sizeof(buf), "%s: %s: %s: ", log_prog, tag[level], func);
    else if (level <= LOG_LVL_WARN)
        n = snprintf(buf, sizeof(buf), "%s: %s: ", log_prog, tag[level]);
    else
        n = snprintf(buf, sizeof(buf), "%s: ", log_prog);
    if (n < 0 || (size_t)n >= sizeof(buf))
        n = 0;
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
    errno = saved;
}

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, func, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_ERROR, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}
