/*
 * ingest.c - files to queued records (ingest.h): tracked files and the work
 * loop; the readers are in ingest_read.c (layout: ingest_int.h).
 *
 * Tracked files live in a hash map by path plus a FIFO of files with work
 * and a list of deferred *.json files waiting to settle.  The path is only a
 * key here: no log line prints it (ingest_label).
 */
#include "config.h"
#include "agent/ingest.h"
#include "agent/ingest_int.h"
#include "agent/opener.h"
#include "agent/encode.h"
#include "agent/evaluate.h"
#include "agent/keys.h"
#include "agent/metrics.h"
#include "agent/parse.h"
#include "agent/queue.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

enum file_kind ingest_kind(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || name[0] == '.' || name[n - 1] == '~')
        return FK_NONE;
    if (n > 5 && !strcmp(name + n - 5, ".json"))
        return FK_JSON;
    if ((n > 6 && !strcmp(name + n - 6, ".jsonl")) || (n > 7 && !strcmp(name + n - 7, ".ndjson")))
        return FK_JSONL;
    return FK_NONE;
}

struct proj_eval *ingest_proj(struct ingest *in, const char *project)
{
    for (size_t i = 0; i < in->n_pe; i++)
        if (!strcmp(in->pe[i].p->name, project))
            return &in->pe[i];
    return NULL;
}

int ingest_new(const struct tv_config *cfg, const char *root, struct queue *q, struct keys *keys,
               const struct price_table *prices, struct metrics *m, struct ingest **out,
               char *err, size_t errlen)
{
    struct ingest *in = calloc(1, sizeof(*in));
    int r = 0;

    *out = NULL;
    if (!in)
        return -ENOMEM;
    in->cfg = cfg;
    in->q = q;
    in->keys = keys;
    in->m = m;
    parse_limits_default(&in->lim);
    in->lim.max_document_bytes = (size_t)cfg->agent.max_document_bytes;
    if (in->lim.max_string_bytes > in->lim.max_document_bytes)
        in->lim.max_string_bytes = in->lim.max_document_bytes;
    in->queue_cap = (uint64_t)cfg->agent.queue_max_mb << 20;
    msgpack_sbuffer_init(&in->sb);
    if (!(in->root = strdup(root)) || !(in->pe = calloc(cfg->n_projects + 1, sizeof(*in->pe)))) {
        r = -ENOMEM;
        goto out;
    }
    in->root_len = strlen(root);
    while (in->root_len > 1 && in->root[in->root_len - 1] == '/')
        in->root[--in->root_len] = '\0';
    for (size_t i = 0; i < cfg->n_projects; i++) {
        struct proj_eval *pe = &in->pe[in->n_pe];
        pe->p = &cfg->projects[i];
        if ((r = evaluator_new(pe->p, prices, &pe->ev, err, errlen)) != 0 ||
            (r = evaluator_new(pe->p, prices, &pe->ev2, err, errlen)) != 0)
            goto out;
        if (!(pe->names = calloc(pe->p->n_assertions + 1, sizeof(*pe->names)))) {
            r = -ENOMEM;
            goto out;
        }
        for (size_t k = 0; k < pe->p->n_assertions; k++)
            pe->names[k] = pe->p->assertions[k].name;
        in->n_pe++;
    }
    in->bufcap = STREAM_BUF;
    if (!(in->buf = malloc(in->bufcap)) || encoder_new(&in->lim, &in->enc) != 0 ||
        opener_new(OPEN_THREADS, &in->opener) != 0)
        r = -ENOMEM;
out:
    if (r != 0) {
        if (r == -ENOMEM)
            snprintf(err, errlen, "agent: out of memory");
        ingest_free(in);
        return r;
    }
    *out = in;
    return 0;
}

static void tracked_free(struct ingest *in, struct tracked *t)
{
    if (t->prefetched && t->pre_fd >= 0)
        close(t->pre_fd);
    if (t->fd >= 0) {
        close(t->fd);
        if (in->early_fds > 0 && t->kind == FK_JSON)
            in->early_fds--;
        if (in->stream_fds > 0 && t->kind == FK_JSONL)
            in->stream_fds--;
    }
    free(t->path);
    free(t);
}

