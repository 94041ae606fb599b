/*
 * fileio.c - the block I/O engine (see fileio.h, docs/FORMAT.md "Writing"
 * and "Crash consistency").
 *
 * Buffers for a request's run of sealed blocks (and for its journal record)
 * are per thread and grow to the largest request seen (1 MiB + overhead
 * with the vault's max_write).
 */
#include "config.h"
#include "vault/fileio.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

static __thread unsigned char *tbuf, *jbuf;
static __thread size_t tbuf_cap, jbuf_cap;

static unsigned char *grow(unsigned char **buf, size_t *cap, size_t need)
{
    if (need > *cap) {
        free(*buf);
        *buf = malloc(need);
        *cap = *buf ? need : 0;
    }
    return *buf;
}

static unsigned char *scratch(size_t need)
{
    return grow(&tbuf, &tbuf_cap, need);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A short read means the file is shorter than its size says: damage. */
static int pread_full(int fd, void *buf, size_t len, off_t off)
{
    int rc = tv_read_full(fd, buf, len, off, -1);
    return rc == -ENODATA ? -EBADMSG : rc;
}

/* Reserve backing space up to NEWC bytes before any block is rewritten, so a
 * full disk fails the write cleanly instead of tearing a block. */
static int reserve(int fd, off_t oldc, off_t newc)
{
    if (newc <= oldc)
        return 0;
    if (fallocate(fd, 0, oldc, newc - oldc) < 0 && errno != EOPNOTSUPP && errno != ENOSYS)
        return -errno;
    return 0;
}

/* Plaintext of existing block I of a file of SIZE bytes into PLAIN. */
static int read_block(struct fileio *f, off_t size, uint64_t i, unsigned char *plain)
{
    unsigned char cb[BC_CBLOCK];
    size_t len = bc_block_len(size, i);
    uint64_t nb = bc_nblocks(size);
    int rc = pread_full(f->fd, cb, len + BC_OVERHEAD, bc_block_offset(i));
    if (rc < 0)
        return rc;
    return bc_open(plain, cb, len + BC_OVERHEAD, f->dek, f->project, f->file_id, i, i == nb - 1);
}

/* Save the sealed blocks FIRST..LAST of the file (all existing at its
 * current size) into the journal before they are rewritten in place; RUN_END
 * is the last block the rewrite touches, DURING the backing size while it
 * runs.  The record goes in one pwrite at offset 0: its header lies in the
 * first page, so a kill cannot leave a new header over blocks of another
 * record that authenticate (the kernel copies whole pages in order), and
 * the file is not touched before the record is complete. */
static int journal(struct fileio *f, uint64_t first, uint64_t last, uint64_t run_end,
                   off_t during)
{
    if (f->jfd <= 0)
        return 0;
    size_t count = (size_t)(last - first + 1);
    size_t blen = (count - 1) * BC_CBLOCK + bc_block_len(f->size, last) + BC_OVERHEAD;
    unsigned char *b = grow(&jbuf, &jbuf_cap, FIO_JHDR + blen);
    if (!b)
        return -ENOMEM;
    memcpy(b, "TVJ1", 4);
    put32(b + 4, (uint32_t)count);
    put64(b + 8, first);
    put64(b + 16, (uint64_t)f->size);
    put64(b + 24, (uint64_t)during);
    put64(b + 32, run_end);
    int rc = pread_full(f->fd, b + FIO_JHDR, blen, bc_block_offset(first));
    if (rc < 0)
        return rc;
    return tv_write_full(f->jfd, b, FIO_JHDR + blen, 0);
}

/* The rewrite is complete: void the record (its magic), so that a journal
 * at rest can never undo a finished write, e.g. turn a block damaged later
 * into a silent rollback.  A failure here leaves a record of a completed
 * rewrite, which recovery ignores while the file is whole. */
static void journal_done(struct fileio *f)
{
    static const unsigned char zero[4];
    if (f->jfd > 0)
        (void)!pwrite(f->jfd, zero, sizeof zero, 0);
}

int fio_recover(struct fileio *f, int jfd, off_t csize, int apply, struct fio_tail *t)
{
    unsigned char hdr[FIO_JHDR], cb[BC_CBLOCK], plain[BC_BLOCK];
    int rc = 0;

    if (pread_full(jfd, hdr, FIO_JHDR, 0) < 0 || memcmp(hdr, "TVJ1", 4) != 0)
        return 0;
    uint64_t count = get64(hdr + 4, 4), first = get64(hdr + 8, 8), z = get64(hdr + 16, 8);
    uint64_t during = get64(hdr + 24, 8), run_end = get64(hdr + 32, 8);
    if (z > (uint64_t)BC_MAX_SIZE || during > (uint64_t)BC_MAX_SIZE * 2)
        return 0;
    off_t Z = (off_t)z, oldc = bc_backing_size(Z);
    uint64_t nb = bc_nblocks(Z);
    if (count == 0 || first >= nb || count > nb - first || run_end < first + count - 1 ||
        (off_t)during < oldc || csize < oldc || csize > (off_t)during)
        return 0;                       /* not a record of the file's last rewrite */

    /* is the file whole where the rewrite ran (and at its end)? */
    off_t cur;
    bool torn = bc_plain_size(csize, &cur) < 0;
    if (!torn) {
        uint64_t cnb = bc_nblocks(cur), end = run_end < cnb - 1 ? run_end : cnb - 1;
        for (uint64_t i = first; i <= end && !torn && rc == 0; i++) {
            rc = read_block(f, cur, i, plain);
            torn = rc == -EBADMSG;
        }
        if (!torn && rc == 0 && end < cnb - 1) {
            rc = read_block(f, cur, cnb - 1, plain);
            torn = rc == -EBADMSG;
        }
        if (!torn)
            goto out;                   /* a completed rewrite (or an I/O error) */
        rc = 0;
    }
    /* torn: the journal must hold the old blocks, sealed for the old size */
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        size_t len = bc_block_len(Z, first + i) + BC_OVERHEAD;
        rc = pread_full(jfd, cb, len, (off_t)(FIO_JHDR + i * BC_CBLOCK));
        if (rc == 0)
            rc = bc_open(plain, cb, len, f->dek, f->project, f->file_id, first + i,
                         first + i == nb - 1);
    }
    if (rc < 0)
        goto out;                       /* -EBADMSG: torn beyond repair */
    t->first = first;
    t->count = (uint32_t)count;
    t->old_size = Z;
    if (apply) {
        /* idempotent: a kill in here leaves the same record to apply again */
        for (uint64_t i = 0; i < count && rc == 0; i++) {
            size_t len = bc_block_len(Z, first + i) + BC_OVERHEAD;
            rc = pread_full(jfd, cb, len, (off_t)(FIO_JHDR + i * BC_CBLOCK));
            if (rc == 0)
                rc = tv_write_full(f->fd, cb, len, bc_block_offset(first + i));
        }
        if (rc == 0 && ftruncate(f->fd, oldc) < 0)
            rc = -errno;
        if (rc < 0)
            goto out;
        f->size = Z;
    }
    rc = 1;
out:
    sodium_memzero(plain, sizeof plain);
    return rc;
}

