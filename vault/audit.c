/*
 * audit.c - the vault's audit log (see audit.h): record bodies in JSON on a
 * lib/audit chain, and the per-uid aggregation of denials with a small
 * thread that writes the summaries of intervals that have ended.
 */
#include "config.h"
#include "vault/audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

const struct audit_format vault_audit_format = {
    "{\"seq\":", ",", ",\"mac\":\"", "\"}\n", "\"prev\":\""
};

#define DENY_SLOTS 256              /* distinct uids tracked per interval */

/* One uid's denials in the current interval. */
struct deny {
    int used;
    uid_t uid;
    uint64_t start_ms;              /* when its full record was written */
    uint64_t start_wall_ns;
    uint64_t counted;               /* denials since then, not yet written */
    pid_t pid;                      /* of the last one */
    char project[72];
    char op[24];
};

/* The log; FUSE threads, the keyd event thread and the denial thread use it
 * under the read lock, close swaps it out under the write lock (threads the
 * vault does not join may still call audit_log at unmount). */
static struct audit *the_log;
static pthread_rwlock_t log_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t deny_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t deny_cv = PTHREAD_COND_INITIALIZER;
static struct deny denies[DENY_SLOTS + 1];   /* the last: every uid beyond DENY_SLOTS */
static uint64_t deny_interval_ms;
static pthread_t deny_thread;
static int deny_thread_started, deny_stop;

const char *audit_errname(int err, char buf[16])
{
    static const struct { int e; const char *n; } t[] = {
        { EACCES, "EACCES" }, { EPERM, "EPERM" }, { EIO, "EIO" }, { ENOENT, "ENOENT" },
        { EEXIST, "EEXIST" }, { EXDEV, "EXDEV" }, { ENOSPC, "ENOSPC" }, { EBADMSG, "EBADMSG" },
        { ENOTEMPTY, "ENOTEMPTY" }, { EINVAL, "EINVAL" }, { ENOTCONN, "ENOTCONN" },
        { EKEYREVOKED, "EKEYREVOKED" }, { ENAMETOOLONG, "ENAMETOOLONG" }, { EISDIR, "EISDIR" },
        { EFBIG, "EFBIG" }, { EDQUOT, "EDQUOT" }, { EINTR, "EINTR" }, { EROFS, "EROFS" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].e == err)
            return t[i].n;
    snprintf(buf, 16, "E%d", err);
    return buf;
}

/* Project names are validated ([A-Za-z0-9._-]) and details are literals, so
 * no JSON escaping is needed; anything else is replaced defensively. */
static void put_safe(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < cap; i++) {
        char c = s[i];
        dst[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
    }
    dst[i] = '\0';
}

/* The body of a record (between "seq" and "mac"), the fields shared by
 * every kind first, then EXTRA (already JSON, may be empty). */
