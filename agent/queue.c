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

enum { S_FGET, S_FPUT, S_FDEL, S_PUSH, S_PEEK, S_ACK, S_TRIM, S_DEAD, S_OLDEST, S_COUNT };

static const char *const sql_text[S_COUNT] = {
    [S_FGET] = "SELECT file_id, gen, off, head, head_len, size, mtime, done FROM files WHERE key = ?",
    [S_FPUT] = "INSERT OR REPLACE INTO files (key, file_id, gen, off, head, head_len, size, mtime, done) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_FDEL] = "DELETE FROM files WHERE key = ?",
    [S_PUSH] = "INSERT INTO chunks (project, n, enq_ms, ids, lens, body) VALUES (?, ?, ?, ?, ?, ?)",
    [S_PEEK] = "SELECT seq, n, ids, lens, body FROM chunks WHERE project = ? ORDER BY seq LIMIT ?",
    [S_ACK] = "DELETE FROM chunks WHERE project = ? AND seq BETWEEN ? AND ?",
    /* the first ?1 records of chunk ?5 went: keep the rest (substr of a
     * blob counts bytes, from 1) */
    [S_TRIM] = "UPDATE chunks SET n = n - ?1, ids = substr(ids, ?2), lens = substr(lens, ?3), "
               "body = substr(body, ?4) WHERE seq = ?5",
    [S_DEAD] = "INSERT INTO dead (project, record_id, at_ms, status, reason, body) "
               "VALUES (?, ?, ?, ?, ?, ?)",
    [S_OLDEST] = "SELECT enq_ms FROM chunks WHERE project = ? ORDER BY seq LIMIT 1",
};

/* Records pushed but not yet in a row: one project's run of records,
 * written as one chunk row when the project changes, the chunk is full, or
 * before the transaction commits. */
struct pending {
    char project[64];
    size_t n;
    uint64_t enq_ms;               /* of the first record */
    struct tv_buf ids, lens, body;   /* n x 32 hex; n x u32 little-endian; msgpack */
};

struct queue {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    int in_tx;
    struct qproject *proj;
    size_t n_proj;
    uint64_t depth, bytes;
    struct pending pend;
    size_t chunk_n, chunk_bytes;   /* a chunk row's limits */
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

static int pend_flush(struct queue *q);

int queue_commit(struct queue *q)
{
    int r;
    if (!q->in_tx)
        return 0;
    if ((r = pend_flush(q)) != 0)
        return r;
    q->in_tx = 0;
    return exec(q, "COMMIT");
}

static void pend_clear(struct pending *pd)
{
    pd->n = pd->ids.len = pd->lens.len = pd->body.len = 0;
}

void queue_rollback(struct queue *q)
{
    pend_clear(&q->pend);
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

/* Write the pending records as one chunk row. */
static int pend_flush(struct queue *q)
{
    struct pending *pd = &q->pend;
    sqlite3_stmt *st = q->st[S_PUSH];
    int r;

    if (pd->n == 0)
        return 0;
    sqlite3_bind_text(st, 1, pd->project, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)pd->n);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)pd->enq_ms);
    sqlite3_bind_blob(st, 4, pd->ids.p, (int)pd->ids.len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, pd->lens.p, (int)pd->lens.len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, pd->body.p, (int)pd->body.len, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(q, "queue records");
    sqlite3_reset(st);
    pend_clear(pd);
    return r;
}

/* Add one record to the pending chunk (begun by the caller's transaction). */
static int pend_add(struct queue *q, const char *project, const char *record_id,
                    const void *body, size_t len, uint64_t enq_ms)
{
    struct pending *pd = &q->pend;
    unsigned char le[4] = { (unsigned char)len, (unsigned char)(len >> 8),
                            (unsigned char)(len >> 16), (unsigned char)(len >> 24) };
    int r;

    if (pd->n > 0 && (strcmp(pd->project, project) != 0 || pd->n >= q->chunk_n ||
                      pd->body.len + len > q->chunk_bytes))
        if ((r = pend_flush(q)) != 0)
            return r;
    if (pd->n == 0) {
        snprintf(pd->project, sizeof(pd->project), "%s", project);
        pd->enq_ms = enq_ms;
    }
    if (tv_buf_add(&pd->ids, record_id, 32) != 0 || tv_buf_add(&pd->lens, le, 4) != 0 ||
        tv_buf_add(&pd->body, body, len) != 0)
        return -ENOMEM;
    pd->n++;
    return 0;
}

