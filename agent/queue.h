/*
 * queue.h - the agent's durable state: file checkpoints, the record queue and
 * the dead-letter table, in one sqlite database (STATE_DIR/agent.db, WAL).
 *
 * The invariant that makes delivery exactly-once at a deduplicating receiver:
 * a file's checkpoint (offset) only moves in the same transaction that queues
 * the records produced from the bytes before it.  A crash rolls both back
 * together; the bytes are read again and yield the same record_ids.
 *
 * Records are kept in rows of one project's consecutive records (chunks);
 * a batch is the oldest records of a project, whole chunks and possibly the
 * head of one more.  Writes happen inside a transaction opened lazily by the first write and
 * closed by queue_commit(); readers (queue_peek) must commit first so that
 * only durable records are ever shipped.  Rows hold metadata records only
 * (record.c), never content.
 */
#ifndef TV_AGENT_QUEUE_H
#define TV_AGENT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct queue;

/* A file's checkpoint.  key: "id:<file_id>" or "ino:<dev>:<ino>". */
struct file_ck {
    char key[80];
    char file_id[33];              /* 32 hex: the id used in record_ids */
    uint32_t generation;
    uint64_t offset;               /* bytes consumed (JSONL) / size taken (JSON) */
    unsigned char head[16];        /* hash of the first head_len bytes (identity check) */
    uint32_t head_len;
    uint64_t size;
    int64_t mtime_ns;
    int done;                      /* JSON: taken */
};

int queue_open(const char *state_dir, struct queue **out);
/* Commit anything pending and close; NULL is fine. */
void queue_close(struct queue *q);

int queue_commit(struct queue *q);

/* A chunk row's limits (the batch limits, so a batch is whole chunks). */
void queue_set_chunk(struct queue *q, size_t max_n, size_t max_bytes);

/* Abandon the open transaction (a fatal error in the middle of a file: its
 * records must not become durable without its checkpoint).  The in-memory
 * counts are then stale: the caller exits. */
void queue_rollback(struct queue *q);

/* 0 and *CK, or -ENOENT. */
int queue_file_get(struct queue *q, const char *key, struct file_ck *ck);
int queue_file_put(struct queue *q, const struct file_ck *ck);
int queue_file_del(struct queue *q, const char *key);

/* Queue one record.  Returns 0.  (Never called twice for the same record:
 * the checkpoint moves in the same transaction.)  Consecutive records of one
 * project share a row (a chunk) of at most the limits queue_set_chunk set
 * (default 500 records, 1 MiB): one b-tree insert and delete per chunk
 * instead of per record. */
int queue_push(struct queue *q, const char *project, const char *record_id,
               const void *body, size_t len, uint64_t enq_ms);

struct qbatch {
    char project[64];
    size_t n;
    char (*record_id)[33];
    size_t *off, *len;             /* into buf */
    char *buf;
    size_t buf_len;
    /* where each record came from: its chunk row, and whether it is the
     * last record of that row */
    int64_t *rseq;
    unsigned char *rend;
};

/* The oldest committed records of PROJECT, at most MAX_N and MAX_BYTES (at
 * least one).  Returns 0 (b->n may be 0).  Release with qbatch_release. */
int queue_peek(struct queue *q, const char *project, size_t max_n, size_t max_bytes,
               struct qbatch *b);
void qbatch_release(struct qbatch *b);

/* Remove the first N_OK + N_DEAD records of B (the oldest of its project:
 * a batch may be settled in parts, in order), the N_DEAD after the first
 * N_OK moved to the dead-letter table with STATUS and REASON first.  One
 * transaction, committed. */
int queue_settle(struct queue *q, const struct qbatch *b, size_t n_ok, size_t n_dead, int status,
                 const char *reason);
/* Delete an acknowledged batch. */
int queue_ack(struct queue *q, const struct qbatch *b);
/* Move a rejected batch to the dead-letter table with STATUS and REASON. */
int queue_dead(struct queue *q, const struct qbatch *b, int status, const char *reason);

/* PROJECT was shredded: delete its queued and dead-lettered records (its
 * hashes were made with a key that no longer exists; nothing of it ships
 * again) and commit.  *N: how many queued rows went.  0 or a negative errno. */
int queue_drop_project(struct queue *q, const char *project, uint64_t *n);

/* Pending work, kept in memory. */
struct qproject {
    char name[64];
    uint64_t count, bytes;
    uint64_t oldest_ms;            /* enq time of the oldest row */
};
/* Projects with queued rows (array owned by Q, valid until the next call). */
size_t queue_projects(struct queue *q, const struct qproject **out);
uint64_t queue_depth(const struct queue *q);
uint64_t queue_bytes(const struct queue *q);
uint64_t queue_dead_count(struct queue *q);

#endif
