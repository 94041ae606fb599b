/*
 * test_keyd_audit.c - the audit chain: a clean log verifies; an edited,
 * reordered, deleted, inserted or forged record, a cut mid-record, a wrong
 * key each fail; a log cut at a record boundary verifies as a chain but no
 * longer reaches the head (which is how keyd reports truncation).  Group
 * flush: staged records are not on disk until the flush; a failed flush
 * rolls the head back and a log that cannot be repaired fails closed.
 */
#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd/audit.h"
#include "tests/unit/tap.h"

#define NREC 10

static char dir[] = "/tmp/tv-audit.XXXXXX";
static char logp[256], tmpp[256];
static char *lines[NREC + 4];
static int nlines;

static void load_lines(void)
{
    FILE *f = fopen(logp, "r");
    char buf[1024];
    nlines = 0;
    while (f && fgets(buf, sizeof(buf), f) && nlines < NREC + 4)
        lines[nlines++] = strdup(buf);
    if (f)
        fclose(f);
}

/* Write lines in ORDER (indices, -1 ends) to tmpp; EXTRA is appended raw. */
static void write_lines(const int *order, const char *extra)
{
    FILE *f = fopen(tmpp, "w");
    for (int i = 0; order[i] >= 0; i++)
        fputs(lines[order[i]], f);
    if (extra)
        fputs(extra, f);
    fclose(f);
}

static int verify(const unsigned char *key, struct audit_scan *sc)
{
    char err[256];
    int r = audit_verify_file(tmpp, key, 0, NULL, sc, err, sizeof(err));
    if (r)
        printf("# %s\n", err);
    return r;
}

int main(void)
{
    unsigned char key[32], other[32], head_mac[32];
    uint64_t head_seq;
    struct audit *a = NULL;
    struct audit_scan sc;
    int order[NREC + 2];

    plan(25);
    ok(sodium_init() >= 0 && mkdtemp(dir) != NULL, "set-up");
    snprintf(logp, sizeof(logp), "%s/audit.log", dir);
    snprintf(tmpp, sizeof(tmpp), "%s/copy.log", dir);
    randombytes_buf(key, sizeof(key));
    randombytes_buf(other, sizeof(other));

    is_int(audit_open(logp, key, 1, &a), 0, "open");
    for (int i = 0; i < NREC; i++) {
        struct audit_rec r = { .gen = 1 + (i >= 5), .uid = 1000 + i, .pid = 42, .op = "UNWRAP",
                               .project = "checkout", .version = 1, .n = 1, .result = "ok" };
        audit_add(a, &r, NULL);
    }
    struct stat st;
    stat(logp, &st);
    is_int(st.st_size, 0, "staged records are not on disk before the flush");
    is_int(audit_staged(a), NREC, "ten records staged");
    is_int(audit_flush(a), 0, "one flush writes them");
    audit_head(a, &head_seq, head_mac);
    is_int(head_seq, NREC, "head is record 10");
    load_lines();
    is_int(nlines, NREC, "ten lines on disk");

    for (int i = 0; i < NREC; i++)
        order[i] = i;
    order[NREC] = -1;
    write_lines(order, NULL);
    is_int(verify(key, &sc), 0, "intact log verifies");
    ok(sc.records == NREC && sc.last_seq == NREC && memcmp(sc.last_mac, head_mac, 32) == 0 &&
       sc.max_gen == 2, "scan ends at the head with the highest generation");
    is_int(verify(other, &sc), -EBADMSG, "another MAC key fails");

    /* Edit: one character of record 5. */
    char *saved = lines[4];
    lines[4] = strdup(saved);
    char *u = strstr(lines[4], "uid=1004");
    u[7] = '5';
    write_lines(order, NULL);
    is_int(verify(key, &sc), -EBADMSG, "edited record detected");
    free(lines[4]);
    lines[4] = saved;

    /* Reorder: swap records 4 and 5. */
    order[3] = 4;
    order[4] = 3;
    write_lines(order, NULL);
    is_int(verify(key, &sc), -EBADMSG, "reordered records detected");
    order[3] = 3;
    order[4] = 4;

    /* Delete: drop record 5. */
    int del[NREC];
    for (int i = 0, j = 0; i < NREC; i++)
        if (i != 4)
            del[j++] = i;
    del[NREC - 1] = -1;
    write_lines(del, NULL);
    is_int(verify(key, &sc), -EBADMSG, "deleted record detected");

    /* Delete the first record: the chain starts from zeros. */
    write_lines(order + 1, NULL);
    is_int(verify(key, &sc), -EBADMSG, "deleted first record detected");

    /* Truncate at a record boundary: a valid chain that stops short. */
    order[8] = -1;
    write_lines(order, NULL);
    is_int(verify(key, &sc), 0, "log cut at a record boundary is a valid prefix...");
    ok(sc.last_seq != head_seq, "...but does not reach the head (truncation detected)");
    order[8] = 8;

    /* Truncate mid-record. */
    order[9] = -1;
    char half[200];
    snprintf(half, sizeof(half), "%.*s", 60, lines[9]);
    write_lines(order, half);
    is_int(verify(key, &sc), -EBADMSG, "log cut inside a record detected");
    order[9] = 9;

    /* Forged record with a made-up MAC appended. */
    write_lines(order, "seq=11 gen=2 time=2026-11-22T10:00:00.000Z uid=0 pid=1 op=SHRED "
                       "project=checkout version=0 n=0 result=ok mac="
                       "0000000000000000000000000000000000000000000000000000000000000000\n");
    is_int(verify(key, &sc), -EBADMSG, "forged record detected");

    /* Replaying a record (duplicate). */
    int dup[NREC + 2];
    for (int i = 0; i < NREC; i++)
        dup[i] = i;
    dup[NREC] = 9;
    dup[NREC + 1] = -1;
    write_lines(dup, NULL);
    is_int(verify(key, &sc), -EBADMSG, "duplicated record detected");

    /* Known chain point: head_found. */
    char err[256];
    write_lines(order, NULL);
    audit_verify_file(tmpp, key, NREC, head_mac, &sc, err, sizeof(err));
    ok(sc.head_found, "head found when it matches");
    head_mac[0] ^= 1;
    audit_verify_file(tmpp, key, NREC, head_mac, &sc, err, sizeof(err));
    ok(!sc.head_found, "head not found when its MAC differs");
    audit_close(a);

    /* Fail closed: a log that cannot be written. */
    is_int(audit_open("/dev/full", key, 1, &a), 0, "open /dev/full");
    struct audit_rec r = { .gen = 1, .op = "GEN_DEK", .result = "ok" };
    audit_add(a, &r, NULL);
    is_int(audit_flush(a), -EIO, "flush to a full device fails with EIO");
    audit_head(a, &head_seq, head_mac);
    is_int(head_seq, 0, "head rolled back");
    is_int(audit_add(a, &r, NULL), -EIO, "a log that could not be repaired refuses new records");
    audit_close(a);

    unlink(logp);
    unlink(tmpp);
    rmdir(dir);
    return done();
}