/* A database written by an agent before chunks held one record per row in
 * a table "queue": move them into chunks of one, in order, once. */
static int migrate_rows(struct queue *q)
{
    sqlite3_stmt *st = NULL;
    int rc, r = 0, found = 0;

    if (sqlite3_prepare_v2(q->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue'",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(q, "look for an old queue");
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!found)
        return 0;
    if ((r = begin(q)) != 0)
        return r;
    if (sqlite3_prepare_v2(q->db, "SELECT project, record_id, enq_ms, body FROM queue ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        queue_rollback(q);
        return fail(q, "read the old queue");
    }
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 1);
        if (!id || strlen(id) != 32)
            continue;                  /* not a record id: nothing could ship it */
        r = pend_add(q, (const char *)sqlite3_column_text(st, 0), id, sqlite3_column_blob(st, 3),
                     (size_t)sqlite3_column_bytes(st, 3), (uint64_t)sqlite3_column_int64(st, 2));
        if (r == 0)
            r = pend_flush(q);         /* chunks of one: the old rows' order and ages */
    }
    sqlite3_finalize(st);
    if (r == 0)
        r = exec(q, "DROP TABLE queue");
    if (r == 0)
        r = queue_commit(q);
    else
        queue_rollback(q);
    return r;
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
    q->chunk_n = 500;
    q->chunk_bytes = 1 << 20;
    umask(077);
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        log_error("agent state database %s: %s", path, q->db ? sqlite3_errmsg(q->db) : "out of memory");
        r = -EIO;
        goto out;
    }
    sqlite3_busy_timeout(q->db, 5000);
    /* 64 KiB pages: a chunk of records is a few hundred KiB, and sqlite
     * writes each page of it as its own WAL frame (two pwrites), then reads
     * each again to free it: with 4 KiB pages that was one pwrite and half a
     * pread per record queued (89,389 and 47,588 for 100,000 lines), with 64
     * KiB pages 5,625 and 2,804.  Takes effect on a new database only (set
     * before WAL); an existing one keeps its page size. */
    if ((r = exec(q, "PRAGMA page_size=65536")) != 0 ||
        (r = exec(q, "PRAGMA journal_mode=WAL")) != 0 ||
        (r = exec(q, "PRAGMA synchronous=NORMAL")) != 0 ||
        (r = exec(q, "CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, file_id TEXT NOT NULL, "
                     "gen INTEGER NOT NULL, off INTEGER NOT NULL, head BLOB, head_len INTEGER, "
                     "size INTEGER, mtime INTEGER, done INTEGER NOT NULL)")) != 0 ||
        (r = exec(q, "CREATE TABLE IF NOT EXISTS chunks (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "project TEXT NOT NULL, n INTEGER NOT NULL, enq_ms INTEGER NOT NULL, "
                     "ids BLOB NOT NULL, lens BLOB NOT NULL, body BLOB NOT NULL)")) != 0 ||
        (r = exec(q, "CREATE INDEX IF NOT EXISTS chunks_project ON chunks (project, seq)")) != 0 ||
        (r = exec(q, "CREATE TABLE IF NOT EXISTS dead (seq INTEGER PRIMARY KEY, project TEXT, "
                     "record_id TEXT, at_ms INTEGER, status INTEGER, reason TEXT, body BLOB)")) != 0)
        goto out;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(q->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
            r = fail(q, sql_text[i]);
            goto out;
        }
    if ((r = migrate_rows(q)) != 0)
        goto out;
    /* Pending work per project, kept in memory from here on. */
    if (sqlite3_prepare_v2(q->db, "SELECT project, sum(n), sum(length(body)), min(enq_ms) "
                           "FROM chunks GROUP BY project", -1, &st, NULL) != SQLITE_OK) {
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
    free(q->pend.ids.p);
    free(q->pend.lens.p);
    free(q->pend.body.p);
    free(q->proj);
    free(q);
}

