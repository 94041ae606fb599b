/*
 * keys.c - pseudonym and API keys from keyd (keys.h).
 *
 * Each project's entry is allocated once and never moved (the table holds
 * pointers to entries, so growing it moves only the pointers): prepared
 * documents keep pointers to the key and version for as long as the agent
 * runs (the lifetime rule in keys.h).
 */
#include "config.h"
#include "agent/keys.h"
#include "keyd/keyd_client.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pkey {
    char project[64];
    unsigned char *key;            /* sodium_malloc'd KEYD_PSEUDONYM_KEY_LEN; NULL until loaded */
    char version[24];
    int shredded;                  /* key wiped; nothing of this project ships again */
    int notified;                  /* the caller was told (keys_events) */
};

struct keys {
    const struct tv_config *cfg;
    struct keyd_client *kc;
    struct pkey **p;               /* entries never move: see keys.h */
    size_t n, cap;
    struct keyd_sub *sub;          /* SHRED events; NULL while not subscribed */
    uint64_t sub_next_ms;          /* next subscription attempt */
    unsigned sub_delay_ms;
    int sub_warned;
    char err[256];
};

int keys_new(const struct tv_config *cfg, struct keys **out)
{
    struct keys *k = calloc(1, sizeof(*k));

    *out = NULL;
    if (!k || sodium_init() < 0) {
        free(k);
        return -ENOMEM;
    }
    k->cfg = cfg;
    if (!(k->kc = keyd_client_new(cfg->keyd.socket, cfg->keyd.client_timeout_ms))) {
        free(k);
        return -ENOMEM;
    }
    *out = k;
    return 0;
}

void keys_free(struct keys *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        sodium_free(k->p[i]->key);
        free(k->p[i]);
    }
    free(k->p);
    keyd_sub_free(k->sub);
    keyd_client_free(k->kc);
    free(k);
}

const char *keys_error(struct keys *k)
{
    return k->err;
}

/* A short, non-reversible fingerprint of KEY: tells receivers which key made
 * a hash (a shred and re-create changes it) without revealing anything. */
static void fingerprint(const unsigned char *key, const char *prefix, char *out, size_t outlen)
{
    unsigned char h[4];
    char hex[9];
    crypto_generichash(h, sizeof(h), (const unsigned char *)"tv-pseudonym-fp", 15, key,
                       KEYD_PSEUDONYM_KEY_LEN);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(out, outlen, "%s%s", prefix, hex);
}

/* The development key for PROJECT (created on first use), used only when the
 * configuration says pseudonym_keys = local: never as a silent fallback,
 * because a local key would survive a SHRED and change every hash. */
static int local_key(struct keys *k, const char *project, unsigned char *key)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd, r = 0;

    snprintf(path, sizeof(path), "%s/pseudonym-%s.key", k->cfg->agent.state_dir, project);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        n = read(fd, key, KEYD_PSEUDONYM_KEY_LEN);
        close(fd);
        if (n != KEYD_PSEUDONYM_KEY_LEN) {
            snprintf(k->err, sizeof(k->err), "%.180s: short or unreadable key file", path);
            return -EIO;
        }
        return 0;
    }
    randombytes_buf(key, KEYD_PSEUDONYM_KEY_LEN);
    r = tv_write_atomic(AT_FDCWD, path, key, KEYD_PSEUDONYM_KEY_LEN, 0600);
    if (r != 0)
        snprintf(k->err, sizeof(k->err), "%.180s: %s", path, strerror(-r));
    else
        log_warn("project \"%s\": pseudonym_keys = local: using the local key %s "
                 "(development mode: not shredded with the project)", project, path);
    return r;
}

static struct pkey *find(const struct keys *k, const char *project)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->p[i]->project, project))
            return k->p[i];
    return NULL;
}

/* PROJECT's entry, made (without a key) if new; NULL on ENOMEM. */
static struct pkey *entry(struct keys *k, const char *project)
{
    struct pkey *e = find(k, project);

    if (e)
        return e;
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 16;
        struct pkey **np = realloc(k->p, nc * sizeof(*np));
        if (!np)
            return NULL;
        k->p = np;
        k->cap = nc;
    }
    if (!(e = calloc(1, sizeof(*e))))
        return NULL;
    snprintf(e->project, sizeof(e->project), "%s", project);
    k->p[k->n++] = e;
    return e;
}

int keys_pseudonym(struct keys *k, const char *project, const unsigned char **key,
                   const char **version)
{
    unsigned char *buf;
    struct pkey *e;
    int r, local = strcmp(k->cfg->agent.pseudonym_keys, "local") == 0;

    if (!(e = entry(k, project)))
        return -ENOMEM;
    if (e->shredded) {
        snprintf(k->err, sizeof(k->err), "project \"%s\" was shredded: not shipped until restart",
                 project);
        return -EKEYREVOKED;
    }
    if (e->key) {
        *key = e->key;
        *version = e->version;
        return 0;
    }
    if (!(buf = sodium_malloc(KEYD_PSEUDONYM_KEY_LEN)))
        return -ENOMEM;
    if (local) {
        r = local_key(k, project, buf);
    } else {
        r = keyd_pseudonym_key(k->kc, project, buf);
        if (r != 0)
            snprintf(k->err, sizeof(k->err), "keyd: project \"%s\": pseudonym key: %s", project,
                     keyd_client_error(k->kc));
        if (r == -EKEYREVOKED)
            keys_shred(k, project);    /* shredded while no one listened: act on it */
    }
    if (r != 0) {
        sodium_free(buf);
        return r;
    }
    fingerprint(buf, local ? "local-" : "", e->version, sizeof(e->version));
    sodium_mprotect_readonly(buf);
    e->key = buf;
    *key = buf;
    *version = e->version;
    return 0;
}

