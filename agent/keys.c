/*
 * keys.c - pseudonym and API keys from keyd (keys.h).
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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pkey {
    char project[64];
    unsigned char *key;            /* sodium_malloc'd KEYD_PSEUDONYM_KEY_LEN */
    char version[24];
};

struct keys {
    const struct tv_config *cfg;
    struct keyd_client *kc;
    struct pkey *p;
    size_t n;
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
    for (size_t i = 0; i < k->n; i++)
        sodium_free(k->p[i].key);
    free(k->p);
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

int keys_pseudonym(struct keys *k, const char *project, const unsigned char **key,
                   const char **version)
{
    unsigned char *buf;
    int r, local = strcmp(k->cfg->agent.pseudonym_keys, "local") == 0;

    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->p[i].project, project)) {
            *key = k->p[i].key;
            *version = k->p[i].version;
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
    }
    if (r != 0) {
        sodium_free(buf);
        return r;
    }
    struct pkey *np = realloc(k->p, (k->n + 1) * sizeof(*np));
    if (!np) {
        sodium_free(buf);
        return -ENOMEM;
    }
    k->p = np;
    memset(&np[k->n], 0, sizeof(*np));
    snprintf(np[k->n].project, sizeof(np[k->n].project), "%s", project);
    np[k->n].key = buf;
    sodium_mprotect_readonly(buf);
    fingerprint(buf, local ? "local-" : "", np[k->n].version, sizeof(np[k->n].version));
    *key = buf;
    *version = np[k->n].version;
    k->n++;
    return 0;
}

int keys_apikey(struct keys *k, const char *project, char **key)
{
    int r = keyd_apikey_get(k->kc, project, key);
    if (r != 0)
        snprintf(k->err, sizeof(k->err), "keyd: project \"%s\": API key: %s", project,
                 keyd_client_error(k->kc));
    return r;
}
