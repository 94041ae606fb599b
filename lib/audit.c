/*
 * audit.c - see audit.h.  Layout: record syntax (format, parse, MAC), the
 * anchor (two keyed slots), verification (a streaming walk over one or more
 * files, then the anchor check), and the live log (staging, group commit,
 * rotation).
 */
#include "config.h"
#include "lib/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define ANCHOR_MAGIC "TVAH\x01"
#define ANCHOR_MAGIC_LEN 5
#define ANCHOR_SLOT 128
#define ANCHOR_BODY 48                  /* magic + pad (8) + seq (8) + mac (32) */

/* --- records ------------------------------------------------------------- */

void audit_line_mac(const unsigned char *key, const unsigned char prev[AUDIT_MAC_LEN],
                    const char *body, size_t len, unsigned char out[AUDIT_MAC_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, AUDIT_MAC_LEN, AUDIT_MAC_LEN);
    crypto_generichash_update(&st, prev, AUDIT_MAC_LEN);
    crypto_generichash_update(&st, (const unsigned char *)body, len);
    crypto_generichash_final(&st, out, AUDIT_MAC_LEN);
}

/* Lowercase hex only: an upper-case digit would decode to the same byte, so
 * accepting it would let a byte of the (unMAC'd) mac field change unseen. */
static int unhex_lower(const char *hex, unsigned char out[AUDIT_MAC_LEN])
{
    size_t bl = 0;
    for (int i = 0; i < AUDIT_HEX_LEN; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return -EINVAL;
    /* sodium_hex2bin stops after AUDIT_HEX_LEN characters: no terminator needed. */
    if (sodium_hex2bin(out, AUDIT_MAC_LEN, hex, AUDIT_HEX_LEN, NULL, &bl, NULL) != 0 ||
        bl != AUDIT_MAC_LEN)
        return -EINVAL;
    return 0;
}

/* A parsed line: its seq, its mac, and where the MAC'd part and the body are. */
struct rec {
    uint64_t seq;
    unsigned char mac[AUDIT_MAC_LEN];
    size_t macd_len;                    /* bytes covered by the MAC: up to mac_pre */
    size_t body_off, body_len;
};

static int parse_line(const struct audit_format *f, const char *line, size_t len, struct rec *r)
{
    size_t spl = strlen(f->seq_pre), spo = strlen(f->seq_post);
    size_t mpl = strlen(f->mac_pre), mpo = strlen(f->mac_post);
    size_t tail = mpl + AUDIT_HEX_LEN + mpo, i;
    uint64_t seq = 0;

    if (len > AUDIT_LINE_MAX || len < spl + 1 + spo + tail || memcmp(line, f->seq_pre, spl))
        return -EBADMSG;
    /* Decimal, no leading zero, no overflow. */
    for (i = spl; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
        if (seq > (UINT64_MAX - 9) / 10 || (i > spl && seq == 0))
            return -EBADMSG;
        seq = seq * 10 + (uint64_t)(line[i] - '0');
    }
    if (i == spl || seq == 0 || len - i < spo + tail || memcmp(line + i, f->seq_post, spo))
        return -EBADMSG;
    r->body_off = i + spo;
    r->macd_len = len - tail;
    if (r->macd_len < r->body_off || memcmp(line + r->macd_len, f->mac_pre, mpl) ||
        memcmp(line + len - mpo, f->mac_post, mpo) ||
        unhex_lower(line + r->macd_len + mpl, r->mac) != 0 ||
        memchr(line, '\n', len - 1))
        return -EBADMSG;
    r->body_len = r->macd_len - r->body_off;
    r->seq = seq;
    return 0;
}

/* The previous mac named in a continuation record's body, or -EBADMSG. */
static int parse_prev(const struct audit_format *f, const char *line, const struct rec *r,
                      unsigned char prev[AUDIT_MAC_LEN])
{
    size_t pl = strlen(f->prev_pre);
    const char *b = line + r->body_off, *end = b + r->body_len;
    for (const char *p = b; p + pl + AUDIT_HEX_LEN <= end; p++)
        if (memcmp(p, f->prev_pre, pl) == 0)
            return unhex_lower(p + pl, prev) == 0 ? 0 : -EBADMSG;
    return -EBADMSG;
}

/* Format a record for SEQ with BODY chained from PREV into LINE
 * (AUDIT_LINE_MAX).  Returns the length and the new mac, or -EINVAL. */
static int format_line(const struct audit_format *f, const unsigned char *key, uint64_t seq,
                       const char *body, const unsigned char prev[AUDIT_MAC_LEN], char *line,
                       unsigned char mac[AUDIT_MAC_LEN])
{
    char hex[AUDIT_HEX_LEN + 1];
    if (strchr(body, '\n'))
        return -EINVAL;
    int n = snprintf(line, AUDIT_LINE_MAX, "%s%" PRIu64 "%s%s", f->seq_pre, seq, f->seq_post,
                     body);
    size_t tail = strlen(f->mac_pre) + AUDIT_HEX_LEN + strlen(f->mac_post);
    if (n < 0 || (size_t)n + tail >= AUDIT_LINE_MAX)
        return -EINVAL;
    audit_line_mac(key, prev, line, (size_t)n, mac);
    tv_hex(mac, AUDIT_MAC_LEN, hex);
    n += snprintf(line + n, AUDIT_LINE_MAX - (size_t)n, "%s%s%s", f->mac_pre, hex, f->mac_post);
    return n;
}

/* --- the anchor ------------------------------------------------------------ */

char *audit_anchor_path(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + sizeof(".head"));
    if (p) {
        memcpy(p, path, n);
        memcpy(p + n, ".head", sizeof(".head"));
    }
    return p;
}

