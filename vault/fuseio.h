/*
 * fuseio.h - the vault's reads and writes of /dev/fuse (libfuse's custom
 * I/O hooks), for what libfuse 3.14 does not negotiate or pass on.
 *
 * The kernel asks every FUSE file system, before every write to a file it
 * has not marked "no security attributes" (S_NOSEC), for the file's
 * security.capability attribute: one GETXATTR round trip per write(2),
 * half the requests of an application appending JSON lines.  The kernel
 * marks a file S_NOSEC only when the file system handles the clearing of
 * setuid/setgid itself (FUSE_HANDLE_KILLPRIV_V2), which libfuse 3.14 cannot
 * ask for, and then tells the file system which requests must clear them:
 * flags of WRITE and OPEN requests that libfuse 3.14 does not hand to the
 * handlers.  So the vault reads and writes /dev/fuse itself: it adds the
 * flag to its INIT reply when the kernel offers it, and keeps the flags of
 * the request each worker thread is handling (a libfuse worker handles the
 * request it read before it reads the next).
 */
#ifndef TV_VAULT_FUSEIO_H
#define TV_VAULT_FUSEIO_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Whether to ask for FUSE_HANDLE_KILLPRIV_V2 (before the session starts). */
void fuseio_want_killpriv_v2(bool on);

/* True once the kernel has accepted it: the vault clears setuid/setgid. */
bool fuseio_killpriv_v2(void);

/* True if the request this thread is handling (a WRITE, or an OPEN with
 * O_TRUNC) is from a caller without CAP_FSETID, so that the file's setuid
 * bit, and its setgid bit if it is group-executable, must go. */
bool fuseio_kill_suidgid(void);

/* libfuse's custom I/O: read one request, write one reply. */
ssize_t fuseio_read(int fd, void *buf, size_t len, void *userdata);
ssize_t fuseio_writev(int fd, struct iovec *iov, int count, void *userdata);

#endif
