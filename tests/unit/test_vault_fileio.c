/*
 * test_vault_fileio.c - the block I/O engine without FUSE or the kernel page
 * cache in between: writes, appends, holes and truncations at every block
 * boundary, thousands of seeded random operations checked against an
 * in-memory reference (content, size, backing size), the refusal to
 * re-seal a damaged block, and the tail journal: a rewrite stopped after
 * any whole number of pages (what kill -9 leaves) is undone by fio_recover.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "tests/unit/tap.h"
#include "vault/fileio.h"

#define MAXSZ (1600 * 1024)

static unsigned char ref[MAXSZ], got[MAXSZ], data[MAXSZ];
static off_t refsize;
static unsigned char dek[BC_DEK];
static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? rng % n : 0;
}

static int same(struct fileio *f)
{
    size_t n = 0;
    struct stat st;
    if (fio_read(f, got, MAXSZ, 0, &n) < 0 || (off_t)n != refsize || fio_size(f) != refsize)
        return 0;
    if (fstat(fio_backing_fd(f), &st) < 0 || st.st_size != bc_backing_size(refsize))
        return 0;
    return memcmp(got, ref, n) == 0;
}

static int do_write(struct fileio *f, off_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)rnd(256);
    int rc = fio_write(f, data, len, off, NULL);
    if (rc == 0 && len) {
        if (off > refsize)
            memset(ref + refsize, 0, (size_t)(off - refsize));
        memcpy(ref + off, data, len);
        if (off + (off_t)len > refsize)
            refsize = off + (off_t)len;
    }
    return rc;
}

static int do_truncate(struct fileio *f, off_t n)
{
    int rc = fio_truncate(f, n, NULL);
    if (rc == 0) {
        if (n > refsize)
            memset(ref + refsize, 0, (size_t)(n - refsize));
        refsize = n;
    }
    return rc;
}

/* ---- torn rewrites --------------------------------------------------------- */

static unsigned char before[MAXSZ + MAXSZ / 64], after[MAXSZ + MAXSZ / 64];
static unsigned char torn[MAXSZ + MAXSZ / 64], pbefore[MAXSZ], pafter[MAXSZ];
static int n_restored, n_whole;

static off_t backing_copy(int fd, unsigned char *buf)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
        return -1;
    return st.st_size;
}

/* Rebuild F at plaintext size START, run OP (a write of LEN at OFF, or a
 * truncate to OFF when LEN is 0) with the journal on, then for every state a
 * kill can leave (the run's pwrite stopped at each page boundary, and for a
 * truncate the rewrite done but not the cut) check that fio_recover gives
 * back the old file, or (only where the stop falls between whole blocks) a
 * file that reads, each block old or new; and that the finished rewrite is
 * left alone.  Returns the number of failures. */
static int torn_case(struct fileio *f, int jfd, off_t start, off_t off, size_t len)
{
    struct fio_report t;
    size_t n;
    int bad = 0, rc, fd = fio_backing_fd(f);

    fio_set_journal(f, -1);
    if (do_truncate(f, 0) < 0 || (start && do_write(f, 0, (size_t)start) < 0))
        return 1;
    off_t zb = fio_size(f), bc = backing_copy(fd, before);
    memcpy(pbefore, ref, (size_t)zb);
    fio_set_journal(f, jfd);
    rc = len ? do_write(f, off, len) : do_truncate(f, off);
    fio_set_journal(f, -1);
    off_t za = fio_size(f), ac = backing_copy(fd, after);
    memcpy(pafter, ref, (size_t)za);
    if (rc < 0 || bc < 0 || ac < 0)
        return 1;
    /* the completed rewrite voided its record; while it ran it was valid */
    unsigned char magic[4];
    if (pread(jfd, magic, 4, 0) != 4 || memcmp(magic, "\0\0\0\0", 4) != 0 ||
        pwrite(jfd, "TVJ1", 4, 0) != 4)
        return 1;
    off_t during = ac > bc ? ac : bc, rs = 0;
    while (rs < bc && rs < ac && before[rs] == after[rs])
        rs++;
    for (off_t cut = rs;; cut = (cut / 4096 + 1) * 4096) {
        if (cut > ac)
            cut = ac;
        memset(torn, 0, (size_t)during);
        memcpy(torn, before, (size_t)bc);
        memcpy(torn + rs, after + rs, (size_t)(cut - rs));
        if (ftruncate(fd, during) < 0 || pwrite(fd, torn, (size_t)during, 0) != during)
            return bad + 1;
        rc = fio_recover(f, jfd, during, 1, &t);
        *(rc == 1 ? &n_restored : &n_whole) += 1;
        if (rc == 1) {
            if (fio_size(f) != zb || fio_read(f, got, MAXSZ, 0, &n) < 0 || (off_t)n != zb ||
                memcmp(got, pbefore, n) != 0 || fio_recover(f, jfd, bc, 1, &t) != 0) {
                printf("# start %lld op %lld+%zu cut %lld: restore wrong\n", (long long)start,
                       (long long)off, len, (long long)cut);
                bad++;
            }
        } else {
            /* not torn: only a stop between whole blocks of a rewrite that
             * leaves the size alone, or the completed rewrite */
            off_t sz;
            int okay = rc == 0 && bc_plain_size(during, &sz) == 0;
            if (okay) {
                okay = fio_refresh_size(f) == 0 && fio_size(f) == sz &&
                       fio_read(f, got, MAXSZ, 0, &n) == 0 && (off_t)n == sz;
            }
            for (off_t b = 0; okay && b < sz; b += 4096) {
                size_t l = sz - b < 4096 ? (size_t)(sz - b) : 4096;
                okay = (b + (off_t)l <= za && memcmp(got + b, pafter + b, l) == 0) ||
                       (b + (off_t)l <= zb && memcmp(got + b, pbefore + b, l) == 0);
            }
            if (!okay) {
                printf("# start %lld op %lld+%zu cut %lld: rc %d, file not whole\n",
                       (long long)start, (long long)off, len, (long long)cut, rc);
                bad++;
            }
        }
        if (cut == ac)
            break;
    }
    /* the finished rewrite: the journal's record is stale */
    if (ftruncate(fd, ac) < 0 || pwrite(fd, after, (size_t)ac, 0) != ac ||
        fio_recover(f, jfd, ac, 1, &t) != 0 || fio_refresh_size(f) != 0 || fio_size(f) != za)
        bad++;
    memcpy(ref, pafter, (size_t)za);
    refsize = za;
    return bad;
}