/* The anchor tag key: its own subkey, so a tag is never a record MAC. */
static void anchor_key(const unsigned char *key, unsigned char out[AUDIT_MAC_LEN])
{
    static const char label[] = "tv-audit-anchor";
    crypto_generichash(out, AUDIT_MAC_LEN, (const unsigned char *)label, sizeof(label) - 1,
                       key, AUDIT_MAC_LEN);
}

static void anchor_slot(const unsigned char *akey, uint64_t seq,
                        const unsigned char mac[AUDIT_MAC_LEN], unsigned char slot[ANCHOR_SLOT])
{
    memset(slot, 0, ANCHOR_SLOT);
    memcpy(slot, ANCHOR_MAGIC, ANCHOR_MAGIC_LEN);
    for (int i = 0; i < 8; i++)
        slot[8 + i] = (unsigned char)(seq >> (56 - 8 * i));
    memcpy(slot + 16, mac, AUDIT_MAC_LEN);
    crypto_generichash(slot + ANCHOR_BODY, AUDIT_MAC_LEN, slot, ANCHOR_BODY, akey, AUDIT_MAC_LEN);
}

/* Read the anchor at APATH: 0 with the newest valid slot, -ENOENT if it is
 * missing or empty, -EBADMSG if no slot authenticates, other -errno. */
static int anchor_read(const char *apath, const unsigned char *key, uint64_t *seq,
                       unsigned char mac[AUDIT_MAC_LEN])
{
    unsigned char buf[2 * ANCHOR_SLOT], akey[AUDIT_MAC_LEN], tag[AUDIT_MAC_LEN];
    int fd = open(apath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), found = 0;
    ssize_t n;

    if (fd < 0)
        return errno == ENOENT ? -ENOENT : -errno;
    n = pread(fd, buf, sizeof(buf), 0);
    close(fd);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ENOENT;
    anchor_key(key, akey);
    for (int s = 0; (s + 1) * ANCHOR_SLOT <= n; s++) {
        const unsigned char *p = buf + s * ANCHOR_SLOT;
        uint64_t v = 0;
        crypto_generichash(tag, sizeof(tag), p, ANCHOR_BODY, akey, AUDIT_MAC_LEN);
        if (memcmp(p, ANCHOR_MAGIC, ANCHOR_MAGIC_LEN) != 0 ||
            sodium_memcmp(tag, p + ANCHOR_BODY, AUDIT_MAC_LEN) != 0)
            continue;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | p[8 + i];
        if (!found || v > *seq) {
            *seq = v;
            memcpy(mac, p + 16, AUDIT_MAC_LEN);
        }
        found = 1;
    }
    sodium_memzero(akey, sizeof(akey));
    return found ? 0 : -EBADMSG;
}

/* --- verification ------------------------------------------------------- */

