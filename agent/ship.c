/*
 * ship.c - batching, retries and the delivery thread (ship.h).
 *
 * The main loop owns the queue (sqlite) and the keys; the delivery thread
 * only talks to the upstream.  One flight at a time: the main loop reads the
 * oldest records of a due project (up to FLIGHT_BATCHES batches), fetches the
 * project's credentials and hands them over; the thread sends the batches in
 * order and stops at the first that is not acknowledged; the main loop then
 * settles what was delivered (deleted), rejected (dead-lettered) or not (the
 * rest stays queued, backoff), and starts the next flight.  Records leave the
 * queue only after the upstream acknowledged them, as before; what changed is
 * that the main loop reads and encodes the next documents meanwhile.
 */
#include "config.h"
#include "agent/ship.h"
#include "agent/metrics.h"
#include "agent/queue.h"
#include "agent/upstream.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 60000
#define FLIGHT_BATCHES 8            /* batches handed to the thread at once, */
#define FLIGHT_BYTES (8u << 20)     /* and at most this many bytes of them (or one batch) */

struct pstate {
    char project[64];
    unsigned attempt;
    uint64_t next_try;           /* monotonic ms */
};

/* What the delivery thread works on: owned by the main loop while state is
 * F_IDLE or F_DONE, by the thread while F_SENDING. */
enum { F_IDLE, F_SENDING, F_DONE };

struct flight {
    _Atomic int state;
    int void_;                   /* the project was shredded meanwhile: settle nothing */
    struct qbatch b;             /* the records of every batch, in order */
    size_t nsub;
    size_t end[FLIGHT_BATCHES];  /* batch j is records [end[j-1], end[j]) */
    char bid[FLIGHT_BATCHES][33];
    struct up_cred cred;
    /* out */
    size_t n_ok;                 /* batches acknowledged, in order */
    struct up_outcome o;         /* of batch n_ok when n_ok < nsub */
};

struct shipper {
    const struct tv_config *cfg;
    struct queue *q;
    struct upstream *u;
    struct metrics *m;
    struct pstate *ps;
    size_t n_ps;
    uint64_t dead;
    size_t rr;                   /* round robin over projects */
    struct flight f;
    pthread_t th;
    int started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake[2];                 /* the thread writes a byte when a flight lands */
};

static void *deliver_main(void *arg);

int shipper_new(const struct tv_config *cfg, struct queue *q, struct upstream *u,
                struct metrics *m, struct shipper **out)
{
    struct shipper *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->cfg = cfg;
    s->q = q;
    s->u = u;
    s->m = m;
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pthread_create(&s->th, NULL, deliver_main, s) != 0) {
        int e = errno ? -errno : -ENOMEM;
        shipper_free(s);
        return e;
    }
    s->started = 1;
    *out = s;
    return 0;
}

void shipper_free(struct shipper *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);  /* a flight in the air lands first */
    }
    /* An unsettled flight: its records stay queued and go again at the next
     * start, under the same batch ids (the upstream deduplicates). */
    qbatch_release(&s->f.b);
    upstream_cred_free(&s->f.cred);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->ps);
    free(s);
}

uint64_t shipper_dead(const struct shipper *s)
{
    return s->dead;
}

int shipper_fd(const struct shipper *s)
{
    return s->wake[0];
}

int shipper_busy(const struct shipper *s)
{
    return atomic_load(&s->f.state) != F_IDLE;
}

uint64_t ship_backoff_ms(unsigned attempt, long retry_after_ms, uint64_t base_ms, uint64_t cap_ms)
{
    uint64_t ceiling = base_ms, d;

    for (unsigned i = 0; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    d = (uint64_t)randombytes_uniform((uint32_t)ceiling + 1);
    if (retry_after_ms >= 0 && d < (uint64_t)retry_after_ms)
        d = (uint64_t)retry_after_ms;
    return d;
}

static struct pstate *pstate(struct shipper *s, const char *project)
{
    for (size_t i = 0; i < s->n_ps; i++)
        if (!strcmp(s->ps[i].project, project))
            return &s->ps[i];
    struct pstate *np = realloc(s->ps, (s->n_ps + 1) * sizeof(*np));
    if (!np)
        return NULL;
    s->ps = np;
    memset(&np[s->n_ps], 0, sizeof(*np));
    snprintf(np[s->n_ps].project, sizeof(np[s->n_ps].project), "%s", project);
    return &np[s->n_ps++];
}

/* Records [A, B) of F's batch as a batch of their own (views, no copies). */
static struct qbatch view(const struct qbatch *f, size_t a, size_t b)
{
    struct qbatch v = *f;
    v.n = b - a;
    v.record_id = f->record_id + a;
    v.off = f->off + a;
    v.len = f->len + a;
    v.rseq = f->rseq + a;
    v.rend = f->rend + a;
    v.buf_len = v.n ? f->off[b - 1] + f->len[b - 1] - f->off[a] : 0;
    return v;
}

static void batch_id(const struct qbatch *b, char out[33])
{
    crypto_generichash_state st;
    unsigned char h[16];

    crypto_generichash_init(&st, (const unsigned char *)"tv-batch-v1", 11, sizeof(h));
    for (size_t i = 0; i < b->n; i++)
        crypto_generichash_update(&st, (const unsigned char *)b->record_id[i], 32);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, 33, h, sizeof(h));
}

