/*
 * san_planted.c - a test-only program with planted memory and UB bugs.
 *
 * tests/integration/sanitizers.sh runs it under the test harness to prove
 * that, in a build configured with --enable-sanitizers, each class of finding
 * fails the test that met it: in a foreground command, in a daemon that
 * reports at SIGTERM, and in a daemon whose only finding is a leak (reported
 * by LeakSanitizer as it exits).  It is never installed and never part of a
 * real program; "clean" is the control that must pass.
 *
 *   san_planted MODE      MODE: clean uaf overflow ubsan leak
 *   san_planted -d MODE   as a daemon: print "ready", wait for SIGTERM, then
 *                         run MODE and exit 0
 *   san_planted -t MODE   as a unit test: print a passing TAP plan and test
 *                         point, then run MODE (the finding must still fail it)
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Volatile so the compiler keeps every planted access. */
static char *volatile keep;

static int planted(const char *mode)
{
    if (strcmp(mode, "clean") == 0) {
        char *p = malloc(16);
        if (!p)
            return 1;
        memset(p, 'x', 16);
        free(p);
        return 0;
    }
    if (strcmp(mode, "uaf") == 0) {
        keep = malloc(16);
        if (!keep)
            return 1;
        memset(keep, 'x', 16);
        free(keep);
        return keep[3] == 'x' ? 0 : 1;          /* heap-use-after-free */
    }
    if (strcmp(mode, "overflow") == 0) {
        keep = malloc(16);
        if (!keep)
            return 1;
        keep[16] = 'x';                          /* heap-buffer-overflow */
        free(keep);
        return 0;
    }
    if (strcmp(mode, "ubsan") == 0) {
        volatile int big = INT_MAX;
        int sum = big + 1;                       /* signed-integer-overflow */
        return sum == 0;
    }
    if (strcmp(mode, "leak") == 0) {
        keep = malloc(64);
        if (!keep)
            return 1;
        memset(keep, 'x', 64);
        keep = NULL;                             /* the only pointer is lost */
        return 0;
    }
    fprintf(stderr, "san_planted: unknown mode \"%s\"\n", mode);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "-d") == 0) {
        sigset_t set;
        int sig;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        printf("ready\n");
        fflush(stdout);
        if (sigwait(&set, &sig) != 0)
            return 1;
        planted(argv[2]);
        return 0;                                /* exit(): LSan runs now */
    }
    if (argc == 3 && strcmp(argv[1], "-t") == 0) {
        printf("1..1\nok 1 - %s ran\n", argv[2]);
        fflush(stdout);
        return planted(argv[2]);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: san_planted [-d|-t] clean|uaf|overflow|ubsan|leak\n");
        return 2;
    }
    return planted(argv[1]);
}
