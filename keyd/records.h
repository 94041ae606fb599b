/*
 * records.h - keyd's audit records, written through lib/audit.h
 * (docs/KEYD.md "Audit log").  One line per request:
 *
 *   seq=N gen=G time=RFC3339 uid=U pid=P op=OP project=NAME version=V n=K [key=ID ]result=R mac=HEX
 *
 * lib/audit owns seq and mac (the chain); this module owns the body: the
 * keystore generation the record was made under (how a restored older
 * keystore is spotted), who asked, what, and the outcome.  Every field
 * comes from a fixed alphabet (op and errno names, validated project
 * names, numbers, an ingest key's hex ID): no key bytes, no free text.
 */
#ifndef TV_KEYD_RECORDS_H
#define TV_KEYD_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/audit.h"

/* seq= ... " mac=" HEX "\n"; a continuation body holds "prev=" HEX. */
extern const struct audit_format keyd_audit_format;

struct keyd_rec {
    uint64_t gen;           /* keystore generation the record was made under */
    uid_t uid;
    pid_t pid;
    const char *op;         /* "GEN_DEK", ... ; "?" if unknown */
    const char *project;    /* a valid project name or NULL ("-") */
    uint32_t version;
    uint32_t n;             /* DEKs in a batch; failed INGEST_AUTHs summed; else 0 */
    const char *key_id;     /* an ingest key's ID (hex), or NULL: no "key=" field */
    const char *result;     /* "ok" or an errno name */
    const char *prev_hex;   /* continuation records only: the head continued */
};

/* Format R's body into BUF (CAP bytes).  Returns its length, or -1 if it
 * does not fit. */
int keyd_rec_body(char *buf, size_t cap, const struct keyd_rec *r);

/* The generation in a record LINE (LEN bytes): 0 or -EBADMSG. */
int keyd_rec_gen(const char *line, size_t len, uint64_t *gen);

#endif
