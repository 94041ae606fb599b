/*
 * test_agent_opener.c - parallel opens: every path gets its own file's
 * descriptor (checked by content) or its own -errno (a missing file, a
 * symlink refused by O_NOFOLLOW), over many runs in a row on helpers that
 * sleep between them, with no helpers at all, and with more files than
 * helpers or fewer.
 */
#include "config.h"
#include "agent/opener.h"
#include "tests/unit/tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NF 200

static char dir[] = "/tmp/tv-opener-XXXXXX";

/* Run ROUNDS opens of the first N paths; 1 if every result is right. */
static int check(struct opener *o, char **paths, size_t n, int rounds)
{
    int fds[NF];
    for (int r = 0; r < rounds; r++) {
        opener_run(o, (const char *const *)paths, fds, n);
        for (size_t i = 0; i < n; i++) {
            char want[32], got[32] = { 0 };
            if (i % 10 == 7) {             /* missing */
                if (fds[i] != -ENOENT)
                    return 0;
                continue;
            }
            if (i % 10 == 8) {             /* a symlink */
                if (fds[i] != -ELOOP)
                    return 0;
                continue;
            }
            if (fds[i] < 0)
                return 0;
            snprintf(want, sizeof(want), "file %zu", i);
            ssize_t k = read(fds[i], got, sizeof(got) - 1);
            close(fds[i]);
            if (k != (ssize_t)strlen(want) || strcmp(got, want) != 0)
                return 0;
        }
    }
    return 1;
}

int main(void)
{
    char *paths[NF];
    struct opener *o;

    plan(6);
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    for (size_t i = 0; i < NF; i++) {
        if (asprintf(&paths[i], "%s/f%zu", dir, i) < 0)
            return 1;
        if (i % 10 == 7)
            continue;
        if (i % 10 == 8) {
            if (symlink("f0", paths[i]) != 0)
                return 1;
            continue;
        }
        FILE *f = fopen(paths[i], "w");
        if (!f)
            return 1;
        fprintf(f, "file %zu", i);
        fclose(f);
    }
    is_int(opener_new(7, &o), 0, "seven helpers");
    ok(check(o, paths, NF, 50), "200 paths, 50 runs: each its own file or its own error");
    ok(check(o, paths, 3, 200), "fewer paths than helpers, 200 runs");
    ok(check(o, paths, 0, 10), "no paths");
    opener_free(o);
    is_int(opener_new(0, &o), 0, "no helpers");
    ok(check(o, paths, NF, 3), "the caller opens alone");
    opener_free(o);

    for (size_t i = 0; i < NF; i++) {
        unlink(paths[i]);
        free(paths[i]);
    }
    rmdir(dir);
    return done();
}