/* State of a walk over one or more files. */
struct walk {
    const unsigned char *key;
    const struct audit_format *f;
    int started;                          /* a record has been read */
    uint64_t seq;                         /* the chain head so far */
    unsigned char mac[AUDIT_MAC_LEN];
    uint64_t nfile;                       /* records in the current file */
    uint64_t start_seq;                   /* the head the current file continues */
    unsigned char start_mac[AUDIT_MAC_LEN];
    int have_anchor, anchor_matched;      /* the live log's anchor */
    uint64_t aseq;
    unsigned char amac[AUDIT_MAC_LEN];
};

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

/* Check one record LINE (LEN bytes, at LINENO of PATH) against the walk. */
static int walk_record(struct walk *w, const char *path, uint64_t lineno, const char *line,
                       size_t len, int live, struct audit_scan *sc, char *err, size_t errlen)
{
    unsigned char mac[AUDIT_MAC_LEN];
    struct rec r;

    if (parse_line(w->f, line, len, &r) != 0)
        return bad(err, errlen, "audit log %s: line %" PRIu64 ": malformed record", path, lineno);
    if (w->nfile == 0) {
        if (r.seq != 1) {
            /* A rotated file: its first record names the head it continues. */
            unsigned char prev[AUDIT_MAC_LEN];
            if (parse_prev(w->f, line, &r, prev) != 0)
                return bad(err, errlen, "audit log %s: line %" PRIu64 ": starts at record %"
                           PRIu64 " without continuing a rotated log (records deleted from "
                           "the start)", path, lineno, r.seq);
            if (w->started && (r.seq != w->seq + 1 ||
                               sodium_memcmp(prev, w->mac, AUDIT_MAC_LEN) != 0))
                return bad(err, errlen, "audit log %s: line %" PRIu64 ": continues record %"
                           PRIu64 ", not the previous file's last record %" PRIu64
                           " (files missing, reordered or altered)", path, lineno, r.seq - 1,
                           w->seq);
            w->seq = r.seq - 1;
            memcpy(w->mac, prev, AUDIT_MAC_LEN);
        } else if (w->started) {
            return bad(err, errlen, "audit log %s: line %" PRIu64 ": starts a new chain "
                       "instead of continuing the previous file", path, lineno);
        }
        w->start_seq = w->seq;
        memcpy(w->start_mac, w->mac, AUDIT_MAC_LEN);
        if (live)
            sc->first_seq = r.seq;
    } else if (r.seq != w->seq + 1) {
        return bad(err, errlen, "audit log %s: line %" PRIu64 ": sequence %" PRIu64 " where %"
                   PRIu64 " was expected (record deleted, reordered or inserted)", path, lineno,
                   r.seq, w->seq + 1);
    }
    audit_line_mac(w->key, w->mac, line, r.macd_len, mac);
    if (sodium_memcmp(mac, r.mac, AUDIT_MAC_LEN) != 0)
        return bad(err, errlen, "audit log %s: line %" PRIu64 " (seq %" PRIu64 "): MAC "
                   "mismatch (record edited, or the chain before it altered)", path, lineno,
                   r.seq);
    if (sc->on_record && sc->on_record(line, len, r.seq, sc->arg) != 0)
        return bad(err, errlen, "audit log %s: line %" PRIu64 " (seq %" PRIu64 "): refused "
                   "by its reader", path, lineno, r.seq);
    w->started = 1;
    w->nfile++;
    w->seq = r.seq;
    memcpy(w->mac, mac, AUDIT_MAC_LEN);
    sc->records++;
    if (sc->want_seq && r.seq == sc->want_seq)
        sc->want_found = sodium_memcmp(mac, sc->want_mac, AUDIT_MAC_LEN) == 0;
    if (live && w->have_anchor && r.seq == w->aseq)
        w->anchor_matched = sodium_memcmp(mac, w->amac, AUDIT_MAC_LEN) == 0;
    return 0;
}

/* Walk PATH.  LIVE: it is the live log, whose incomplete last line is
 * reported in sc->tail_cut instead of failing. */
