/*
 * audit.c - see audit.h.  Staging buffer + group flush for appends; a
 * streaming line walker for verification.
 */
#include "config.h"
#include "keyd/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

#define MAC_TAIL (5 + 2 * AUDIT_MAC_LEN + 1)   /* " mac=" HEX "\n" */

struct audit {
    int fd;
    int do_fsync;
    int broken;
    unsigned char *key;                 /* sodium_malloc'd */
    uint64_t seq;                       /* head including staged records */
    unsigned char mac[AUDIT_MAC_LEN];
    uint64_t flushed_seq;               /* head of what is on disk */
    unsigned char flushed_mac[AUDIT_MAC_LEN];
    uint64_t failures;
    off_t good_len;                     /* file length covering flushed records */
    char *batch;
    size_t blen, bcap, staged;
};

int audit_open(const char *path, const unsigned char mac_key[AUDIT_MAC_LEN], int do_fsync,
               struct audit **out)
{
    struct audit *a = calloc(1, sizeof(*a));
    int r;

    *out = NULL;
    if (!a)
        return -ENOMEM;
    a->fd = -1;
    a->key = sodium_malloc(AUDIT_MAC_LEN);
    if (!a->key) {
        r = -ENOMEM;
        goto fail;
    }
    memcpy(a->key, mac_key, AUDIT_MAC_LEN);
    a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        r = -errno;
        goto fail;
    }
    a->good_len = lseek(a->fd, 0, SEEK_END);
    if (a->good_len < 0) {
        r = -errno;
        goto fail;
    }
    a->do_fsync = do_fsync;
    *out = a;
    return 0;
fail:
    audit_close(a);
    return r;
}

void audit_close(struct audit *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    if (a->key)
        sodium_free(a->key);
    free(a->batch);
    free(a);
}

void audit_set_head(struct audit *a, uint64_t seq, const unsigned char mac[AUDIT_MAC_LEN])
{
    a->seq = a->flushed_seq = seq;
    memcpy(a->mac, mac, AUDIT_MAC_LEN);
    memcpy(a->flushed_mac, mac, AUDIT_MAC_LEN);
}

void audit_head(const struct audit *a, uint64_t *seq, unsigned char mac[AUDIT_MAC_LEN])
{
    *seq = a->seq;
    memcpy(mac, a->mac, AUDIT_MAC_LEN);
}

uint64_t audit_failures(const struct audit *a)
{
    return a->failures;
}

void audit_discard(struct audit *a)
{
    a->seq = a->flushed_seq;
    memcpy(a->mac, a->flushed_mac, AUDIT_MAC_LEN);
    a->blen = 0;
    a->staged = 0;
}

size_t audit_staged(const struct audit *a)
{
    return a->staged;
}

void audit_line_mac(const unsigned char *key, const unsigned char prev[AUDIT_MAC_LEN],
                    const char *body, size_t len, unsigned char out[AUDIT_MAC_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, AUDIT_MAC_LEN, AUDIT_MAC_LEN);
    crypto_generichash_update(&st, prev, AUDIT_MAC_LEN);
    crypto_generichash_update(&st, (const unsigned char *)body, len);
    crypto_generichash_final(&st, out, AUDIT_MAC_LEN);
}

/* Parse the 64 hex digits at HEX (not NUL-terminated: the line's '\n' follows). */
static int unhex_mac(const char *hex, unsigned char out[AUDIT_MAC_LEN])
{
    size_t bl = 0;
    const char *end = NULL;
    for (int i = 0; i < 2 * AUDIT_MAC_LEN; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return -EINVAL;
    if (sodium_hex2bin(out, AUDIT_MAC_LEN, hex, 2 * AUDIT_MAC_LEN, NULL, &bl, &end) != 0 ||
        bl != AUDIT_MAC_LEN)
        return -EINVAL;
    return 0;
}

static int batch_put(struct audit *a, const char *s, size_t n)
{
    if (a->blen + n > a->bcap) {
        size_t cap = a->bcap ? a->bcap * 2 : 16384;
        while (cap < a->blen + n)
            cap *= 2;
        char *b = realloc(a->batch, cap);
        if (!b)
            return -ENOMEM;
        a->batch = b;
        a->bcap = cap;
    }
    memcpy(a->batch + a->blen, s, n);
    a->blen += n;
    return 0;
}

int audit_add(struct audit *a, const struct audit_rec *r, char *line)
{
    char buf[AUDIT_LINE_MAX], ts[32], hex[2 * AUDIT_MAC_LEN + 1];
    unsigned char mac[AUDIT_MAC_LEN];
    int n;

    if (a->broken)
        return -EIO;
    tv_rfc3339(tv_wall_ns(), ts);
    n = snprintf(buf, sizeof(buf),
                 "seq=%" PRIu64 " gen=%" PRIu64 " time=%s uid=%u pid=%d op=%s project=%s "
                 "version=%" PRIu32 " n=%" PRIu32 " result=%s",
                 a->seq + 1, r->gen, ts, (unsigned)r->uid, (int)r->pid, r->op ? r->op : "?",
                 r->project && *r->project ? r->project : "-", r->version, r->n,
                 r->result ? r->result : "?");
    if (n < 0 || (size_t)n + MAC_TAIL >= sizeof(buf))
        return -EINVAL;
    audit_line_mac(a->key, a->mac, buf, (size_t)n, mac);
    tv_hex(mac, AUDIT_MAC_LEN, hex);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, " mac=%s\n", hex);
    if (batch_put(a, buf, (size_t)n) != 0)
        return -EIO;
    a->seq++;
    memcpy(a->mac, mac, AUDIT_MAC_LEN);
    a->staged++;
    if (line)
        memcpy(line, buf, (size_t)n + 1);
    return 0;
}

