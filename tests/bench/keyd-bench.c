/*
 * keyd-bench.c - round trips to a running tracevault-keyd through
 * libkeydclient: SOCKET PROJECT MODE THREADS SECONDS.
 * MODE: gen1 (GEN_DEK of 1), genN (GEN_DEK of KEYD_GEN_MAX), unwrap (one DEK
 * per request), unwrapN (64 DEKs per request).  Each thread has its own
 * client (connection).  Prints one line:
 *   MODE threads=T requests/s=R deks/s=D p50_us=.. p99_us=..
 */
#include "config.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyd/keyd_client.h"

#define UNWRAP_BATCH 64
#define MAX_SAMPLES 2000000

struct worker {
    pthread_t th;
    const char *sock, *project, *mode;
    double seconds;
    unsigned long requests, deks, errors;
    double *lat;
    size_t nlat;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct keyd_client *c = keyd_client_new(w->sock, 10000);
    unsigned char *deks = sodium_malloc((size_t)KEYD_GEN_MAX * KEYD_DEK_LEN);
    unsigned char *wr = malloc((size_t)KEYD_GEN_MAX * KEYD_WRAPPED_LEN);
    uint32_t v;
    int gen = !strncmp(w->mode, "gen", 3);
    unsigned n = !strcmp(w->mode, "genN") ? KEYD_GEN_MAX
                 : !strcmp(w->mode, "unwrapN") ? UNWRAP_BATCH : 1;

    w->lat = malloc(MAX_SAMPLES * sizeof(double));
    if (!c || !deks || !wr || !w->lat)
        return NULL;
    /* Material to unwrap. */
    if (!gen && keyd_gen_dek(c, w->project, UNWRAP_BATCH, &v, deks, wr, NULL) != 0) {
        fprintf(stderr, "keyd-bench: gen_dek: %s\n", keyd_client_error(c));
        w->errors++;
        return NULL;
    }
    double end = now_s() + w->seconds;
    while (1) {
        double t0 = now_s();
        if (t0 >= end)
            break;
        int r = gen ? keyd_gen_dek(c, w->project, n, &v, deks, wr, NULL)
                    : n == 1 ? keyd_unwrap(c, w->project, v, NULL, wr, deks)
                             : keyd_unwrap_many(c, w->project, v, n, NULL, wr, deks);
        double t1 = now_s();
        if (r != 0) {
            w->errors++;
            continue;
        }
        w->requests++;
        w->deks += n;
        if (w->nlat < MAX_SAMPLES)
            w->lat[w->nlat++] = t1 - t0;
    }
    sodium_free(deks);
    free(wr);
    keyd_client_free(c);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: keyd-bench SOCKET PROJECT gen1|genN|unwrap|unwrapN THREADS SECONDS\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    int nt = atoi(argv[4]);
    double secs = atof(argv[5]);
    struct worker *w = calloc((size_t)nt, sizeof(*w));
    for (int i = 0; i < nt; i++) {
        w[i] = (struct worker){ .sock = argv[1], .project = argv[2], .mode = argv[3],
                                .seconds = secs };
        pthread_create(&w[i].th, NULL, run, &w[i]);
    }
    unsigned long req = 0, deks = 0, errs = 0;
    size_t nl = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(w[i].th, NULL);
        req += w[i].requests;
        deks += w[i].deks;
        errs += w[i].errors;
        nl += w[i].nlat;
    }
    double *all = malloc((nl ? nl : 1) * sizeof(double));
    size_t k = 0;
    for (int i = 0; i < nt; i++) {
        memcpy(all + k, w[i].lat, w[i].nlat * sizeof(double));
        k += w[i].nlat;
        free(w[i].lat);
    }
    qsort(all, nl, sizeof(double), cmp);
    printf("%-8s threads=%d requests/s=%.0f deks/s=%.0f p50_us=%.0f p99_us=%.0f errors=%lu\n",
           argv[3], nt, req / secs, deks / secs, nl ? all[nl / 2] * 1e6 : 0,
           nl ? all[nl * 99 / 100] * 1e6 : 0, errs);
    free(all);
    free(w);
    return errs ? 1 : 0;
}