void queue_set_chunk(struct queue *q, size_t max_n, size_t max_bytes)
{
    q->chunk_n = max_n ? max_n : 1;
    q->chunk_bytes = max_bytes;
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
    int r;

    if ((r = begin(q)) != 0)
        return r;
    if ((r = pend_add(q, project, record_id, body, len, enq_ms)) != 0)
        return r;
    struct qproject *p = proj_get(q, project, 1);
    if (!p)
        return -ENOMEM;
    if (p->count == 0)
        p->oldest_ms = enq_ms;
    p->count++;
    p->bytes += len;
    q->depth++;
    q->bytes += len;
    return 0;
}

void qbatch_release(struct qbatch *b)
{
    if (!b)
        return;
    free(b->record_id);
    free(b->off);
    free(b->len);
    free(b->rseq);
    free(b->rend);
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int queue_peek(struct queue *q, const char *project, size_t max_n, size_t max_bytes,
               struct qbatch *b)
{
    sqlite3_stmt *st = q->st[S_PEEK];
    size_t cap = 0;
    int rc, r = 0, full = 0;

    memset(b, 0, sizeof(*b));
    snprintf(b->project, sizeof(b->project), "%s", project);
    if ((r = queue_commit(q)) != 0)
        return r;
    if (max_n == 0)
        max_n = 1;
    b->record_id = malloc(max_n * sizeof(*b->record_id));
    b->off = malloc(max_n * sizeof(*b->off));
    b->len = malloc(max_n * sizeof(*b->len));
    b->rseq = malloc(max_n * sizeof(*b->rseq));
    b->rend = malloc(max_n);
    if (!b->record_id || !b->off || !b->len || !b->rseq || !b->rend) {
        qbatch_release(b);
        return -ENOMEM;
    }
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max_n);   /* a chunk holds at least one */
    while (!full && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        size_t n = (size_t)sqlite3_column_int64(st, 1);
        const char *ids = sqlite3_column_blob(st, 2);
        const unsigned char *lens = sqlite3_column_blob(st, 3);
        const char *body = sqlite3_column_blob(st, 4);
        size_t body_len = (size_t)sqlite3_column_bytes(st, 4), take = 0, bytes = 0;
        if (n == 0 || (size_t)sqlite3_column_bytes(st, 2) != n * 32 ||
            (size_t)sqlite3_column_bytes(st, 3) != n * 4) {
            r = fail(q, "a queued chunk is malformed");
            break;
        }
        /* As many of this chunk's records as the limits allow (the first
         * record of a batch always goes, whatever its size). */
        while (take < n) {
            size_t len = le32(lens + 4 * take), i = b->n + take;
            if (i >= max_n || (i > 0 && b->buf_len + bytes + len > max_bytes) ||
                bytes + len > body_len) {
                full = 1;
                break;
            }
            b->off[i] = b->buf_len + bytes;
            b->len[i] = len;
            b->rseq[i] = seq;
            b->rend[i] = take == n - 1;
            memcpy(b->record_id[i], ids + 32 * take, 32);
            b->record_id[i][32] = '\0';
            bytes += len;
            take++;
        }
        if (take == 0)
            break;
        if (b->buf_len + bytes > cap) {
            size_t nc = cap ? cap : 65536;
            while (nc < b->buf_len + bytes)
                nc *= 2;
            char *nb = realloc(b->buf, nc);
            if (!nb) {
                r = -ENOMEM;
                break;
            }
            b->buf = nb;
            cap = nc;
        }
        memcpy(b->buf + b->buf_len, body, bytes);
        b->buf_len += bytes;
        b->n += take;
        if (take < n)
            full = 1;
    }
    if (r == 0 && !full && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = fail(q, "read queue");
    sqlite3_reset(st);
    if (r != 0)
        qbatch_release(b);
    return r;
}

int queue_settle(struct queue *q, const struct qbatch *b, size_t n_ok, size_t n_dead, int status,
                 const char *reason)
{
    sqlite3_stmt *st = q->st[S_ACK], *old = q->st[S_OLDEST];
    size_t total = n_ok + n_dead, bytes = 0, first;
    struct qproject *p;
    int r;

    if (total > b->n)
        return -EINVAL;
    if (total == 0)
        return 0;
    if ((r = begin(q)) != 0)
        return r;
    if (n_dead > 0) {
        sqlite3_stmt *d = q->st[S_DEAD];
        sqlite3_int64 at = (sqlite3_int64)(tv_wall_ns() / 1000000);
        for (size_t i = n_ok; i < total && r == 0; i++) {
            sqlite3_bind_text(d, 1, b->project, -1, SQLITE_STATIC);
            sqlite3_bind_text(d, 2, b->record_id[i], 32, SQLITE_STATIC);
            sqlite3_bind_int64(d, 3, at);
            sqlite3_bind_int(d, 4, status);
            sqlite3_bind_text(d, 5, reason, -1, SQLITE_STATIC);
            sqlite3_bind_blob(d, 6, b->buf + b->off[i], (int)b->len[i], SQLITE_STATIC);
            if (sqlite3_step(d) != SQLITE_DONE)
                r = fail(q, "dead-letter records");
            sqlite3_reset(d);
        }
        if (r != 0)
            return r;
    }
    for (size_t i = 0; i < total; i++)
        bytes += b->len[i];
    /* The records are the oldest of their project: whole chunks from
     * b->rseq[0] on, the last one in part unless it ends there. */
    int64_t last = b->rseq[total - 1];
    int64_t last_whole = b->rend[total - 1] ? last : last - 1;
    if (last_whole >= b->rseq[0]) {
        sqlite3_bind_text(st, 1, b->project, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, b->rseq[0]);
        sqlite3_bind_int64(st, 3, last_whole);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = fail(q, "acknowledge records");
        sqlite3_reset(st);
    }
    if (r == 0 && !b->rend[total - 1]) {
        size_t k = 0, kb = 0;
        for (first = total; first > 0 && b->rseq[first - 1] == last; first--) {
            k++;
            kb += b->len[first - 1];
        }
        sqlite3_stmt *t = q->st[S_TRIM];
        sqlite3_bind_int64(t, 1, (sqlite3_int64)k);
        sqlite3_bind_int64(t, 2, (sqlite3_int64)(k * 32 + 1));
        sqlite3_bind_int64(t, 3, (sqlite3_int64)(k * 4 + 1));
        sqlite3_bind_int64(t, 4, (sqlite3_int64)(kb + 1));
        sqlite3_bind_int64(t, 5, last);
        if (sqlite3_step(t) != SQLITE_DONE)
            r = fail(q, "acknowledge records");
        sqlite3_reset(t);
    }
    if (r == 0)
        r = queue_commit(q);
    if (r != 0)
        return r;
    if ((p = proj_get(q, b->project, 0)) != NULL) {
        p->count = p->count > total ? p->count - total : 0;
        p->bytes = p->bytes > bytes ? p->bytes - bytes : 0;
        sqlite3_bind_text(old, 1, b->project, -1, SQLITE_STATIC);
        if (sqlite3_step(old) == SQLITE_ROW)
            p->oldest_ms = (uint64_t)sqlite3_column_int64(old, 0);
        else
            p->count = p->bytes = 0;
        sqlite3_reset(old);
    }
    q->depth = q->depth > total ? q->depth - total : 0;
    q->bytes = q->bytes > bytes ? q->bytes - bytes : 0;
    return 0;
}

int queue_ack(struct queue *q, const struct qbatch *b)
{
    return queue_settle(q, b, b->n, 0, 0, NULL);
}

int queue_dead(struct queue *q, const struct qbatch *b, int status, const char *reason)
{
    return queue_settle(q, b, 0, b->n, status, reason);
}

int queue_drop_project(struct queue *q, const char *project, uint64_t *n)
{
    static const char *const sql[] = { "DELETE FROM chunks WHERE project = ?",
                                       "DELETE FROM dead WHERE project = ?" };
    struct qproject *p;
    int r;

    *n = 0;
    if ((r = begin(q)) != 0 || (r = pend_flush(q)) != 0)
        return r;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && r == 0; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(q->db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return fail(q, "drop a shredded project's records");
        sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = fail(q, "drop a shredded project's records");
        sqlite3_finalize(st);
    }
    if (r == 0)
        r = queue_commit(q);
    if (r != 0)
        return r;
    if ((p = proj_get(q, project, 0)) != NULL) {
        *n = p->count;
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
