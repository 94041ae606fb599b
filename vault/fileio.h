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
};

/* Write a fresh empty file (header H + one sealed empty block) at offset 0
 * of F->fd; F->size becomes 0. */
int fio_init(struct fileio *f, const struct bc_header *h);

/* Write LEN bytes of DATA at OFF (growing the file, zero-filling a gap).
 * The backing growth is reserved (fallocate) before any block is rewritten,
 * so ENOSPC leaves the file as it was. */
int fio_write(struct fileio *f, const void *data, size_t len, off_t off);

/* Truncate to NEWSIZE, or extend with zeros. */
int fio_truncate(struct fileio *f, off_t newsize);

/* Read up to LEN bytes at OFF into OUT; *GOT receives the count (0 at EOF). */
int fio_read(struct fileio *f, void *out, size_t len, off_t off, size_t *got);

#endif
