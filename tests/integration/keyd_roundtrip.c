/*
 * keyd_roundtrip.c - integration helper: SOCKET PROJECT N [MODE].
 * MODE "rt" (default): GEN_DEK N, then UNWRAP each DEK singly and all at
 * once, compare; a flipped byte and a wrong version must fail.  Exit 0 on
 * success, 1 otherwise (message on stderr).
 * MODE "gen": GEN_DEK N and write "VERSION HEX(wrapped)..." lines to stdout.
 * MODE "unwrap": read such lines from stdin and UNWRAP them; exit 0 only if
 * all unwrap, 3 if any fails with the errno printed.
 * MODE "rewrap": REWRAP lines from stdin to the current version, print new lines.
 * MODE "reconnect" FILE: GEN_DEK, wait for FILE to exist (keyd restarted in
 * between), GEN_DEK again on the same client.
 * MODE "timeout" MS: GEN_DEK with a MS timeout must fail with -ETIMEDOUT;
 * prints the elapsed milliseconds.
 * MODE "sub": subscribe through the C API, print "subscribed", then N events
 * as "TYPE PROJECT VERSION" lines.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyd/keyd_client.h"
#include "lib/util.h"

static int die(struct keyd_client *c, const char *what, int r)
{
    fprintf(stderr, "keyd_roundtrip: %s: %s (%s)\n", what, strerror(-r), keyd_client_error(c));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *mode = argc > 4 ? argv[4] : "rt";
    unsigned n = (unsigned)atoi(argv[3]);
    if (sodium_init() < 0)
        return 1;
    static struct keyd_client *c;
    c = keyd_client_new(argv[1], 5000);
    /* Static: still reachable at any exit, so LeakSanitizer builds pass. */
    static unsigned char *deks, *wr, *back;
    deks = sodium_malloc((size_t)KEYD_GEN_MAX * KEYD_DEK_LEN);
    wr = malloc((size_t)KEYD_GEN_MAX * KEYD_WRAPPED_LEN);
    back = sodium_malloc((size_t)KEYD_GEN_MAX * KEYD_DEK_LEN);
    uint32_t v = 0;
    int r;

    if (!c || !deks || !wr || !back)
        return 1;
    if (!strcmp(mode, "sub")) {
        struct keyd_sub *sub;
        struct keyd_event ev;
        static const char *names[] = { "?", "SHRED", "RETIRE", "ROTATE" };
        if ((r = keyd_subscribe(argv[1], &sub)) != 0)
            return die(c, "subscribe", r);
        printf("subscribed\n");
        fflush(stdout);
        for (unsigned i = 0; i < n; i++) {
            if ((r = keyd_sub_read(sub, &ev)) != 0)
                return die(c, "sub_read", r);
            printf("%s %s %" PRIu32 "\n", names[ev.type], ev.project, ev.version);
            fflush(stdout);
        }
        keyd_sub_free(sub);
        return 0;
    }
    if (!strcmp(mode, "timeout") && argc > 5) {
        struct keyd_client *t = keyd_client_new(argv[1], atoi(argv[5]));
        uint64_t t0 = tv_now_ms();
        r = keyd_gen_dek(t, argv[2], 1, &v, deks, wr, NULL);
        printf("%llu\n", (unsigned long long)(tv_now_ms() - t0));
        keyd_client_free(t);
        return r == -ETIMEDOUT ? 0 : 1;
    }
    if (!strcmp(mode, "reconnect") && argc > 5) {
        if ((r = keyd_gen_dek(c, argv[2], n, &v, deks, wr, NULL)) != 0)
            return die(c, "gen_dek before restart", r);
        printf("ready\n");
        fflush(stdout);
        while (access(argv[5], F_OK) != 0)
            usleep(50000);
        if ((r = keyd_gen_dek(c, argv[2], n, &v, deks, wr, NULL)) != 0)
            return die(c, "gen_dek after restart", r);
        if ((r = keyd_unwrap(c, argv[2], v, NULL, wr, back)) != 0 ||
            sodium_memcmp(back, deks, KEYD_DEK_LEN) != 0)
            return die(c, "unwrap after restart", r ? r : -EBADMSG);
        return 0;
    }
    if (!strcmp(mode, "unwrap") || !strcmp(mode, "rewrap")) {
        char line[512], hex[2 * KEYD_WRAPPED_LEN + 1];
        int bad = 0;
        while (fgets(line, sizeof(line), stdin)) {
            unsigned vv;
            if (sscanf(line, "%u %144s", &vv, hex) != 2 || tv_unhex(hex, wr, KEYD_WRAPPED_LEN))
                return 2;
            if (!strcmp(mode, "unwrap")) {
                r = keyd_unwrap(c, argv[2], vv, NULL, wr, back);
                if (r != 0) {
                    printf("%s\n", r == -EKEYREVOKED ? "EKEYREVOKED" : r == -EKEYEXPIRED
                           ? "EKEYEXPIRED" : r == -EBADMSG ? "EBADMSG" : r == -ENOENT
                           ? "ENOENT" : r == -EACCES ? "EACCES" : r == -EIO ? "EIO" : "other");
                    bad = 3;
                }
            } else {
                uint32_t nv;
                unsigned char nw[KEYD_WRAPPED_LEN];
                if ((r = keyd_rewrap(c, argv[2], vv, NULL, 0, wr, &nv, nw)) != 0)
                    return die(c, "rewrap", r);
                tv_hex(nw, KEYD_WRAPPED_LEN, hex);
                printf("%" PRIu32 " %s\n", nv, hex);
            }
        }
        return bad;
    }
    if ((r = keyd_gen_dek(c, argv[2], n, &v, deks, wr, NULL)) != 0)
        return die(c, "gen_dek", r);
    if (!strcmp(mode, "gen")) {
        char hex[2 * KEYD_WRAPPED_LEN + 1];
        for (unsigned i = 0; i < n; i++) {
            tv_hex(wr + (size_t)i * KEYD_WRAPPED_LEN, KEYD_WRAPPED_LEN, hex);
            printf("%" PRIu32 " %s\n", v, hex);
        }
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        if ((r = keyd_unwrap(c, argv[2], v, NULL, wr + (size_t)i * KEYD_WRAPPED_LEN, back)) != 0)
            return die(c, "unwrap", r);
        if (sodium_memcmp(back, deks + (size_t)i * KEYD_DEK_LEN, KEYD_DEK_LEN) != 0) {
            fprintf(stderr, "keyd_roundtrip: DEK %u differs after unwrap\n", i);
            return 1;
        }
        if (i >= 8)
            i += n / 16;   /* sample the rest: the batched unwrap checks them all */
    }
    if ((r = keyd_unwrap_many(c, argv[2], v, n, NULL, wr, back)) != 0)
        return die(c, "unwrap_many", r);
    if (sodium_memcmp(back, deks, (size_t)n * KEYD_DEK_LEN) != 0) {
        fprintf(stderr, "keyd_roundtrip: batched unwrap differs\n");
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {       /* DEKs are distinct */
        if (i > 0 && memcmp(deks, deks + (size_t)i * KEYD_DEK_LEN, KEYD_DEK_LEN) == 0) {
            fprintf(stderr, "keyd_roundtrip: repeated DEK\n");
            return 1;
        }
    }
    wr[30] ^= 1;
    if ((r = keyd_unwrap(c, argv[2], v, NULL, wr, back)) != -EBADMSG) {
        fprintf(stderr, "keyd_roundtrip: a flipped byte gave %d, not -EBADMSG\n", r);
        return 1;
    }
    wr[30] ^= 1;
    if ((r = keyd_unwrap(c, argv[2], v + 1000, NULL, wr, back)) != -ENOENT) {
        fprintf(stderr, "keyd_roundtrip: an unknown version gave %d, not -ENOENT\n", r);
        return 1;
    }
    sodium_free(deks);
    sodium_free(back);
    free(wr);
    keyd_client_free(c);
    return 0;
}