static int walk_file(struct walk *w, const char *path, int live, struct audit_scan *sc,
                     char *err, size_t errlen)
{
    FILE *fp = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lineno = 0;
    int rc = 0;

    w->nfile = 0;
    w->start_seq = w->seq;
    memcpy(w->start_mac, w->mac, AUDIT_MAC_LEN);
    if (!fp) {
        if (errno == ENOENT && live)
            return 0;                     /* a live log not yet created is empty */
        rc = -errno;
        snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
        return rc;
    }
    while (rc == 0 && (len = getline(&line, &cap, fp)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') {
            if (live)
                sc->tail_cut = (uint64_t)len;
            else
                rc = bad(err, errlen, "audit log %s: line %" PRIu64 ": incomplete record "
                         "(file cut mid-record)", path, lineno);
            break;
        }
        rc = walk_record(w, path, lineno, line, (size_t)len, live, sc, err, errlen);
    }
    if (rc == 0 && ferror(fp)) {
        rc = -EIO;
        snprintf(err, errlen, "audit log %s: read error", path);
    }
    free(line);
    fclose(fp);
    return rc;
}

/* After walking the live log LOG: does it reach its anchor? */
static int check_anchor(const struct walk *w, const char *log, const char *apath, int adopt,
                        char *err, size_t errlen)
{
    if (!w->have_anchor) {
        if (w->nfile && !adopt)
            return bad(err, errlen, "audit log %s: its anchor %s is missing or empty "
                       "(removed?): cannot tell whether records were cut from the end",
                       log, apath);
        return 0;
    }
    if (w->aseq > w->seq)
        return bad(err, errlen, "audit log %s: ends at record %" PRIu64 " but its anchor says "
                   "record %" PRIu64 " was written (records cut from the end)", log, w->seq,
                   w->aseq);
    if (w->nfile && w->aseq > w->start_seq) {
        if (!w->anchor_matched)
            return bad(err, errlen, "audit log %s: record %" PRIu64 " differs from the one "
                       "its anchor names (log replaced or rewritten)", log, w->aseq);
        return 0;
    }
    /* The anchored head must be where this file starts (nothing after it yet). */
    if (w->aseq != w->start_seq || sodium_memcmp(w->amac, w->start_mac, AUDIT_MAC_LEN) != 0)
        return bad(err, errlen, "audit log %s: starts after record %" PRIu64 " but its anchor "
                   "is record %" PRIu64 " (log replaced, or emptied)", log, w->start_seq,
                   w->aseq);
    return 0;
}

/* Verify PATHS (the last is the live log) and its anchor at APATH. */
static int verify_files(const char *const *paths, size_t n, const char *apath,
                        const unsigned char *key, const struct audit_format *f, int adopt,
                        struct audit_scan *sc, char *err, size_t errlen)
{
    struct walk w;
    int r;

    memset(&w, 0, sizeof(w));
    w.key = key;
    w.f = f;
    sc->records = sc->first_seq = sc->last_seq = sc->anchor_seq = sc->tail_cut = 0;
    sc->want_found = sc->anchored = 0;
    r = anchor_read(apath, key, &w.aseq, w.amac);
    if (r == 0) {
        w.have_anchor = 1;
    } else if (r == -EBADMSG) {
        return bad(err, errlen, "audit log %s: anchor %s does not authenticate (damaged, "
                   "forged or made with another key)", paths[n - 1], apath);
    } else if (r != -ENOENT) {
        snprintf(err, errlen, "audit log %s: anchor %s: %s", paths[n - 1], apath, strerror(-r));
        return r;
    }
    for (size_t i = 0; i < n; i++)
        if ((r = walk_file(&w, paths[i], i + 1 == n, sc, err, errlen)) != 0)
            return r;
    if ((r = check_anchor(&w, paths[n - 1], apath, adopt, err, errlen)) != 0)
        return r;
    sc->last_seq = w.seq;
    memcpy(sc->last_mac, w.mac, AUDIT_MAC_LEN);
    sc->anchored = w.have_anchor;
    sc->anchor_seq = w.aseq;
    return 0;
}

int audit_verify(const char *const *paths, size_t n, const unsigned char key[AUDIT_MAC_LEN],
                 const struct audit_format *fmt, int adopt, struct audit_scan *sc,
                 char *err, size_t errlen)
{
    char *apath;
    int r;

    if (n == 0)
        return -EINVAL;
    if (!(apath = audit_anchor_path(paths[n - 1])))
        return -ENOMEM;
    r = verify_files(paths, n, apath, key, fmt, adopt, sc, err, errlen);
    if (r == 0 && sc->tail_cut)
        r = bad(err, errlen, "audit log %s: ends with an incomplete record (%" PRIu64
                " bytes: a write cut short; the daemon removes it at its next start)",
                paths[n - 1], sc->tail_cut);
    free(apath);
    return r;
}

