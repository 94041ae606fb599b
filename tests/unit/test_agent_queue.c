/*
 * test_agent_queue.c - the durable state: a checkpoint and the records made
 * before it commit together or not at all (a child killed mid-transaction
 * leaves neither); duplicates by record_id are ignored; batches respect
 * their limits; acknowledged batches go away; rejected ones move to the
 * dead-letter table; in-memory counts survive a reopen.
 */
#include "config.h"
#include "agent/queue.h"
#include "tests/unit/tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/tv-queue-XXXXXX";

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

    plan(23);
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    /* A child queues records and moves the checkpoint, then dies before
     * committing: neither may survive. */
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

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# cleanup failed\n");
    return done();
}
