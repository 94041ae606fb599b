/*
 * tap.h - a minimal TAP producer for unit tests (header-only).
 *
 *   plan(3); ok(x == 1, "x is one"); is_int(f(), 0, "f succeeds"); return done();
 *
 * done() returns the process exit status: 0 if every test passed.
 */
#ifndef TV_TAP_H
#define TV_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_planned;

static inline void plan(int n)
{
    tap_planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

static inline int ok_(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int ok_(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                     \
    do {                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                   \
        if (!ok_(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))                       \
            printf("#   got %lld, want %lld\n", g_, w_);                           \
    } while (0)
#define is_str(got, want, ...)                                                     \
    do {                                                                           \
        const char *g_ = (got), *w_ = (want);                                      \
        if (!ok_(g_ && w_ && strcmp(g_, w_) == 0, __FILE__, __LINE__, __VA_ARGS__)) \
            printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
    } while (0)

static inline int done(void)
{
    if (tap_planned == 0)
        printf("1..%d\n", tap_n);
    else if (tap_n != tap_planned)
        printf("# planned %d tests, ran %d\n", tap_planned, tap_n);
    return tap_failed || (tap_planned && tap_n != tap_planned) ? 1 : 0;
}

#endif