int fio_init(struct fileio *f, const struct bc_header *h)
{
    unsigned char buf[BC_HDR + BC_OVERHEAD], nonce[BC_NONCE];
    bc_header_encode(h, buf);
    memcpy(f->file_id, h->file_id, BC_FILE_ID);
    randombytes_buf(nonce, sizeof nonce);
    bc_seal(buf + BC_HDR, NULL, 0, nonce, f->dek, f->project, f->file_id, 0, 1);
    int rc = tv_write_full(f->fd, buf, sizeof buf, 0);
    if (rc == 0)
        f->size = 0;
    return rc;
}

/* Blocks from the first touched one (or the old last block, which must be
 * re-sealed as "not last") to the last touched one are rebuilt in memory and
 * written with one pwrite. */
int fio_write(struct fileio *f, const void *vdata, size_t len, off_t off)
{
    const unsigned char *data = vdata;
    off_t Z = f->size, E = off + (off_t)len;
    if (len == 0)
        return 0;
    if (off < 0 || E > BC_MAX_SIZE)
        return -EFBIG;
    off_t Z2 = E > Z ? E : Z;
    uint64_t nb = bc_nblocks(Z), nb2 = bc_nblocks(Z2);
    uint64_t fb = (uint64_t)((off < Z ? off : Z) / BC_BLOCK);
    if (nb2 > nb && nb - 1 < fb)
        fb = nb - 1;
    uint64_t lb = (uint64_t)((E - 1) / BC_BLOCK);
    size_t count = (size_t)(lb - fb + 1);
    unsigned char *cbuf = scratch(count * BC_CBLOCK + count * BC_NONCE);
    unsigned char plain[BC_BLOCK];
    int rc;

    if (!cbuf)
        return -ENOMEM;
    unsigned char *nonces = cbuf + count * BC_CBLOCK;
    randombytes_buf(nonces, count * BC_NONCE);
    for (uint64_t i = fb; i <= lb; i++) {
        off_t bstart = (off_t)i * BC_BLOCK;
        size_t newlen = bc_block_len(Z2, i);
        size_t oldlen = i < nb ? bc_block_len(Z, i) : 0;
        bool covered = off <= bstart && E >= bstart + (off_t)newlen;
        if (oldlen > 0 && !covered) {
            /* never re-seal a block we could not authenticate */
            if ((rc = read_block(f, Z, i, plain)) < 0)
                goto out;
        } else {
            oldlen = 0;
        }
        if (newlen > oldlen)
            memset(plain + oldlen, 0, newlen - oldlen);
        off_t s = off > bstart ? off : bstart;
        off_t e = E < bstart + (off_t)newlen ? E : bstart + (off_t)newlen;
        if (e > s)
            memcpy(plain + (s - bstart), data + (s - off), (size_t)(e - s));
        bc_seal(cbuf + (i - fb) * BC_CBLOCK, plain, newlen, nonces + (i - fb) * BC_NONCE, f->dek,
                f->project, f->file_id, i, i == nb2 - 1);
    }
    size_t total = (count - 1) * BC_CBLOCK + bc_block_len(Z2, lb) + BC_OVERHEAD;
    /* blocks fb..min(lb, nb - 1) hold existing bytes: journal them first */
    if ((rc = journal(f, fb, lb < nb - 1 ? lb : nb - 1, lb, bc_backing_size(Z2))) < 0)
        goto out;
    if ((rc = reserve(f->fd, bc_backing_size(Z), bc_backing_size(Z2))) < 0)
        goto out;
    if ((rc = tv_write_full(f->fd, cbuf, total, bc_block_offset(fb))) < 0)
        goto out;
    journal_done(f);
    f->size = Z2;
    rc = 0;
out:
    sodium_memzero(plain, sizeof plain);
    return rc;
}

