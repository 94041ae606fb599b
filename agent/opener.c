/*
 * opener.c - parallel opens (opener.h).
 *
 * A run is a parallel for: the caller publishes the job (paths, fds, n) and
 * a generation number, every thread takes indices from one atomic counter,
 * and the last one to finish wakes the caller.  The threads sleep on a
 * condition variable between runs.
 */
#include "config.h"
#include "agent/opener.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

struct opener {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    pthread_t *th;
    unsigned n_th, started;
    int stop;
    uint64_t gen;                  /* run number: a thread works once per run */
    unsigned busy;                 /* helpers still inside the current run */
    const char *const *paths;
    int *fds;
    size_t n;
    atomic_size_t next;
};

static void work(struct opener *o)
{
    size_t i;
    while ((i = atomic_fetch_add(&o->next, 1)) < o->n) {
        int fd = open(o->paths[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        o->fds[i] = fd >= 0 ? fd : -errno;
    }
}

static void *helper(void *arg)
{
    struct opener *o = arg;
    uint64_t seen = 0;

    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->stop && o->gen == seen)
            pthread_cond_wait(&o->go, &o->mu);
        if (o->stop)
            break;
        seen = o->gen;
        pthread_mutex_unlock(&o->mu);
        work(o);
        pthread_mutex_lock(&o->mu);
        if (--o->busy == 0)
            pthread_cond_signal(&o->done);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

int opener_new(unsigned nthreads, struct opener **out)
{
    struct opener *o = calloc(1, sizeof(*o));
    *out = NULL;
    if (!o)
        return -ENOMEM;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->go, NULL);
    pthread_cond_init(&o->done, NULL);
    if (nthreads && !(o->th = calloc(nthreads, sizeof(*o->th)))) {
        opener_free(o);
        return -ENOMEM;
    }
    for (o->n_th = nthreads; o->started < nthreads; o->started++)
        if (pthread_create(&o->th[o->started], NULL, helper, o) != 0)
            break;                 /* fewer helpers: still correct */
    *out = o;
    return 0;
}

void opener_free(struct opener *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_broadcast(&o->go);
    pthread_mutex_unlock(&o->mu);
    for (unsigned i = 0; i < o->started; i++)
        pthread_join(o->th[i], NULL);
    pthread_cond_destroy(&o->go);
    pthread_cond_destroy(&o->done);
    pthread_mutex_destroy(&o->mu);
    free(o->th);
    free(o);
}

void opener_run(struct opener *o, const char *const *paths, int *fds, size_t n)
{
    pthread_mutex_lock(&o->mu);
    o->paths = paths;
    o->fds = fds;
    o->n = n;
    atomic_store(&o->next, 0);
    o->busy = o->started;
    o->gen++;
    pthread_cond_broadcast(&o->go);
    pthread_mutex_unlock(&o->mu);
    work(o);
    pthread_mutex_lock(&o->mu);
    while (o->busy > 0)
        pthread_cond_wait(&o->done, &o->mu);
    pthread_mutex_unlock(&o->mu);
}
