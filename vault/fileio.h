/*
 * fileio.h - reading and writing one encrypted backing file (the format of
 * blockcrypt.h) through a held descriptor: the I/O engine under the FUSE
 * handlers, with no FUSE, no keyd and no locking of its own (callers
 * serialise: reads may run together, a write or truncate runs alone).
 *
 * A struct fileio describes an open file: backing fd (read-write), the DEK
 * (borrowed; guarded memory owned by the caller), file ID, project name
 * (borrowed) and the current plaintext size, which the engine keeps up to
 * date.  Integrity failures return -EBADMSG (callers report and map to EIO);
 * other failures a negative errno.  Plaintext passing through the engine's
 * own buffers is wiped.
 */
#ifndef TV_VAULT_FILEIO_H
#define TV_VAULT_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "vault/blockcrypt.h"

struct fileio {
    int fd;
    unsigned char *dek;                 /* BC_DEK bytes, borrowed */
    unsigned char file_id[BC_FILE_ID];
    const char *project;                /* borrowed */
    off_t size;                         /* plaintext size */
    int jfd;                            /* tail journal (read-write), used when > 0:
                                           a zero-initialised struct journals nothing */
};

/* The tail journal (docs/FORMAT.md "Crash consistency").  Before a write or
 * truncate rewrites existing blocks in place, the engine saves their old
 * sealed bytes into F->jfd (one pwrite at offset 0, page cache only):
 *
 *   "TVJ1" | u32 count | u64 first | u64 old size | u64 backing size while
 *   the rewrite is in flight | u64 last block of the rewritten run
 *   | count sealed blocks first.. of a file of the old size
 *
 * so a rewrite stopped half-way by a kill of the process can be undone.
 * Once the rewrite is complete the magic is zeroed: only a record of a
 * rewrite in flight is ever valid. */
#define FIO_JHDR 40u
struct fio_tail {
    uint64_t first;                     /* first block taken from the journal */
    uint32_t count;                     /* how many */
    off_t old_size;                     /* plaintext size the file is restored to */
};

/* Look at journal JFD for the file F (fd, DEK, file ID and project set; size
 * unused) whose backing file has CSIZE bytes.  Returns 0 when the file needs
 * nothing (no usable record, a record of a rewrite that completed or of
 * another state of the file), 1 when the file is torn in the journalled
 * run and the journal's blocks authenticate as its old blocks: with APPLY
 * they are written back and the backing file is cut to the old size
 * (F->size becomes it); *T describes the restore either way.  -EBADMSG when
 * the file is torn in the run but the journal cannot repair it. */
int fio_recover(struct fileio *f, int jfd, off_t csize, int apply, struct fio_tail *t);

/* Write a fresh empty file (header H + one sealed empty block) at offset 0
 * of F->fd; F->size becomes 0. */
int fio_init(struct fileio *f, const struct bc_header *h);

/* Write LEN bytes of DATA at OFF (growing the file, zero-filling a gap).
 * The backing growth is reserved (fallocate) before any block is rewritten,
 * so ENOSPC leaves the file as it was. */
int fio_write(struct fileio *f, const void *data, size_t len, off_t off);

/* Truncate to NEWSIZE, or extend with zeros.  Shrinking journals the new
 * last block, rewrites it, then cuts the backing file. */
int fio_truncate(struct fileio *f, off_t newsize);

/* Read up to LEN bytes at OFF into OUT; *GOT receives the count (0 at EOF). */
int fio_read(struct fileio *f, void *out, size_t len, off_t off, size_t *got);

#endif
