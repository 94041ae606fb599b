/*
 * audit.h - the vault's audit log: one JSON object per line, hash-chained,
 * MAC'd and durable through lib/audit.h (the module keyd uses too):
 *
 *   {"seq":7,"time":"2026-11-22T10:00:00.123Z","uid":1001,"pid":42,
 *    "project":"p","op":"open","result":"ok","file_id":"...","mac":"<64 hex>"}
 *
 * The MAC key comes from keyd (VAULT_AUDIT_KEY; keyd derives it from its
 * master key, so it never rests in clear); the anchor is AUDIT_LOG.head.
 * Records carry no content and no plaintext names: a file is identified by
 * its file ID only.
 *
 * Fail-closed: audit_log returns only once its record is written and
 * fdatasync'd (group commit: concurrent FUSE threads share one flush), and
 * returns -EIO when it cannot be; the caller fails the operation it was
 * recording.  Denials (detail "denied") are aggregated per uid: the first
 * in an interval is written in full, the others in that interval are counted
 * into one "denied-summary" record written when the interval ends, so a
 * flood of denied requests costs at most two records per uid and interval.
 */
#ifndef TV_VAULT_AUDIT_H
#define TV_VAULT_AUDIT_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/audit.h"

/* The vault's record syntax (for verifiers). */
extern const struct audit_format vault_audit_format;

/*
 * Open the log at PATH under KEY (AUDIT_MAC_LEN bytes, copied): verify what
 * is there against its anchor (fail closed: a log that does not verify is
 * not appended to), create both 0600 if missing.  DENIED_INTERVAL is the
 * aggregation interval in seconds (0: every denial written).  Returns 0, or
 * a negative errno with ERR naming the file and the reason.  A NULL or empty
 * PATH disables auditing.
 */
int vault_audit_open(const char *path, const unsigned char *key, int denied_interval,
                     char *err, size_t errlen);
/* Write pending denial summaries and close. */
void vault_audit_close(void);

/* SIGHUP: if PATH was renamed away (log rotation), go on in a new file at
 * PATH that continues the chain.  Pending denial summaries are written
 * first and intervals restart, so each file accounts for its own denials.
 * Returns 0 or -errno (then the old file stays in use, logged). */
int audit_reopen(const char *path);

/* Append one record.  PROJECT, FILE_ID_HEX and DETAIL may be NULL; RESULT is
 * 0 for "ok" or a negative errno (written as its name, e.g. "EACCES").
 * DETAIL is a fixed, code-chosen word (never user data).  Returns 0 once the
 * record is durable (or counted, for an aggregated denial), or -EIO when it
 * could not be written: the caller fails the operation it was recording. */
int audit_log(uid_t uid, pid_t pid, const char *project, const char *op, int result,
              const char *file_id_hex, const char *detail);

/* The symbolic name of a positive errno value ("EIO"), or "E<n>". */
const char *audit_errname(int err, char buf[16]);

/* Verify PATHS[0..N) (rotated files oldest first, the live log last) as one
 * chain under KEY, and the live log against its anchor.  0 with SC filled,
 * or -EBADMSG / -errno with ERR saying where and why. */
int vault_audit_verify(const char *const *paths, size_t n, const unsigned char *key,
                       struct audit_scan *sc, char *err, size_t errlen);

#endif
