/*
 * ingest_int.h - what the two halves of ingest share (not an interface for
 * other modules: ingest.h is).
 *
 *   ingest.c       tracked files (a hash map by path, a FIFO of files with
 *                  work, deferred *.json files waiting to settle), the watch
 *                  events, the work loop
 *   ingest_read.c  file identity and checkpoints, the two readers (whole
 *                  *.json documents, *.jsonl lines), and the one place where
 *                  bytes become queued records (doc_init, encode_queue,
 *                  queue_skipped)
 *
 * Logs name a trace file by its file ID (ingest_label), never by its path:
 * file and directory names are trace content (docs/THREAT_MODEL.md).
 */
#ifndef TV_AGENT_INGEST_INT_H
#define TV_AGENT_INGEST_INT_H

#include "agent/encode.h"
#include "agent/ingest.h"
#include "agent/queue.h"
#include "lib/config.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NBUCKETS 65536
#define HEAD_MAX 4096
#define EARLY_FDS_MAX 256          /* files opened at IN_CREATE (deleted-while-open) */
#define STREAM_FDS_MAX 1024        /* beyond this, streams at their end let go of their fd */
#define SETTLE_MS 1000
#define STREAM_BUF (256 * 1024)
#define JSON_GROUP 64              /* *.json documents encoded together, */
#define OPEN_AHEAD 64              /* *.json documents opened ahead, in parallel, */
#define OPEN_THREADS 15            /* on this many helpers and the main thread */
#define JSON_GROUP_BYTES (4u << 20) /* or this many bytes of them */
#define GONE_CHECK_MS 500          /* a deleted stream is re-read this often ... */
#define GONE_QUIET_CHECKS 6        /* ... until it has not grown this many times */
#define RETRY_FIRST_MS 1000        /* a file that cannot be read now is retried after */
#define RETRY_MAX_MS 60000         /* ... doubling up to this: never given up (keyd may be
                                      down), but a damaged file costs one read a minute */

struct tracked {
    struct tracked *hnext, *wnext, *dnext;
    char *path;
    char project[TV_PROJECT_NAME_MAX + 1];
    enum file_kind kind;
    int fd;
    int pre_fd;                    /* opened ahead (opener.h): a descriptor or -errno */
    int prefetched;                /* pre_fd is set */
    int in_work, deferred, take, gone;
    int hashed;                    /* in the path map (not yet gone) */
    unsigned gone_quiet;           /* checks without growth since the path went away */
    uint64_t gone_size;
    uint64_t not_before;
    int have_ck;
    struct file_ck ck;
    unsigned failures;             /* consecutive attempts that could not read it */
    int skipping;                  /* inside an oversized line */
    uint64_t skip_scanned;         /* bytes of it already scanned */
};

struct proj_eval {
    const struct tv_project *p;
    struct evaluator *ev, *ev2;        /* ev2: the encoder's worker thread */
    const char **names;
};

struct ingest {
    const struct tv_config *cfg;
    char *root;
    size_t root_len;
    struct queue *q;
    struct keys *keys;
    struct metrics *m;
    struct parse_limits lim;
    struct proj_eval *pe;
    size_t n_pe;
    struct tracked *buckets[NBUCKETS];
    struct tracked *work_head, *work_tail, *deferred;
    size_t n_tracked, early_fds;
    size_t stream_fds;             /* descriptors held by tailed streams */
    char *buf;
    size_t bufcap;
    msgpack_sbuffer sb;
    struct encoder *enc;
    struct opener *opener;             /* opens ahead for a backlog of documents */
    struct enc_doc *docs;
    size_t docs_cap;
    uint64_t queue_cap;
    dev_t no_xattr_dev;            /* a filesystem without vault file ids */
    int paused;
    unsigned warned_unknown;
};

/* The project's evaluators, or NULL if PROJECT is not configured. */
struct proj_eval *ingest_proj(struct ingest *in, const char *project);

/* How a log line names T: "project \"P\": file <file ID>" (the vault's id,
 * or the agent's fallback id), else the inode of FD (-1: of its path) - never a
 * path.  Returns BUF. */
const char *ingest_label(const struct tracked *t, int fd, char *buf, size_t n);
#define INGEST_LABEL_MAX 160

/* 1 on attempts 1, 2, 4, 8, ... of T: a file that stays unreadable costs a
 * dozen log lines a day, not one a second. */
int ingest_log_due(const struct tracked *t);
int ingest_open_ro(const char *path);

/* Readers (ingest_read.c). */
int ingest_docs_reserve(struct ingest *in, size_t n);
/* A whole *.json document into in->docs[SLOT]: 1 when it is there, 0 when T
 * is finished with, -EAGAIN to retry later, another negative errno: fatal. */
int ingest_json_prepare(struct ingest *in, struct tracked *t, size_t slot);
/* After its records are queued: T's checkpoint says "taken". */
int ingest_json_finish(struct ingest *in, struct tracked *t);
/* Complete lines of a stream: 1 if more is readable now (budget ran out),
 * 0 at the end, -EAGAIN to retry later. */
int ingest_read_stream(struct ingest *in, struct tracked *t, size_t *budget);
/* Encode in->docs[0..N) on both threads and queue their records in order. */
int ingest_encode_queue(struct ingest *in, size_t n);

#endif
