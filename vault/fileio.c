/*
 * fileio.c - the block I/O engine (see fileio.h, docs/FORMAT.md "Writing").
 *
 * Buffers for a request's run of sealed blocks are per thread and grow to
 * the largest request seen (1 MiB + overhead with the vault's max_write).
 */
#include "config.h"
#include "vault/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

static __thread unsigned char *tbuf;
static __thread size_t tbuf_cap;

static unsigned char *scratch(size_t need)
{
    if (need > tbuf_cap) {
        free(tbuf);
        tbuf = malloc(need);
        tbuf_cap = tbuf ? need : 0;
    }
    return tbuf;
}

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EBADMSG;            /* the file is shorter than its size says */
        got += (size_t)r;
    }
    return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)w;
    }
    return 0;
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

int fio_init(struct fileio *f, const struct bc_header *h)
{
    unsigned char buf[BC_HDR + BC_OVERHEAD], nonce[BC_NONCE];
    bc_header_encode(h, buf);
    memcpy(f->file_id, h->file_id, BC_FILE_ID);
    randombytes_buf(nonce, sizeof nonce);
    bc_seal(buf + BC_HDR, NULL, 0, nonce, f->dek, f->project, f->file_id, 0, 1);
    int rc = pwrite_full(f->fd, buf, sizeof buf, 0);
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
    if ((rc = reserve(f->fd, bc_backing_size(Z), bc_backing_size(Z2))) < 0)
        goto out;
    if ((rc = pwrite_full(f->fd, cbuf, total, bc_block_offset(fb))) < 0)
        goto out;
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
    if (ftruncate(f->fd, bc_backing_size(newsize)) < 0)
        return -errno;
    if ((rc = pwrite_full(f->fd, cb, len + BC_OVERHEAD, bc_block_offset(last))) < 0)
        return rc;
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
