/*
 * ingest.h - from files to queued records: file identity, checkpoints,
 * reading (*.json whole, *.jsonl / *.ndjson by complete lines), parse,
 * evaluate, record, queue.
 *
 * The watcher (watch.c) and the scanner only say what happened to a path;
 * this module decides what to read and when, and keeps the one rule: a
 * file's offset moves only in the transaction that queues the records made
 * from the bytes before it (queue.h).
 *
 * Paths are absolute and under the root ([vault] mountpoint); the first
 * component below the root is the project, which must have a
 * [project.NAME] section.  Hidden names (".x") and other suffixes are not
 * traces (temporary files become traces when renamed into place).
 */
#ifndef TV_AGENT_INGEST_H
#define TV_AGENT_INGEST_H

#include <stddef.h>
#include <stdint.h>

struct tv_config;
struct queue;
struct keys;
struct price_table;
struct metrics;
struct ingest;

enum file_kind { FK_NONE = 0, FK_JSON, FK_JSONL };

/* What NAME (last path component) is: a trace document, a trace stream, or
 * neither (hidden, temporary, other suffix). */
enum file_kind ingest_kind(const char *name);

int ingest_new(const struct tv_config *cfg, const char *root, struct queue *q, struct keys *keys,
               const struct price_table *prices, struct metrics *m, struct ingest **out,
               char *err, size_t errlen);
void ingest_free(struct ingest *in);

/* Events (watch.c).  PATH is absolute. */
void ingest_created(struct ingest *in, const char *path);       /* IN_CREATE */
void ingest_modified(struct ingest *in, const char *path);      /* IN_MODIFY */
void ingest_closed(struct ingest *in, const char *path);        /* IN_CLOSE_WRITE */
void ingest_moved_in(struct ingest *in, const char *path);      /* IN_MOVED_TO */
void ingest_gone(struct ingest *in, const char *path);          /* IN_DELETE / IN_MOVED_FROM */

/* A file found by a scan.  SETTLE: a *.json modified in the last second is
 * taken only once it has been quiet for a second (it may still be written;
 * its close will be seen).  --once scans take everything at once. */
void ingest_scanned(struct ingest *in, const char *path, int settle);

/* Do pending reading, at most BUDGET documents/lines.  Returns 1 if work is
 * left (call again soon), 0 if idle.  *NEXT_MS: when a deferred file is due
 * (0 if none).  Commits the transaction before returning. */
int ingest_work(struct ingest *in, size_t budget, uint64_t *next_ms);

/* 1 while reading is paused because the queue is at its disk cap. */
int ingest_paused(struct ingest *in);


#endif
