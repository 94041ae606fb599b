/*
 * util.h - small helpers shared by more than one TraceVault program.
 * All int-returning functions return 0 or a negative errno value.
 */
#ifndef TV_UTIL_H
#define TV_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Make the process non-dumpable and disable core dumps: its memory holds key
 * material or trace content (same reasoning as OpenSSH's ssh-agent). */
int tv_harden_process(void);

/*
 * Atomically replace DIRFD/NAME with LEN bytes of DATA and mode MODE: write a
 * temp file in the same directory, fsync it, rename over NAME, fsync the
 * directory.  A crash leaves either the old or the new file, never a mix.
 * DIRFD may be AT_FDCWD (NAME may then be a path; its directory is fsync'd).
 */
int tv_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* fsync the directory containing PATH (or PATH itself if it is a directory). */
int tv_fsync_parent(const char *path);

/* Read a whole regular file of at most MAX bytes into a malloc'd buffer
 * (NUL-terminated for convenience; *len excludes the NUL).  -EFBIG if larger. */
int tv_read_file(const char *path, size_t max, char **out, size_t *len);

/* Create DIR and missing parents with MODE (existing directories are fine). */
int tv_mkdir_p(const char *dir, mode_t mode);

/* Lowercase hex of LEN bytes into OUT (2*LEN+1 bytes). */
void tv_hex(const void *buf, size_t len, char *out);

/* Parse exactly 2*LEN hex characters; returns 0 or -EINVAL. */
int tv_unhex(const char *hex, void *out, size_t len);

/* Milliseconds from CLOCK_MONOTONIC / nanoseconds since the epoch. */
uint64_t tv_now_ms(void);
uint64_t tv_wall_ns(void);

/* RFC 3339 UTC timestamp with milliseconds, e.g. 2026-11-22T10:00:00.123Z. */
void tv_rfc3339(uint64_t wall_ns, char out[32]);

#endif
