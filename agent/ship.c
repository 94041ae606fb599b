/*
 * ship.c - batching and retries (ship.h).
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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 60000
#define BATCHES_PER_RUN 16          /* per project, when a backlog is due */

struct pstate {
    char project[64];
    unsigned attempt;
    uint64_t next_try;           /* monotonic ms */
};

struct shipper {
    const struct tv_config *cfg;
    struct queue *q;
    struct upstream *u;
    struct metrics *m;
    struct pstate *ps;
    size_t n_ps;
    uint64_t dead;
};

int shipper_new(const struct tv_config *cfg, struct queue *q, struct upstream *u,
                struct metrics *m, struct shipper **out)
{
    struct shipper *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = cfg;
    s->q = q;
    s->u = u;
    s->m = m;
    *out = s;
    return 0;
}

void shipper_free(struct shipper *s)
{
    if (!s)
        return;
    free(s->ps);
    free(s);
}

uint64_t shipper_dead(const struct shipper *s)
{
    return s->dead;
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

/* Send one batch of project PR if it is due.  Returns 1 if a batch was
 * settled (acknowledged or dead-lettered), 0 if none was due or it failed
 * (backoff set, *NEXT_MS updated), or a negative errno. */
static int ship_one(struct shipper *s, const struct qproject *pr, int force, uint64_t now,
                    uint64_t wall, uint64_t *next_ms)
{
    struct qbatch b;
    struct up_outcome o;
    char name[64], bid[33];
    uint64_t due = now;
    int r;

    if (pr->count == 0)
        return 0;
    snprintf(name, sizeof(name), "%s", pr->name);
    struct pstate *ps = pstate(s, name);
    if (!ps)
        return -ENOMEM;
    if (!force && pr->count < (uint64_t)s->cfg->agent.batch_max_records &&
        pr->bytes < (uint64_t)s->cfg->agent.batch_max_bytes) {
        uint64_t age = wall > pr->oldest_ms ? wall - pr->oldest_ms : 0;
        if (age < (uint64_t)s->cfg->agent.batch_linger_ms)
            due = now + ((uint64_t)s->cfg->agent.batch_linger_ms - age);
    }
    if (ps->next_try > due)
        due = ps->next_try;
    if (due > now) {
        if (*next_ms == 0 || due < *next_ms)
            *next_ms = due;
        return 0;
    }
    if ((r = queue_peek(s->q, name, (size_t)s->cfg->agent.batch_max_records,
                        (size_t)s->cfg->agent.batch_max_bytes, &b)) != 0)
        return r;
    if (b.n == 0) {
        qbatch_release(&b);
        return 0;
    }
    batch_id(&b, bid);
    upstream_send(s->u, &b, bid, &o);
    if (o.result == UP_OK) {
        if ((r = queue_ack(s->q, &b)) == 0) {
            if (ps->attempt > 0)
                log_info("project \"%s\": upstream accepts again after %u failed attempts",
                         name, ps->attempt);
            ps->attempt = 0;
            ps->next_try = 0;
            s->m->records_shipped += b.n;
            s->m->batches_shipped++;
            r = 1;
        }
    } else if (o.result == UP_REJECT) {
        log_error("project \"%s\": batch %s of %zu records rejected permanently (%s): "
                  "moved to the dead-letter table", name, bid, b.n, o.reason);
        if ((r = queue_dead(s->q, &b, o.status, o.reason)) == 0) {
            s->m->records_dead_lettered += b.n;
            s->dead += b.n;
            ps->attempt = 0;
            r = 1;
        }
    } else {
        ps->attempt++;
        uint64_t d = ship_backoff_ms(ps->attempt, o.retry_after_ms, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
        /* Counted from the answer, not from the start of the request:
         * Retry-After means "this long after my response". */
        ps->next_try = tv_now_ms() + d;
        s->m->retries++;
        log_warn("project \"%s\": batch %s of %zu records not delivered (%s): "
                 "attempt %u, retrying in %llu ms", name, bid, b.n, o.reason, ps->attempt,
                 (unsigned long long)d);
        if (*next_ms == 0 || ps->next_try < *next_ms)
            *next_ms = ps->next_try;
        r = 0;
    }
    qbatch_release(&b);
    return r;
}

int shipper_run(struct shipper *s, int force, uint64_t *next_ms)
{
    const struct qproject *pr;
    size_t np = queue_projects(s->q, &pr);
    uint64_t now = tv_now_ms(), wall = tv_wall_ns() / 1000000ull, oldest = 0;
    int sent = 0, r;

    *next_ms = 0;
    for (size_t i = 0; i < np; i++) {
        /* A backlog goes out in several batches per turn; a project that
         * only lingers or backs off sends nothing. */
        for (int k = 0; k < BATCHES_PER_RUN; k++) {
            if ((r = ship_one(s, &pr[i], force, now, wall, next_ms)) < 0)
                return r;
            if (r == 0)
                break;
            sent++;
            now = tv_now_ms();
        }
    }
    /* Refresh gauges. */
    for (size_t i = 0; i < np; i++)
        if (pr[i].count && (oldest == 0 || pr[i].oldest_ms < oldest))
            oldest = pr[i].oldest_ms;
    s->m->queue_depth = queue_depth(s->q);
    s->m->queue_bytes = queue_bytes(s->q);
    s->m->lag_seconds = oldest && wall > oldest ? (double)(wall - oldest) / 1000.0 : 0;
    if (sent > 0 && *next_ms == 0 && queue_depth(s->q) > 0)
        *next_ms = now;
    return sent;
}