int keys_shred(struct keys *k, const char *project)
{
    struct pkey *e = entry(k, project);
    int wiped = 0;

    if (!e)
        return 0;                      /* ENOMEM: keyd refuses the key anyway */
    e->shredded = 1;
    if (e->key) {
        /* Wiped in place, not freed: pointers handed out stay valid. */
        sodium_mprotect_readwrite(e->key);
        sodium_memzero(e->key, KEYD_PSEUDONYM_KEY_LEN);
        sodium_mprotect_readonly(e->key);
        wiped = 1;
    }
    return wiped;
}

int keys_shredded(const struct keys *k, const char *project)
{
    const struct pkey *e = find(k, project);
    return e && e->shredded;
}

int keys_apikey(struct keys *k, const char *project, char **key)
{
    int r;

    *key = NULL;
    if (keys_shredded(k, project)) {
        snprintf(k->err, sizeof(k->err), "project \"%s\" was shredded: not shipped", project);
        return -EKEYREVOKED;
    }
    r = keyd_apikey_get(k->kc, project, key);
    if (r != 0)
        snprintf(k->err, sizeof(k->err), "keyd: project \"%s\": API key: %s", project,
                 keyd_client_error(k->kc));
    if (r == -EKEYREVOKED)
        keys_shred(k, project);        /* e.g. records queued before a restart */
    return r;
}

/* ---- keyd events ------------------------------------------------------------ */

/* Tell the caller about every shred it has not heard of yet: from an event,
 * the re-check, or keyd refusing a key with EKEYREVOKED. */
static void notify(struct keys *k, keys_shred_fn fn, void *arg)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->p[i]->shredded && !k->p[i]->notified) {
            k->p[i]->notified = 1;
            fn(arg, k->p[i]->project);
        }
}

/* After (re)subscribing: a SHRED sent while no one listened must still wipe. */
static void recheck(struct keys *k)
{
    unsigned char *tmp = sodium_malloc(KEYD_PSEUDONYM_KEY_LEN);

    if (!tmp)
        return;
    for (size_t i = 0; i < k->n; i++) {
        struct pkey *e = k->p[i];
        if (!e->key || e->shredded)
            continue;
        int r = keyd_pseudonym_key(k->kc, e->project, tmp);
        if (r == -EKEYREVOKED || r == -ENOENT ||
            (r == 0 && sodium_memcmp(tmp, e->key, KEYD_PSEUDONYM_KEY_LEN) != 0)) {
            log_warn("project \"%s\": shredded while the agent was not subscribed to keyd",
                     e->project);
            keys_shred(k, e->project);
        }
    }
    sodium_free(tmp);
}

void keys_events(struct keys *k, keys_shred_fn fn, void *arg)
{
    uint64_t now = tv_now_ms();
    int r;

    struct stat st;

    notify(k, fn, arg);
    if (strcmp(k->cfg->agent.pseudonym_keys, "keyd") != 0)
        return;
    if (!k->sub) {
        if (now < k->sub_next_ms)
            return;
        /* No socket: do not let the client's connect retries (≈0.8 s) stall
         * the loop; the next attempt comes with backoff anyway. */
        if (stat(k->cfg->keyd.socket, &st) != 0)
            r = -ECONNREFUSED;
        else
            r = keyd_subscribe(k->cfg->keyd.socket, &k->sub);
        if (r != 0) {
            k->sub = NULL;
            if (!k->sub_warned++)
                log_warn("keyd %s: event subscription failed (%s): a SHRED reaches the agent "
                         "once it succeeds (retrying)", k->cfg->keyd.socket, strerror(-r));
            k->sub_delay_ms = k->sub_delay_ms ? k->sub_delay_ms * 2 : 250;
            if (k->sub_delay_ms > 30000)
                k->sub_delay_ms = 30000;
            k->sub_next_ms = now + k->sub_delay_ms;
            return;
        }
        if (k->sub_warned)
            log_info("keyd %s: event subscription re-established", k->cfg->keyd.socket);
        k->sub_warned = 0;
        k->sub_delay_ms = 0;
        recheck(k);
        notify(k, fn, arg);
    }
    for (;;) {
        struct pollfd pfd = { .fd = keyd_sub_fd(k->sub), .events = POLLIN };
        struct keyd_event ev;
        if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            return;
        if ((r = keyd_sub_read(k->sub, &ev)) != 0) {
            log_warn("keyd %s: event subscription lost (%s): reconnecting", k->cfg->keyd.socket,
                     strerror(-r));
            keyd_sub_free(k->sub);
            k->sub = NULL;
            k->sub_warned = 1;
            k->sub_next_ms = now + 250;
            return;
        }
        if (ev.type == KEYD_EV_SHRED) {
            ev.project[sizeof(ev.project) - 1] = '\0';
            keys_shred(k, ev.project);
            notify(k, fn, arg);
        }
    }
}

int keys_events_fd(const struct keys *k)
{
    return k->sub ? keyd_sub_fd(k->sub) : -1;
}