/* ---- the delivery thread ------------------------------------------------- */

static void *deliver_main(void *arg)
{
    struct shipper *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->f.state != F_SENDING)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->f.state != F_SENDING)
            break;                     /* stopping, nothing in the air */
        pthread_mutex_unlock(&s->mu);
        struct flight *f = &s->f;
        f->n_ok = 0;
        for (size_t j = 0; j < f->nsub; j++) {
            struct qbatch v = view(&f->b, j ? f->end[j - 1] : 0, f->end[j]);
            upstream_send(s->u, &v, f->bid[j], &f->cred, &f->o);
            if (f->o.result != UP_OK)
                break;
            f->n_ok++;
        }
        pthread_mutex_lock(&s->mu);
        f->state = F_DONE;
        /* wake the main loop (a full pipe already will) */
        ssize_t w = write(s->wake[1], "", 1);
        (void)w;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the main loop's side -------------------------------------------------- */

static void drain_wake(struct shipper *s)
{
    char buf[64];
    while (read(s->wake[0], buf, sizeof(buf)) > 0)
        ;
}

/* The flight has landed: settle it.  Returns the batches settled or a
 * negative errno (state database). */
static int settle(struct shipper *s)
{
    struct flight *f = &s->f;
    struct pstate *ps = pstate(s, f->b.project);
    size_t n_ok_rec = f->n_ok ? f->end[f->n_ok - 1] : 0, n_dead = 0;
    int r = 0, settled = (int)f->n_ok;
    const char *name = f->b.project;

    if (!ps)
        return -ENOMEM;
    if (f->void_)
        goto out;                      /* shredded: its rows are gone already */
    if (f->n_ok < f->nsub && f->o.result == UP_REJECT) {
        n_dead = f->end[f->n_ok] - n_ok_rec;
        log_error("project \"%s\": batch %s of %zu records rejected permanently (%s): "
                  "moved to the dead-letter table", name, f->bid[f->n_ok], n_dead, f->o.reason);
    }
    if ((r = queue_settle(s->q, &f->b, n_ok_rec, n_dead, f->o.status, f->o.reason)) != 0)
        goto out;
    s->m->records_shipped += n_ok_rec;
    s->m->batches_shipped += f->n_ok;
    if (n_dead > 0) {
        s->m->records_dead_lettered += n_dead;
        s->dead += n_dead;
        settled++;
        ps->attempt = 0;
    }
    if (f->n_ok == f->nsub || n_dead > 0) {
        if (ps->attempt > 0)
            log_info("project \"%s\": upstream accepts again after %u failed attempts", name,
                     ps->attempt);
        ps->attempt = 0;
        ps->next_try = 0;
    } else {
        ps->attempt++;
        uint64_t d = ship_backoff_ms(ps->attempt, f->o.retry_after_ms, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
        /* Counted from the answer, not from the start of the request:
         * Retry-After means "this long after my response". */
        ps->next_try = tv_now_ms() + d;
        s->m->retries++;
        log_warn("project \"%s\": batch %s of %zu records not delivered (%s): "
                 "attempt %u, retrying in %llu ms", name, f->bid[f->n_ok],
                 f->end[f->n_ok] - n_ok_rec, f->o.reason, ps->attempt, (unsigned long long)d);
    }
out:
    qbatch_release(&f->b);
    upstream_cred_free(&f->cred);
    f->void_ = 0;
    f->state = F_IDLE;
    return r < 0 ? r : settled;
}

/* When project PR is due (monotonic ms; NOW if it is). */
static uint64_t due_at(struct shipper *s, const struct qproject *pr, int force, uint64_t now,
                       uint64_t wall)
{
    struct pstate *ps = pstate(s, pr->name);
    uint64_t due = now;

    if (!force && pr->count < (uint64_t)s->cfg->agent.batch_max_records &&
        pr->bytes < (uint64_t)s->cfg->agent.batch_max_bytes) {
        uint64_t age = wall > pr->oldest_ms ? wall - pr->oldest_ms : 0;
        if (age < (uint64_t)s->cfg->agent.batch_linger_ms)
            due = now + ((uint64_t)s->cfg->agent.batch_linger_ms - age);
    }
    if (ps && ps->next_try > due)
        due = ps->next_try;
    return due;
}

/* Read the oldest records of PR (up to FLIGHT_BATCHES batches) and send
 * them off.  Returns 1 if a flight left, 0 if there was nothing, or a
 * negative errno. */
static int launch(struct shipper *s, const struct qproject *pr, int force)
{
    struct flight *f = &s->f;
    size_t max_n = (size_t)s->cfg->agent.batch_max_records;
    size_t max_b = (size_t)s->cfg->agent.batch_max_bytes;
    char name[64];
    int r;

    snprintf(name, sizeof(name), "%s", pr->name);
    /* A flight's memory: FLIGHT_BYTES, or one batch when batches are larger. */
    size_t flight_b = max_b >= FLIGHT_BYTES ? max_b : FLIGHT_BYTES;
    if ((r = queue_peek(s->q, name, max_n * FLIGHT_BATCHES, flight_b, &f->b)) != 0)
        return r;
    if (f->b.n == 0) {
        qbatch_release(&f->b);
        return 0;
    }
    /* Cut into batches by the limits, as a peek of one batch would. */
    f->nsub = 0;
    for (size_t i = 0; i < f->b.n && f->nsub < FLIGHT_BATCHES;) {
        size_t a = i, bytes = 0;
        while (i < f->b.n && i - a < max_n && (i == a || bytes + f->b.len[i] <= max_b))
            bytes += f->b.len[i++];
        int whole = i - a == max_n || (i < f->b.n && bytes + f->b.len[i] > max_b);
        if (f->nsub > 0 && !whole && !force)
            break;                     /* a partial tail waits for its own turn (linger) */
        f->end[f->nsub] = i;
        f->nsub++;
    }
    for (size_t j = 0; j < f->nsub; j++) {
        struct qbatch v = view(&f->b, j ? f->end[j - 1] : 0, f->end[j]);
        batch_id(&v, f->bid[j]);
    }
    upstream_cred(s->u, name, &f->cred);
    pthread_mutex_lock(&s->mu);
    f->state = F_SENDING;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 1;
}

void shipper_forget(struct shipper *s, const char *project)
{
    if (s->f.state != F_IDLE && !strcmp(s->f.b.project, project))
        s->f.void_ = 1;
}

int shipper_run(struct shipper *s, int force, uint64_t *next_ms)
{
    const struct qproject *pr;
    uint64_t now = tv_now_ms(), wall = tv_wall_ns() / 1000000ull, oldest = 0;
    int sent = 0, r, state;

    *next_ms = 0;
    drain_wake(s);
    state = atomic_load(&s->f.state);
    if (state == F_DONE) {
        if ((r = settle(s)) < 0)
            return r;
        sent += r;
        state = F_IDLE;
    }
    size_t np = queue_projects(s->q, &pr);
    if (state == F_IDLE && np > 0) {
        /* The next due project after the last one served. */
        for (size_t k = 0; k < np; k++) {
            size_t i = (s->rr + k) % np;
            if (pr[i].count == 0)
                continue;
            uint64_t due = due_at(s, &pr[i], force, now, wall);
            if (due > now) {
                if (*next_ms == 0 || due < *next_ms)
                    *next_ms = due;
                continue;
            }
            if ((r = launch(s, &pr[i], force)) < 0)
                return r;
            if (r == 1) {
                s->rr = i + 1;
                break;
            }
        }
    }
    /* Refresh gauges. */
    for (size_t i = 0; i < np; i++)
        if (pr[i].count && (oldest == 0 || pr[i].oldest_ms < oldest))
            oldest = pr[i].oldest_ms;
    s->m->queue_depth = queue_depth(s->q);
    s->m->queue_bytes = queue_bytes(s->q);
    s->m->lag_seconds = oldest && wall > oldest ? (double)(wall - oldest) / 1000.0 : 0;
    return sent;
}

int shipper_finish(struct shipper *s)
{
    if (atomic_load(&s->f.state) == F_IDLE)
        return 0;
    while (atomic_load(&s->f.state) == F_SENDING)
        shipper_wait(s, 1000);
    drain_wake(s);
    int r = settle(s);
    return r < 0 ? r : 0;
}

int shipper_wait(struct shipper *s, int timeout_ms)
{
    struct pollfd p = { .fd = s->wake[0], .events = POLLIN };
    if (atomic_load(&s->f.state) != F_SENDING)
        return 1;
    return poll(&p, 1, timeout_ms) > 0;
}
