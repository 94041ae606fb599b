/*
 * keys.c - keyd client, DEK pool and event subscription (see keys.h).
 *
 * Layout: a small table of per-project pools (created on first use, never
 * removed; a project count is small), each with its own mutex so one
 * project's refill does not stall another's creates; one keyd_client per
 * purpose (pool refills, unwraps) because a client serialises its callers;
 * unwraps (one per first open of a file) spread over UNWRAP_CLIENTS
 * connections so parallel opens do not queue behind one another.
 */
#include "config.h"
#include "vault/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "keyd/keyd_client.h"
#include "lib/log.h"

#define POOL_BATCH 1024u       /* = KEYD_GEN_MAX: one keyd round trip per 1024 creates */
#define MAX_POOLS 256
#define UNWRAP_CLIENTS 4

struct pool {
    char project[64];
    pthread_mutex_t lock;
    unsigned n;                 /* DEKs left: entries [0, n) */
    uint32_t version;
    unsigned char *deks;        /* sodium_malloc: POOL_BATCH * 32 */
    unsigned char wrapped[POOL_BATCH * BC_WRAPPED];
    unsigned char file_ids[POOL_BATCH * BC_FILE_ID];   /* what each DEK is wrapped for */
};

/* DEKs unwrapped ahead of the opens that will ask for them (fsck's walk):
 * keys_prefetch fills it in one keyd round trip, keys_unwrap takes an entry
 * (and wipes it) when project, version, file ID and wrapped key all match.
 * An entry nobody asks for is wiped by the next prefetch or keys_free. */
struct prefetch {
    pthread_mutex_t lock;
    char project[64];
    uint32_t version;
    unsigned n, left;           /* entries, entries not yet taken */
    unsigned char *deks;        /* sodium_malloc: KEYD_GEN_MAX * 32 */
    unsigned char taken[KEYD_GEN_MAX];
    unsigned char file_ids[KEYD_GEN_MAX * BC_FILE_ID];
    unsigned char wrapped[KEYD_GEN_MAX * BC_WRAPPED];
};

struct keys {
    char *socket;
    struct prefetch *pre;       /* NULL until the first keys_prefetch */
    struct keyd_client *gen, *unwrap[UNWRAP_CLIENTS];
    atomic_uint next_unwrap;
    pthread_mutex_t tlock;      /* protects pools[] growth */
    struct pool *pools[MAX_POOLS];
    int npools;
    pthread_mutex_t nlock;      /* protects down and err */
    int down;                   /* last call failed to reach keyd: log recovery */
    char err[256];
    keys_event_fn fn;
    void *fnarg;
    pthread_t ev_thread;
    int ev_started;
    int ev_wake[2];             /* keys_free writes one byte: the subscriber stops */
    volatile int stopping;
};

struct keys *keys_new(const char *socket, int timeout_ms)
{
    struct keys *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->socket = strdup(socket);
    k->gen = keyd_client_new(socket, timeout_ms);
    for (int i = 0; i < UNWRAP_CLIENTS; i++)
        if (!(k->unwrap[i] = keyd_client_new(socket, timeout_ms))) {
            keys_free(k);
            return NULL;
        }
    pthread_mutex_init(&k->tlock, NULL);
    pthread_mutex_init(&k->nlock, NULL);
    if (!k->socket || !k->gen) {
        keys_free(k);
        return NULL;
    }
    return k;
}

void keys_free(struct keys *k)
{
    if (!k)
        return;
    k->stopping = 1;
    if (k->ev_started) {
        /* Wake the subscriber from its wait and let it return: it frees its
         * subscription itself.  (pthread_cancel did not, and its unwinding
         * leaves the thread's stack poisoned for AddressSanitizer.) */
        while (write(k->ev_wake[1], "x", 1) < 0 && errno == EINTR)
            ;
        pthread_join(k->ev_thread, NULL);
        close(k->ev_wake[0]);
        close(k->ev_wake[1]);
    }
    if (k->pre) {
        sodium_free(k->pre->deks);
        pthread_mutex_destroy(&k->pre->lock);
        free(k->pre);
    }
    for (int i = 0; i < k->npools; i++) {
        sodium_free(k->pools[i]->deks);
        pthread_mutex_destroy(&k->pools[i]->lock);
        free(k->pools[i]);
    }
    keyd_client_free(k->gen);
    for (int i = 0; i < UNWRAP_CLIENTS; i++)
        keyd_client_free(k->unwrap[i]);
    free(k->socket);
    free(k);
}

const char *keys_error(struct keys *k)
{
    return k->err;
}

static int unreachable(int rc)
{
    return rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE;
}

/* Remember the outcome of a keyd call for logging: one line when keyd goes
 * away, one when it is back. */
