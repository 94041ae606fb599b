/*
 * util.h - small helpers shared by more than one TraceVault program.
 * All int-returning functions return 0 or a negative errno value.
 */
#ifndef TV_UTIL_H
#define TV_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The one full-I/O pair.  Both retry EINTR and short transfers.
 *
 * tv_read_full reads exactly LEN bytes into BUF: with pread at OFF, or from
 * the current position (read) when OFF < 0.  With TIMEOUT_MS >= 0 it waits
 * at most that long for each chunk (sockets, pipes); -1 waits forever.
 * Returns 0, -ETIMEDOUT, -ENODATA when the end of the file (or a closed
 * peer) comes before LEN bytes, or another negative errno.
 *
 * tv_write_full writes all LEN bytes of BUF: with pwrite at OFF, or at the
 * current position when OFF < 0 (on a socket with send(MSG_NOSIGNAL), so a
 * closed peer is -EPIPE rather than SIGPIPE).  Returns 0 or a negative errno.
 */
int tv_read_full(int fd, void *buf, size_t len, off_t off, int timeout_ms);
int tv_write_full(int fd, const void *buf, size_t len, off_t off);

/* The next item of a comma-separated list being cut in place: call with
 * the list (a writable copy) first, then NULL; *SAVE as for strtok_r.
 * Items come with surrounding blanks removed; empty ones are skipped.
 * NULL at the end. */
char *tv_list_next(char *list, char **save);

/* The length (1..4) of the valid UTF-8 sequence at P, of which N >= 1 bytes
 * may be read; 0 if it is not one (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
size_t tv_utf8_seq(const unsigned char *p, size_t n);

/* A scratch buffer that grows to the largest size asked of it and is kept
 * for the next use; typically one per thread (`static __thread struct
 * tv_scratch s;`).  tv_scratch returns a buffer of at least NEED bytes,
 * or NULL on ENOMEM (the old buffer is freed then).  Contents are not kept
 * across growth; callers that put secrets in it wipe what they used.
 * A thread's scratch buffers are freed when the thread exits (libfuse's
 * worker threads come and go with the load), so S must be thread-local or
 * outlive every thread that uses it. */
struct tv_scratch {
    void *buf;
    size_t cap;
    struct tv_scratch *next;        /* this thread's buffers, freed at its exit */
    int listed;
};
void *tv_scratch(struct tv_scratch *s, size_t need);

/* Make the process non-dumpable and disable core dumps: its memory holds key
 * material or trace content (same reasoning as OpenSSH's ssh-agent). */
int tv_harden_process(void);

/* A growable byte buffer (zeroed to start; free(b.p) to end). */
struct tv_buf {
    char *p;
    size_t len, cap;
};
/* Append N bytes of DATA, doubling the capacity as needed.  0 or -ENOMEM. */
int tv_buf_add(struct tv_buf *b, const void *data, size_t n);

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
