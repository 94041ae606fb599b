/*
 * ingest.c - files to queued records (ingest.h).
 *
 * Layout: tracked files (a hash map by path plus a FIFO of files with work,
 * and a list of deferred *.json files waiting to settle); file identity and
 * checkpoints; the two readers (json_prepare, read_stream); doc_init and
 * encode_queue (with encode.c on two threads), the
 * single place where bytes become queued records.
 *
 * Identity: the vault's user.tracevault.file_id when present; otherwise
 * device, inode, birth time and a hash of the first bytes (up to 4 KiB, as
 * many as existed when the file was first seen), so a reused inode is a new
 * file and a renamed one is the same file.
 */
#include "config.h"
#include "agent/ingest.h"
#include "agent/encode.h"
#include "agent/evaluate.h"
#include "agent/keys.h"
#include "agent/metrics.h"
#include "agent/parse.h"
#include "agent/queue.h"
#include "agent/record.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define NBUCKETS 65536
#define HEAD_MAX 4096
#define EARLY_FDS_MAX 256          /* files opened at IN_CREATE (deleted-while-open) */
#define STREAM_FDS_MAX 1024        /* beyond this, streams at their end let go of their fd */
#define SETTLE_MS 1000
#define STREAM_BUF (256 * 1024)
#define JSON_GROUP 64              /* *.json documents encoded together, */
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
    struct enc_doc *docs;
    size_t docs_cap;
    uint64_t queue_cap;
    dev_t no_xattr_dev;            /* a filesystem without vault file ids */
    int paused;
    unsigned warned_unknown;
};

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

