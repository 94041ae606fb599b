/*
 * queue.c - sqlite-backed checkpoints, queue and dead letters (queue.h).
 *
 * WAL with synchronous=NORMAL: a committed transaction survives a crash of
 * the agent; after a power loss the last transactions may roll back, but
 * checkpoints and records roll back together and record_ids are
 * deterministic, so the bytes are simply read and shipped again.
 */
#include "config.h"
#include "agent/queue.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { S_FGET, S_FPUT, S_FDEL, S_PUSH, S_PEEK, S_ACK, S_DEAD, S_OLDEST, S_COUNT };

static const char *const sql_text[S_COUNT] = {
    [S_FGET] = "SELECT file_id, gen, off, head, head_len, size, mtime, done FROM files WHERE key = ?",
    [S_FPUT] = "INSERT OR REPLACE INTO files (key, file_id, gen, off, head, head_len, size, mtime, done) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_FDEL] = "DELETE FROM files WHERE key = ?",
    [S_PUSH] = "INSERT INTO queue (project, record_id, enq_ms, body) VALUES (?, ?, ?, ?)",
    [S_PEEK] = "SELECT seq, record_id, body FROM queue WHERE project = ? ORDER BY seq LIMIT ?",
    [S_ACK] = "DELETE FROM queue WHERE project = ? AND seq BETWEEN ? AND ?",
    [S_DEAD] = "INSERT INTO dead (project, record_id, at_ms, status, reason, body) "
               "SELECT project, record_id, ?, ?, ?, body FROM queue WHERE seq = ?",
    [S_OLDEST] = "SELECT enq_ms FROM queue WHERE project = ? ORDER BY seq LIMIT 1",
};

struct queue {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    int in_tx;
    struct qproject *proj;
    size_t n_proj;
    uint64_t depth, bytes;
};

static int fail(struct queue *q, const char *what)
{
    log_error("agent state database: %s: %s", what, sqlite3_errmsg(q->db));
    return -EIO;
}

static int exec(struct queue *q, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("agent state database: %s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int begin(struct queue *q)
{
    if (q->in_tx)
        return 0;
    if (exec(q, "BEGIN IMMEDIATE") != 0)
        return -EIO;
    q->in_tx = 1;
    return 0;
}

int queue_commit(struct queue *q)
{
    if (!q->in_tx)
        return 0;
    q->in_tx = 0;
    return exec(q, "COMMIT");
}

void queue_rollback(struct queue *q)
{
    if (!q->in_tx)
        return;
    q->in_tx = 0;
    exec(q, "ROLLBACK");
}

static struct qproject *proj_get(struct queue *q, const char *name, int create)
{
    for (size_t i = 0; i < q->n_proj; i++)
        if (!strcmp(q->proj[i].name, name))
            return &q->proj[i];
    if (!create)
        return NULL;
    struct qproject *np = realloc(q->proj, (q->n_proj + 1) * sizeof(*np));
    if (!np)
        return NULL;
    q->proj = np;
    memset(&np[q->n_proj], 0, sizeof(*np));
    snprintf(np[q->n_proj].name, sizeof(np[q->n_proj].name), "%s", name);
    return &np[q->n_proj++];
}

int queue_open(const char *state_dir, struct queue **out)
{
    char path[PATH_MAX];
    struct queue *q = calloc(1, sizeof(*q));
    sqlite3_stmt *st = NULL;
    int r = 0;

    *out = NULL;
    if (!q)
        return -ENOMEM;
    if (snprintf(path, sizeof(path), "%s/agent.db", state_dir) >= (int)sizeof(path)) {
        free(q);
        return -ENAMETOOLONG;
    }
    umask(077);
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        log_error("agent state database %s: %s", path, q->db ? sqlite3_errmsg(q->db) : "out of memory");
        r = -EIO;
        goto out;
    }
    sqlite3_busy_timeout(q->db, 5000);
    if ((r = exec(q, "PRAGMA journal_mode=WAL")) != 0 ||
        (r = exec(q, "PRAGMA synchronous=NORMAL")) != 0 ||
        (r = exec(q, "CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, file_id TEXT NOT NULL, "
                     "gen INTEGER NOT NULL, off INTEGER NOT NULL, head BLOB, head_len INTEGER, "
                     "size INTEGER, mtime INTEGER, done INTEGER NOT NULL)")) != 0 ||
        (r = exec(q, "CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "project TEXT NOT NULL, record_id TEXT NOT NULL, enq_ms INTEGER NOT NULL, "
                     "body BLOB NOT NULL)")) != 0 ||
        (r = exec(q, "CREATE INDEX IF NOT EXISTS queue_project ON queue (project, seq)")) != 0 ||
        (r = exec(q, "CREATE TABLE IF NOT EXISTS dead (seq INTEGER PRIMARY KEY, project TEXT, "
                     "record_id TEXT, at_ms INTEGER, status INTEGER, reason TEXT, body BLOB)")) != 0)
        goto out;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(q->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
            r = fail(q, sql_text[i]);
            goto out;
        }
    /* Pending work per project, kept in memory from here on. */
    if (sqlite3_prepare_v2(q->db, "SELECT project, count(*), sum(length(body)), min(enq_ms) "
                           "FROM queue GROUP BY project", -1, &st, NULL) != SQLITE_OK) {
        r = fail(q, "count queue");
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct qproject *p = proj_get(q, (const char *)sqlite3_column_text(st, 0), 1);
        if (!p) {
            r = -ENOMEM;
            goto out;
        }
        p->count = (uint64_t)sqlite3_column_int64(st, 1);
        p->bytes = (uint64_t)sqlite3_column_int64(st, 2);
        p->oldest_ms = (uint64_t)sqlite3_column_int64(st, 3);
        q->depth += p->count;
        q->bytes += p->bytes;
    }
out:
    sqlite3_finalize(st);
    if (r != 0) {
        queue_close(q);
        return r;
    }
    *out = q;
    return 0;
}

void queue_close(struct queue *q)
{
    if (!q)
        return;
    if (q->db)
        queue_commit(q);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    free(q->proj);
    free(q);
}

int queue_file_get(struct queue *q, const char *key, struct file_ck *ck)
{
    sqlite3_stmt *st = q->st[S_FGET];
    int rc, r = -ENOENT;

    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(ck, 0, sizeof(*ck));
        snprintf(ck->key, sizeof(ck->key), "%s", key);
        snprintf(ck->file_id, sizeof(ck->file_id), "%s", (const char *)sqlite3_column_text(st, 0));
        ck->generation = (uint32_t)sqlite3_column_int64(st, 1);
        ck->offset = (uint64_t)sqlite3_column_int64(st, 2);
        if (sqlite3_column_bytes(st, 3) == (int)sizeof(ck->head))
            memcpy(ck->head, sqlite3_column_blob(st, 3), sizeof(ck->head));
        ck->head_len = (uint32_t)sqlite3_column_int64(st, 4);
        ck->size = (uint64_t)sqlite3_column_int64(st, 5);
        ck->mtime_ns = sqlite3_column_int64(st, 6);
        ck->done = sqlite3_column_int(st, 7);
        r = 0;
    } else if (rc != SQLITE_DONE) {
        r = fail(q, "read checkpoint");
    }
    sqlite3_reset(st);
    return r;
}

