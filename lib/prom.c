/*
 * prom.c - Prometheus textfile rendering (prom.h).
 */
#include "config.h"
#include "lib/prom.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct prom {
    const char *prefix;
    char *buf;
    size_t len, cap;
    int oom;                    /* an append failed: the text is incomplete */
};

struct prom *prom_new(const char *prefix)
{
    struct prom *p = calloc(1, sizeof(*p));
    if (p)
        p->prefix = prefix;
    return p;
}

void prom_free(struct prom *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p);
}

void prom_add(struct prom *p, const char *fmt, ...)
{
    va_list ap;

    if (!p || p->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(p->buf ? p->buf + p->len : NULL, p->cap - p->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < p->cap - p->len) {
            p->len += (size_t)n;
            return;
        }
        size_t cap = p->cap ? p->cap * 2 : 8192;
        while (cap - p->len <= (size_t)n)
            cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b) {
            p->oom = 1;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
}

void prom_metric(struct prom *p, const char *name, const char *type, const char *help,
                 double value)
{
    if (!p)
        return;
    prom_add(p, "# HELP %s%s %s\n# TYPE %s%s %s\n%s%s %.17g\n", p->prefix, name, help,
             p->prefix, name, type, p->prefix, name, value);
}

int prom_write(struct prom *p, const char *path)
{
    int r;

    if (!p)
        return -ENOMEM;
    r = p->oom ? -ENOMEM : tv_write_atomic(AT_FDCWD, path, p->buf ? p->buf : "", p->len, 0644);
    prom_free(p);
    return r;
}
