/*
 * test_agent_queue.c - the durable state: a checkpoint and the records made
 * before it commit together or not at all (a child killed mid-transaction
 * leaves neither); duplicates by record_id are ignored; batches respect
 * their limits; acknowledged batches go away; rejected ones move to the
 * dead-letter table; in-memory counts survive a reopen.  Records share
 * rows (chunks): a batch that ends inside a chunk leaves exactly the rest
 * of it, in order; a chunk never exceeds its limits; a database of the
 * one-record-per-row layout is migrated in order; a shredded project's
 * records go even while still pending in memory.
 */
#include "config.h"
#include "agent/queue.h"
#include "tests/unit/tap.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/tv-queue-XXXXXX";

static const char *dir_db(void)
{
    static char p[64];
    snprintf(p, sizeof(p), "%s/agent.db", dir);
    return p;
}

static struct file_ck ck_at(uint64_t off)
{
    struct file_ck ck;
    memset(&ck, 0, sizeof(ck));
    snprintf(ck.key, sizeof(ck.key), "id:0123456789abcdef0123456789abcdef");
    snprintf(ck.file_id, sizeof(ck.file_id), "0123456789abcdef0123456789abcdef");
    ck.offset = off;
    return ck;
}

int main(void)
{
    struct queue *q;
    struct file_ck ck;
    struct qbatch b;
    const struct qproject *pr;
    char id[33];

    plan(54);
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    /* A child queues records and moves the checkpoint, then dies before
     * committing: neither may survive. */
    ck = ck_at(1000);
    pid_t pid = fork();
    if (pid == 0) {
        if (queue_open(dir, &q) != 0)
            _exit(3);
        for (int i = 0; i < 10; i++) {
            snprintf(id, sizeof(id), "%032d", i);
            queue_push(q, "p", id, "rec", 3, 1);
        }
        ck = ck_at(1000);
        queue_file_put(q, &ck);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int st;
    waitpid(pid, &st, 0);
    ok(WIFSIGNALED(st), "child killed inside its transaction");
    is_int(queue_open(dir, &q), 0, "reopen after the kill");
    is_int(queue_depth(q), 0, "no records from the uncommitted transaction");
    is_int(queue_file_get(q, ck.key, &ck), -2, "and no checkpoint either");

    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "%032d", i);
        queue_push(q, i < 7 ? "p" : "other", id, "0123456789", 10, 100 + (uint64_t)i);
    }
    ck = ck_at(1000);
    queue_file_put(q, &ck);
    is_int(queue_commit(q), 0, "commit");
    is_int(queue_depth(q), 10, "ten records queued");
    queue_close(q);

    is_int(queue_open(dir, &q), 0, "reopen");
    is_int(queue_depth(q), 10, "records survived");
    is_int(queue_bytes(q), 100, "bytes counted from the database");
    memset(&ck, 0, sizeof(ck));
    is_int(queue_file_get(q, "id:0123456789abcdef0123456789abcdef", &ck), 0, "checkpoint survived");
    is_int(ck.offset, 1000, "checkpoint offset");
    size_t np = queue_projects(q, &pr);
    int pcount = 0;
    for (size_t i = 0; i < np; i++)
        if (!strcmp(pr[i].name, "p"))
            pcount = (int)pr[i].count, ok(pr[i].oldest_ms == 100, "oldest of p");
    is_int(pcount, 7, "seven queued for p");

    is_int(queue_peek(q, "p", 5, 1 << 20, &b), 0, "peek");
    is_int(b.n, 5, "batch limited by count");
    ok(!strcmp(b.record_id[0], "00000000000000000000000000000000"), "oldest first");
    qbatch_release(&b);
    is_int(queue_peek(q, "p", 100, 25, &b), 0, "peek by bytes");
    is_int(b.n, 2, "batch limited by bytes (2 x 10 <= 25)");
    is_int(queue_ack(q, &b), 0, "ack");
    qbatch_release(&b);
    is_int(queue_depth(q), 8, "acknowledged records removed");
    queue_peek(q, "other", 100, 1 << 20, &b);
    is_int(queue_dead(q, &b, 400, "HTTP status 400"), 0, "dead-letter a batch");
    qbatch_release(&b);
    is_int(queue_dead_count(q), 3, "three records in the dead-letter table");
    is_int(queue_depth(q), 5, "and out of the queue");
    queue_close(q);

    /* A batch ending inside a chunk: the rest stays, in order, whole. */
    is_int(queue_open(dir, &q), 0, "reopen for chunks");
    queue_set_chunk(q, 4, 1 << 20);
    char body[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "%032d", 100 + i);
        snprintf(body, sizeof(body), "r%d", 100 + i);
        queue_push(q, "c", id, body, strlen(body), 500);
    }
    queue_commit(q);
    sqlite3 *db;
    sqlite3_stmt *sq;
    int max_n = -1, rows = -1;
    sqlite3_open(dir_db(), &db);
    if (sqlite3_prepare_v2(db, "SELECT max(n), count(*) FROM chunks WHERE project = 'c'", -1, &sq,
                           NULL) == SQLITE_OK && sqlite3_step(sq) == SQLITE_ROW) {
        max_n = sqlite3_column_int(sq, 0);
        rows = sqlite3_column_int(sq, 1);
    }
    sqlite3_finalize(sq);
    is_int(max_n, 4, "a chunk holds at most its record limit");
    is_int(rows, 3, "ten records in three chunks");
    is_int(queue_peek(q, "c", 6, 1 << 20, &b), 0, "peek across chunks");
    is_int(b.n, 6, "six records: one chunk and half of the next");
    ok(b.len[5] == 4 && !memcmp(b.buf + b.off[5], "r105", 4), "record 6's bytes");
    is_int(queue_ack(q, &b), 0, "ack a batch ending inside a chunk");
    qbatch_release(&b);
    is_int(queue_depth(q), 9, "four left of c (plus five of p)");
    is_int(queue_peek(q, "c", 100, 1 << 20, &b), 0, "peek the rest");
    is_int(b.n, 4, "the four others");
    ok(b.n == 4 && !strcmp(b.record_id[0], "00000000000000000000000000000106") &&
       !memcmp(b.buf + b.off[0], "r106", 4) && !memcmp(b.buf + b.off[3], "r109", 4) &&
       b.buf_len == 16, "the rest of the chunk is what remained, in order");
    qbatch_release(&b);
    queue_close(q);
    is_int(queue_open(dir, &q), 0, "reopen after a partial ack");
    is_int(queue_depth(q), 9, "counts from the trimmed chunk");
    is_int(queue_bytes(q), 16 + 50, "bytes from the trimmed chunk");
    /* Settled in parts: a delivery thread acknowledges batches in order
     * and may stop at a rejected one (ship.c). */
    queue_set_chunk(q, 3, 1 << 20);
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "%032d", 200 + i);
        snprintf(body, sizeof(body), "s%d", 200 + i);
        queue_push(q, "d", id, body, strlen(body), 700);
    }
    queue_commit(q);
    is_int(queue_peek(q, "d", 100, 1 << 20, &b), 0, "peek d: 8 records in chunks of 3, 3, 2");
    is_int(queue_settle(q, &b, 2, 2, 400, "HTTP status 400"), 0,
           "settle 2 delivered and 2 rejected (ending inside the second chunk)");
    qbatch_release(&b);
    uint64_t dead_before = queue_dead_count(q);
    is_int(queue_peek(q, "d", 100, 1 << 20, &b), 0, "peek the rest of d");
    ok(b.n == 4 && !strcmp(b.record_id[0], "00000000000000000000000000000204") &&
       !memcmp(b.buf + b.off[0], "s204", 4) && !memcmp(b.buf + b.off[3], "s207", 4),
       "the four after them, in order");
    is_int(queue_settle(q, &b, 4, 0, 0, NULL), 0, "settle the rest");
    qbatch_release(&b);
    is_int((int)dead_before, 5, "two more in the dead-letter table");
    is_int(queue_settle(q, &b, 1, 0, 0, NULL), -22, "settling more than the batch holds is refused");

    /* Pending records of a project that is shredded go with it. */
    snprintf(id, sizeof(id), "%032d", 999);
    queue_push(q, "c", id, "late", 4, 600);
    uint64_t dropped = 0;
    is_int(queue_drop_project(q, "c", &dropped), 0, "drop c");
    is_int((int)dropped, 5, "its four queued and one pending record");
    is_int(queue_depth(q), 5, "p's five remain");
    queue_close(q);
    sqlite3_close(db);

    /* A database of the old layout (one record per row in "queue"). */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s/agent.db*", dir);
    ok(system(cmd) == 0, "fresh database");
    sqlite3_open(dir_db(), &db);
    ok(sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
                        "CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, "
                        "record_id TEXT NOT NULL, enq_ms INTEGER NOT NULL, body BLOB NOT NULL);"
                        "INSERT INTO queue (project, record_id, enq_ms, body) VALUES "
                        "('m', '00000000000000000000000000000001', 7, x'a1'),"
                        "('n', '00000000000000000000000000000002', 8, x'a2b2'),"
                        "('m', '00000000000000000000000000000003', 9, x'a3');",
                    NULL, NULL, NULL) == SQLITE_OK, "old layout written");
    sqlite3_close(db);
    is_int(queue_open(dir, &q), 0, "open migrates");
    is_int(queue_depth(q), 3, "three records after migration");
    is_int(queue_peek(q, "m", 100, 1 << 20, &b), 0, "peek m");
    ok(b.n == 2 && !strcmp(b.record_id[1], "00000000000000000000000000000003") &&
       b.buf_len == 2 && (unsigned char)b.buf[1] == 0xa3, "m's records, in order, bytes intact");
    qbatch_release(&b);
    queue_close(q);
    sqlite3_open(dir_db(), &db);
    rows = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'queue'", -1, &sq,
                           NULL) == SQLITE_OK && sqlite3_step(sq) == SQLITE_ROW)
        rows = sqlite3_column_int(sq, 0);
    sqlite3_finalize(sq);
    sqlite3_close(db);
    is_int(rows, 0, "the old table is gone");

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# cleanup failed\n");
    return done();
}