int queue_file_put(struct queue *q, const struct file_ck *ck)
{
    sqlite3_stmt *st = q->st[S_FPUT];
    int r;

    if ((r = begin(q)) != 0)
        return r;
    sqlite3_bind_text(st, 1, ck->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ck->file_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ck->generation);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)ck->offset);
    sqlite3_bind_blob(st, 5, ck->head, sizeof(ck->head), SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, ck->head_len);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)ck->size);
    sqlite3_bind_int64(st, 8, ck->mtime_ns);
    sqlite3_bind_int(st, 9, ck->done);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(q, "write checkpoint");
    sqlite3_reset(st);
    return r;
}

int queue_file_del(struct queue *q, const char *key)
{
    sqlite3_stmt *st = q->st[S_FDEL];
    int r;

    if ((r = begin(q)) != 0)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(q, "delete checkpoint");
    sqlite3_reset(st);
    return r;
}

int queue_push(struct queue *q, const char *project, const char *record_id,
               const void *body, size_t len, uint64_t enq_ms)
{
    sqlite3_stmt *st = q->st[S_PUSH];
    int r;

    if ((r = begin(q)) != 0)
        return r;
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, record_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)enq_ms);
    sqlite3_bind_blob(st, 4, body, (int)len, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(q, "queue record");
    sqlite3_reset(st);
    if (r == 0) {
        struct qproject *p = proj_get(q, project, 1);
        if (!p)
            return -ENOMEM;
        if (p->count == 0)
            p->oldest_ms = enq_ms;
        p->count++;
        p->bytes += len;
        q->depth++;
        q->bytes += len;
    }
    return r;
}

