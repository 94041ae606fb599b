/*
 * encode.h - the CPU-bound stage of ingest, on two threads: parse, evaluate
 * and encode a group of documents into metadata records.
 *
 * The caller (ingest.c, on the main thread) hands over documents it has
 * read; the encoder splits them between the calling thread and one worker
 * thread, and returns when all are done.  The caller then queues the records
 * in document order, in the same transaction as the checkpoint, so the
 * threads change nothing about what is durable when.  Nothing here touches
 * sqlite, keyd, the log or the metrics: it is pure computation on memory the
 * caller owns for the duration of the call.
 */
#ifndef TV_AGENT_ENCODE_H
#define TV_AGENT_ENCODE_H

#include <stddef.h>

#include "agent/parse.h"
#include "agent/record.h"

struct evaluator;
struct encoder;

struct enc_doc {
    /* in */
    const char *buf;
    size_t len;
    struct record_ctx ctx;             /* position, bytes etc. filled by the caller */
    struct evaluator *ev[2];           /* one per thread (PCRE2 match data is not shared) */
    void *user;                        /* the caller's (ingest: the tracked file) */
    char *owned;                       /* the caller's buffer to free, if any */
    /* out */
    int err;                           /* 0 or -ENOMEM */
    enum skip_reason skip;
    int tid;                           /* which thread's output holds the records */
    size_t first, count;               /* records [first, first + count) of that output */
    struct record_drops drops;         /* fields that failed record_check */
};

struct enc_rec {
    char id[RECORD_ID_HEX];
    size_t off, len;                   /* msgpack bytes in the thread's buffer */
};

/* Start the worker.  LIM is borrowed. */
int encoder_new(const struct parse_limits *lim, struct encoder **out);
/* Stop and join the worker; NULL is fine. */
void encoder_free(struct encoder *e);

/* Encode N documents.  Returns 0 (per-document errors are in doc->err). */
int encoder_run(struct encoder *e, struct enc_doc *docs, size_t n);

/* The same in two steps: encoder_start returns once the caller's share,
 * docs[0..returned), is done (the worker may still be busy with the rest);
 * encoder_wait returns when all are.  Between the two the caller may use the
 * first documents' records, and must not touch DOCS beyond them. */
size_t encoder_start(struct encoder *e, struct enc_doc *docs, size_t n);
void encoder_wait(struct encoder *e);

/* Record I of thread TID's output from the last run; *DATA its bytes. */
const struct enc_rec *encoder_rec(const struct encoder *e, int tid, size_t i, const char **data);

#endif