int audit_flush(struct audit *a)
{
    int r;

    if (a->broken)
        return -EIO;
    if (a->staged == 0)
        return 0;
    r = tv_write_full(a->fd, a->batch, a->blen, -1);
    if (r == 0 && a->do_fsync && fdatasync(a->fd) != 0)
        r = -errno;
    if (r == 0) {
        a->good_len += (off_t)a->blen;
        a->flushed_seq = a->seq;
        memcpy(a->flushed_mac, a->mac, AUDIT_MAC_LEN);
    } else {
        /* Cut off a partial append so the chain stays verifiable. */
        if (ftruncate(a->fd, a->good_len) != 0)
            a->broken = 1;
        a->seq = a->flushed_seq;
        memcpy(a->mac, a->flushed_mac, AUDIT_MAC_LEN);
        a->failures++;
        r = -EIO;
    }
    a->blen = 0;
    a->staged = 0;
    return r;
}

int audit_append_line(struct audit *a, const char *line)
{
    uint64_t seq, gen;
    size_t len = strlen(line);
    unsigned char mac[AUDIT_MAC_LEN];
    int r;

    if (a->staged != 0 || len < MAC_TAIL || line[len - 1] != '\n' ||
        audit_line_ids(line, len, &seq, &gen) != 0 || seq != a->seq + 1 ||
        unhex_mac(line + len - 1 - 2 * AUDIT_MAC_LEN, mac) != 0)
        return -EINVAL;
    if ((r = batch_put(a, line, len)) != 0)
        return r;
    a->seq = seq;
    memcpy(a->mac, mac, AUDIT_MAC_LEN);
    a->staged = 1;
    return audit_flush(a);
}

int audit_line_ids(const char *line, size_t len, uint64_t *seq, uint64_t *gen)
{
    char buf[64];
    size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
    int used = 0;

    memcpy(buf, line, n);
    buf[n] = '\0';
    if (strncmp(buf, "seq=", 4) != 0 || buf[4] < '0' || buf[4] > '9')
        return -EBADMSG;
    if (sscanf(buf, "seq=%" SCNu64 " gen=%" SCNu64 " %n", seq, gen, &used) != 2 || used == 0)
        return -EBADMSG;
    return 0;
}

int audit_verify_file(const char *path, const unsigned char mac_key[AUDIT_MAC_LEN],
                      uint64_t head_seq, const unsigned char *head_mac,
                      struct audit_scan *sc, char *err, size_t errlen)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned char prev[AUDIT_MAC_LEN] = { 0 }, mac[AUDIT_MAC_LEN], want[AUDIT_MAC_LEN];
    uint64_t lineno = 0;
    int r = 0;

    memset(sc, 0, sizeof(*sc));
    f = fopen(path, "re");
    if (!f) {
        r = -errno;
        snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
        return r;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        uint64_t seq, gen;
        lineno++;
        if (line[len - 1] != '\n') {
            snprintf(err, errlen, "audit log %s: line %" PRIu64 ": incomplete record "
                     "(log truncated mid-record)", path, lineno);
            r = -EBADMSG;
            break;
        }
        if ((size_t)len < MAC_TAIL + 10 || (size_t)len > AUDIT_LINE_MAX ||
            audit_line_ids(line, (size_t)len, &seq, &gen) != 0 ||
            memcmp(line + len - MAC_TAIL, " mac=", 5) != 0 ||
            unhex_mac(line + len - 1 - 2 * AUDIT_MAC_LEN, want) != 0) {
            snprintf(err, errlen, "audit log %s: line %" PRIu64 ": malformed record", path,
                     lineno);
            r = -EBADMSG;
            break;
        }
        if (seq != sc->last_seq + 1) {
            snprintf(err, errlen, "audit log %s: line %" PRIu64 ": sequence %" PRIu64
                     " where %" PRIu64 " was expected (record deleted, reordered or "
                     "inserted)", path, lineno, seq, sc->last_seq + 1);
            r = -EBADMSG;
            break;
        }
        audit_line_mac(mac_key, prev, line, (size_t)len - MAC_TAIL, mac);
        if (sodium_memcmp(mac, want, AUDIT_MAC_LEN) != 0) {
            snprintf(err, errlen, "audit log %s: line %" PRIu64 " (seq %" PRIu64 "): MAC "
                     "mismatch (record edited, or the chain before it altered)", path, lineno,
                     seq);
            r = -EBADMSG;
            break;
        }
        memcpy(prev, mac, AUDIT_MAC_LEN);
        sc->records++;
        sc->last_seq = seq;
        if (gen > sc->max_gen)
            sc->max_gen = gen;
        if (head_seq && seq == head_seq) {
            sc->gen_at_head = gen;
            sc->head_found = head_mac && sodium_memcmp(mac, head_mac, AUDIT_MAC_LEN) == 0;
        } else if (head_seq && seq > head_seq) {
            if (sc->first_gen_after_head == 0 || gen < sc->first_gen_after_head)
                sc->first_gen_after_head = gen;
        }
    }
    if (r == 0 && ferror(f)) {
        r = -EIO;
        snprintf(err, errlen, "audit log %s: read error", path);
    }
    memcpy(sc->last_mac, prev, AUDIT_MAC_LEN);
    free(line);
    fclose(f);
    return r;
}