static struct proj_eval *proj_eval(struct ingest *in, const char *project)
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
    if (!(in->buf = malloc(in->bufcap)) || encoder_new(&in->lim, &in->enc) != 0)
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
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct tracked *t = in->buckets[b], *n; t; t = n) {
            n = t->hnext;
            tracked_free(in, t);
        }
    /* Files whose path went away live only on the work or deferred list. */
    for (struct tracked *t = in->work_head, *n; t; t = n) {
        n = t->wnext;
        if (!t->hashed)
            tracked_free(in, t);
    }
    for (struct tracked *t = in->deferred, *n; t; t = n) {
        n = t->dnext;
        if (!t->hashed)
            tracked_free(in, t);
    }
    encoder_free(in->enc);
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
    if (!proj_eval(in, proj)) {
        if (in->warned_unknown++ < 10)
            log_warn("%s: directory \"%s\" is not a configured project: ignored", path, proj);
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
        log_error("%s: out of memory", path);
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

static int read_stream(struct ingest *in, struct tracked *t, size_t *budget);

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

/* Log T's failure on attempts 1, 2, 4, 8, ...: a file that stays unreadable
 * for a day costs a dozen log lines, not one a second. */
static int log_due(const struct tracked *t)
{
    unsigned n = t->failures + 1;
    return (n & (n - 1)) == 0;
}

static int open_ro(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

void ingest_created(struct ingest *in, const char *path)
{
    struct tracked *t = track(in, path);
    if (!t)
        return;
    /* Hold the file open from its creation so that a file deleted right
     * after it was written can still be read to the end. */
    if (t->fd < 0 && (t->kind == FK_JSONL || in->early_fds < EARLY_FDS_MAX)) {
        t->fd = open_ro(path);
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
        read_stream(in, t, &budget);
        close(t->fd);
        t->fd = -1;
        if (in->stream_fds > 0)
            in->stream_fds--;
        t->have_ck = 0;
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

/* ---- identity --------------------------------------------------------------- */

/* fstat and the birth time in one statx call.  st_btime: 0 if unknown. */
struct fstat_bt {
    struct stat st;
    uint64_t btime;
};

static int stat_fd(int fd, struct fstat_bt *f)
{
    struct statx sx;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0)
        return -1;
    memset(f, 0, sizeof(*f));
    f->st.st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    f->st.st_ino = sx.stx_ino;
    f->st.st_mode = sx.stx_mode;
    f->st.st_size = (off_t)sx.stx_size;
    f->st.st_mtim.tv_sec = sx.stx_mtime.tv_sec;
    f->st.st_mtim.tv_nsec = sx.stx_mtime.tv_nsec;
    if (sx.stx_mask & STATX_BTIME)
        f->btime = (uint64_t)sx.stx_btime.tv_sec * 1000000000ull + sx.stx_btime.tv_nsec;
    return 0;
}

/* The fallback file id from device, inode, birth time and the first
 * HEAD_LEN bytes (taken from HEAD when the caller has them, else read). */
static int fallback_id(int fd, const struct fstat_bt *f, const char *head_in, uint32_t head_len,
                       char out[33], unsigned char head_hash[16])
{
    unsigned char buf[HEAD_MAX], h[16];
    const unsigned char *head = (const unsigned char *)head_in;
    uint64_t v[3] = { (uint64_t)f->st.st_dev, (uint64_t)f->st.st_ino, f->btime };
    crypto_generichash_state s;

    if (!head) {
        ssize_t n = head_len ? pread(fd, buf, head_len, 0) : 0;
        if (n < 0 || (uint32_t)n != head_len)
            return -EIO;
        head = buf;
    }
    crypto_generichash(head_hash, 16, head, head_len, NULL, 0);
    crypto_generichash_init(&s, NULL, 0, sizeof(h));
    crypto_generichash_update(&s, (const unsigned char *)"tv-fallback-id", 14);
    crypto_generichash_update(&s, (const unsigned char *)v, sizeof(v));
    crypto_generichash_update(&s, head_hash, 16);
    crypto_generichash_final(&s, h, sizeof(h));
    sodium_bin2hex(out, 33, h, sizeof(h));
    return 0;
}

/* Fill CK for the open file FD: an existing checkpoint (*FOUND = 1) or a
 * fresh one.  HEAD/HAVE: bytes from offset 0 the caller already read (NULL
 * if none).  Returns 0 or a negative errno. */
static int identify(struct ingest *in, int fd, const struct fstat_bt *f, const char *head,
                    size_t have, struct file_ck *ck, int *found)
{
    char x[65], key[80], fid[33];
    unsigned char hh[16];
    ssize_t n = -1;
    int r;

    *found = 0;
    /* Vault file ids: not asked again on a filesystem that had none. */
    if (f->st.st_dev != in->no_xattr_dev) {
        n = fgetxattr(fd, "user.tracevault.file_id", x, sizeof(x) - 1);
        if (n < 0 && (errno == ENODATA || errno == ENOTSUP))
            in->no_xattr_dev = f->st.st_dev;
    }
    if (n == 32) {
        x[32] = '\0';
        for (int i = 0; i < 32; i++)
            if (!((x[i] >= '0' && x[i] <= '9') || (x[i] >= 'a' && x[i] <= 'f')))
                n = -1;
    }
    if (n == 32) {
        snprintf(key, sizeof(key), "id:%s", x);
        if (queue_file_get(in->q, key, ck) == 0) {
            *found = 1;
            return 0;
        }
        memset(ck, 0, sizeof(*ck));
        snprintf(ck->key, sizeof(ck->key), "%s", key);
        memcpy(ck->file_id, x, 33);
        return 0;
    }
    snprintf(key, sizeof(key), "ino:%llu:%llu", (unsigned long long)f->st.st_dev,
             (unsigned long long)f->st.st_ino);
    if (queue_file_get(in->q, key, ck) == 0 && ck->head_len <= (uint64_t)f->st.st_size &&
        fallback_id(fd, f, have >= ck->head_len ? head : NULL, ck->head_len, fid, hh) == 0 &&
        !strcmp(fid, ck->file_id)) {
        *found = 1;
        return 0;
    }
    memset(ck, 0, sizeof(*ck));
    snprintf(ck->key, sizeof(ck->key), "%s", key);
    ck->head_len = f->st.st_size < HEAD_MAX ? (uint32_t)f->st.st_size : HEAD_MAX;
    if ((r = fallback_id(fd, f, have >= ck->head_len ? head : NULL, ck->head_len, ck->file_id,
                         ck->head)) != 0)
        return r;
    return 0;
}

/* ---- records ---------------------------------------------------------------- */


/* Room for N documents in in->docs. */
static int docs_reserve(struct ingest *in, size_t n)
{
    if (n <= in->docs_cap)
        return 0;
    size_t nc = in->docs_cap ? in->docs_cap * 2 : 256;
    while (nc < n)
        nc *= 2;
    struct enc_doc *nd = realloc(in->docs, nc * sizeof(*nd));
    if (!nd)
        return -ENOMEM;
    in->docs = nd;
    in->docs_cap = nc;
    return 0;
}

/* Fill D for LEN bytes at BUF, at POSITION of file T (whose t->ck is set).
 * -EAGAIN when T's project has no pseudonym key yet. */
static int doc_init(struct ingest *in, struct enc_doc *d, struct tracked *t, const char *buf,
                    size_t len, uint64_t position, uint64_t now)
{
    struct proj_eval *pe = proj_eval(in, t->project);
    const unsigned char *key = NULL;
    const char *kv = NULL;

    memset(d, 0, sizeof(*d));
    if (!pe)
        return -ENOENT;
    if (keys_pseudonym(in->keys, t->project, &key, &kv) != 0) {
        if (log_due(t))
            log_warn("project \"%s\": %s: reading paused (attempt %u)", t->project,
                     keys_error(in->keys), t->failures + 1);
        return -EAGAIN;
    }
    d->buf = buf;
    d->len = len;
    d->user = t;
    d->ctx.project = t->project;
    d->ctx.file_id = t->ck.file_id;
    d->ctx.generation = t->ck.generation;
    d->ctx.position = position;
    d->ctx.bytes = len;
    d->ctx.observed_ms = now;
    d->ctx.pseudonym_key = key;
    d->ctx.key_version = kv;
    d->ctx.assert_names = pe->names;
    d->ev[0] = pe->ev;
    d->ev[1] = pe->ev2;
    return 0;
}

/* Queue the records of in->docs[I]. */
static int queue_doc(struct ingest *in, size_t i)
{
    struct enc_doc *d = &in->docs[i];
    struct tracked *t = d->user;
    int r;

    if (d->err)
        return d->err;
    in->m->traces_seen++;
    in->m->bytes_read += d->len;
    for (int f = 0; f < CF_COUNT; f++)
        for (int w = 0; w < DROP_REASONS; w++)
            in->m->fields_dropped[f][w] += d->drops.n[f][w];
    if (d->skip != SKIP_NONE) {
        in->m->skipped[d->skip]++;
        log_warn("%s: offset %llu: skipped %zu bytes: %s", t->path,
                 (unsigned long long)d->ctx.position, d->len, skip_reason_name(d->skip));
    }
    for (size_t k = 0; k < d->count; k++) {
        const char *data;
        const struct enc_rec *rec = encoder_rec(in->enc, d->tid, d->first + k, &data);
        if ((r = queue_push(in->q, t->project, rec->id, data, rec->len, d->ctx.observed_ms)) != 0)
            return r;
        in->m->records_queued++;
    }
    return 0;
}

/* Encode in->docs[0..N) on both threads and queue their records in document
 * order (the caller moves the checkpoints in the same transaction).  The
 * first share's records are queued while the worker still encodes the rest. */
static int encode_queue(struct ingest *in, size_t n)
{
    size_t mid = encoder_start(in->enc, in->docs, n), i;
    int r = 0;

    for (i = 0; i < mid && r == 0; i++)
        r = queue_doc(in, i);
    encoder_wait(in->enc);
    for (i = mid; i < n && r == 0; i++)
        r = queue_doc(in, i);
    return r;
}

static void mtime_size(const struct stat *st, struct file_ck *ck)
{
    ck->size = (uint64_t)st->st_size;
    ck->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
}

/* Prepare a whole *.json document for encoding as in->docs[SLOT].  Returns
 * 1 when the document is there (its buffer in d->owned; finish with
 * json_finish after its records are queued), 0 when T is finished with
 * (taken before, unreadable, or oversized and recorded here), -EAGAIN to try
 * again later, or another negative errno (fatal). */
static int json_prepare(struct ingest *in, struct tracked *t, size_t slot)
{
    struct fstat_bt f;
    struct file_ck ck;
    int fd = t->fd, found, r;
    char *doc = NULL;
    size_t len = 0, want;
    ssize_t n;

    if (fd < 0 && (fd = open_ro(t->path)) < 0) {
        if (errno != ENOENT)
            log_warn("%s: %s", t->path, strerror(errno));
        return 0;
    }
    if (stat_fd(fd, &f) != 0 || !S_ISREG(f.st.st_mode)) {
        r = 0;
        goto out;
    }
    /* Read first (one pass serves identity and parsing), unless too big. */
    want = (uint64_t)f.st.st_size > in->lim.max_document_bytes ? HEAD_MAX : (size_t)f.st.st_size;
    if (!(doc = malloc(want + 1))) {
        r = -EAGAIN;
        goto out;
    }
    while (len < want && (n = pread(fd, doc + len, want - len, (off_t)len)) > 0)
        len += (size_t)n;
    if (len < want) {
        if (log_due(t))
            log_warn("%s: read %zu of %zu bytes: %s (attempt %u; retried with backoff up to %d s)",
                     t->path, len, want, strerror(errno), t->failures + 1, RETRY_MAX_MS / 1000);
        r = -EAGAIN;
        goto out;
    }
    if ((r = identify(in, fd, &f, doc, len, &ck, &found)) != 0) {
        log_warn("%s: cannot identify: %s", t->path, strerror(-r));
        r = 0;
        goto out;
    }
    if (found && ck.done) {
        /* Same size and the same mtime to the second: taken before.  (Not
         * to the nanosecond: a filesystem such as the vault may keep
         * coarser times across a remount.) */
        if (ck.size == (uint64_t)f.st.st_size &&
            ck.mtime_ns / 1000000000ll == (int64_t)f.st.st_mtim.tv_sec) {
            r = 0;                      /* taken before */
            goto out;
        }
        ck.generation++;                /* rewritten in place: a new document */
    }
    t->ck = ck;
    if ((uint64_t)f.st.st_size > in->lim.max_document_bytes) {
        struct record_ctx ctx;
        char id[RECORD_ID_HEX];
        memset(&ctx, 0, sizeof(ctx));
        ctx.project = t->project;
        ctx.file_id = ck.file_id;
        ctx.generation = ck.generation;
        ctx.bytes = (uint64_t)f.st.st_size;
        ctx.observed_ms = tv_wall_ns() / 1000000ull;
        in->m->traces_seen++;
        in->m->skipped[SKIP_OVERSIZED]++;
        log_warn("%s: offset 0: skipped %llu bytes: oversized", t->path,
                 (unsigned long long)f.st.st_size);
        in->sb.size = 0;
        if ((r = record_encode_skipped(&ctx, SKIP_OVERSIZED, &in->sb, id)) == 0 &&
            (r = queue_push(in->q, t->project, id, in->sb.data, in->sb.size, ctx.observed_ms)) == 0)
            in->m->records_queued++;
        if (r != 0)
            goto out;
        ck = t->ck;
        ck.offset = (uint64_t)f.st.st_size;
        ck.done = 1;
        mtime_size(&f.st, &ck);
        r = queue_file_put(in->q, &ck);
    } else {
        mtime_size(&f.st, &t->ck);
        r = doc_init(in, &in->docs[slot], t, doc, len, 0, tv_wall_ns() / 1000000ull);
        if (r == 0) {
            in->docs[slot].owned = doc;
            doc = NULL;
            r = 1;
        }
    }
out:
    free(doc);
    if (fd != t->fd)
        close(fd);
    return r;
}

/* After its records are queued: T's checkpoint says "taken". */
static int json_finish(struct ingest *in, struct tracked *t)
{
    struct file_ck ck = t->ck;

    ck.offset = ck.size;
    ck.done = 1;
    return queue_file_put(in->q, &ck);
}

/* Queue the skipped record of an oversized line of LEN bytes at POSITION. */
static int skip_line(struct ingest *in, struct tracked *t, uint64_t position, uint64_t len)
{
    struct record_ctx ctx;
    char id[RECORD_ID_HEX];
    int r;

    memset(&ctx, 0, sizeof(ctx));
    ctx.project = t->project;
    ctx.file_id = t->ck.file_id;
    ctx.generation = t->ck.generation;
    ctx.position = position;
    ctx.bytes = len;
    ctx.observed_ms = tv_wall_ns() / 1000000ull;
    in->m->traces_seen++;
    in->m->skipped[SKIP_OVERSIZED]++;
    log_warn("%s: offset %llu: skipped %llu bytes: oversized", t->path,
             (unsigned long long)position, (unsigned long long)len);
    in->sb.size = 0;
    if ((r = record_encode_skipped(&ctx, SKIP_OVERSIZED, &in->sb, id)) == 0 &&
        (r = queue_push(in->q, t->project, id, in->sb.data, in->sb.size, ctx.observed_ms)) == 0)
        in->m->records_queued++;
    return r;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Read complete lines of a stream.  Returns 1 if more is readable now (the
 * budget ran out), 0 when at the end, -EAGAIN to retry later. */
static int read_stream(struct ingest *in, struct tracked *t, size_t *budget)
{
    struct fstat_bt f;
    struct stat st;
    uint64_t now = tv_wall_ns() / 1000000ull;
    int r = 0, more = 0;

    if (t->fd < 0) {
        if ((t->fd = open_ro(t->path)) < 0) {
            if (errno != ENOENT)
                log_warn("%s: %s", t->path, strerror(errno));
            return 0;
        }
        in->stream_fds++;
    }
    if (stat_fd(t->fd, &f) != 0 || !S_ISREG(f.st.st_mode))
        return 0;
    st = f.st;
    if (!t->have_ck) {
        int found;
        if ((r = identify(in, t->fd, &f, NULL, 0, &t->ck, &found)) != 0) {
            log_warn("%s: cannot identify: %s", t->path, strerror(-r));
            return 0;
        }
        t->have_ck = 1;
    }
    if ((uint64_t)st.st_size < t->ck.offset) {
        log_info("%s: truncated to %llu bytes (was read to %llu): reading it again as generation %u",
                 t->path, (unsigned long long)st.st_size, (unsigned long long)t->ck.offset,
                 t->ck.generation + 1);
        t->ck.generation++;
        t->ck.offset = 0;
        t->skipping = 0;
        if ((r = queue_file_put(in->q, &t->ck)) != 0)
            return r;
    }
    while (*budget > 0) {
        uint64_t base = t->ck.offset + (t->skipping ? t->skip_scanned : 0);
        ssize_t n = pread(t->fd, in->buf, in->bufcap, (off_t)base);
        size_t start = 0;
        if (n <= 0) {
            if (n < 0)
                log_warn("%s: %s", t->path, strerror(errno));
            break;
        }
        if (t->skipping) {
            char *nl = memchr(in->buf, '\n', (size_t)n);
            if (!nl) {
                t->skip_scanned += (uint64_t)n;
                continue;
            }
            uint64_t linelen = t->skip_scanned + (uint64_t)(nl - in->buf);
            if ((r = skip_line(in, t, t->ck.offset, linelen)) != 0)
                break;
            t->ck.offset += linelen + 1;
            t->skipping = 0;
            t->skip_scanned = 0;
            (*budget)--;
            continue;
        }
        size_t nd = 0;
        for (;;) {
            char *nl = memchr(in->buf + start, '\n', (size_t)n - start);
            if (!nl)
                break;
            size_t ll = (size_t)(nl - (in->buf + start));
            if (!is_blank(in->buf + start, ll)) {
                size_t pl = ll;
                if (pl > 0 && in->buf[start + pl - 1] == '\r')
                    pl--;
                if ((r = docs_reserve(in, nd + 1)) != 0 ||
                    (r = doc_init(in, &in->docs[nd], t, in->buf + start, pl, t->ck.offset + start,
                                  now)) != 0)
                    break;
                nd++;
                (*budget)--;
            }
            start += ll + 1;
            if (*budget == 0)
                break;
        }
        /* The complete lines of this chunk, all or nothing: their records
         * are queued and the offset moves past them in one transaction. */
        if (r == 0 && nd > 0)
            r = encode_queue(in, nd);
        if (r != 0) {
            if (r == -EAGAIN)
                (*budget) += nd;
            break;
        }
        t->ck.offset += start;
        if (start == 0 && (size_t)n == in->bufcap) {
            /* One line fills the buffer: grow up to the document limit, then
             * skip the line (it is counted, never buffered whole). */
            if (in->bufcap <= in->lim.max_document_bytes) {
                size_t nc = in->bufcap * 2;
                if (nc > in->lim.max_document_bytes + 2)
                    nc = in->lim.max_document_bytes + 2;
                char *nb = realloc(in->buf, nc);
                if (!nb) {
                    r = -EAGAIN;
                    break;
                }
                in->buf = nb;
                in->bufcap = nc;
            } else {
                t->skipping = 1;
                t->skip_scanned = (uint64_t)n;
            }
            continue;
        }
        if ((size_t)n < in->bufcap && start == (size_t)n)
            continue;                  /* consumed all: check for more */
        if ((size_t)n < in->bufcap)
            break;                     /* a partial last line waits */
    }
    if (*budget == 0)
        more = 1;
    if (in->bufcap > STREAM_BUF) {
        /* Give back the memory of a long line. */
        char *nb = realloc(in->buf, STREAM_BUF);
        if (nb) {
            in->buf = nb;
            in->bufcap = STREAM_BUF;
        }
    }
    mtime_size(&st, &t->ck);
    int pr = queue_file_put(in->q, &t->ck);
    /* Many idle streams: one at its end lets go of its descriptor (its next
     * IN_MODIFY reopens it; the checkpoint knows where to resume). */
    if (!more && !t->gone && in->stream_fds > STREAM_FDS_MAX) {
        close(t->fd);
        t->fd = -1;
        in->stream_fds--;
    }
    if (r == 0)
        r = pr;
    if (r == -EAGAIN)
        return -EAGAIN;
    return r < 0 ? r : more;
}

/* ---- the work loop ---------------------------------------------------------- */

int ingest_paused(struct ingest *in)
{
    return in->paused;
}


/* Encode and queue the *NJ prepared JSON documents, mark them taken, and
 * forget them. */
static int flush_json(struct ingest *in, size_t *nj)
{
    size_t n = *nj;
    int r = encode_queue(in, n);

    for (size_t i = 0; i < n; i++) {
        struct tracked *t = in->docs[i].user;
        free(in->docs[i].owned);
        in->docs[i].owned = NULL;
        if (r == 0)
            r = json_finish(in, t);
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
            if ((r = docs_reserve(in, nj + 1)) != 0)
                goto fatal;
            r = json_prepare(in, t, nj);
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
            r = read_stream(in, t, &budget);
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
