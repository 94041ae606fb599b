/*
 * audit.h - hash-chained, MAC'd, durable audit logs: the one audit module of
 * keyd and the vault (docs/KEYD.md "Audit log", docs/THREAT_MODEL.md).
 *
 * A log is a text file of records, one per line:
 *
 *     SEQ_PRE <seq> SEQ_POST <body> MAC_PRE <64 hex> MAC_POST
 *
 * where the four strings come from the caller's struct audit_format (keyd:
 * "seq=" " " ... " mac=" "\n"; the vault: a JSON object) and the body is the
 * caller's text (no newline).  mac = BLAKE2b-256 keyed with the log's MAC
 * key over (the previous record's mac || the line up to MAC_PRE).  The first
 * record of a chain has seq 1 and chains from 32 zero bytes; so each MAC is
 * also the chain value, and editing, inserting, deleting or reordering any
 * record breaks every MAC from there on.
 *
 * Cut tails are caught by the anchor, a small file next to the log
 * (LOG.head): two 128-byte slots, each "TVAH" 1, the seq and mac of the last
 * durable record, and a keyed tag.  Every commit writes and fdatasyncs the
 * records, then the anchor (alternating slots, so a torn write leaves the
 * other one), and only then reports success: every record whose operation
 * was answered is at or before the anchor, and a log that ends before it has
 * lost records.  Records after the anchor are legitimate (written, not yet
 * anchored when the process died).
 *
 * Rotation: when the log file is renamed away and reopened (audit_rotate),
 * the new file starts with a continuation record (seq = previous head + 1)
 * whose body, made by the caller's cont callback, holds PREV_PRE and the
 * previous head's mac in hex; the chain goes on from there, so a rotated
 * file verifies on its own, and a list of files verifies as one chain.
 *
 * Durability is group commit: records are staged in memory and written with
 * one write + fdatasync (+ the anchor) for everything staged.  audit_commit
 * lets many threads share flushes (the vault); audit_add + audit_flush let a
 * single-threaded event loop flush once per wake-up (keyd).  Fail-closed: a
 * failed flush drops every staged record, cuts the file back to its last
 * good length and rolls the head back, and the callers' operations must
 * fail; if even that is impossible the log is marked broken and refuses
 * every later record until it is reopened by a restart.
 *
 * All functions are thread-safe.  int functions return 0 or a negative
 * errno.  No key bytes are ever written to the log or the anchor.
 */
#ifndef TV_AUDIT_H
#define TV_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_MAC_LEN 32
#define AUDIT_HEX_LEN (2 * AUDIT_MAC_LEN)
#define AUDIT_LINE_MAX 1024          /* a whole record, newline included */

struct audit;

/* The syntax around a record's body (see above).  All strings are literals;
 * MAC_POST ends with "\n". */
struct audit_format {
    const char *seq_pre, *seq_post;
    const char *mac_pre, *mac_post;
    const char *prev_pre;            /* before the previous mac in a continuation body */
};

/* Make the body of a continuation record into BUF (CAP bytes): it must hold
 * fmt->prev_pre immediately followed by PREV_HEX (AUDIT_HEX_LEN characters).
 * Returns the body length, or -1. */
typedef int (*audit_cont_fn)(char *buf, size_t cap, const char *prev_hex, void *arg);

/* Called for each valid record while a log is verified (LINE is the whole
 * line, newline included); a non-zero return stops the walk with that
 * value. */
typedef int (*audit_record_fn)(const char *line, size_t len, uint64_t seq, void *arg);

/*
 * What a verification saw.  Set the inputs (or zero the struct), pass it to
 * audit_verify or audit_open, read the outputs.
 */
struct audit_scan {
    /* inputs */
    uint64_t want_seq;                    /* a chain point to look for (0: none) */
    unsigned char want_mac[AUDIT_MAC_LEN];
    audit_record_fn on_record;            /* may be NULL */
    void *arg;
    /* outputs */
    uint64_t records;                     /* valid records in the last file */
    uint64_t first_seq, last_seq;         /* of the last file (0, 0 if it is empty) */
    unsigned char last_mac[AUDIT_MAC_LEN];
    int want_found;                       /* want_seq was there with want_mac */
    int anchored;                         /* an anchor exists (and matched, if 0 was returned) */
    uint64_t anchor_seq;
    uint64_t tail_cut;                    /* bytes of an incomplete last line (audit_open cuts them) */
};

