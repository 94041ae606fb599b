/*
 * test_audit.c - lib/audit, the chained audit log both daemons use, by
 * attack: every single flipped byte, deleted, reordered and inserted
 * records, tails cut at a record boundary and mid-record, a removed or
 * foreign anchor, rotated files verified alone, together, out of order and
 * with one missing; group commit from many threads (fewer flushes than
 * records, every record durable when its commit returns); and fail-closed
 * writes (RLIMIT_FSIZE makes the log's writes fail mid-way: exactly the
 * commits that returned 0 are in the log, and it still verifies).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/audit.h"
#include "lib/util.h"
#include "tests/unit/tap.h"

static const struct audit_format fmt = { "seq=", " ", " mac=", "\n", "prev=" };
static unsigned char key[AUDIT_MAC_LEN], other[AUDIT_MAC_LEN];
static char dir[] = "/tmp/tv-audit.XXXXXX", logp[300], err[512];

static int cont(char *buf, size_t cap, const char *prev_hex, void *arg)
{
    (void)arg;
    return snprintf(buf, cap, "op=LOG_CONTINUES prev=%s", prev_hex);
}

static const struct audit_opts opts = { &fmt, cont, NULL, 1, 0 };

static int verify1(const char *path)
{
    struct audit_scan sc;
    memset(&sc, 0, sizeof(sc));
    return audit_verify(&path, 1, key, &fmt, 0, &sc, err, sizeof(err));
}

static char *slurp(const char *path, size_t *len)
{
    char *b = NULL;
    *len = 0;
    if (tv_read_file(path, 1 << 26, &b, len) != 0)
        return NULL;
    return b;
}

static void put(const char *path, const char *b, size_t len)
{
    FILE *f = fopen(path, "w");
    if (len)
        fwrite(b, 1, len, f);
    fclose(f);
}

/* The offset of the start of line N (0-based) in B. */
static size_t line_off(const char *b, size_t len, int n)
{
    size_t o = 0;
    while (n-- > 0 && o < len)
        o = (size_t)(strchr(b + o, '\n') - b) + 1;
    return o;
}

/* A fresh log at PATH with N records. */
static int fresh(const char *path, int n)
{
    static int run;                       /* each log's records differ */
    struct audit *a;
    char *ap = audit_anchor_path(path), body[64];
    unlink(path);
    unlink(ap);
    free(ap);
    if (audit_open(path, key, &opts, NULL, &a, err, sizeof(err)) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof(body), "op=TEST n=%d run=%d", i, run);
        if (audit_commit(a, body) != 0)
            return -1;
    }
    audit_close(a);
    run++;
    return 0;
}

struct thr {
    struct audit *a;
    int id, n;
    unsigned char *ok;                    /* ok[i]: commit i returned 0 */
};

static void *committer(void *arg)
{
    struct thr *t = arg;
    char body[64];
    for (int i = 0; i < t->n; i++) {
        snprintf(body, sizeof(body), "op=T t=%d i=%d", t->id, i);
        t->ok[i] = audit_commit(t->a, body) == 0;
    }
    return NULL;
}

/* Count records "t=T i=I" in the log into SEEN[T][I]; returns total. */
static int count_seen(const char *path, int nt, int n, unsigned char *seen)
{
    size_t len;
    char *b = slurp(path, &len), *p = b;
    int total = 0, t, i;
    memset(seen, 0, (size_t)nt * n);
    while (p && (p = strstr(p, " t=")) != NULL) {
        if (sscanf(p, " t=%d i=%d", &t, &i) == 2 && t >= 0 && t < nt && i >= 0 && i < n) {
            seen[t * n + i]++;
            total++;
        }
        p++;
    }
    free(b);
    return total;
}