/* --- the live log ------------------------------------------------------- */

/* A thread in audit_commit waiting for its record's outcome. */
struct waiter {
    uint64_t seq;
    int state;                            /* 0 waiting, 1 durable, -1 lost */
    struct waiter *next;
};

struct audit {
    pthread_mutex_t mu;
    pthread_cond_t cv;                    /* a flush finished */
    struct audit_format fmt;
    audit_cont_fn cont;
    void *cont_arg;
    int no_sync;
    char *path, *apath;
    int fd, afd;
    unsigned char *key;                   /* sodium_malloc'd: MAC key, then anchor key */
    uint64_t seq;                         /* head, staged records included */
    unsigned char mac[AUDIT_MAC_LEN];
    uint64_t dseq;                        /* head of what is durable and anchored */
    unsigned char dmac[AUDIT_MAC_LEN];
    off_t good_len;                       /* file length covering durable records */
    struct tv_buf b[2];                    /* b[cur] stages; the other may be in flight */
    int cur;
    size_t staged;
    int flushing, broken;
    unsigned aslot;                       /* anchor slot written next */
    uint64_t failures;
    struct waiter *waiters, **wtail;      /* ascending seq */
};

#define AKEY(a) ((a)->key + AUDIT_MAC_LEN)

/* Write the anchor for (SEQ, MAC) into the next slot and fdatasync it.
 * BOTH: write both slots (a new anchor file). */
static int anchor_write(struct audit *a, uint64_t seq, const unsigned char *mac, int both)
{
    unsigned char slot[ANCHOR_SLOT];
    int r = 0;
    anchor_slot(AKEY(a), seq, mac, slot);
    for (int i = 0; i < (both ? 2 : 1) && r == 0; i++) {
        r = tv_write_full(a->afd, slot, sizeof(slot), (off_t)a->aslot * ANCHOR_SLOT);
        a->aslot ^= 1;
    }
    if (r == 0 && !a->no_sync && fdatasync(a->afd) != 0)
        r = -errno;
    return r;
}

/* Stage a record with BODY (mu held). */
static int stage_locked(struct audit *a, const char *body, char *line_out)
{
    char line[AUDIT_LINE_MAX];
    unsigned char mac[AUDIT_MAC_LEN];
    int n;

    if (a->broken)
        return -EIO;
    n = format_line(&a->fmt, a->key, a->seq + 1, body, a->mac, line, mac);
    if (n < 0)
        return n;
    if (tv_buf_add(&a->b[a->cur], line, (size_t)n) != 0)
        return -EIO;
    a->seq++;
    memcpy(a->mac, mac, AUDIT_MAC_LEN);
    a->staged++;
    if (line_out)
        memcpy(line_out, line, (size_t)n + 1);
    return 0;
}

/* Forget every record not yet durable (mu held); their waiters fail. */
static void rollback_locked(struct audit *a)
{
    a->seq = a->dseq;
    memcpy(a->mac, a->dmac, AUDIT_MAC_LEN);
    a->b[a->cur].len = 0;
    a->staged = 0;
    for (struct waiter *w = a->waiters; w; w = w->next)
        w->state = -1;
    a->waiters = NULL;
    a->wtail = &a->waiters;
}

/*
 * Flush what is staged (mu held, no flush running): take the staging batch,
 * let others stage into the other one, write + fdatasync + anchor without
 * the lock.  On failure cut the file back and drop everything staged
 * meanwhile too (it chains from the lost records).
 */
