/*
 * encode.c - parse + evaluate + encode on two threads (encode.h).
 *
 * One persistent worker, woken per group with a condition variable.  A group
 * is split in two halves by document count; small groups (one document) stay
 * on the calling thread.  Each thread writes into its own output buffer.
 */
#include "config.h"
#include "agent/encode.h"
#include "agent/evaluate.h"
#include "agent/jarena.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CALLER_SHARE_PCT 25            /* of a group's bytes, encoded by the caller */

struct tout {
    msgpack_sbuffer sb;
    struct enc_rec *r;
    size_t n, cap;
};

struct encoder {
    const struct parse_limits *lim;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, stop, have_job, job_done;
    int busy;                          /* a slice is out with the worker */
    struct enc_doc *docs;
    size_t lo, hi;                     /* the worker's slice */
    struct tout out[2];
};

static int add_rec(struct tout *o, const char *id, size_t off, size_t len)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 256;
        struct enc_rec *nr = realloc(o->r, nc * sizeof(*nr));
        if (!nr)
            return -ENOMEM;
        o->r = nr;
        o->cap = nc;
    }
    memcpy(o->r[o->n].id, id, RECORD_ID_HEX);
    o->r[o->n].off = off;
    o->r[o->n].len = len;
    o->n++;
    return 0;
}

static void encode_one(const struct parse_limits *lim, struct enc_doc *d, int tid, struct tout *o)
{
    struct parse_result pr;
    char id[RECORD_ID_HEX];
    size_t off;
    int r;

    jarena_begin();                    /* every jansson tree below lives in this call */
    d->tid = tid;
    d->first = o->n;
    d->count = 0;
    d->err = 0;
    memset(&d->drops, 0, sizeof(d->drops));
    if ((r = parse_document(d->buf, d->len, lim, &pr)) != 0) {
        d->err = r;
        jarena_end();
        return;
    }
    d->skip = pr.skip;
    if (pr.skip != SKIP_NONE) {
        off = o->sb.size;
        if ((r = record_encode_skipped(&d->ctx, pr.skip, &o->sb, id)) != 0 ||
            (r = add_rec(o, id, off, o->sb.size - off)) != 0)
            d->err = r;
        else
            d->count = 1;
    } else {
        for (size_t i = 0; i < pr.n; i++) {
            struct eval_result res;
            evaluator_run(d->ev[tid], &pr.ev[i], &res);
            off = o->sb.size;
            if ((r = record_encode_event(&d->ctx, (uint32_t)i, &pr.ev[i], &res, &o->sb, id,
                                         &d->drops)) != 0 ||
                (r = add_rec(o, id, off, o->sb.size - off)) != 0) {
                d->err = r;
                break;
            }
            d->count++;
        }
    }
    parse_result_release(&pr);
    jarena_end();
}

static void *worker(void *arg)
{
    struct encoder *e = arg;

    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->have_job && !e->stop)
            pthread_cond_wait(&e->cv, &e->mu);
        if (e->stop)
            break;
        size_t lo = e->lo, hi = e->hi;
        struct enc_doc *docs = e->docs;
        pthread_mutex_unlock(&e->mu);
        for (size_t i = lo; i < hi; i++)
            encode_one(e->lim, &docs[i], 1, &e->out[1]);
        pthread_mutex_lock(&e->mu);
        e->have_job = 0;
        e->job_done = 1;
        pthread_cond_broadcast(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int encoder_new(const struct parse_limits *lim, struct encoder **out)
{
    struct encoder *e = calloc(1, sizeof(*e));

    *out = NULL;
    if (!e)
        return -ENOMEM;
    e->lim = lim;
    msgpack_sbuffer_init(&e->out[0].sb);
    msgpack_sbuffer_init(&e->out[1].sb);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    /* jansson seeds its hash function lazily: do it before a second thread
     * can race for it. */
    json_object_seed(0);
    jarena_install();
    if (pthread_create(&e->th, NULL, worker, e) == 0)
        e->started = 1;              /* without a worker everything runs inline */
    *out = e;
    return 0;
}

void encoder_free(struct encoder *e)
{
    if (!e)
        return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = 1;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->th, NULL);
    }
    for (int t = 0; t < 2; t++) {
        msgpack_sbuffer_destroy(&e->out[t].sb);
        free(e->out[t].r);
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

size_t encoder_start(struct encoder *e, struct enc_doc *docs, size_t n)
{
    size_t mid = n;

    for (int t = 0; t < 2; t++) {
        e->out[t].sb.size = 0;
        e->out[t].n = 0;
    }
    if (e->started && n >= 2) {
        /* Split by bytes, not count (documents differ in size), and give
         * the worker the larger share: the caller queues its own share's
         * records while the worker is still encoding. */
        size_t total = 0, acc = 0;
        for (size_t i = 0; i < n; i++)
            total += docs[i].len;
        for (mid = 0; mid < n - 1 && acc + docs[mid].len <= total * CALLER_SHARE_PCT / 100; mid++)
            acc += docs[mid].len;
        if (mid == 0)
            mid = 1;
        pthread_mutex_lock(&e->mu);
        e->docs = docs;
        e->lo = mid;
        e->hi = n;
        e->job_done = 0;
        e->have_job = 1;
        e->busy = 1;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
    }
    for (size_t i = 0; i < mid; i++)
        encode_one(e->lim, &docs[i], 0, &e->out[0]);
    return mid;
}

void encoder_wait(struct encoder *e)
{
    if (!e->busy)
        return;
    pthread_mutex_lock(&e->mu);
    while (!e->job_done)
        pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    e->busy = 0;
}

int encoder_run(struct encoder *e, struct enc_doc *docs, size_t n)
{
    encoder_start(e, docs, n);
    encoder_wait(e);
    return 0;
}

const struct enc_rec *encoder_rec(const struct encoder *e, int tid, size_t i, const char **data)
{
    const struct enc_rec *r = &e->out[tid].r[i];
    *data = e->out[tid].sb.data + r->off;
    return r;
}