struct audit_opts {
    const struct audit_format *fmt;
    audit_cont_fn cont;                   /* required for audit_rotate */
    void *cont_arg;
    int no_sync;                          /* skip fdatasync (tests and fuzzing on tmpfs) */
    int adopt;                            /* accept a non-empty log without an anchor
                                             (logs written before anchors existed) */
};

/* The anchor's path for log PATH (PATH + ".head") into a malloc'd string;
 * NULL on ENOMEM. */
char *audit_anchor_path(const char *path);

/*
 * Verify the files PATHS[0..N) (oldest first; the last is the live log) as
 * one chain under KEY: every line well formed, every MAC right, sequence
 * numbers consecutive; the first file starts at seq 1 or with a continuation
 * record, each later file with a continuation of the one before.  Then the
 * last file is checked against its anchor (a missing anchor is accepted only
 * if ADOPT, or if the log is empty).  Returns 0 with SC filled, or -EBADMSG
 * with ERR naming the file, the line and the reason, or -errno if a file
 * cannot be read.
 */
int audit_verify(const char *const *paths, size_t n, const unsigned char key[AUDIT_MAC_LEN],
                 const struct audit_format *fmt, int adopt, struct audit_scan *sc,
                 char *err, size_t errlen);

/*
 * Open the log at PATH for appending under KEY (copied into guarded memory):
 * verify it as audit_verify does (with SC's inputs; SC may be NULL), cut an
 * incomplete last line, create or refresh the anchor, and start the head at
 * the last record.  An empty log without an anchor starts a new chain.  The
 * log and anchor are created 0600 if missing.  Returns 0 and *OUT, or
 * -EBADMSG / -errno with ERR saying why (fail closed: a log that does not
 * verify is not appended to).
 */
int audit_open(const char *path, const unsigned char key[AUDIT_MAC_LEN],
               const struct audit_opts *o, struct audit_scan *sc, struct audit **out,
               char *err, size_t errlen);
/* Close; records still staged are dropped (flush first to keep them: a
 * record whose operation did not complete must not appear).  NULL is fine. */
void audit_close(struct audit *a);

/*
 * Rotation: if PATH now names another file than the one open (logrotate
 * renamed it away), flush, start the new file (created if missing; it must
 * be empty) with a continuation record and switch to it.  If PATH is still
 * the open file, nothing happens.  On failure the old file stays in use.
 */
int audit_rotate(struct audit *a, const char *path, char *err, size_t errlen);

/* Stage one record with BODY (no newline); optionally copy the whole line
 * (AUDIT_LINE_MAX) into LINE.  Returns 0, -EINVAL (body too long or with a
 * newline) or -EIO (log broken). */
int audit_add(struct audit *a, const char *body, char *line);

/* Write, fdatasync and anchor every staged record.  0 or -EIO (see above:
 * the staged records are gone and their operations must fail). */
int audit_flush(struct audit *a);

/* Stage BODY and return once a flush covers it (group commit: the caller
 * that finds no flush running writes everything staged so far, the others
 * wait for it).  0, or -EIO: the record is not in the log. */
int audit_commit(struct audit *a, const char *body);

/* How many flushes have failed so far: a reply held across a change of this
 * number must not be released (its record may be lost). */
uint64_t audit_failures(const struct audit *a);
/* Drop every staged record and roll the head back to the durable one. */
void audit_discard(struct audit *a);
/* Number of staged records. */
size_t audit_staged(const struct audit *a);
/* The head including staged records. */
void audit_head(const struct audit *a, uint64_t *seq, unsigned char mac[AUDIT_MAC_LEN]);

/* Append LINE, a complete record made elsewhere under the same key that
 * continues the head (keyd's keystore recovery), and flush it. */
int audit_append_line(struct audit *a, const char *line);

/* The MAC of BODY (a line up to MAC_PRE) chained from PREV. */
void audit_line_mac(const unsigned char *key, const unsigned char prev[AUDIT_MAC_LEN],
                    const char *body, size_t len, unsigned char out[AUDIT_MAC_LEN]);

#endif