static int flush_locked(struct audit *a)
{
    struct tv_buf *b = &a->b[a->cur];
    uint64_t seq = a->seq;
    unsigned char mac[AUDIT_MAC_LEN];
    int r, anchor_failed = 0;

    if (a->broken)
        return -EIO;
    if (a->staged == 0)
        return 0;
    memcpy(mac, a->mac, AUDIT_MAC_LEN);
    a->cur ^= 1;
    a->staged = 0;
    a->flushing = 1;
    pthread_mutex_unlock(&a->mu);

    r = tv_write_full(a->fd, b->p, b->len, -1);
    if (r == 0 && !a->no_sync && fdatasync(a->fd) != 0)
        r = -errno;
    if (r == 0 && (r = anchor_write(a, seq, mac, 0)) != 0)
        anchor_failed = 1;

    pthread_mutex_lock(&a->mu);
    if (r == 0) {
        a->good_len += (off_t)b->len;
        a->dseq = seq;
        memcpy(a->dmac, mac, AUDIT_MAC_LEN);
        while (a->waiters && a->waiters->seq <= seq) {
            a->waiters->state = 1;
            a->waiters = a->waiters->next;
        }
    } else {
        /* The records may be on disk and anchored (a failed fdatasync of the
         * anchor says nothing about its page): stop rather than guess. */
        if (anchor_failed || ftruncate(a->fd, a->good_len) != 0)
            a->broken = 1;
        a->failures++;
        rollback_locked(a);               /* staged meanwhile chains from the lost ones */
        r = -EIO;
    }
    if (!a->waiters)
        a->wtail = &a->waiters;
    b->len = 0;
    a->flushing = 0;
    pthread_cond_broadcast(&a->cv);
    return r;
}

int audit_add(struct audit *a, const char *body, char *line)
{
    pthread_mutex_lock(&a->mu);
    int r = stage_locked(a, body, line);
    pthread_mutex_unlock(&a->mu);
    return r;
}

int audit_flush(struct audit *a)
{
    int r;
    pthread_mutex_lock(&a->mu);
    while (a->flushing)
        pthread_cond_wait(&a->cv, &a->mu);
    r = flush_locked(a);
    pthread_mutex_unlock(&a->mu);
    return r;
}

int audit_commit(struct audit *a, const char *body)
{
    struct waiter w = { 0, 0, NULL };
    int r;

    pthread_mutex_lock(&a->mu);
    if ((r = stage_locked(a, body, NULL)) != 0)
        goto out;
    w.seq = a->seq;
    *a->wtail = &w;
    a->wtail = &w.next;
    /* Flushes mark the outcome; whoever finds none running starts one. */
    while (w.state == 0) {
        if (!a->flushing)
            flush_locked(a);
        else
            pthread_cond_wait(&a->cv, &a->mu);
    }
    r = w.state > 0 ? 0 : -EIO;
out:
    pthread_mutex_unlock(&a->mu);
    return r;
}

uint64_t audit_failures(const struct audit *a)
{
    return a->failures;
}

void audit_discard(struct audit *a)
{
    pthread_mutex_lock(&a->mu);
    rollback_locked(a);
    pthread_mutex_unlock(&a->mu);
}

size_t audit_staged(const struct audit *a)
{
    return a->staged;
}

void audit_head(const struct audit *a, uint64_t *seq, unsigned char mac[AUDIT_MAC_LEN])
{
    *seq = a->seq;
    memcpy(mac, a->mac, AUDIT_MAC_LEN);
}