int main(void)
{
    char path[] = "/tmp/tv-fileio.XXXXXX";
    struct bc_header h;
    struct fileio *f = NULL;

    if (sodium_init() < 0)
        return 1;
    int bfd = mkstemp(path);
    if (bfd < 0)
        return 1;
    unlink(path);
    randombytes_buf(dek, sizeof dek);
    randombytes_buf(h.file_id, sizeof h.file_id);
    randombytes_buf(h.wrapped, sizeof h.wrapped);
    h.kek_version = 1;

    is_int(fio_attach(&f, bfd, dek, &h, true, "unit", -1), 0, "init an empty file");
    if (!f)
        return done();
    ok(same(f), "empty file: header + one empty block, reads as empty");
    size_t n = 99;
    is_int(fio_read(f, got, 10, 0, &n), 0, "read at EOF succeeds");
    is_int(n, 0, "and returns nothing");

    /* boundaries: write sizes and offsets around 4096 */
    static const off_t offs[] = { 0, 1, 4095, 4096, 4097, 8191, 8192, 12289 };
    static const size_t lens[] = { 1, 4095, 4096, 4097, 9000 };
    int bad = 0, cases = 0;
    for (size_t a = 0; a < sizeof offs / sizeof offs[0]; a++)
        for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++) {
            do_truncate(f, (off_t)rnd(3 * 4096));
            if (do_write(f, offs[a], lens[b]) < 0 || !same(f))
                bad++;
            cases++;
        }
    is_int(bad, 0, "%d writes at block-boundary offsets and lengths over random sizes", cases);
    bad = 0;
    static const off_t tr[] = { 0, 1, 4095, 4096, 4097, 8192, 20000, 4096, 0, 5 };
    for (size_t a = 0; a < sizeof tr / sizeof tr[0]; a++)
        if (do_truncate(f, tr[a]) < 0 || !same(f))
            bad++;
    is_int(bad, 0, "truncate down and up through every boundary");

    /* seeded random operations, with the journal on (every rewrite records
     * its old blocks first; nothing of it shows in the file) */
    char jpath[] = "/tmp/tv-fileio-j.XXXXXX";
    int jfd = mkstemp(jpath);
    if (jfd < 0)
        return 1;
    unlink(jpath);
    fio_set_journal(f, jfd);
    bad = 0;
    int ops = 6000, first_bad = -1;
    for (int i = 0; i < ops; i++) {
        int rc = 0;
        switch (rnd(10)) {
        case 0: case 1: case 2: {
            off_t off = (off_t)rnd((uint64_t)refsize + 9000);
            size_t len = (size_t)rnd(9000);
            if (off + (off_t)len < MAXSZ)
                rc = do_write(f, off, len);
            break;
        }
        case 3:                                           /* append */
            if (refsize + 5000 < MAXSZ)
                rc = do_write(f, refsize, (size_t)rnd(5000) + 1);
            break;
        case 4: {                                         /* big write */
            size_t len = (size_t)rnd(300000);
            off_t off = (off_t)rnd((uint64_t)refsize + 1);
            if (off + (off_t)len < MAXSZ)
                rc = do_write(f, off, len);
            break;
        }
        case 5:
            rc = do_truncate(f, (off_t)rnd((uint64_t)refsize + 10000));
            break;
        case 6:
            rc = do_truncate(f, (off_t)(rnd((uint64_t)refsize / 4096 + 2) * 4096));
            break;
        default: {                                        /* partial read */
            off_t off = (off_t)rnd((uint64_t)refsize + 100);
            size_t len = (size_t)rnd(70000), k = 0;
            rc = fio_read(f, got, len, off, &k);
            size_t want = off >= refsize ? 0 : (size_t)(refsize - off) < len ? (size_t)(refsize - off) : len;
            if (rc == 0 && (k != want || memcmp(got, ref + off, k) != 0))
                rc = -1;
        }
        }
        if (rc < 0 || (i % 50 == 0 && !same(f))) {
            if (first_bad < 0)
                first_bad = i;
            bad++;
        }
    }
    if (first_bad >= 0)
        printf("# first mismatch at op %d\n", first_bad);
    is_int(bad, 0, "%d seeded random operations match the reference", ops);
    ok(same(f), "final content, size and backing size match");
    fio_set_journal(f, -1);

    /* a damaged block is never silently re-sealed by a partial write */
    do_truncate(f, 0);
    do_write(f, 0, 3 * 4096 + 100);
    unsigned char byte;
    off_t at = bc_block_offset(1) + 30;
    pread(bfd, &byte, 1, at);
    byte ^= 1;
    pwrite(bfd, &byte, 1, at);
    is_int(fio_write(f, "x", 1, 4096 + 10, NULL), -EBADMSG, "partial write into a damaged block is refused");
    n = 0;
    is_int(fio_read(f, got, 100, 4096, &n), -EBADMSG, "reading the damaged block fails");
    is_int(fio_read(f, got, 100, 0, &n), 0, "other blocks still read");
    is_int(fio_write(f, data, 4096, 4096, NULL), 0, "a full overwrite of the damaged block replaces it");
    is_int(fio_read(f, got, 4096, 4096, &n), 0, "and it reads again");
    /* truncation outside the engine is detected */
    ftruncate(bfd, bc_block_offset(2));
    is_int(fio_refresh_size(f), 0, "a file cut at a block boundary has a plausible size");
    is_int(fio_read(f, got, 4096, 4096, &n), -EBADMSG, "a file cut at a block boundary fails at its new last block");

    /* the tail journal */
    static const struct { off_t start, off; size_t len; } tc[] = {
        { 0, 0, 100 },                              /* first write into an empty file */
        { 5000, 5000, 3000 },                       /* append inside the last block */
        { 5000, 5000, 200 * 1024 + 123 },           /* append over many blocks */
        { 4096, 4096, 10 },                         /* append at a block boundary */
        { 8192, 8192, 300000 },
        { 20000, 3000, 8000 },                      /* overwrite inside, partial edges */
        { 310 * 4096, 303 * 4096 + 10, 3 * 4096 },  /* block 304 starts on a page */
        { 310 * 4096 + 7, 300 * 4096, 40 * 4096 },  /* overwrite and grow */
        { 20000, 9000, 0 },                         /* truncate inside a block */
        { 20000, 8192, 0 },                         /* truncate to a boundary */
        { 5000, 0, 0 },                             /* truncate to empty */
    };
    bad = 0;
    for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++)
        bad += torn_case(f, jfd, tc[i].start, tc[i].off, tc[i].len);
    printf("# %d torn states restored, %d found whole\n", n_restored, n_whole);
    is_int(bad, 0, "a rewrite stopped at any page of its pwrite is restored from the journal");
    ok(n_restored > 150 && n_whole >= 3, "both outcomes were exercised");

    /* a torn file whose journal is torn too (or of another file) stays damaged */
    fio_set_journal(f, -1);
    do_truncate(f, 0);
    do_write(f, 0, 5000);
    fio_set_journal(f, jfd);
    do_write(f, 5000, 100);
    fio_set_journal(f, -1);
    struct fio_report t;
    off_t cs = bc_backing_size(5100);
    unsigned char junk[16] = { 1 };
    if (pwrite(bfd, junk, sizeof junk, bc_block_offset(1) + 50) != (ssize_t)sizeof junk)
        return 1;
    is_int(fio_recover(f, jfd, cs, 0, &t), 0,
           "a block damaged after the write completed is not undone by its journal");
    if (pwrite(jfd, "TVJ1", 4, 0) != 4 || pread(jfd, &byte, 1, FIO_JHDR + 60) != 1)
        return 1;
    byte ^= 0x40;
    if (pwrite(jfd, &byte, 1, FIO_JHDR + 60) != 1)
        return 1;
    is_int(fio_recover(f, jfd, cs, 1, &t), -EBADMSG, "a torn file with a damaged journal is reported");
    byte ^= 0x40;
    if (pwrite(jfd, &byte, 1, FIO_JHDR + 60) != 1)
        return 1;
    struct bc_header oh = h;
    struct fileio *g = NULL;
    oh.file_id[0] ^= 1;
    if (fio_attach(&g, dup(bfd), dek, &oh, false, "unit", -1) < 0)
        return 1;
    is_int(fio_recover(g, jfd, cs, 0, &t), -EBADMSG, "a journal of another file does not authenticate");
    fio_close(g, false);
    is_int(fio_recover(f, jfd, cs + 4136, 0, &t), 0, "a record for another backing size is ignored");
    is_int(fio_recover(f, jfd, cs, 0, &t), 1, "the right journal restores (dry run)");
    is_int(backing_copy(bfd, torn), cs, "a dry run writes nothing");
    close(jfd);
    fio_close(f, false);
    return done();
}
