/*
 * store.h - one accepted request becomes one file in the vault.
 *
 * The file is MOUNT/PROJECT/ingest/YYYY/MM/DD/<hash><SUFFIX>, written through
 * the mount as the gateway's user (a writer of the project), so it is
 * encrypted, audited and policed like any dropped file.  Durability before
 * the answer: the bytes go to a hidden temp name in the same directory
 * (".<hash>-<random>.tmp": the agent ignores dot files), are fsync'd, the file is
 * renamed into place and the directory fsync'd; directories made on the way
 * are fsync'd into their parents.  Only then does store_put return 0.  On any
 * failure the temp file is removed (when the mount still answers) and the
 * final name never exists, so a trace is either whole or absent.
 *
 * <hash> is BLAKE2b-128 of the project and the bytes: a retried request
 * (its first answer lost) lands on the same name and is not stored twice.
 *
 * Every path is opened from the mount each time: a vault that is unmounted
 * and mounted again is picked up by the next request.
 */
#ifndef TV_INGEST_STORE_H
#define TV_INGEST_STORE_H

#include <stddef.h>

#define STORE_NAME_MAX 160

/* Store DATA/LEN for PROJECT.  On success returns 0, writes the file's
 * path relative to the mount into REL (STORE_NAME_MAX bytes) and sets
 * *DUPLICATE when the same bytes were already stored today (nothing new
 * was written).  Returns a
 * negative errno otherwise: -ENOSPC, -EDQUOT, -EFBIG (the project's limits),
 * -EACCES/-EPERM (the gateway's user is not a writer), -ENOENT (no such
 * project in the vault), -ENOTCONN/-EIO (the vault is gone or failing). */
int store_put(const char *mount, const char *project, const char *suffix,
              const void *data, size_t len, char rel[STORE_NAME_MAX], int *duplicate);

/* Remove PROJECT's temp files older than MAX_AGE_S seconds in today's and
 * yesterday's directories: what a gateway killed mid-store left behind (the
 * agent never reads them, but they hold space).  Returns the number removed;
 * a missing directory or an absent vault is not an error. */
int store_sweep(const char *mount, const char *project, int max_age_s);

#endif