int fio_truncate(struct fileio *f, off_t newsize)
{
    static const unsigned char zeros[1 << 16];
    off_t Z = f->size;
    int rc = 0;

    if (newsize < 0 || newsize > BC_MAX_SIZE)
        return -EINVAL;
    while (newsize > f->size && rc == 0) {
        off_t chunk = newsize - f->size;
        if (chunk > (off_t)sizeof zeros)
            chunk = sizeof zeros;
        rc = fio_write(f, zeros, (size_t)chunk, f->size);
    }
    if (rc < 0 || newsize >= Z)
        return rc;
    uint64_t last = bc_nblocks(newsize) - 1;
    size_t len = bc_block_len(newsize, last);
    unsigned char plain[BC_BLOCK], cb[BC_CBLOCK], nonce[BC_NONCE];
    if (len > 0 && (rc = read_block(f, Z, last, plain)) < 0)
        return rc;
    randombytes_buf(nonce, sizeof nonce);
    bc_seal(cb, plain, len, nonce, f->dek, f->project, f->file_id, last, 1);
    sodium_memzero(plain, sizeof plain);
    /* journal, rewrite the new last block inside the old file, then cut:
     * up to the cut the journal can undo it, after it the file is whole */
    if ((rc = journal(f, last, last, last, bc_backing_size(Z))) < 0 ||
        (rc = tv_write_full(f->fd, cb, len + BC_OVERHEAD, bc_block_offset(last))) < 0)
        return rc;
    if (ftruncate(f->fd, bc_backing_size(newsize)) < 0)
        return -errno;
    journal_done(f);
    f->size = newsize;
    return 0;
}

int fio_read(struct fileio *f, void *vout, size_t len, off_t off, size_t *got)
{
    unsigned char *out = vout, tmp[BC_BLOCK];
    off_t Z = f->size;
    int rc = 0;

    *got = 0;
    if (off < 0)
        return -EINVAL;
    if (off >= Z || len == 0)
        return 0;
    off_t end = off + (off_t)len < Z ? off + (off_t)len : Z;
    uint64_t fb = (uint64_t)(off / BC_BLOCK), lb = (uint64_t)((end - 1) / BC_BLOCK);
    uint64_t nb = bc_nblocks(Z);
    size_t count = (size_t)(lb - fb + 1);
    size_t clen = (count - 1) * BC_CBLOCK + bc_block_len(Z, lb) + BC_OVERHEAD;
    unsigned char *buf = scratch(clen);
    if (!buf)
        return -ENOMEM;
    if ((rc = pread_full(f->fd, buf, clen, bc_block_offset(fb))) < 0)
        return rc;
    /* whole blocks decrypt straight into OUT; a partial first or last block
     * goes through TMP */
    for (uint64_t i = fb; i <= lb && rc == 0; i++) {
        off_t bstart = (off_t)i * BC_BLOCK;
        size_t blen = bc_block_len(Z, i);
        off_t s = off > bstart ? off : bstart;
        off_t e = end < bstart + (off_t)blen ? end : bstart + (off_t)blen;
        const unsigned char *cb = buf + (i - fb) * BC_CBLOCK;
        if (s == bstart && e == bstart + (off_t)blen) {
            rc = bc_open(out + (s - off), cb, blen + BC_OVERHEAD, f->dek, f->project, f->file_id,
                         i, i == nb - 1);
        } else {
            rc = bc_open(tmp, cb, blen + BC_OVERHEAD, f->dek, f->project, f->file_id, i,
                         i == nb - 1);
            if (rc == 0)
                memcpy(out + (s - off), tmp + (s - bstart), (size_t)(e - s));
        }
    }
    sodium_memzero(tmp, sizeof tmp);
    if (rc == 0)
        *got = (size_t)(end - off);
    return rc;
}
