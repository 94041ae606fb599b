/*
 * fileio.h - the one door into an open sealed file (docs/FORMAT.md).
 *
 * A struct fileio is an open encrypted backing file: its read-write
 * descriptor, its DEK (a keymem slot: guarded memory, wiped on close), its
 * file ID, its project (borrowed name, for the block AAD) and its plaintext
 * size, which the engine keeps up to date; and its tail journal, the file's
 * crash-consistency record, whose name and format only this module knows.
 *
 * Opening (fio_open) reads and parses the header, unwraps the DEK through
 * keyd (vault/keys.h), applies a tail journal left by a kill and computes
 * the size; creating (fio_create) takes a pooled DEK and writes a fresh empty
 * file.  The FUSE side (vnode.c) and fsck both come in here.
 *
 * No FUSE and no locking of its own: callers serialise (reads may run
 * together; a write, truncate or close runs alone).  Integrity failures
 * return -EBADMSG (callers report and map to EIO); other failures a
 * negative errno.  Plaintext passing through the engine's buffers is wiped.
 */
#ifndef TV_VAULT_FILEIO_H
#define TV_VAULT_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vault/blockcrypt.h"

struct fileio;
struct keys;

/* fio_open modes */
#define FIO_RDWR 0        /* the vault: read-write, a torn tail is restored */
#define FIO_CHECK 1       /* fsck: read-only; a restorable torn tail is reported,
                             and the file is read as the journal would restore it */

/* What fio_open found out, for the caller's report. */
struct fio_report {
    char fid_hex[2 * BC_FILE_ID + 1]; /* the file ID, once the header was read */
    const char *what;       /* on -EBADMSG: "header", "wrapped key", "tail journal",
                               "size": the part that failed authentication */
    bool legacy;            /* a version-1 header (DEK wrapped for no one file):
                                tracevault fsck --rewrap upgrades it */
    bool foreign;           /* a version-2 header made for another owner: a
                               header copied onto this file; reads work,
                               writes and truncates fail with -EKEYREJECTED */
    bool journal_damaged;   /* a torn tail whose journal cannot restore it (the
                               open goes on; reads of the torn blocks fail) */
    bool restored;          /* FIO_RDWR: a torn tail was restored from the journal;
                               FIO_CHECK: one is restorable */
    uint64_t first;         /* the restored run: blocks first..first+count-1 */
    uint32_t count;
    off_t old_size;         /* the size the file was restored to */
};

/*
 * Open the sealed file behind PATHFD (an O_PATH descriptor of the backing
 * file; borrowed) of PROJECT (borrowed; must outlive the fileio), whose tail
 * journals live in JDIR (the project's journal directory, borrowed; -1:
 * none).  Returns 0 and *OUT, or -EBADMSG (REP->what says what failed),
 * -EKEYREVOKED (the project was shredded), -EIO (keyd refused or is
 * unreachable: logged), another negative errno.  REP->journal_damaged is
 * reported by the caller.
 */
int fio_open(struct fileio **out, struct keys *keys, const char *project, int jdir, int pathfd,
             int mode, struct fio_report *rep);

/*
 * Make FD (a new, empty backing file opened read-write; consumed, also on
 * failure) a fresh sealed file of PROJECT: a pooled DEK from KEYS, a random
 * file ID, the header and one empty sealed block.  JDIR as for fio_open.
 * -EKEYREVOKED if the project was shredded, -EIO if keyd refused or is
 * unreachable, another negative errno if the file cannot be written.
 */
int fio_create(struct fileio **out, struct keys *keys, const char *project, int jdir, int fd);

/*
 * Close F: wipe its DEK, close its descriptors.  With DROP_JOURNAL the tail
 * journal is removed (nothing is in flight: the open state is being dropped
 * for good); without, it is kept for a later open to apply.  NULL is fine.
 */
void fio_close(struct fileio *f, bool drop_journal);

/* Park F: close its descriptors (backing file, journal) but keep its DEK,
 * file ID and size, so that a later open needs no keyd round trip (a closed
 * file kept for a quick reopen costs no descriptor).  Nothing may be in
 * flight.  fio_unpark reopens it from PATHFD (an O_PATH descriptor of the
 * same backing file); -EIO if the backing file changed size meanwhile. */
void fio_park(struct fileio *f);
int fio_unpark(struct fileio *f, int pathfd);

/* Open an engine on FD (read-write, consumed) with a DEK the caller already
 * holds (copied into guarded memory) and the file ID of header H: for unit
 * tests and tools.  With INIT the file is written fresh (H and one empty
 * block), else its size is computed from the backing size.  JFD (>= 0,
 * consumed) journals rewrites; -1 journals nothing. */
