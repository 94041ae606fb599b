/*
 * audit.h - the vault's audit log: one JSON object per line,
 *   {"time":"2026-11-22T10:00:00.123Z","uid":1001,"pid":42,"project":"p",
 *    "op":"open","result":"ok","file_id":"..."}
 * appended with one write(2) on an O_APPEND descriptor, so concurrent
 * records never interleave.  Records carry no content and no plaintext
 * names: a file is identified by its file ID only.
 */
#ifndef TV_VAULT_AUDIT_H
#define TV_VAULT_AUDIT_H

#include <sys/types.h>

/* Open (create, 0600) the log at PATH; returns 0 or -errno.  A NULL or empty
 * PATH disables auditing. */
int audit_open(const char *path);
void audit_close(void);

/* Reopen PATH in place (after log rotation, on SIGHUP); returns 0 or -errno
 * and keeps the old file on failure. */
int audit_reopen(const char *path);

/* Append one record.  PROJECT, FILE_ID_HEX and DETAIL may be NULL; RESULT is
 * 0 for "ok" or a negative errno (written as its name, e.g. "EACCES").
 * DETAIL is a fixed, code-chosen word (never user data).  Returns 0, or -EIO
 * when the record could not be written (logged): the caller fails the
 * operation it was recording (fail-closed). */
int audit_log(uid_t uid, pid_t pid, const char *project, const char *op, int result,
              const char *file_id_hex, const char *detail);

/* The symbolic name of a positive errno value ("EIO"), or "E<n>". */
const char *audit_errname(int err, char buf[16]);

#endif
