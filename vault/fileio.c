/*
 * fileio.c - the one door into an open sealed file (see fileio.h,
 * docs/FORMAT.md "Writing" and "Crash consistency").
 *
 * Layout: the open/create/close door (header, DEK, tail journal), then the
 * block engine (read, write, truncate, verify) and the journal's record
 * (write, void, recover).  Buffers for a request's run of sealed blocks and
 * for its journal record are per thread and grow to the largest request
 * seen (1 MiB + overhead with the vault's max_write).
 *
 * The tail journal of a file is named by its file ID in its project's
 * journal directory (BACKING/P/.tvjournal/<file ID hex>): independent of
 * the file's path (any length the backing store accepts) and of renames.
 */
#include "config.h"
#include "vault/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vault/audit.h"
#include "vault/keymem.h"
#include "vault/keys.h"

#define JMAGIC "TVJ1"

struct fileio {
    int fd;                             /* backing file, read-write (read-only: FIO_CHECK) */
    int jdir;                           /* the project's journal directory (borrowed), or -1 */
    int jfd;                            /* tail journal, or -1 */
    bool readonly;
    unsigned char *dek;                 /* keymem slot */
    unsigned char file_id[BC_FILE_ID];
    char fid_hex[2 * BC_FILE_ID + 1];
    const char *project;                /* borrowed */
    off_t size;                         /* plaintext size */
    uint16_t hversion;                  /* header version */
    bool foreign;                       /* the header was made for another owner:
                                           a copy spliced onto this file; no write */
    uint64_t skip_first;                /* FIO_CHECK: blocks authenticated in the journal */
    uint32_t skip_count;
};

static __thread struct tv_scratch run_buf, jrec_buf;

/* A short read means the file is shorter than its size says: damage. */
static int pread_full(int fd, void *buf, size_t len, off_t off)
{
    int rc = tv_read_full(fd, buf, len, off, -1);
    return rc == -ENODATA ? -EBADMSG : rc;
}

/* ---- the journal ----------------------------------------------------------- */

/* Open F's journal (made when CREATE) into f->jfd.  -ENOENT: none. */
static int journal_open(struct fileio *f, bool create)
{
    if (f->jfd >= 0)
        return 0;
    if (f->jdir < 0)
        return -ENOENT;
    int fd = openat(f->jdir, f->fid_hex, (f->readonly ? O_RDONLY : O_RDWR) | O_NOFOLLOW |
                                             O_CLOEXEC | O_NONBLOCK | (create ? O_CREAT : 0),
                    0600);
    if (fd < 0)
        return -errno;
    f->jfd = fd;
    return 0;
}

/* Before a rewrite: make sure the file has a journal.  An unlinked file
 * needs none: nobody can open it after a crash. */
static int journal_ready(struct fileio *f)
{
    struct stat st;
    if (f->jfd >= 0 || f->jdir < 0 || (fstat(f->fd, &st) == 0 && st.st_nlink == 0))
        return 0;
    int rc = journal_open(f, true);
    if (rc < 0)
        log_error("vault: project \"%s\": file %s: cannot make its tail journal: %s",
                  f->project, f->fid_hex, strerror(-rc));
    return rc;
}

/* Close F's journal; with REMOVE unlink it first.  Keeping it while the
 * file is open spares a create and an unlink per open/close of a file
 * written in bursts. */
static void journal_close(struct fileio *f, bool remove)
{
    if (f->jfd < 0)
        return;
    if (remove)
        unlinkat(f->jdir, f->fid_hex, 0);
    close(f->jfd);
    f->jfd = -1;
}

