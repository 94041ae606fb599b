/*
 * keyd_ingest.c - integration helper for ingest keys through the client
 * library (keyd_client.h), as the gateway calls it: SOCKET MODE.
 * MODE "auth": the bearer value is all of stdin (one trailing newline
 * dropped; never argv, which ps shows); prints "PROJECT ID" and exits 0, or
 * prints the error name and exits 3 for -EACCES (the key does not verify),
 * 4 for -EPERM (this user may not ask), 1 for anything else.
 * MODE "bench" N: N INGEST_AUTH round trips with the key on stdin; prints
 * "N auths in MS ms (R/s)".
 */
#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd/keyd_client.h"
#include "lib/util.h"

#define IN_MAX (256 * 1024)

int main(int argc, char **argv)
{
    static char buf[IN_MAX];
    char project[KEYD_PROJECT_MAX + 1], id[KEYD_INGEST_ID_LEN + 1];
    size_t n = 0;
    ssize_t got;
    int r;

    if (argc < 3 || sodium_init() < 0)
        return 2;
    while (n < sizeof(buf) && (got = read(0, buf + n, sizeof(buf) - n)) > 0)
        n += (size_t)got;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    struct keyd_client *c = keyd_client_new(argv[1], 5000);
    if (!c)
        return 1;
    if (!strcmp(argv[2], "bench") && argc > 3) {
        long count = atol(argv[3]);
        uint64_t t0 = tv_now_ms();
        for (long i = 0; i < count; i++)
            if ((r = keyd_ingest_auth(c, buf, n, project, id)) != 0) {
                fprintf(stderr, "keyd_ingest: auth %ld: %s (%s)\n", i, strerror(-r),
                        keyd_client_error(c));
                return 1;
            }
        uint64_t ms = tv_now_ms() - t0;
        printf("%ld auths in %llu ms (%.0f/s)\n", count, (unsigned long long)ms,
               ms ? count * 1000.0 / (double)ms : 0.0);
        keyd_client_free(c);
        return 0;
    }
    r = keyd_ingest_auth(c, buf, n, project, id);
    sodium_memzero(buf, n);
    if (r == 0) {
        printf("%s %s\n", project, id);
    } else {
        printf("%s\n", r == -EACCES ? "EACCES" : r == -EPERM ? "EPERM" : strerror(-r));
        fprintf(stderr, "keyd_ingest: %s\n", keyd_client_error(c));
    }
    keyd_client_free(c);
    return r == 0 ? 0 : r == -EACCES ? 3 : r == -EPERM ? 4 : 1;
}