static void note(struct keys *k, struct keyd_client *c, const char *project, int rc)
{
    if (rc == 0 && !k->down)
        return;
    pthread_mutex_lock(&k->nlock);
    if (rc == 0) {
        if (k->down) {
            k->down = 0;
            log_info("vault: keyd is reachable again; opening files works again");
        }
        goto out;
    }
    snprintf(k->err, sizeof k->err, "%s", keyd_client_error(c));
    if (unreachable(rc)) {
        if (!k->down)
            log_error("vault: keyd unavailable (%s): new opens fail until it returns; "
                      "open files keep working", k->err);
        k->down = 1;
    } else {
        log_warn("vault: project \"%s\": keyd refused: %s", project, k->err);
    }
out:
    pthread_mutex_unlock(&k->nlock);
}

static struct pool *pool_of(struct keys *k, const char *project)
{
    struct pool *p = NULL;
    pthread_mutex_lock(&k->tlock);
    for (int i = 0; i < k->npools; i++)
        if (strcmp(k->pools[i]->project, project) == 0) {
            p = k->pools[i];
            goto out;
        }
    if (k->npools == MAX_POOLS)
        goto out;
    p = calloc(1, sizeof *p);
    if (!p)
        goto out;
    p->deks = sodium_malloc(POOL_BATCH * BC_DEK);
    if (!p->deks) {
        free(p);
        p = NULL;
        goto out;
    }
    snprintf(p->project, sizeof p->project, "%s", project);
    pthread_mutex_init(&p->lock, NULL);
    k->pools[k->npools++] = p;
out:
    pthread_mutex_unlock(&k->tlock);
    return p;
}