bool fio_journal_valid(int jdir, const char *name)
{
    unsigned char magic[4];
    int jfd = openat(jdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (jfd < 0)
        return false;
    /* a voided record (a completed rewrite) needs nothing */
    bool valid = pread(jfd, magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
                 memcmp(magic, JMAGIC, 4) == 0;
    close(jfd);
    return valid;
}

void fio_journal_unlink(int jdir, const char *fid_hex)
{
    if (jdir >= 0 && fid_hex[0])
        unlinkat(jdir, fid_hex, 0);
}

/* ---- the door ------------------------------------------------------------- */

static struct fileio *fio_alloc(const char *project)
{
    struct fileio *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->fd = f->jdir = f->jfd = -1;
    f->project = project;
    if (!(f->dek = keymem_alloc())) {
        free(f);
        return NULL;
    }
    return f;
}

static void set_file_id(struct fileio *f, const unsigned char id[BC_FILE_ID])
{
    memcpy(f->file_id, id, BC_FILE_ID);
    tv_hex(id, BC_FILE_ID, f->fid_hex);
}

void fio_park(struct fileio *f)
{
    journal_close(f, false);        /* its record is voided: nothing is in flight */
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

int fio_unpark(struct fileio *f, int pathfd)
{
    char pp[64];
    struct stat st;
    off_t size;
    snprintf(pp, sizeof pp, "/proc/self/fd/%d", pathfd);
    int fd = open(pp, (f->readonly ? O_RDONLY | O_NONBLOCK : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* nobody but this vault writes the file: a changed size is damage */
    if (fstat(fd, &st) < 0 || bc_plain_size(st.st_size, &size) < 0 || size != f->size) {
        close(fd);
        return -EIO;
    }
    f->fd = fd;
    return 0;
}

void fio_close(struct fileio *f, bool drop_journal)
{
    if (!f)
        return;
    journal_close(f, drop_journal);
    keymem_free(f->dek);                /* wipes */
    if (f->fd >= 0)
        close(f->fd);
    free(f);
}

int fio_read_header(int fd, struct bc_header *h)
{
    unsigned char hdr[BC_HDR];
    int rc = pread_full(fd, hdr, BC_HDR, 0);
    return rc < 0 ? rc : bc_header_parse(hdr, BC_HDR, h);
}

int fio_file_id_of(int pathfd, char hex[2 * BC_FILE_ID + 1])
{
    char pp[64];
    struct bc_header h;
    snprintf(pp, sizeof pp, "/proc/self/fd/%d", pathfd);
    int fd = open(pp, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    int rc = fio_read_header(fd, &h);
    close(fd);
    if (rc < 0)
        return rc;
    tv_hex(h.file_id, BC_FILE_ID, hex);
    return 0;
}

int fio_open(struct fileio **out, struct keys *keys, const char *project, int jdir, int pathfd,
             int mode, struct fio_report *rep)
{
    struct bc_header h;
    struct stat st;
    char pp[64];
    int rc;

    memset(rep, 0, sizeof *rep);
    *out = NULL;
    struct fileio *f = fio_alloc(project);
    if (!f)
        return -ENOMEM;
    f->jdir = jdir;
    f->readonly = mode == FIO_CHECK;
    snprintf(pp, sizeof pp, "/proc/self/fd/%d", pathfd);
    f->fd = open(pp, (f->readonly ? O_RDONLY | O_NONBLOCK : O_RDWR) | O_CLOEXEC);
    if (f->fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (fstat(f->fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = fio_read_header(f->fd, &h)) < 0) {
        rep->what = "header";
        rc = -EBADMSG;
        goto fail;
    }
    set_file_id(f, h.file_id);
    f->hversion = h.version;
    memcpy(rep->fid_hex, f->fid_hex, sizeof rep->fid_hex);
    rep->legacy = h.version == BC_VERSION_LEGACY;
    /* a version-2 DEK opens only for this file ID; the header's MAC, keyed
     * from the DEK, binds the owner it was made for */
    rc = keys_unwrap(keys, project, h.kek_version, rep->legacy ? NULL : h.file_id, h.wrapped,
                     f->dek);
    if (rc == 0 && bc_header_verify(&h, project, f->dek) < 0)
        rc = -EBADMSG;
    if (rc == -EBADMSG) {
        rep->what = "wrapped key";
        goto fail;
    }
    if (rc == 0 && !rep->legacy && h.owner != st.st_uid) {
        f->foreign = rep->foreign = true;
        log_warn("vault: project \"%s\": file %s: its header was made for uid %u, the file "
                 "belongs to uid %u: a header copied from another file? writes are refused",
                 project, f->fid_hex, (unsigned)h.owner, (unsigned)st.st_uid);
    }
    if (rc < 0 && rc != -EKEYREVOKED) {
        log_error("vault: project \"%s\": file %s: cannot unwrap its key: %s", project,
                  f->fid_hex, keys_error(keys)[0] ? keys_error(keys) : strerror(-rc));
        rc = -EIO;
    }
    if (rc < 0)
        goto fail;
    /* a journal left by a kill: undo the rewrite it interrupted */
    if (journal_open(f, false) == 0) {
        rc = fio_recover(f, f->jfd, st.st_size, !f->readonly, rep);
        if (rc == -EBADMSG) {
            rep->journal_damaged = true;        /* the caller reports it */
        } else if (rc < 0) {
            log_error("vault: project \"%s\": file %s: cannot apply its tail journal: %s",
                      project, f->fid_hex, strerror(-rc));
        } else if (rc == 1 && f->readonly) {
            f->skip_first = rep->first;
            f->skip_count = rep->count;
            f->size = rep->old_size;
            *out = f;
            return 0;
        } else if (rc == 1) {
            log_warn("vault: project \"%s\": file %s: torn tail restored from its journal "
                     "(%u block(s) from %llu, size %lld)", project, f->fid_hex, rep->count,
                     (unsigned long long)rep->first, (long long)rep->old_size);
            audit_log(0, 0, project, "recover", 0, f->fid_hex, "tail");
        }
        if (fstat(f->fd, &st) < 0) {
            rc = -errno;
            goto fail;
        }
    }
    if (bc_plain_size(st.st_size, &f->size) < 0) {
        rep->what = "size";
        rc = -EBADMSG;
        goto fail;
    }
    *out = f;
    return 0;
fail:
    fio_close(f, false);        /* a journal is kept for a later try */
    return rc;
}

/* Write a fresh file (a version-2 header for the file ID, KEK version and
 * wrapped DEK of H, bound to the backing file's owner, and one sealed empty
 * block). */
static int init_file(struct fileio *f, const struct bc_header *h0)
{
    unsigned char buf[BC_HDR + BC_OVERHEAD], nonce[BC_NONCE];
    struct bc_header h = *h0;
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return -errno;
    h.version = BC_VERSION;
    h.owner = st.st_uid;
    bc_header_mac(&h, f->project, f->dek, h.mac);
    bc_header_encode(&h, buf);
    f->hversion = h.version;
    set_file_id(f, h.file_id);
    randombytes_buf(nonce, sizeof nonce);
    bc_seal(buf + BC_HDR, NULL, 0, nonce, f->dek, f->project, f->file_id, 0, 1);
    int rc = tv_write_full(f->fd, buf, sizeof buf, 0);
    if (rc == 0)
        f->size = 0;
    return rc;
}

int fio_create(struct fileio **out, struct keys *keys, const char *project, int jdir, int fd)
{
    struct bc_header h;
    int rc;

    *out = NULL;
    struct fileio *f = fio_alloc(project);
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    f->fd = fd;
    f->jdir = jdir;
    if ((rc = keys_new_dek(keys, project, f->dek, h.file_id, h.wrapped, &h.kek_version)) < 0) {
        if (rc != -EKEYREVOKED)
            rc = -EIO;          /* keyd refused or is away: logged by keys */
        goto fail;
    }
    if ((rc = init_file(f, &h)) < 0)
        goto fail;
    *out = f;
    return 0;
fail:
    fio_close(f, false);
    return rc;
}

int fio_attach(struct fileio **out, int fd, const unsigned char dek[BC_DEK],
               const struct bc_header *h, bool init, const char *project, int jfd)
{
    struct fileio *f = fio_alloc(project);
    int rc;

    *out = NULL;
    if (!f) {
        close(fd);
        if (jfd >= 0)
            close(jfd);
        return -ENOMEM;
    }
    f->fd = fd;
    f->jfd = jfd;
    memcpy(f->dek, dek, BC_DEK);
    set_file_id(f, h->file_id);
    rc = init ? init_file(f, h) : fio_refresh_size(f);
    if (rc < 0) {
        fio_close(f, false);
        return rc;
    }
    *out = f;
    return 0;
}

off_t fio_size(const struct fileio *f)
{
    return f->size;
}

const unsigned char *fio_file_id(const struct fileio *f)
{
    return f->file_id;
}

const char *fio_file_id_hex(const struct fileio *f)
{
    return f->fid_hex;
}

int fio_backing_fd(const struct fileio *f)
{
    return f->fd;
}

void fio_set_journal(struct fileio *f, int jfd)
{
    f->jfd = jfd;
}

int fio_refresh_size(struct fileio *f)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return -errno;
    return bc_plain_size(st.st_size, &f->size);
}

int fio_sync(struct fileio *f, bool datasync)
{
    return (datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0 ? -errno : 0;
}

/* ---- the block engine ------------------------------------------------------ */

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
    if (f->jfd < 0)
        return 0;
    size_t count = (size_t)(last - first + 1);
    size_t blen = (count - 1) * BC_CBLOCK + bc_block_len(f->size, last) + BC_OVERHEAD;
    unsigned char *b = tv_scratch(&jrec_buf, FIO_JHDR + blen);
    if (!b)
        return -ENOMEM;
    memcpy(b, JMAGIC, 4);
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
    if (f->jfd >= 0)
        (void)!pwrite(f->jfd, zero, sizeof zero, 0);
}

int fio_recover(struct fileio *f, int jfd, off_t csize, bool apply, struct fio_report *t)
{
    unsigned char hdr[FIO_JHDR], cb[BC_CBLOCK], plain[BC_BLOCK];
    int rc = 0;

    if (pread_full(jfd, hdr, FIO_JHDR, 0) < 0 || memcmp(hdr, JMAGIC, 4) != 0)
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

    /* is the file whole where the rewrite ran, and at its end?  The last
     * block first: when the rewrite grew the file, an intact last block is
     * new, and the run's pwrites, which go in order, all completed before it */
    off_t cur;
    bool torn = bc_plain_size(csize, &cur) < 0;
    if (!torn) {
        uint64_t cnb = bc_nblocks(cur), end = run_end < cnb - 1 ? run_end : cnb - 1;
        rc = read_block(f, cur, cnb - 1, plain);
        torn = rc == -EBADMSG;
        if (!torn && rc == 0 && csize > oldc)
            goto out;                   /* a completed extension */
        for (uint64_t i = first; i <= end && !torn && rc == 0; i++) {
            rc = read_block(f, cur, i, plain);
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
    t->restored = true;
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

static off_t limit_of(const struct fio_ctl *ctl)
{
    return ctl && ctl->max_size > 0 && ctl->max_size < BC_MAX_SIZE ? ctl->max_size : BC_MAX_SIZE;
}

static int charge(const struct fio_ctl *ctl, int64_t delta)
{
    return ctl && ctl->charge && delta ? ctl->charge(ctl->arg, delta) : 0;
}

static bool interrupted(const struct fio_ctl *ctl)
{
    return ctl && ctl->interrupted && ctl->interrupted(ctl->arg);
}

/* Seal block I of a file of SIZE2 bytes into OUT: its plaintext is OLDLEN
 * bytes of OLD (the block's current content, or NULL), then zeros, with
 * DATA (covering [OFF, E)) laid over it. */
static void seal_block(struct fileio *f, unsigned char *out, const unsigned char nonce[BC_NONCE],
                       uint64_t i, off_t size2, const unsigned char *old, size_t oldlen,
                       const unsigned char *data, off_t off, off_t E, unsigned char *plain)
{
    off_t bstart = (off_t)i * BC_BLOCK;
    size_t newlen = bc_block_len(size2, i);
    if (old && oldlen && old != plain)
        memcpy(plain, old, oldlen);
    if (!old)
        oldlen = 0;
    if (newlen > oldlen)
        memset(plain + oldlen, 0, newlen - oldlen);
    off_t s = off > bstart ? off : bstart;
    off_t e = E < bstart + (off_t)newlen ? E : bstart + (off_t)newlen;
    if (data && e > s)
        memcpy(plain + (s - bstart), data + (s - off), (size_t)(e - s));
    bc_seal(out, plain, newlen, nonce, f->dek, f->project, f->file_id, i,
            i == bc_nblocks(size2) - 1);
}

/* A write that starts inside the file or at its end (OFF <= size): the
 * blocks from the first touched one (or the old last block, which must be
 * re-sealed as "not last") to the last touched one are rebuilt in memory
 * and written with one pwrite.  Memory: the run, bounded by LEN. */
static int write_run(struct fileio *f, const unsigned char *data, size_t len, off_t off)
{
    off_t Z = f->size, E = off + (off_t)len, Z2 = E > Z ? E : Z;
    uint64_t nb = bc_nblocks(Z), nb2 = bc_nblocks(Z2);
    uint64_t fb = (uint64_t)(off / BC_BLOCK);
    if (nb2 > nb && nb - 1 < fb)
        fb = nb - 1;
    uint64_t lb = (uint64_t)((E - 1) / BC_BLOCK);
    size_t count = (size_t)(lb - fb + 1);
    unsigned char *cbuf = tv_scratch(&run_buf, count * BC_CBLOCK + count * BC_NONCE);
    unsigned char plain[BC_BLOCK];
    int rc = 0;

    if (!cbuf)
        return -ENOMEM;
    unsigned char *nonces = cbuf + count * BC_CBLOCK;
    randombytes_buf(nonces, count * BC_NONCE);
    for (uint64_t i = fb; i <= lb && rc == 0; i++) {
        off_t bstart = (off_t)i * BC_BLOCK;
        size_t oldlen = i < nb ? bc_block_len(Z, i) : 0;
        bool covered = off <= bstart && E >= bstart + (off_t)bc_block_len(Z2, i);
        /* never re-seal a block we could not authenticate */
        bool keep = oldlen > 0 && !covered;
        if (keep)
            rc = read_block(f, Z, i, plain);
        if (rc == 0)
            seal_block(f, cbuf + (i - fb) * BC_CBLOCK, nonces + (i - fb) * BC_NONCE, i, Z2,
                       keep ? plain : NULL, oldlen, data, off, E, plain);
    }
    size_t total = (count - 1) * BC_CBLOCK + bc_block_len(Z2, lb) + BC_OVERHEAD;
    /* blocks fb..min(lb, nb - 1) hold existing bytes: journal them first */
    if (rc == 0)
        rc = journal(f, fb, lb < nb - 1 ? lb : nb - 1, lb, bc_backing_size(Z2));
    if (rc == 0 && (rc = reserve(f->fd, bc_backing_size(Z), bc_backing_size(Z2))) < 0)
        (void)!ftruncate(f->fd, bc_backing_size(Z));
    if (rc == 0)
        rc = tv_write_full(f->fd, cbuf, total, bc_block_offset(fb));
    if (rc == 0) {
        journal_done(f);
        f->size = Z2;
    }
    sodium_memzero(plain, sizeof plain);
    return rc;
}

/* Grow the file from its size Z to Z2 > Z, with DATA over [OFF, OFF+LEN)
 * (OFF >= Z; DATA may be NULL) and zeros elsewhere, in chunks of
 * FIO_CHUNK_BLOCKS blocks: memory stays bounded however far the file
 * grows, and CTL may interrupt between chunks.  The growth is reserved
 * first (ENOSPC changes nothing) and the old last block journalled; any
 * failure puts the old last block back and cuts the file to its old size,
 * so a failed extension leaves the file as it was (a kill leaves the
 * journal, which does the same at the next open). */
static int extend(struct fileio *f, const unsigned char *data, size_t len, off_t off, off_t Z2,
                  const struct fio_ctl *ctl)
{
    off_t Z = f->size, E = off + (off_t)len, oldc = bc_backing_size(Z);
    uint64_t nb = bc_nblocks(Z), nb2 = bc_nblocks(Z2), last = nb - 1;
    size_t oldlen = bc_block_len(Z, last);
    unsigned char oldcb[BC_CBLOCK], plain[BC_BLOCK], oldplain[BC_BLOCK];
    unsigned char *cbuf = tv_scratch(&run_buf, FIO_CHUNK_BLOCKS * (BC_CBLOCK + BC_NONCE));
    int rc;

    if (!cbuf)
        return -ENOMEM;
    /* never re-seal a block we could not authenticate; keep its sealed bytes
     * to put back on failure */
    if ((rc = pread_full(f->fd, oldcb, oldlen + BC_OVERHEAD, bc_block_offset(last))) < 0 ||
        (rc = bc_open(oldplain, oldcb, oldlen + BC_OVERHEAD, f->dek, f->project, f->file_id,
                      last, true)) < 0)
        goto out;
    if ((rc = journal(f, last, last, nb2 - 1, bc_backing_size(Z2))) < 0)
        goto out;
    if ((rc = reserve(f->fd, oldc, bc_backing_size(Z2))) < 0)
        goto undo;
    for (uint64_t i = last; i < nb2 && rc == 0;) {
        uint64_t n = nb2 - i < FIO_CHUNK_BLOCKS ? nb2 - i : FIO_CHUNK_BLOCKS;
        unsigned char *nonces = cbuf + n * BC_CBLOCK;
        randombytes_buf(nonces, n * BC_NONCE);
        for (uint64_t k = 0; k < n; k++)
            seal_block(f, cbuf + k * BC_CBLOCK, nonces + k * BC_NONCE, i + k, Z2,
                       i + k == last ? oldplain : NULL, oldlen, data, off, E, plain);
        size_t bytes = (n - 1) * BC_CBLOCK + bc_block_len(Z2, i + n - 1) + BC_OVERHEAD;
        rc = tv_write_full(f->fd, cbuf, bytes, bc_block_offset(i));
        i += n;
        if (rc == 0 && i < nb2 && interrupted(ctl))
            rc = -EINTR;
    }
    if (rc == 0) {
        journal_done(f);
        f->size = Z2;
        goto out;
    }
undo:
    /* put the old last block back and cut: the file as it was */
    if (tv_write_full(f->fd, oldcb, oldlen + BC_OVERHEAD, bc_block_offset(last)) == 0 &&
        ftruncate(f->fd, oldc) == 0)
        journal_done(f);            /* else the record stays for the next open */
out:
    sodium_memzero(plain, sizeof plain);
    sodium_memzero(oldplain, sizeof oldplain);
    return rc;
}

int fio_write(struct fileio *f, const void *vdata, size_t len, off_t off,
              const struct fio_ctl *ctl)
{
    off_t Z = f->size, E = off + (off_t)len;
    int rc;

    if (len == 0)
        return 0;
    if (f->foreign)
        return -EKEYREJECTED;
    if (off < 0)
        return -EINVAL;
    if (E > limit_of(ctl) || E < off)
        return -EFBIG;
    int64_t growth = E > Z ? E - Z : 0;
    if ((rc = journal_ready(f)) < 0 || (rc = charge(ctl, growth)) < 0)
        return rc;
    rc = off > Z ? extend(f, vdata, len, off, E, ctl) : write_run(f, vdata, len, off);
    if (rc < 0)
        charge(ctl, -growth);
    return rc;
}

int fio_truncate(struct fileio *f, off_t newsize, const struct fio_ctl *ctl)
{
    off_t Z = f->size;
    int rc;

    if (f->foreign)
        return -EKEYREJECTED;
    if (newsize < 0)
        return -EINVAL;
    if (newsize > limit_of(ctl))
        return -EFBIG;
    if (newsize == Z)
        return 0;
    if ((rc = journal_ready(f)) < 0)
        return rc;
    if (newsize > Z) {
        if ((rc = charge(ctl, newsize - Z)) < 0)
            return rc;
        if ((rc = extend(f, NULL, 0, newsize, newsize, ctl)) < 0)
            charge(ctl, Z - newsize);
        return rc;
    }
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
    charge(ctl, newsize - Z);
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
    unsigned char *buf = tv_scratch(&run_buf, clen);
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

int fio_verify(struct fileio *f, uint64_t *bad)
{
    unsigned char plain[BC_BLOCK];
    uint64_t nb = bc_nblocks(f->size);
    int rc = 0;

    for (uint64_t i = 0; i < nb && rc == 0; i++) {
        if (f->skip_count && i >= f->skip_first && i - f->skip_first < f->skip_count)
            continue;                   /* authenticated in the journal */
        rc = read_block(f, f->size, i, plain);
        if (rc < 0)
            *bad = i;
    }
    sodium_memzero(plain, sizeof plain);
    return rc;
}