static int body(char *buf, size_t cap, uint64_t wall_ns, uid_t uid, pid_t pid,
                const char *project, const char *op, const char *result, const char *extra)
{
    char ts[32], proj[72], o[40];
    tv_rfc3339(wall_ns, ts);
    put_safe(proj, sizeof proj, project ? project : "");
    put_safe(o, sizeof o, op ? op : "?");
    int n = snprintf(buf, cap,
                     "\"time\":\"%s\",\"uid\":%u,\"pid\":%d,\"project\":\"%s\",\"op\":\"%s\","
                     "\"result\":\"%s\"%s",
                     ts, (unsigned)uid, (int)pid, proj, o, result, extra);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* The first record of a rotated file: names the head it continues. */
static int cont_body(char *buf, size_t cap, const char *prev_hex, void *arg)
{
    char extra[AUDIT_HEX_LEN + 16];
    (void)arg;
    snprintf(extra, sizeof extra, ",\"prev\":\"%s\"", prev_hex);
    return body(buf, cap, tv_wall_ns(), getuid(), getpid(), NULL, "log-continues", "ok", extra);
}

/* Write B (log_lock held); say so once when records start failing and once
 * when they work again (a full disk must not also flood the daemon's log). */
static int commit(const char *b)
{
    static int failing;
    int r = audit_commit(the_log, b);
    if ((r != 0) != __atomic_exchange_n(&failing, r != 0, __ATOMIC_RELAXED)) {
        if (r != 0)
            log_error("vault: audit log: cannot write records: audited operations fail with "
                      "EIO until it can");
        else
            log_info("vault: audit log: records are written again");
    }
    return r == 0 ? 0 : -EIO;
}

/* --- denials -------------------------------------------------------------- */

/* A summary of D's counted denials, to be written; D is reset. */
struct summary {
    uid_t uid;
    pid_t pid;
    uint64_t count, start_wall_ns;
    char project[72], op[24];
};

static int take_summary(struct deny *d, struct summary *s)
{
    if (!d->used || d->counted == 0)
        return 0;
    *s = (struct summary){ d->uid, d->pid, d->counted, d->start_wall_ns, "", "" };
    memcpy(s->project, d->project, sizeof s->project);
    memcpy(s->op, d->op, sizeof s->op);
    d->counted = 0;
    return 1;
}

/* Write S (log_lock held). */
static void write_summary(const struct summary *s)
{
    char b[AUDIT_LINE_MAX], extra[128], since[32];
    tv_rfc3339(s->start_wall_ns, since);
    snprintf(extra, sizeof extra, ",\"count\":%llu,\"since\":\"%s\",\"last_op\":\"%s\"",
             (unsigned long long)s->count, since, s->op);
    if (body(b, sizeof b, tv_wall_ns(), s->uid, s->pid, s->project, "denied-summary", "denied",
             extra) < 0 || audit_commit(the_log, b) != 0)
        log_error("vault: audit log: cannot record %llu denials of uid %u",
                  (unsigned long long)s->count, (unsigned)s->uid);
}

/* The slot for UID (deny_mu held): its own, a free or finished one, or the
 * shared overflow slot. */
static struct deny *deny_slot(uid_t uid, uint64_t now)
{
    struct deny *spare = NULL;
    for (int i = 0; i < DENY_SLOTS; i++) {
        struct deny *d = &denies[i];
        if (d->used && d->uid == uid)
            return d;
        if (!spare && (!d->used || (d->counted == 0 && now - d->start_ms >= deny_interval_ms)))
            spare = d;
    }
    if (spare) {
        memset(spare, 0, sizeof(*spare));
        return spare;
    }
    return &denies[DENY_SLOTS];
}

/* Writes the summaries of intervals that have ended. */
static void *deny_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&deny_mu);
    while (!deny_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t step = deny_interval_ms / 4 + 1;
        ts.tv_sec += (time_t)(step / 1000);
        ts.tv_nsec += (long)(step % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&deny_cv, &deny_mu, &ts);
        uint64_t now = tv_now_ms();
        for (int i = 0; i <= DENY_SLOTS; i++) {
            struct summary s;
            if (now - denies[i].start_ms >= deny_interval_ms && take_summary(&denies[i], &s)) {
                pthread_mutex_unlock(&deny_mu);
                pthread_rwlock_rdlock(&log_lock);
                if (the_log)
                    write_summary(&s);
                pthread_rwlock_unlock(&log_lock);
                pthread_mutex_lock(&deny_mu);
            }
        }
    }
    pthread_mutex_unlock(&deny_mu);
    return NULL;
}

/* Count a denial into its uid's interval (returns 1), or open a new
 * interval (returns 0: the caller writes the denial in full, after the
 * summary of the interval before, if any, which goes into *S, *HAVE). */
static int deny_count(uid_t uid, pid_t pid, const char *project, const char *op,
                      struct summary *s, int *have)
{
    uint64_t now = tv_now_ms();
    int counted = 0;

    pthread_mutex_lock(&deny_mu);
    /* Started here, after the vault daemonized: threads do not survive fork. */
    if (!deny_thread_started && pthread_create(&deny_thread, NULL, deny_main, NULL) == 0)
        deny_thread_started = 1;
    struct deny *d = deny_slot(uid, now);
    if (d->used && now - d->start_ms < deny_interval_ms) {
        d->counted++;
        d->pid = pid;
        put_safe(d->project, sizeof d->project, project);
        put_safe(d->op, sizeof d->op, op);
        counted = 1;
    } else {
        *have = take_summary(d, s);
        d->used = 1;
        d->uid = d == &denies[DENY_SLOTS] ? (uid_t)-1 : uid;
        d->start_ms = now;
        d->start_wall_ns = tv_wall_ns();
        d->counted = 0;
    }
    pthread_mutex_unlock(&deny_mu);
    return counted;
}

