/*
 * test_vault_fileio.c - the block I/O engine without FUSE or the kernel page
 * cache in between: writes, appends, holes and truncations at every block
 * boundary, thousands of seeded random operations checked against an
 * in-memory reference (content, size, backing size), and the refusal to
 * re-seal a damaged block.
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

#define MAXSZ (600 * 1024)

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
    if (fio_read(f, got, MAXSZ, 0, &n) < 0 || (off_t)n != refsize || f->size != refsize)
        return 0;
    if (fstat(f->fd, &st) < 0 || st.st_size != bc_backing_size(refsize))
        return 0;
    return memcmp(got, ref, n) == 0;
}

static int do_write(struct fileio *f, off_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)rnd(256);
    int rc = fio_write(f, data, len, off);
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
    int rc = fio_truncate(f, n);
    if (rc == 0) {
        if (n > refsize)
            memset(ref + refsize, 0, (size_t)(n - refsize));
        refsize = n;
    }
    return rc;
}

int main(void)
{
    char path[] = "/tmp/tv-fileio.XXXXXX";
    struct bc_header h;
    struct fileio f = { .project = "unit" };

    if (sodium_init() < 0)
        return 1;
    f.fd = mkstemp(path);
    if (f.fd < 0)
        return 1;
    unlink(path);
    randombytes_buf(dek, sizeof dek);
    f.dek = dek;
    randombytes_buf(h.file_id, sizeof h.file_id);
    randombytes_buf(h.wrapped, sizeof h.wrapped);
    h.kek_version = 1;

    is_int(fio_init(&f, &h), 0, "init an empty file");
    ok(same(&f), "empty file: header + one empty block, reads as empty");
    size_t n = 99;
    is_int(fio_read(&f, got, 10, 0, &n), 0, "read at EOF succeeds");
    is_int(n, 0, "and returns nothing");

    /* boundaries: write sizes and offsets around 4096 */
    static const off_t offs[] = { 0, 1, 4095, 4096, 4097, 8191, 8192, 12289 };
    static const size_t lens[] = { 1, 4095, 4096, 4097, 9000 };
    int bad = 0, cases = 0;
    for (size_t a = 0; a < sizeof offs / sizeof offs[0]; a++)
        for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++) {
            do_truncate(&f, (off_t)rnd(3 * 4096));
            if (do_write(&f, offs[a], lens[b]) < 0 || !same(&f))
                bad++;
            cases++;
        }
    is_int(bad, 0, "%d writes at block-boundary offsets and lengths over random sizes", cases);
    bad = 0;
    static const off_t tr[] = { 0, 1, 4095, 4096, 4097, 8192, 20000, 4096, 0, 5 };
    for (size_t a = 0; a < sizeof tr / sizeof tr[0]; a++)
        if (do_truncate(&f, tr[a]) < 0 || !same(&f))
            bad++;
    is_int(bad, 0, "truncate down and up through every boundary");

    /* seeded random operations */
    bad = 0;
    int ops = 6000, first_bad = -1;
    for (int i = 0; i < ops; i++) {
        int rc = 0;
        switch (rnd(10)) {
        case 0: case 1: case 2: {
            off_t off = (off_t)rnd((uint64_t)refsize + 9000);
            size_t len = (size_t)rnd(9000);
            if (off + (off_t)len < MAXSZ)
                rc = do_write(&f, off, len);
            break;
        }
        case 3:                                           /* append */
            if (refsize + 5000 < MAXSZ)
                rc = do_write(&f, refsize, (size_t)rnd(5000) + 1);
            break;
        case 4: {                                         /* big write */
            size_t len = (size_t)rnd(300000);
            off_t off = (off_t)rnd((uint64_t)refsize + 1);
            if (off + (off_t)len < MAXSZ)
                rc = do_write(&f, off, len);
            break;
        }
        case 5:
            rc = do_truncate(&f, (off_t)rnd((uint64_t)refsize + 10000));
            break;
        case 6:
            rc = do_truncate(&f, (off_t)(rnd((uint64_t)refsize / 4096 + 2) * 4096));
            break;
        default: {                                        /* partial read */
            off_t off = (off_t)rnd((uint64_t)refsize + 100);
            size_t len = (size_t)rnd(70000), k = 0;
            rc = fio_read(&f, got, len, off, &k);
            size_t want = off >= refsize ? 0 : (size_t)(refsize - off) < len ? (size_t)(refsize - off) : len;
            if (rc == 0 && (k != want || memcmp(got, ref + off, k) != 0))
                rc = -1;
        }
        }
        if (rc < 0 || (i % 50 == 0 && !same(&f))) {
            if (first_bad < 0)
                first_bad = i;
            bad++;
        }
    }
    if (first_bad >= 0)
        printf("# first mismatch at op %d\n", first_bad);
    is_int(bad, 0, "%d seeded random operations match the reference", ops);
    ok(same(&f), "final content, size and backing size match");

    /* a damaged block is never silently re-sealed by a partial write */
    do_truncate(&f, 0);
    do_write(&f, 0, 3 * 4096 + 100);
    unsigned char byte;
    off_t at = bc_block_offset(1) + 30;
    pread(f.fd, &byte, 1, at);
    byte ^= 1;
    pwrite(f.fd, &byte, 1, at);
    is_int(fio_write(&f, "x", 1, 4096 + 10), -EBADMSG, "partial write into a damaged block is refused");
    n = 0;
    is_int(fio_read(&f, got, 100, 4096, &n), -EBADMSG, "reading the damaged block fails");
    is_int(fio_read(&f, got, 100, 0, &n), 0, "other blocks still read");
    is_int(fio_write(&f, data, 4096, 4096), 0, "a full overwrite of the damaged block replaces it");
    is_int(fio_read(&f, got, 4096, 4096, &n), 0, "and it reads again");
    /* truncation outside the engine is detected */
    off_t sz = f.size;
    ftruncate(f.fd, bc_block_offset(2));
    f.size = 2 * 4096;                   /* what a reopen would compute */
    is_int(fio_read(&f, got, 4096, 4096, &n), -EBADMSG, "a file cut at a block boundary fails at its new last block");
    (void)sz;
    close(f.fd);
    return done();
}