void ingest_free(struct ingest *in)
{
    if (!in)
        return;
    /* Files whose path went away live only on the work or deferred list:
     * free those first, while every list still holds live entries (the hash
     * buckets free the rest, and a bucket's entry may be on a list too).
     * One on both lists is freed by the second loop. */
    for (struct tracked *t = in->work_head, *n; t; t = n) {
        n = t->wnext;
        if (!t->hashed && !t->deferred)
            tracked_free(in, t);
    }
    for (struct tracked *t = in->deferred, *n; t; t = n) {
        n = t->dnext;
        if (!t->hashed)
            tracked_free(in, t);
    }
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct tracked *t = in->buckets[b], *n; t; t = n) {
            n = t->hnext;
            tracked_free(in, t);
        }
    encoder_free(in->enc);
    opener_free(in->opener);
    free(in->docs);
    for (size_t i = 0; i < in->n_pe; i++) {
        evaluator_free(in->pe[i].ev);
        evaluator_free(in->pe[i].ev2);
        free(in->pe[i].names);
    }
    free(in->pe);
    free(in->root);
    free(in->buf);
    msgpack_sbuffer_destroy(&in->sb);
    free(in);
}

/* ---- tracked files ---------------------------------------------------------- */

static size_t hash_path(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h % NBUCKETS);
}

static struct tracked *lookup(struct ingest *in, const char *path)
{
    for (struct tracked *t = in->buckets[hash_path(path)]; t; t = t->hnext)
        if (!strcmp(t->path, path))
            return t;
    return NULL;
}

/* The project of PATH, or NULL when PATH is not a trace of a configured
 * project (outside the root, directly in it, under a hidden directory). */
static const char *path_project(struct ingest *in, const char *path, char *proj, size_t projlen)
{
    const char *rel, *slash;

    if (strncmp(path, in->root, in->root_len) != 0 || path[in->root_len] != '/')
        return NULL;
    rel = path + in->root_len + 1;
    if (!(slash = strchr(rel, '/')) || (size_t)(slash - rel) >= projlen || rel[0] == '.')
        return NULL;
    if (strstr(slash, "/."))
        return NULL;                   /* hidden directory or vault metadata */
    memcpy(proj, rel, (size_t)(slash - rel));
    proj[slash - rel] = '\0';
    if (!ingest_proj(in, proj)) {
        /* The directory's name may be anything a writer chose: the log
         * gives its inode (find ROOT -maxdepth 1 -inum N), not its name. */
        if (in->warned_unknown++ < 10) {
            struct stat st;
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
            log_warn("%s: a top-level directory (inode %llu) is not a configured project: "
                     "its files are ignored", in->root,
                     stat(dir, &st) == 0 ? (unsigned long long)st.st_ino : 0ull);
        }
        return NULL;
    }
    return proj;
}

static struct tracked *track(struct ingest *in, const char *path)
{
    struct tracked *t = lookup(in, path);
    const char *base = strrchr(path, '/');
    enum file_kind k;
    char proj[TV_PROJECT_NAME_MAX + 1];

    if (t)
        return t;
    k = ingest_kind(base ? base + 1 : path);
    if (k == FK_NONE || !path_project(in, path, proj, sizeof(proj)))
        return NULL;
    if (!(t = calloc(1, sizeof(*t))) || !(t->path = strdup(path))) {
        free(t);
        log_error("project \"%s\": out of memory: a trace file is not tracked", proj);
        return NULL;
    }
    t->kind = k;
    t->fd = -1;
    memcpy(t->project, proj, sizeof(proj));
    size_t b = hash_path(path);
    t->hnext = in->buckets[b];
    in->buckets[b] = t;
    t->hashed = 1;
    in->n_tracked++;
    return t;
}

/* Take T out of the path map (it stays alive on the work or deferred list). */
static void unhash(struct ingest *in, struct tracked *t)
{
    struct tracked **pp = &in->buckets[hash_path(t->path)];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = t->hnext;
        in->n_tracked--;
    }
    t->hnext = NULL;
    t->hashed = 0;
}

static void untrack(struct ingest *in, struct tracked *t)
{
    unhash(in, t);
    tracked_free(in, t);
}

static void want_work(struct ingest *in, struct tracked *t)
{
    if (t->in_work || t->deferred)
        return;
    t->in_work = 1;
    t->wnext = NULL;
    if (in->work_tail)
        in->work_tail->wnext = t;
    else
        in->work_head = t;
    in->work_tail = t;
}

static void defer(struct ingest *in, struct tracked *t, uint64_t when)
{
    t->not_before = when;
    if (t->deferred)
        return;
    t->deferred = 1;
    t->dnext = in->deferred;
    in->deferred = t;
}

/* T could not be read now (a vault EIO: keyd down, a shredded project or a
 * damaged file, which the agent cannot tell apart): try again later with
 * exponential backoff, and count it. */
static void retry_later(struct ingest *in, struct tracked *t, uint64_t now)
{
    unsigned shift = t->failures < 6 ? t->failures : 6;
    uint64_t delay = (uint64_t)RETRY_FIRST_MS << shift;

    t->failures++;
    in->m->read_retries++;
    defer(in, t, now + (delay < RETRY_MAX_MS ? delay : RETRY_MAX_MS));
}

int ingest_log_due(const struct tracked *t)
{
    unsigned n = t->failures + 1;
    return (n & (n - 1)) == 0;
}