int audit_append_line(struct audit *a, const char *line)
{
    size_t len = strlen(line);
    unsigned char mac[AUDIT_MAC_LEN];
    struct rec r;
    int rc = -EINVAL;

    pthread_mutex_lock(&a->mu);
    while (a->flushing)
        pthread_cond_wait(&a->cv, &a->mu);
    if (a->staged == 0 && parse_line(&a->fmt, line, len, &r) == 0 && r.seq == a->seq + 1) {
        audit_line_mac(a->key, a->mac, line, r.macd_len, mac);
        if (sodium_memcmp(mac, r.mac, AUDIT_MAC_LEN) == 0 &&
            tv_buf_add(&a->b[a->cur], line, len) == 0) {
            a->seq = r.seq;
            memcpy(a->mac, mac, AUDIT_MAC_LEN);
            a->staged = 1;
            rc = flush_locked(a);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
}

int audit_open(const char *path, const unsigned char key[AUDIT_MAC_LEN],
               const struct audit_opts *o, struct audit_scan *sc, struct audit **out,
               char *err, size_t errlen)
{
    struct audit_scan local;
    struct audit *a = calloc(1, sizeof(*a));
    int r = -ENOMEM;

    *out = NULL;
    if (!sc) {
        memset(&local, 0, sizeof(local));
        sc = &local;
    }
    if (!a) {
        snprintf(err, errlen, "audit log %s: out of memory", path);
        return -ENOMEM;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->wtail = &a->waiters;
    a->fd = a->afd = -1;
    a->fmt = *o->fmt;
    a->cont = o->cont;
    a->cont_arg = o->cont_arg;
    a->no_sync = o->no_sync;
    if (!(a->path = strdup(path)) || !(a->apath = audit_anchor_path(path)) ||
        !(a->key = sodium_malloc(2 * AUDIT_MAC_LEN))) {
        snprintf(err, errlen, "audit log %s: out of memory", path);
        goto fail;
    }
    memcpy(a->key, key, AUDIT_MAC_LEN);
    anchor_key(key, AKEY(a));
    if ((r = verify_files(&path, 1, a->apath, key, o->fmt, o->adopt, sc, err, errlen)) != 0)
        goto fail;
    a->fd = open_log(path);
    a->afd = open(a->apath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (a->fd < 0 || a->afd < 0) {
        r = -errno;
        snprintf(err, errlen, "audit log %s: %s: %s", path, a->fd < 0 ? "open" : a->apath,
                 strerror(errno));
        goto fail;
    }
    a->good_len = lseek(a->fd, 0, SEEK_END);
    if (sc->tail_cut) {
        /* A write cut short by a crash: its request was never answered. */
        a->good_len -= (off_t)sc->tail_cut;
        if (ftruncate(a->fd, a->good_len) != 0) {
            r = -errno;
            snprintf(err, errlen, "audit log %s: cannot cut an incomplete last record: %s",
                     path, strerror(errno));
            goto fail;
        }
    }
    a->seq = a->dseq = sc->last_seq;
    memcpy(a->mac, sc->last_mac, AUDIT_MAC_LEN);
    memcpy(a->dmac, sc->last_mac, AUDIT_MAC_LEN);
    /* Anchor the head as found, in both slots: the file gets its final size
     * (later writes never need space) and no older slot survives. */
    if ((r = anchor_write(a, a->dseq, a->dmac, 1)) != 0) {
        snprintf(err, errlen, "audit log %s: anchor %s: %s", path, a->apath, strerror(-r));
        goto fail;
    }
    *out = a;
    return 0;
fail:
    audit_close(a);
    return r;
}

int audit_rotate(struct audit *a, const char *path, char *err, size_t errlen)
{
    struct stat now, cur;
    char body[AUDIT_LINE_MAX], hex[AUDIT_HEX_LEN + 1];
    int fd, r = 0;

    pthread_mutex_lock(&a->mu);
    while (a->flushing)
        pthread_cond_wait(&a->cv, &a->mu);
    if ((fd = open_log(path)) < 0) {
        r = -errno;
        snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &now) != 0 || fstat(a->fd, &cur) != 0) {
        r = -errno;
        snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
        close(fd);
        goto out;
    }
    if (now.st_dev == cur.st_dev && now.st_ino == cur.st_ino) {
        close(fd);                        /* not rotated: keep going */
        goto out;
    }
    if (now.st_size != 0 || !a->cont) {
        r = -EEXIST;
        snprintf(err, errlen, "audit log %s: the new file is not empty; keeping the old one",
                 path);
        close(fd);
        goto out;
    }
    /* Everything staged goes to the old file; the new one starts with the
     * continuation of the durable head. */
    if ((r = flush_locked(a)) != 0) {
        snprintf(err, errlen, "audit log %s: cannot flush before rotating", path);
        close(fd);
        goto out;
    }
    tv_hex(a->dmac, AUDIT_MAC_LEN, hex);
    int old_fd = a->fd;
    off_t old_len = a->good_len;
    if (a->cont(body, sizeof(body), hex, a->cont_arg) < 0 ||
        (r = stage_locked(a, body, NULL)) != 0) {
        r = r ? r : -EINVAL;
        snprintf(err, errlen, "audit log %s: cannot make the continuation record", path);
        close(fd);
        goto out;
    }
    a->fd = fd;
    a->good_len = 0;
    if ((r = flush_locked(a)) != 0) {
        a->fd = old_fd;                   /* the old file is intact */
        a->good_len = old_len;
        snprintf(err, errlen, "audit log %s: cannot write the continuation record; still "
                 "writing the old file", path);
        close(fd);
        goto out;
    }
    close(old_fd);
    free(a->path);
    a->path = strdup(path);
out:
    pthread_mutex_unlock(&a->mu);
    return r;
}

void audit_close(struct audit *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    if (a->afd >= 0)
        close(a->afd);
    if (a->key)
        sodium_free(a->key);
    free(a->b[0].p);
    free(a->b[1].p);
    free(a->path);
    free(a->apath);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
