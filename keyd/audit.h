/*
 * audit.h - keyd's hash-chained, MAC'd audit log.
 *
 * One text line per request (docs/KEYD.md "Audit log"):
 *   seq=N gen=G time=RFC3339 uid=U pid=P op=OP project=NAME version=V n=K result=R mac=HEX
 * mac = BLAKE2b-256 keyed with the audit subkey over (previous record's mac
 * || the line up to " mac=").  The first record chains from 32 zero bytes.
 * So each record's MAC is also the chain value: editing, reordering or
 * deleting a record breaks every MAC from there on, and truncation is caught
 * by comparing the last record with the chain head (seq, mac) that keyd
 * keeps in memory and in the sealed keystore.  Lines never hold key bytes
 * or API keys: only the fields above, all from fixed alphabets.
 *
 * Records are staged in memory (audit_add) and made durable in groups
 * (audit_flush: one write and one fdatasync), so concurrent requests share
 * an fsync; a reply is released only after the flush that covers its record.
 */
#ifndef TV_KEYD_AUDIT_H
#define TV_KEYD_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUDIT_MAC_LEN 32
#define AUDIT_LINE_MAX 512

struct audit;

struct audit_rec {
    uint64_t gen;           /* keystore generation the record was made under */
    uid_t uid;
    pid_t pid;
    const char *op;         /* "GEN_DEK", ... ; "?" if unknown */
    const char *project;    /* a valid project name or NULL ("-") */
    uint32_t version;
    uint32_t n;             /* DEKs in a batch, else 0 */
    const char *result;     /* "ok" or an errno name */
};

/* Open (create, 0600) PATH for appending under MAC_KEY (copied into guarded
 * memory).  The chain head starts at (0, zeros): set it with audit_set_head
 * after verifying the file.  Returns 0 and *OUT. */
int audit_open(const char *path, const unsigned char mac_key[AUDIT_MAC_LEN], int do_fsync,
               struct audit **out);
void audit_close(struct audit *a);

void audit_set_head(struct audit *a, uint64_t seq, const unsigned char mac[AUDIT_MAC_LEN]);
/* The head including staged (unflushed) records. */
void audit_head(const struct audit *a, uint64_t *seq, unsigned char mac[AUDIT_MAC_LEN]);

/* Stage one record; optionally copy its line (with '\n') into LINE
 * (AUDIT_LINE_MAX).  Returns 0, or -EIO when the log is broken. */
int audit_add(struct audit *a, const struct audit_rec *r, char *line);

/* Write and fdatasync every staged record.  On failure the staged records are
 * dropped, the file is cut back to its last good length and the head rolled
 * back; -EIO is returned (the callers' requests must fail).  If even the cut
 * fails the log is marked broken and every later call fails (fail closed). */
int audit_flush(struct audit *a);
/* How many flushes have failed so far: a reply held across a change of this
 * number must not be released (its record may be lost). */
uint64_t audit_failures(const struct audit *a);

/* Drop every staged record and roll the head back to what is on disk. */
void audit_discard(struct audit *a);
/* Number of staged records. */
size_t audit_staged(const struct audit *a);

/* Append an already formatted LINE (keystore recovery) and fsync it. */
int audit_append_line(struct audit *a, const char *line);

/* Result of walking a log file. */
struct audit_scan {
    uint64_t records;              /* valid records read */
    uint64_t last_seq;
    unsigned char last_mac[AUDIT_MAC_LEN];
    uint64_t max_gen;              /* highest gen seen in any record */
    uint64_t gen_at_head;          /* gen of the record with seq == head_seq */
    int head_found;                /* the record with seq head_seq matched head_mac */
    uint64_t first_gen_after_head; /* min gen among records after head (0: none) */
};

/*
 * Verify PATH from the first record: every line well formed, seq = 1, 2, ...,
 * every MAC correct.  HEAD_SEQ/HEAD_MAC (HEAD_SEQ 0: none) is a known chain
 * point to look for.  Returns 0 with SC filled, or -EBADMSG with ERR naming
 * the line and the reason, or -errno if the file cannot be read.
 */
int audit_verify_file(const char *path, const unsigned char mac_key[AUDIT_MAC_LEN],
                      uint64_t head_seq, const unsigned char *head_mac,
                      struct audit_scan *sc, char *err, size_t errlen);

/* Parse seq and gen from a record line; 0 or -EBADMSG. */
int audit_line_ids(const char *line, size_t len, uint64_t *seq, uint64_t *gen);

/* Compute the MAC of LINE (without its " mac=..." tail) chained from PREV. */
void audit_line_mac(const unsigned char *key, const unsigned char prev[AUDIT_MAC_LEN],
                    const char *body, size_t len, unsigned char out[AUDIT_MAC_LEN]);

#endif
