/*
 * log.c - see log.h.  One process-wide destination; messages are formatted
 * into a stack buffer and written with a single write(2) so that lines from
 * several threads never interleave.  Messages often carry names chosen by
 * trace writers (file names may contain newlines), so every control byte is
 * escaped before output: one call is always exactly one log line, and no
 * writer can forge a line or a terminal escape sequence.
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

/*
 * Copy SRC into DST (capacity CAP, always NUL-terminated) escaping control
 * bytes and DEL as \n, \r, \t or \xNN, and a backslash as \\, so that the
 * escaping cannot itself be forged.  Bytes >= 0x80 pass: UTF-8 names stay
 * readable.  Returns the length written.
 */
size_t log_escape(char *dst, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (; *src; src++) {
        unsigned char c = (unsigned char)*src;
        char esc[5];
        size_t k = 0;
        if (c == '\\') {
            esc[k++] = '\\';
            esc[k++] = '\\';
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[k++] = '\\';
            esc[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            esc[k++] = '\\';
            esc[k++] = 'x';
            esc[k++] = hex[c >> 4];
            esc[k++] = hex[c & 15];
        } else {
            esc[k++] = (char)c;
        }
        if (n + k >= cap)
            break;
        memcpy(dst + n, esc, k);
        n += k;
    }
    dst[n] = '\0';
    return n;
}
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
    char raw[2048], buf[2048];
    int saved = errno;
    int n;

    if (level > log_lvl)
        return;
    vsnprintf(raw, sizeof(raw), fmt, ap);
    if (log_to_syslog) {
        log_escape(buf, sizeof(buf), raw);
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
    size_t len = (size_t)n + log_escape(buf + n, sizeof(buf) - (size_t)n - 1, raw);
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