/* --- the log ------------------------------------------------------------- */

int vault_audit_open(const char *path, const unsigned char *key, int denied_interval,
                     char *err, size_t errlen)
{
    struct audit_opts o = { .fmt = &vault_audit_format, .cont = cont_body };
    int r;
    if (!path || !*path)
        return 0;
    deny_interval_ms = (uint64_t)(denied_interval > 0 ? denied_interval : 0) * 1000;
    pthread_rwlock_wrlock(&log_lock);
    r = audit_open(path, key, &o, NULL, &the_log, err, errlen);
    pthread_rwlock_unlock(&log_lock);
    return r;
}

/* Write every pending summary and end every interval, so the next denial
 * of each uid is recorded in full (at close, and before a rotation: each
 * file then accounts for its own denials).  log_lock held. */
static void deny_flush_all(void)
{
    for (int i = 0; i <= DENY_SLOTS; i++) {
        struct summary s;
        pthread_mutex_lock(&deny_mu);
        int have = take_summary(&denies[i], &s);
        denies[i].used = 0;
        pthread_mutex_unlock(&deny_mu);
        if (have)
            write_summary(&s);
    }
}

void vault_audit_close(void)
{
    if (deny_thread_started) {
        pthread_mutex_lock(&deny_mu);
        deny_stop = 1;
        pthread_cond_signal(&deny_cv);
        pthread_mutex_unlock(&deny_mu);
        pthread_join(deny_thread, NULL);
        deny_thread_started = deny_stop = 0;
    }
    pthread_rwlock_rdlock(&log_lock);
    if (the_log)
        deny_flush_all();
    pthread_rwlock_unlock(&log_lock);
    pthread_rwlock_wrlock(&log_lock);
    audit_close(the_log);
    the_log = NULL;
    pthread_rwlock_unlock(&log_lock);
}

int audit_reopen(const char *path)
{
    char err[512];
    int r = 0;
    if (!path || !*path)
        return 0;
    pthread_rwlock_rdlock(&log_lock);
    if (the_log) {
        deny_flush_all();
        if ((r = audit_rotate(the_log, path, err, sizeof err)) != 0) {
            log_error("vault: %s", err);
            errno = -r;
        }
    }
    pthread_rwlock_unlock(&log_lock);
    return r;
}

int audit_log(uid_t uid, pid_t pid, const char *project, const char *op, int result,
              const char *file_id_hex, const char *detail)
{
    char b[AUDIT_LINE_MAX], extra[160], fid[40], det[40], eb[16];
    const char *res = result == 0 ? "ok" : audit_errname(-result, eb);
    int r = 0;

    pthread_rwlock_rdlock(&log_lock);
    if (!the_log)
        goto out;
    if (detail && strcmp(detail, "denied") == 0 && deny_interval_ms) {
        struct summary s;
        int have = 0;
        if (deny_count(uid, pid, project, op, &s, &have))
            goto out;
        if (have)
            write_summary(&s);
    }
    put_safe(fid, sizeof fid, file_id_hex);
    put_safe(det, sizeof det, detail);
    snprintf(extra, sizeof extra, "%s%s%s%s%s%s", fid[0] ? ",\"file_id\":\"" : "", fid,
             fid[0] ? "\"" : "", det[0] ? ",\"detail\":\"" : "", det, det[0] ? "\"" : "");
    r = body(b, sizeof b, tv_wall_ns(), uid, pid, project, op, res, extra) < 0 ? -EIO
                                                                                : commit(b);
out:
    pthread_rwlock_unlock(&log_lock);
    return r;
}

int vault_audit_verify(const char *const *paths, size_t n, const unsigned char *key,
                       struct audit_scan *sc, char *err, size_t errlen)
{
    return audit_verify(paths, n, key, &vault_audit_format, 0, sc, err, errlen);
}
