/*
 * ingest_read.c - file identity, checkpoints and the two readers: whole
 * *.json documents and complete *.jsonl lines (layout: ingest_int.h).
 *
 * Identity: the vault's user.tracevault.file_id when present; otherwise
 * device, inode, birth time and a hash of the first bytes (up to 4 KiB, as
 * many as existed when the file was first seen), so a reused inode is a new
 * file and a renamed one is the same file.  doc_init, ingest_encode_queue
 * (with encode.c on two threads) and queue_skipped are the only places where
 * bytes become queued records.
 */
#include "config.h"
#include "agent/ingest_int.h"
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
    /* Vault file ids: not asked again on a filesystem that had none.  Any
     * other failure is transient (a vault restarting, or gone under a
     * descriptor opened before it died, whose bytes still came from the
     * page cache): an identity from the inode now would be a second
     * identity of the same file, and its records would ship twice under
     * other record_ids (seen in system-crash.sh).  The caller retries. */
    if (f->st.st_dev != in->no_xattr_dev) {
        n = fgetxattr(fd, "user.tracevault.file_id", x, sizeof(x) - 1);
        if (n < 0 && (errno == ENODATA || errno == ENOTSUP))
            in->no_xattr_dev = f->st.st_dev;
        else if (n < 0 && errno != ERANGE)
            return -EAGAIN;
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

/* identify failed with R for T (open as FD): a transient failure is logged
 * on the attempts ingest_log_due picks, anything else at once. */
static void log_unidentified(const struct tracked *t, int fd, int r)
{
    char label[INGEST_LABEL_MAX];

    if (r == -EAGAIN && !ingest_log_due(t))
        return;
    log_warn("%s: cannot identify: %s", ingest_label(t, fd, label, sizeof(label)),
             r == -EAGAIN ? "its file ID cannot be read now (retried with backoff)" : strerror(-r));
}

/* ---- records ---------------------------------------------------------------- */


/* Room for N documents in in->docs. */
int ingest_docs_reserve(struct ingest *in, size_t n)
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
    struct proj_eval *pe = ingest_proj(in, t->project);
    const unsigned char *key = NULL;
    const char *kv = NULL;

    memset(d, 0, sizeof(*d));
    if (!pe)
        return -ENOENT;
    if (keys_pseudonym(in->keys, t->project, &key, &kv) != 0) {
        if (ingest_log_due(t))
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
        char label[INGEST_LABEL_MAX];
        log_warn("%s: offset %llu: skipped %zu bytes: %s", ingest_label(t, -1, label, sizeof(label)),
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
int ingest_encode_queue(struct ingest *in, size_t n)
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

/* Queue the skipped record of an oversized document or line of LEN bytes at
 * POSITION of T (whose t->ck is set): counted, logged, never buffered
 * whole.  The one place for both readers. */
static int queue_skipped(struct ingest *in, struct tracked *t, uint64_t position, uint64_t len)
{
    struct record_ctx ctx;
    char id[RECORD_ID_HEX], label[INGEST_LABEL_MAX];
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
    log_warn("%s: offset %llu: skipped %llu bytes: oversized", ingest_label(t, -1, label, sizeof(label)),
             (unsigned long long)position, (unsigned long long)len);
    in->sb.size = 0;
    if ((r = record_encode_skipped(&ctx, SKIP_OVERSIZED, &in->sb, id)) == 0 &&
        (r = queue_push(in->q, t->project, id, in->sb.data, in->sb.size, ctx.observed_ms)) == 0)
        in->m->records_queued++;
    return r;
}

static void mtime_size(const struct stat *st, struct file_ck *ck)
{
    ck->size = (uint64_t)st->st_size;
    ck->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
}

/* Prepare a whole *.json document for encoding as in->docs[SLOT].  Returns
 * 1 when the document is there (its buffer in d->owned; finish with
 * ingest_json_finish after its records are queued), 0 when T is finished with
 * (taken before, unreadable, or oversized and recorded here), -EAGAIN to try
 * again later, or another negative errno (fatal). */
int ingest_json_prepare(struct ingest *in, struct tracked *t, size_t slot)
{
    struct fstat_bt f;
    struct file_ck ck;
    char label[INGEST_LABEL_MAX];
    int fd = t->fd, found, r, stale = 0;
    char *doc = NULL;
    size_t len = 0, want;
    ssize_t n;

    if (fd < 0 && t->prefetched) {
        /* opened ahead (open_ahead): this call owns the descriptor now */
        fd = t->pre_fd;
        t->prefetched = 0;
        if (fd < 0)
            errno = -fd;
    } else if (fd < 0) {
        fd = ingest_open_ro(t->path);
    }
    if (fd < 0) {
        if (errno != ENOENT)
            log_warn("%s: cannot open: %s", ingest_label(t, -1, label, sizeof(label)), strerror(errno));
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
        if (ingest_log_due(t))
            log_warn("%s: read %zu of %zu bytes: %s (attempt %u; retried with backoff up to %d s)",
                     ingest_label(t, fd, label, sizeof(label)), len, want, strerror(errno), t->failures + 1, RETRY_MAX_MS / 1000);
        r = -EAGAIN;
        stale = 1;
        goto out;
    }
    if ((r = identify(in, fd, &f, doc, len, &ck, &found)) != 0) {
        log_unidentified(t, fd, r);
        if (r != -EAGAIN)
            r = 0;
        stale = r == -EAGAIN;
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
        if ((r = queue_skipped(in, t, 0, (uint64_t)f.st.st_size)) != 0)
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
    if (fd != t->fd) {
        close(fd);
    } else if (stale) {
        /* an early descriptor that cannot be read or identified now may be
         * from a vault that died: the retry opens the path again */
        close(t->fd);
        t->fd = -1;
        if (in->early_fds > 0)
            in->early_fds--;
    }
    return r;
}

/* After its records are queued: T's checkpoint says "taken". */
int ingest_json_finish(struct ingest *in, struct tracked *t)
{
    struct file_ck ck = t->ck;

    ck.offset = ck.size;
    ck.done = 1;
    return queue_file_put(in->q, &ck);
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
int ingest_read_stream(struct ingest *in, struct tracked *t, size_t *budget)
{
    struct fstat_bt f;
    struct stat st;
    char label[INGEST_LABEL_MAX];
    uint64_t now = tv_wall_ns() / 1000000ull;
    int r = 0, more = 0;

    if (t->fd < 0) {
        if ((t->fd = ingest_open_ro(t->path)) < 0) {
            if (errno != ENOENT)
                log_warn("%s: cannot open: %s", ingest_label(t, -1, label, sizeof(label)),
                         strerror(errno));
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
            log_unidentified(t, t->fd, r);
            if (r != -EAGAIN)
                return 0;
            /* the descriptor may be from a vault that died: reopen later */
            close(t->fd);
            t->fd = -1;
            in->stream_fds--;
            return -EAGAIN;
        }
        t->have_ck = 1;
    }
    if ((uint64_t)st.st_size < t->ck.offset) {
        log_info("%s: truncated to %llu bytes (was read to %llu): reading it again as generation %u",
                 ingest_label(t, t->fd, label, sizeof(label)), (unsigned long long)st.st_size, (unsigned long long)t->ck.offset,
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
                log_warn("%s: %s", ingest_label(t, t->fd, label, sizeof(label)), strerror(errno));
            break;
        }
        if (t->skipping) {
            char *nl = memchr(in->buf, '\n', (size_t)n);
            if (!nl) {
                t->skip_scanned += (uint64_t)n;
                continue;
            }
            uint64_t linelen = t->skip_scanned + (uint64_t)(nl - in->buf);
            if ((r = queue_skipped(in, t, t->ck.offset, linelen)) != 0)
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
                if ((r = ingest_docs_reserve(in, nd + 1)) != 0 ||
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
            r = ingest_encode_queue(in, nd);
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