int main(void)
{
    struct audit *a = NULL;
    struct audit_scan sc;
    char *b, *ap, rot1[320], rot2[320];
    size_t len;

    plan(40);
    signal(SIGXFSZ, SIG_IGN);
    ok(sodium_init() >= 0 && mkdtemp(dir) != NULL, "set-up");
    randombytes_buf(key, sizeof(key));
    randombytes_buf(other, sizeof(other));
    snprintf(logp, sizeof(logp), "%s/a.log", dir);
    ap = audit_anchor_path(logp);

    /* A fresh log: open, records, verify. */
    is_int(fresh(logp, 6), 0, "a new log takes 6 records");
    is_int(verify1(logp), 0, "it verifies");
    b = slurp(logp, &len);
    ok(b && strncmp(b, "seq=1 op=TEST n=0 run=0 mac=", 28) == 0 && b[len - 1] == '\n',
       "records are seq=N BODY mac=HEX lines");
    struct stat st;
    ok(stat(ap, &st) == 0 && st.st_size == 256 && (st.st_mode & 0777) == 0600,
       "the anchor is two 128-byte slots, mode 0600");

    /* Every single byte flipped (one bit each) is detected. */
    int missed = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 5) {     /* 0x01 and 0x20 (case) */
            b[i] ^= (char)(1 << bit);
            put(logp, b, len);
            if (verify1(logp) == 0)
                missed++;
            b[i] ^= (char)(1 << bit);
        }
    }
    put(logp, b, len);
    is_int(missed, 0, "every byte of the log flipped (bit 0, and bit 5: hex case) is detected");
    is_int(verify1(logp), 0, "restored log verifies again");

    /* Deleted, reordered, inserted records. */
    size_t l2 = line_off(b, len, 2), l3 = line_off(b, len, 3), l4 = line_off(b, len, 4);
    char *t = malloc(len * 2);
    memcpy(t, b, l2);
    memcpy(t + l2, b + l3, len - l3);
    put(logp, t, len - (l3 - l2));
    ok(verify1(logp) == -EBADMSG && strstr(err, "sequence 4 where 3"), "a deleted record is detected");
    memcpy(t, b, l2);
    memcpy(t + l2, b + l3, l4 - l3);
    memcpy(t + l2 + (l4 - l3), b + l2, l3 - l2);
    memcpy(t + l4, b + l4, len - l4);
    put(logp, t, len);
    is_int(verify1(logp), -EBADMSG, "two swapped records are detected");
    memcpy(t, b, l3);
    memcpy(t + l3, b + l2, len - l2);
    put(logp, t, len + (l3 - l2));
    is_int(verify1(logp), -EBADMSG, "a duplicated record is detected");
    size_t l1 = line_off(b, len, 1);
    put(logp, b + l1, len - l1);
    ok(verify1(logp) == -EBADMSG && strstr(err, "deleted from the start"),
       "a deleted first record is detected");

    /* Cut tails: at a record boundary (the anchor), mid-record. */
    put(logp, b, l4);
    ok(verify1(logp) == -EBADMSG && strstr(err, "cut from the end"),
       "a tail cut at a record boundary is caught by the anchor");
    put(logp, b, l4 + 10);
    is_int(verify1(logp), -EBADMSG, "a tail cut mid-record is detected");
    is_int(audit_open(logp, key, &opts, NULL, &a, err, sizeof(err)), -EBADMSG,
           "open refuses a log cut before its anchor");
    put(logp, "", 0);
    ok(verify1(logp) == -EBADMSG && strstr(err, "cut from the end"),
       "an emptied log is detected (its anchor remembers 6 records)");
    put(logp, b, len);
    free(b);                /* the fresh log's copy: not needed past here */
    unlink(ap);
    ok(verify1(logp) == -EBADMSG && strstr(err, "anchor") && strstr(err, "missing"),
       "a removed anchor is detected");
    {
        struct audit_scan s2;
        const char *p1 = logp;
        memset(&s2, 0, sizeof(s2));
        is_int(audit_verify(&p1, 1, key, &fmt, 1, &s2, err, sizeof(err)), 0,
               "...and accepted only when adopting a log made before anchors");
    }
    is_int(verify1(logp), -EBADMSG, "(still refused without adopting)");
    is_int(fresh(logp, 3), 0, "another log");
    char *b2 = slurp(ap, &len);
    is_int(fresh(logp, 3), 0, "and a third, same length, other records");
    put(ap, b2, 256);
    ok(verify1(logp) == -EBADMSG && strstr(err, "differs"),
       "the anchor of another log with the same length is detected");
    free(b2);
    {
        const char *p1 = logp;
        memset(&sc, 0, sizeof(sc));
        fresh(logp, 2);
        is_int(audit_verify(&p1, 1, other, &fmt, 0, &sc, err, sizeof(err)), -EBADMSG,
               "another key: refused");
    }

    /* A write cut short by a crash: open removes the incomplete line. */
    fresh(logp, 4);
    {
        FILE *f = fopen(logp, "a");
        fputs("seq=5 op=TEST n=4 run=", f);
        fclose(f);
    }
    ok(audit_open(logp, key, &opts, NULL, &a, err, sizeof(err)) == 0 &&
       audit_commit(a, "op=AFTER") == 0, "open cuts an incomplete last record and goes on");
    audit_close(a);
    a = NULL;
    b = slurp(logp, &len);
    ok(verify1(logp) == 0 && strstr(b, "seq=5 op=AFTER mac="), "the log verifies: seq 5 is the new record");
    free(b);

    /* Rotation. */
    fresh(logp, 3);
    ok(audit_open(logp, key, &opts, NULL, &a, err, sizeof(err)) == 0, "open for rotation");
    snprintf(rot1, sizeof(rot1), "%s/a.log.1", dir);
    snprintf(rot2, sizeof(rot2), "%s/a.log.2", dir);
    rename(logp, rot1);
    is_int(audit_rotate(a, logp, err, sizeof(err)), 0, "reopen after the log was renamed away");
    audit_commit(a, "op=TEST n=after1");
    rename(logp, rot2);
    is_int(audit_rotate(a, logp, err, sizeof(err)), 0, "rotate again");
    audit_commit(a, "op=TEST n=after2");
    is_int(audit_rotate(a, logp, err, sizeof(err)), 0, "reopen of the same file: nothing to do");
    audit_close(a);
    a = NULL;
    b = slurp(logp, &len);
    ok(b && strncmp(b, "seq=6 op=LOG_CONTINUES prev=", 28) == 0, "the new file starts with a continuation record");
    free(b);
    is_int(verify1(logp), 0, "the live log verifies on its own");
    {
        const char *all[] = { rot1, rot2, logp }, *gap[] = { rot1, logp },
                   *swapped[] = { rot2, rot1, logp };
        memset(&sc, 0, sizeof(sc));
        ok(audit_verify(all, 3, key, &fmt, 0, &sc, err, sizeof(err)) == 0 && sc.records == 7 &&
           sc.last_seq == 7, "all three files verify as one chain of 7 records");
        ok(audit_verify(gap, 2, key, &fmt, 0, &sc, err, sizeof(err)) == -EBADMSG &&
           strstr(err, "files missing"), "a missing rotated file is detected");
        is_int(audit_verify(swapped, 3, key, &fmt, 0, &sc, err, sizeof(err)), -EBADMSG,
               "rotated files out of order are detected");
    }

    /* Group commit from 8 threads. */
    enum { NT = 8, NR = 300 };
    struct thr th[NT];
    pthread_t tid[NT];
    unsigned char okv[NT][NR], seen[NT * NR];
    struct audit_opts synced = opts;
    synced.no_sync = 0;
    fresh(logp, 0);
    audit_open(logp, key, &synced, NULL, &a, err, sizeof(err));
    for (int i = 0; i < NT; i++) {
        th[i] = (struct thr){ a, i, NR, okv[i] };
        pthread_create(&tid[i], NULL, committer, &th[i]);
    }
    for (int i = 0; i < NT; i++)
        pthread_join(tid[i], NULL);
    uint64_t seq;
    unsigned char mac[AUDIT_MAC_LEN];
    audit_head(a, &seq, mac);
    int allok = 1;
    for (int i = 0; i < NT; i++)
        for (int j = 0; j < NR; j++)
            allok &= okv[i][j];
    ok(allok && seq == NT * NR && count_seen(logp, NT, NR, seen) == NT * NR,
       "8 threads x 300 commits: all succeed, all in the log");
    audit_close(a);
    a = NULL;
    is_int(verify1(logp), 0, "the interleaved log verifies");

    /* Fail closed: writes start failing part-way (RLIMIT_FSIZE). */
    fresh(logp, 0);
    audit_open(logp, key, &opts, NULL, &a, err, sizeof(err));
    struct rlimit rl, small = { 20000, RLIM_INFINITY };
    getrlimit(RLIMIT_FSIZE, &rl);
    small.rlim_max = rl.rlim_max;
    setrlimit(RLIMIT_FSIZE, &small);
    for (int i = 0; i < NT; i++) {
        th[i] = (struct thr){ a, i, NR, okv[i] };
        pthread_create(&tid[i], NULL, committer, &th[i]);
    }
    for (int i = 0; i < NT; i++)
        pthread_join(tid[i], NULL);
    int nok = 0, mismatch = 0;
    count_seen(logp, NT, NR, seen);
    for (int i = 0; i < NT; i++)
        for (int j = 0; j < NR; j++) {
            nok += okv[i][j];
            mismatch += okv[i][j] != seen[i * NR + j];
        }
    ok(nok > 0 && nok < NT * NR, "with the file size capped some commits fail (%d of %d succeed)",
       nok, NT * NR);
    is_int(mismatch, 0, "exactly the commits that returned 0 are in the log");
    ok(audit_failures(a) > 0, "the failures were counted");
    setrlimit(RLIMIT_FSIZE, &rl);
    is_int(audit_commit(a, "op=TEST n=after-space"), 0, "once space returns, commits work again");
    audit_close(a);
    a = NULL;
    is_int(verify1(logp), 0, "the log verifies: no hole, no partial record");

    free(t);
    free(ap);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return done();
}