int keys_new_dek(struct keys *k, const char *project, unsigned char *dek,
                 unsigned char file_id[BC_FILE_ID], unsigned char wrapped[BC_WRAPPED],
                 uint32_t *version)
{
    struct pool *p = pool_of(k, project);
    int rc = 0;

    if (!p)
        return -ENOMEM;
    pthread_mutex_lock(&p->lock);
    if (p->n == 0) {
        rc = keyd_gen_dek(k->gen, project, POOL_BATCH, &p->version, p->deks, p->wrapped,
                          p->file_ids);
        note(k, k->gen, project, rc);
        if (rc < 0)
            goto out;
        p->n = POOL_BATCH;
    }
    p->n--;
    memcpy(dek, p->deks + p->n * BC_DEK, BC_DEK);
    sodium_memzero(p->deks + p->n * BC_DEK, BC_DEK);
    memcpy(wrapped, p->wrapped + p->n * BC_WRAPPED, BC_WRAPPED);
    memcpy(file_id, p->file_ids + p->n * BC_FILE_ID, BC_FILE_ID);
    *version = p->version;
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int keys_new_key(struct keys *k, const char *project, unsigned char *key,
                 unsigned char wrapped[BC_WRAPPED], uint32_t *version)
{
    int rc = keyd_gen_dek(k->gen, project, 1, version, key, wrapped, NULL);
    note(k, k->gen, project, rc);
    return rc;
}

int keys_prefetch(struct keys *k, const char *project, uint32_t version, unsigned n,
                  const unsigned char *file_ids, const unsigned char *wrapped)
{
    if (n == 0 || n > KEYD_GEN_MAX || strlen(project) >= sizeof k->pre->project)
        return -EINVAL;
    if (!k->pre) {
        struct prefetch *p = calloc(1, sizeof *p);
        if (!p || !(p->deks = sodium_malloc((size_t)KEYD_GEN_MAX * BC_DEK))) {
            free(p);
            return -ENOMEM;
        }
        pthread_mutex_init(&p->lock, NULL);
        k->pre = p;
    }
    struct prefetch *p = k->pre;
    pthread_mutex_lock(&p->lock);
    sodium_memzero(p->deks, (size_t)KEYD_GEN_MAX * BC_DEK);
    p->n = p->left = 0;
    struct keyd_client *c = k->unwrap[0];
    int rc = keyd_unwrap_many(c, project, version, n, file_ids, wrapped, p->deks);
    note(k, c, project, rc == -EBADMSG ? 0 : rc);   /* one bad file: the opens will say which */
    if (rc == 0) {
        snprintf(p->project, sizeof p->project, "%s", project);
        p->version = version;
        p->n = p->left = n;
        memset(p->taken, 0, n);
        memcpy(p->file_ids, file_ids, (size_t)n * BC_FILE_ID);
        memcpy(p->wrapped, wrapped, (size_t)n * BC_WRAPPED);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Take the prefetched DEK for exactly this wrap, if there is one. */
static bool take_prefetched(struct keys *k, const char *project, uint32_t version,
                            const unsigned char *file_id, const unsigned char *wrapped,
                            unsigned char *dek)
{
    struct prefetch *p = k->pre;
    bool found = false;
    if (!p || !file_id)
        return false;
    pthread_mutex_lock(&p->lock);
    if (p->left && p->version == version && strcmp(p->project, project) == 0)
        for (unsigned i = 0; i < p->n; i++) {
            if (p->taken[i] || memcmp(p->file_ids + (size_t)i * BC_FILE_ID, file_id, BC_FILE_ID) ||
                memcmp(p->wrapped + (size_t)i * BC_WRAPPED, wrapped, BC_WRAPPED))
                continue;
            memcpy(dek, p->deks + (size_t)i * BC_DEK, BC_DEK);
            sodium_memzero(p->deks + (size_t)i * BC_DEK, BC_DEK);
            p->taken[i] = 1;
            p->left--;
            found = true;
            break;
        }
    pthread_mutex_unlock(&p->lock);
    return found;
}

int keys_unwrap(struct keys *k, const char *project, uint32_t version,
                const unsigned char *file_id, const unsigned char wrapped[BC_WRAPPED],
                unsigned char *dek)
{
    if (take_prefetched(k, project, version, file_id, wrapped, dek))
        return 0;
    struct keyd_client *c = k->unwrap[atomic_fetch_add(&k->next_unwrap, 1) % UNWRAP_CLIENTS];
    int rc = keyd_unwrap(c, project, version, file_id, wrapped, dek);
    note(k, c, project, rc);
    return rc;
}

int keys_rewrap(struct keys *k, const char *project, uint32_t version,
                const unsigned char *file_id, bool legacy,
                const unsigned char wrapped[BC_WRAPPED], uint32_t *new_version,
                unsigned char new_wrapped[BC_WRAPPED])
{
    int rc = keyd_rewrap(k->unwrap[0], project, version, file_id, legacy, wrapped, new_version,
                         new_wrapped);
    note(k, k->unwrap[0], project, rc);
    return rc;
}

void keys_purge(struct keys *k, const char *project)
{
    struct pool *p = pool_of(k, project);
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    sodium_memzero(p->deks, POOL_BATCH * BC_DEK);
    p->n = 0;
    pthread_mutex_unlock(&p->lock);
}

/* Subscriber: (re)connect, deliver events, back off 0.2 s .. 2 s while keyd
 * is away.  Runs until keys_free wakes it.  It only ever stops while it
 * waits (here): never while it holds a lock inside the callback or a keyd
 * client.  Returns 1 when FD (-1: none) is readable, 0 on timeout, -1 when
 * the thread must stop. */
static int wait_or_stop(struct keys *k, int fd, int timeout_ms)
{
    struct pollfd pfd[2] = { { .fd = k->ev_wake[0], .events = POLLIN },
                             { .fd = fd, .events = POLLIN } };
    for (;;) {
        int rc = poll(pfd, fd >= 0 ? 2 : 1, timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (k->stopping || pfd[0].revents)
            return -1;
        if (rc < 0)             /* let the read fail and the caller reconnect */
            return fd >= 0 ? 1 : 0;
        return rc > 0 ? 1 : 0;
    }
}

static void *events_main(void *arg)
{
    struct keys *k = arg;
    int delay_ms = 200, warned = 0;

    while (!k->stopping) {
        struct keyd_sub *s = NULL;
        int rc = keyd_subscribe(k->socket, &s);
        if (rc < 0) {
            if (!warned)
                log_warn("vault: keyd event subscription failed (%s); retrying", strerror(-rc));
            warned = 1;
            if (wait_or_stop(k, -1, delay_ms) < 0)
                break;
            if (delay_ms < 2000)
                delay_ms *= 2;
            continue;
        }
        if (warned)
            log_info("vault: keyd event subscription re-established");
        warned = 0;
        delay_ms = 200;
        /* events sent while we were not subscribed are lost: a missed
         * ROTATE must not leave DEKs of the old version in the pools (they
         * would serve new files, which rewrap + retire then make unreadable),
         * so every pool is emptied and refills at the current version; and
         * the filesystem re-checks its projects (a missed SHRED must purge) */
        pthread_mutex_lock(&k->tlock);
        int npools = k->npools;
        pthread_mutex_unlock(&k->tlock);
        for (int i = 0; i < npools; i++)
            keys_purge(k, k->pools[i]->project);
        if (k->fn)
            k->fn(k->fnarg, KEYS_EV_RESYNC, "", 0);
        int stop = 0;
        for (;;) {
            if (wait_or_stop(k, keyd_sub_fd(s), -1) < 0) {
                stop = 1;
                break;
            }
            struct keyd_event ev;
            rc = keyd_sub_read(s, &ev);
            if (rc < 0)
                break;
            if (ev.type == KEYD_EV_SHRED || ev.type == KEYD_EV_ROTATE)
                keys_purge(k, ev.project);
            enum keys_event type = ev.type == KEYD_EV_SHRED    ? KEYS_EV_SHRED
                                   : ev.type == KEYD_EV_ROTATE ? KEYS_EV_ROTATE
                                                               : KEYS_EV_RETIRE;
            if (k->fn)
                k->fn(k->fnarg, type, ev.project, ev.version);
        }
        keyd_sub_free(s);
        if (stop)
            break;
        log_warn("vault: keyd event subscription lost; reconnecting");
        warned = 1;
    }
    return NULL;
}

int keys_start_events(struct keys *k, keys_event_fn fn, void *arg)
{
    k->fn = fn;
    k->fnarg = arg;
    if (pipe2(k->ev_wake, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    int rc = pthread_create(&k->ev_thread, NULL, events_main, k);
    if (rc != 0) {
        close(k->ev_wake[0]);
        close(k->ev_wake[1]);
        return -rc;
    }
    k->ev_started = 1;
    return 0;
}