int ingest_open_ro(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

const char *ingest_label(const struct tracked *t, int fd, char *buf, size_t n)
{
    char x[33];
    struct stat st;

    if (t->ck.file_id[0]) {
        snprintf(buf, n, "project \"%s\": file %s", t->project, t->ck.file_id);
    } else if (fd >= 0 && fgetxattr(fd, "user.tracevault.file_id", x, 32) == 32) {
        x[32] = '\0';
        snprintf(buf, n, "project \"%s\": file %s", t->project, x);
    } else if ((fd >= 0 && fstat(fd, &st) == 0) || (fd < 0 && lstat(t->path, &st) == 0)) {
        snprintf(buf, n, "project \"%s\": file at inode %llu", t->project,
                 (unsigned long long)st.st_ino);
    } else {
        snprintf(buf, n, "project \"%s\": a trace %s", t->project,
                 t->kind == FK_JSON ? "document" : "stream");
    }
    return buf;
}

void ingest_created(struct ingest *in, const char *path)
{
    struct tracked *t = track(in, path);
    if (!t)
        return;
    /* Hold the file open from its creation so that a file deleted right
     * after it was written can still be read to the end. */
    if (t->fd < 0 && (t->kind == FK_JSONL || in->early_fds < EARLY_FDS_MAX)) {
        t->fd = ingest_open_ro(path);
        if (t->fd >= 0 && t->kind == FK_JSON)
            in->early_fds++;
        else if (t->fd >= 0)
            in->stream_fds++;
    }
    if (t->kind == FK_JSONL)
        want_work(in, t);
}

void ingest_modified(struct ingest *in, const char *path)
{
    struct tracked *t = lookup(in, path);
    if (!t) {
        const char *base = strrchr(path, '/');
        if (ingest_kind(base ? base + 1 : path) != FK_JSONL)
            return;
        t = track(in, path);
    }
    if (t && t->kind == FK_JSONL)
        want_work(in, t);
}

void ingest_closed(struct ingest *in, const char *path)
{
    struct tracked *t = track(in, path);
    if (!t)
        return;
    if (t->kind == FK_JSON) {
        t->take = 1;
        t->not_before = 0;
    }
    want_work(in, t);
}

void ingest_moved_in(struct ingest *in, const char *path)
{
    struct tracked *t = lookup(in, path);

    /* A stream renamed over another: the path is a new file now.  Read the
     * old one's last complete lines, then identify the path afresh. */
    if (t && t->kind == FK_JSONL && t->fd >= 0) {
        size_t budget = (size_t)-1;
        ingest_read_stream(in, t, &budget);
        close(t->fd);
        t->fd = -1;
        if (in->stream_fds > 0)
            in->stream_fds--;
        t->have_ck = 0;
        t->ck.file_id[0] = '\0';
        t->skipping = 0;
    }
    ingest_closed(in, path);
}

void ingest_gone(struct ingest *in, const char *path)
{
    struct tracked *t = lookup(in, path);
    if (!t)
        return;
    /* Read what the open descriptor still sees, then forget the path.  The
     * path itself is free at once: a new file by that name (log rotation) is
     * a new tracked file. */
    t->gone = 1;
    if (!t->in_work && !t->deferred && (t->kind == FK_JSON && !t->take && t->fd < 0)) {
        untrack(in, t);
        return;
    }
    unhash(in, t);
    want_work(in, t);
}

void ingest_scanned(struct ingest *in, const char *path, int settle)
{
    struct tracked *t = track(in, path);
    struct stat st;

    if (!t)
        return;
    if (t->kind == FK_JSON && settle && stat(path, &st) == 0) {
        uint64_t now_ns = tv_wall_ns();
        uint64_t mt = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
        uint64_t age_ms = now_ns > mt ? (now_ns - mt) / 1000000ull : 0;
        if (age_ms < SETTLE_MS && !t->take) {
            defer(in, t, tv_now_ms() + SETTLE_MS - age_ms);
            return;
        }
    }
    if (t->kind == FK_JSON)
        t->take = 1;
    want_work(in, t);
}

/* ---- the work loop ---------------------------------------------------------- */

int ingest_paused(struct ingest *in)
{
    return in->paused;
}


/* T, a document about to be read, was not opened ahead: open it and the
 * next documents waiting behind it at once (opener.h).  Each keeps its
 * descriptor until ingest_json_prepare takes it or the file is forgotten. */
static void open_ahead(struct ingest *in, struct tracked *t)
{
    struct tracked *ts[OPEN_AHEAD];
    const char *paths[OPEN_AHEAD];
    int fds[OPEN_AHEAD];
    size_t n = 0;

    for (struct tracked *u = t; u && n < OPEN_AHEAD; u = u == t ? in->work_head : u->wnext) {
        if (u != t && (u->kind != FK_JSON || !u->take || u->fd >= 0 || u->prefetched))
            continue;
        ts[n] = u;
        paths[n++] = u->path;
    }
    if (n < 2)
        return;                        /* nothing to overlap: open as usual */
    opener_run(in->opener, paths, fds, n);
    for (size_t i = 0; i < n; i++) {
        ts[i]->pre_fd = fds[i];
        ts[i]->prefetched = 1;
    }
}

/* Encode and queue the *NJ prepared JSON documents, mark them taken, and
 * forget them. */
static int flush_json(struct ingest *in, size_t *nj)
{
    size_t n = *nj;
    int r = ingest_encode_queue(in, n);

    for (size_t i = 0; i < n; i++) {
        struct tracked *t = in->docs[i].user;
        free(in->docs[i].owned);
        in->docs[i].owned = NULL;
        if (r == 0)
            r = ingest_json_finish(in, t);
        untrack(in, t);
    }
    *nj = 0;
    return r;
}

int ingest_work(struct ingest *in, size_t budget, uint64_t *next_ms)
{
    uint64_t now = tv_now_ms();
    struct tracked **pp;
    size_t nj = 0, nj_bytes = 0;
    int r;

    *next_ms = 0;
    /* Deferred files whose time has come go back to work. */
    for (pp = &in->deferred; *pp;) {
        struct tracked *t = *pp;
        if (t->not_before <= now) {
            *pp = t->dnext;
            t->deferred = 0;
            if (t->kind == FK_JSON)
                t->take = 1;
            want_work(in, t);
        } else {
            if (*next_ms == 0 || t->not_before < *next_ms)
                *next_ms = t->not_before;
            pp = &t->dnext;
        }
    }
    in->paused = queue_bytes(in->q) >= in->queue_cap;
    in->m->reading_paused = in->paused;
    if (in->paused) {
        queue_commit(in->q);
        return 0;
    }
    while (budget > 0 && in->work_head) {
        struct tracked *t = in->work_head;
        in->work_head = t->wnext;
        if (!in->work_head)
            in->work_tail = NULL;
        t->in_work = 0;
        if (t->kind == FK_JSON) {
            if (!t->take && !t->gone)
                continue;              /* created, not yet closed */
            if (!t->take) {
                untrack(in, t);
                continue;
            }
            if ((r = ingest_docs_reserve(in, nj + 1)) != 0)
                goto fatal;
            if (t->fd < 0 && !t->prefetched)
                open_ahead(in, t);
            r = ingest_json_prepare(in, t, nj);
            budget--;
            if (r == 1) {
                t->failures = 0;
                /* Documents are encoded in groups, on both threads; a group
                 * is bounded in bytes too, so large traces cannot pile up. */
                nj_bytes += in->docs[nj].len;
                if ((++nj >= JSON_GROUP || nj_bytes >= JSON_GROUP_BYTES) &&
                    (r = flush_json(in, &nj)) != 0)
                    goto fatal;
                if (nj == 0)
                    nj_bytes = 0;
                continue;
            }
            if (r == -EAGAIN) {
                retry_later(in, t, now);
                continue;
            }
            if (r < 0)
                goto fatal;
            untrack(in, t);
        } else {
            if (nj > 0 && (r = flush_json(in, &nj)) != 0)
                goto fatal;
            nj_bytes = 0;
            r = ingest_read_stream(in, t, &budget);
            if (r == -EAGAIN) {
                retry_later(in, t, now);
                continue;
            }
            if (r < 0)
                goto fatal;
            if (r == 1)
                want_work(in, t);
            else if (t->gone) {
                /* Unlinked or renamed away while a writer may still append
                 * through its descriptor: keep reading through ours until
                 * the file has been quiet for a while, then let go. */
                if (t->fd < 0 || t->gone_quiet >= GONE_QUIET_CHECKS) {
                    untrack(in, t);
                } else {
                    t->gone_quiet = t->ck.size == t->gone_size ? t->gone_quiet + 1 : 0;
                    t->gone_size = t->ck.size;
                    defer(in, t, now + GONE_CHECK_MS);
                    if (*next_ms == 0 || now + GONE_CHECK_MS < *next_ms)
                        *next_ms = now + GONE_CHECK_MS;
                }
            }
        }
        if (queue_bytes(in->q) >= in->queue_cap)
            break;
    }
    if (nj > 0 && (r = flush_json(in, &nj)) != 0)
        goto fatal;
    if ((r = queue_commit(in->q)) != 0)
        return r;
    return in->work_head != NULL;
fatal:
    /* Records must not become durable without their checkpoints. */
    queue_rollback(in->q);
    for (size_t i = 0; i < nj; i++)
        free(in->docs[i].owned);
    return r;
}