void qbatch_release(struct qbatch *b)
{
    if (!b)
        return;
    free(b->seq);
    free(b->record_id);
    free(b->off);
    free(b->len);
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

int queue_peek(struct queue *q, const char *project, size_t max_n, size_t max_bytes,
               struct qbatch *b)
{
    sqlite3_stmt *st = q->st[S_PEEK];
    size_t cap = 0;
    int rc, r = 0;

    memset(b, 0, sizeof(*b));
    snprintf(b->project, sizeof(b->project), "%s", project);
    if ((r = queue_commit(q)) != 0)
        return r;
    b->seq = malloc(max_n * sizeof(*b->seq));
    b->record_id = malloc(max_n * sizeof(*b->record_id));
    b->off = malloc(max_n * sizeof(*b->off));
    b->len = malloc(max_n * sizeof(*b->len));
    if (!b->seq || !b->record_id || !b->off || !b->len) {
        qbatch_release(b);
        return -ENOMEM;
    }
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max_n);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        if (b->n > 0 && b->buf_len + len > max_bytes)
            break;
        if (b->buf_len + len > cap) {
            size_t nc = cap ? cap : 65536;
            while (nc < b->buf_len + len)
                nc *= 2;
            char *nb = realloc(b->buf, nc);
            if (!nb) {
                r = -ENOMEM;
                break;
            }
            b->buf = nb;
            cap = nc;
        }
        b->seq[b->n] = sqlite3_column_int64(st, 0);
        snprintf(b->record_id[b->n], 33, "%s", (const char *)sqlite3_column_text(st, 1));
        memcpy(b->buf + b->buf_len, sqlite3_column_blob(st, 2), len);
        b->off[b->n] = b->buf_len;
        b->len[b->n] = len;
        b->buf_len += len;
        b->n++;
    }
    if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = fail(q, "read queue");
    sqlite3_reset(st);
    if (r != 0)
        qbatch_release(b);
    return r;
}

/* Remove B's rows (already copied to dead letters when dead). */
static int remove_rows(struct queue *q, const struct qbatch *b)
{
    sqlite3_stmt *st = q->st[S_ACK], *old = q->st[S_OLDEST];
    struct qproject *p;
    int r = 0;

    if (b->n == 0)
        return 0;
    /* A batch is the oldest rows of its project: one contiguous seq range. */
    sqlite3_bind_text(st, 1, b->project, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->seq[0]);
    sqlite3_bind_int64(st, 3, b->seq[b->n - 1]);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = fail(q, "acknowledge records");
    sqlite3_reset(st);
    if (r == 0)
        r = queue_commit(q);
    if (r != 0)
        return r;
    if ((p = proj_get(q, b->project, 0)) != NULL) {
        p->count = p->count > b->n ? p->count - b->n : 0;
        p->bytes = p->bytes > b->buf_len ? p->bytes - b->buf_len : 0;
        sqlite3_bind_text(old, 1, b->project, -1, SQLITE_STATIC);
        if (sqlite3_step(old) == SQLITE_ROW)
            p->oldest_ms = (uint64_t)sqlite3_column_int64(old, 0);
        else
            p->count = p->bytes = 0;
        sqlite3_reset(old);
    }
    q->depth = q->depth > b->n ? q->depth - b->n : 0;
    q->bytes = q->bytes > b->buf_len ? q->bytes - b->buf_len : 0;
    return 0;
}

int queue_ack(struct queue *q, const struct qbatch *b)
{
    int r;
    if ((r = begin(q)) != 0)
        return r;
    return remove_rows(q, b);
}

int queue_dead(struct queue *q, const struct qbatch *b, int status, const char *reason)
{
    sqlite3_stmt *st = q->st[S_DEAD];
    int r;

    if ((r = begin(q)) != 0)
        return r;
    for (size_t i = 0; i < b->n && r == 0; i++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(tv_wall_ns() / 1000000));
        sqlite3_bind_int(st, 2, status);
        sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, b->seq[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = fail(q, "dead-letter records");
        sqlite3_reset(st);
    }
    if (r != 0)
        return r;
    return remove_rows(q, b);
}

int queue_drop_project(struct queue *q, const char *project, uint64_t *n)
{
    static const char *const sql[] = { "DELETE FROM queue WHERE project = ?",
                                       "DELETE FROM dead WHERE project = ?" };
    struct qproject *p;
    int r;

    *n = 0;
    if ((r = begin(q)) != 0)
        return r;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && r == 0; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(q->db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return fail(q, "drop a shredded project's records");
        sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = fail(q, "drop a shredded project's records");
        else if (i == 0)
            *n = (uint64_t)sqlite3_changes(q->db);
        sqlite3_finalize(st);
    }
    if (r == 0)
        r = queue_commit(q);
    if (r != 0)
        return r;
    if ((p = proj_get(q, project, 0)) != NULL) {
        q->depth = q->depth > p->count ? q->depth - p->count : 0;
        q->bytes = q->bytes > p->bytes ? q->bytes - p->bytes : 0;
        p->count = p->bytes = 0;
        p->oldest_ms = 0;
    }
    return 0;
}

size_t queue_projects(struct queue *q, const struct qproject **out)
{
    *out = q->proj;
    return q->n_proj;
}

uint64_t queue_depth(const struct queue *q) { return q->depth; }
uint64_t queue_bytes(const struct queue *q) { return q->bytes; }

uint64_t queue_dead_count(struct queue *q)
{
    sqlite3_stmt *st;
    uint64_t n = 0;
    if (sqlite3_prepare_v2(q->db, "SELECT count(*) FROM dead", -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}