int fio_attach(struct fileio **out, int fd, const unsigned char dek[BC_DEK],
               const struct bc_header *h, bool init, const char *project, int jfd);

/* Plaintext size; file ID (BC_FILE_ID bytes) and its hex form. */
off_t fio_size(const struct fileio *f);
const unsigned char *fio_file_id(const struct fileio *f);
const char *fio_file_id_hex(const struct fileio *f);

/* Limits and hooks of one write or truncate (every field optional; a NULL
 * ctl means none). */
struct fio_ctl {
    off_t max_size;                      /* beyond it: -EFBIG (0: BC_MAX_SIZE) */
    /* Reserve DELTA more plaintext bytes for the file's growth (negative:
     * give back); a refusal (-EDQUOT, -ENOSPC) fails the call before any
     * byte is written.  A shrink reports its negative delta after it. */
    int (*charge)(void *arg, int64_t delta);
    /* Asked between chunks of a long extension: true stops it (-EINTR),
     * the file left as it was. */
    bool (*interrupted)(void *arg);
    void *arg;
};

/* Blocks a long extension writes at a time (its memory: ~1 MiB). */
#define FIO_CHUNK_BLOCKS 256u

/* Write LEN bytes of DATA at OFF (growing the file, zero-filling a gap).
 * The backing growth is reserved (fallocate) before any block is rewritten,
 * so ENOSPC leaves the file as it was; blocks rewritten in place are first
 * saved in the tail journal.  A gap is filled in bounded chunks; a failed
 * or interrupted extension leaves the file at its old size. */
int fio_write(struct fileio *f, const void *data, size_t len, off_t off,
              const struct fio_ctl *ctl);

/* Truncate to NEWSIZE, or extend with zeros (as a write with a gap).
 * Shrinking journals the new last block, rewrites it, then cuts the backing
 * file.  -EFBIG beyond the size limit. */
int fio_truncate(struct fileio *f, off_t newsize, const struct fio_ctl *ctl);

/* Read up to LEN bytes at OFF into OUT; *GOT receives the count (0 at EOF). */
int fio_read(struct fileio *f, void *out, size_t len, off_t off, size_t *got);

/* Authenticate every block; on -EBADMSG *BAD is the first failing block.
 * Blocks a FIO_CHECK open found restorable in the journal are skipped (the
 * journal's copies authenticated). */
int fio_verify(struct fileio *f, uint64_t *bad);

/* fsync / fdatasync the backing file. */
int fio_sync(struct fileio *f, bool datasync);

/* Read and parse the header of the backing file FD. */
int fio_read_header(int fd, struct bc_header *h);

/* The file ID of the backing file behind PATHFD (an O_PATH or any
 * descriptor), from its header, as hex. */
int fio_file_id_of(int pathfd, char hex[2 * BC_FILE_ID + 1]);

/* ---- tail journals, in the project's journal directory ----------------- */

#define FIO_JOURNAL_DIR ".tvjournal"

/* True if journal NAME in JDIR holds a valid (not voided) record: a rewrite
 * was interrupted, and opening its file will restore it.  No key needed. */
bool fio_journal_valid(int jdir, const char *name);

/* The file with ID FID_HEX was unlinked: remove its journal, if any. */
void fio_journal_unlink(int jdir, const char *fid_hex);

/* ---- for the unit test of the engine -------------------------------------- */

/* The journal record layout (docs/FORMAT.md "Crash consistency"):
 *   "TVJ1" | u32 count | u64 first | u64 old size | u64 backing size while
 *   the rewrite is in flight | u64 last block of the rewritten run
 *   | count sealed blocks first.. of a file of the old size
 * Once the rewrite is complete the magic is zeroed. */
#define FIO_JHDR 40u

/* Look at journal JFD for F whose backing file has CSIZE bytes.  Returns 0
 * when the file needs nothing, 1 when it is torn in the journalled run and
 * the journal's blocks authenticate as its old blocks (with APPLY they are
 * written back and the backing file cut to the old size; the size becomes
 * it); REP describes the restore either way.  -EBADMSG when the file is torn
 * in the run but the journal cannot repair it. */
int fio_recover(struct fileio *f, int jfd, off_t csize, bool apply, struct fio_report *rep);

/* The backing descriptor; replace the journal descriptor (-1: none; the old
 * one is not closed); recompute the size from the backing size. */
int fio_backing_fd(const struct fileio *f);
void fio_set_journal(struct fileio *f, int jfd);
int fio_refresh_size(struct fileio *f);

#endif
