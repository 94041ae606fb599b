/*
 * fsck.c - tracevault fsck and tracevault rewrap (see fsck.h).
 *
 * Both walk BACKING/P recursively with *at calls on held directory fds and
 * O_NOFOLLOW, skipping metadata (names starting with '.').
 */
#include "config.h"
#include "vault/fsck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vault/blockcrypt.h"
#include "vault/fileio.h"
#include "vault/keys.h"
#include "vault/project.h"
#include "vault/names.h"

struct walk {
    struct keys *keys;
    const char *project;
    struct names_keys *nk;      /* sodium_malloc'd */
    int rewrap;
    uint32_t newest;
    int jdir;                   /* the project's journal directory, or -1 */
    unsigned long files, dirs, damaged, rewrapped, errors, restorable, legacy, upgraded;
};

static void damaged(struct walk *w, const char *path, const char *why)
{
    printf("%s: damaged: %s\n", path, why);
    w->damaged++;
}

/* Authenticate every block of the backing file BNAME in directory DFD.  A
 * file torn by a kill during a rewrite is checked as its tail journal would
 * restore it, and reported as such; fsck itself writes nothing (the vault
 * may be running and writing that very file: it restores the tail when it
 * next opens the file). */
static int check_file(struct walk *w, int dfd, const char *bname, const char *path)
{
    struct fio_report rep;
    struct fileio *f = NULL;
    uint64_t bad = 0;
    char why[64];

    int pfd = openat(dfd, bname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return -errno;
    int rc = fio_open(&f, w->keys, w->project, w->jdir, pfd, FIO_CHECK, &rep);
    if (rep.journal_damaged) {
        damaged(w, path, "torn tail, and its journal cannot restore it");
        rc = 0;
        goto out;
    }
    if (rc == -EBADMSG) {
        damaged(w, path, strcmp(rep.what, "header") == 0        ? "bad header"
                         : strcmp(rep.what, "wrapped key") == 0 ? "wrapped key fails authentication"
                                                                : "impossible size (truncated?)");
        rc = 0;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "tracevault fsck: %s: cannot open it: %s\n", path,
                keys_error(w->keys)[0] ? keys_error(w->keys) : strerror(-rc));
        w->errors++;
        rc = 0;
        goto out;
    }
    w->legacy += rep.legacy;
    if (rep.foreign)
        damaged(w, path, "its header was made for another owner (copied from another file?): "
                         "writes are refused");
    if (rep.restored) {
        printf("%s: torn tail, restorable from its journal (%u block(s) from %llu, size %lld): "
               "the vault restores it when it next opens the file\n", path, rep.count,
               (unsigned long long)rep.first, (long long)rep.old_size);
        w->restorable++;
    }
    if (fio_verify(f, &bad) == -EBADMSG) {
        snprintf(why, sizeof why, "block %llu fails authentication", (unsigned long long)bad);
        damaged(w, path, why);
    }
out:
    fio_close(f, false);
    close(pfd);
    return rc;
}

/* Bring the header of FD up to date: a version-1 header becomes a
 * version-2 one (the DEK re-wrapped in keyd for the file's ID, the owner
 * and the header MAC, which needs the DEK, added); a DEK wrapped under an
 * older KEK version is re-wrapped under the newest. */
static int rewrap_file(struct walk *w, int fd, const char *path)
{
    unsigned char hdr[BC_HDR], nw[BC_WRAPPED];
    struct bc_header h;
    struct stat st;
    uint32_t nv;
    int rc;

    if (fio_read_header(fd, &h) < 0 || fstat(fd, &st) < 0) {
        damaged(w, path, "bad header");
        return 0;
    }
    bool legacy = h.version == BC_VERSION_LEGACY;
    if (!legacy && h.kek_version == w->newest)
        return 0;
    if (legacy) {
        unsigned char *dek = sodium_malloc(BC_DEK);
        if (!dek)
            return -ENOMEM;
        rc = keys_unwrap(w->keys, w->project, h.kek_version, NULL, h.wrapped, dek);
        if (rc == 0) {
            h.version = BC_VERSION;
            h.owner = st.st_uid;
            bc_header_mac(&h, w->project, dek, h.mac);
        }
        sodium_free(dek);
        if (rc == -EBADMSG) {
            damaged(w, path, "wrapped key fails authentication");
            return 0;
        }
    }
    rc = keys_rewrap(w->keys, w->project, h.kek_version, h.file_id, legacy, h.wrapped, &nv, nw);
    if (rc < 0) {
        fprintf(stderr, "tracevault rewrap: %s: %s\n", path, keys_error(w->keys));
        w->errors++;
        return 0;
    }
    h.kek_version = nv;
    memcpy(h.wrapped, nw, BC_WRAPPED);
    bc_header_encode(&h, hdr);
    if ((rc = tv_write_full(fd, hdr, BC_HDR, 0)) < 0)
        return rc;
    if (fdatasync(fd) < 0)
        return -errno;
    w->rewrapped++;
    w->upgraded += legacy;
    return 0;
}

/* fsck unwraps DEKs in batches: a second stream over the directory reads
 * ahead of the check loop, collects the headers of the next regular files
 * (up to a subdirectory, which would start batches of its own) and has
 * keyd unwrap them in one request (keys_prefetch).  The check loop then
 * opens each file as usual and finds its DEK held.  Both streams read the
 * same directory in the same order; if it changes meanwhile (the vault is
 * mounted), a file not in the batch costs one UNWRAP of its own, nothing
 * worse. */
#define AHEAD_BATCH 512u

struct ahead {
    DIR *dp;                    /* the read-ahead stream, NULL if it failed */
    unsigned pending;           /* entries it has read that the check loop has not */
    unsigned char file_ids[AHEAD_BATCH * BC_FILE_ID];
    unsigned char wrapped[AHEAD_BATCH * BC_WRAPPED];
};

static void read_ahead(struct walk *w, struct ahead *a)
{
    struct dirent *de;
    struct bc_header h;
    unsigned n = 0;
    uint32_t version = 0;

    while (n < AHEAD_BATCH && (de = readdir(a->dp))) {
        if (de->d_name[0] == '.')
            continue;
        a->pending++;
        if (de->d_type == DT_DIR)
            break;
        int fd = openat(dirfd(a->dp), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                  fio_read_header(fd, &h) == 0 && h.version == BC_VERSION &&
                  (n == 0 || h.kek_version == version);
        if (fd >= 0)
            close(fd);
        if (!ok)
            continue;
        version = h.kek_version;
        memcpy(a->file_ids + (size_t)n * BC_FILE_ID, h.file_id, BC_FILE_ID);
        memcpy(a->wrapped + (size_t)n * BC_WRAPPED, h.wrapped, BC_WRAPPED);
        n++;
    }
    if (n > 1)
        keys_prefetch(w->keys, w->project, version, n, a->file_ids, a->wrapped);
}

static int walk_dir(struct walk *w, int dfd, const char *path)
{
    struct ahead *a = NULL;
    unsigned char iv[NAMES_IV];
    char enc[NAMES_ENC_MAX], plain[NAMES_PLAIN_MAX + 1], sub[PATH_MAX];
    int rc = meta_dir_iv(dfd, false, iv);

    w->dirs++;
    if (rc < 0) {
        damaged(w, path, "directory IV missing or damaged");
        return 0;
    }
    int lfd = dup(dfd);
    DIR *dp = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!dp)
        return -errno;
    if (!w->rewrap && (a = calloc(1, sizeof *a))) {
        int afd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (afd >= 0 && !(a->dp = fdopendir(afd)))
            close(afd);
    }
    struct dirent *de;
    while ((de = readdir(dp))) {
        const char *e = de->d_name;
        if (e[0] == '.')
            continue;
        if (a && a->dp) {
            if (a->pending == 0)
                read_ahead(w, a);
            if (a->pending)
                a->pending--;
        }
        if (names_is_long(e) && meta_long_read(dfd, e, enc) < 0) {
            snprintf(sub, sizeof sub, "%s/<backing %s>", path, de->d_name);
            damaged(w, sub, "long name side file missing or damaged");
            continue;
        }
        if (names_is_long(e))
            e = enc;
        if (names_decrypt(w->nk, iv, e, plain) < 0) {
            snprintf(sub, sizeof sub, "%s/<backing %s>", path, de->d_name);
            damaged(w, sub, "name fails authentication");
            continue;
        }
        snprintf(sub, sizeof sub, "%s/%s", path, plain);
        int fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            fprintf(stderr, "tracevault: %s: %s\n", sub, strerror(errno));
            w->errors++;
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = walk_dir(w, fd, sub);
        } else if (S_ISREG(st.st_mode)) {
            w->files++;
            if (w->rewrap) {
                close(fd);
                fd = openat(dfd, de->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
                rc = fd < 0 ? -errno : rewrap_file(w, fd, sub);
            } else {
                rc = check_file(w, dfd, de->d_name, sub);
            }
        } else {
            damaged(w, sub, "not a regular file or directory");
            rc = 0;
        }
        if (fd >= 0)
            close(fd);
        if (rc < 0) {
            fprintf(stderr, "tracevault: %s: %s\n", sub, strerror(-rc));
            w->errors++;
        }
    }
    closedir(dp);
    if (a && a->dp)
        closedir(a->dp);
    free(a);
    return 0;
}

/* Open BACKING/P and load its name key; returns the dir fd or -errno. */
static int open_project(const struct tv_config *cfg, struct walk *w, const char *p)
{
    int root = open(cfg->vault.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        fprintf(stderr, "tracevault: backing directory \"%s\": %s\n", cfg->vault.backing,
                strerror(errno));
        return -errno;
    }
    int dfd = openat(root, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(root);
    if (dfd < 0)
        return -e;
    unsigned char *key = sodium_malloc(NAMES_KEY);
    if (!key) {
        close(dfd);
        return -ENOMEM;
    }
    int rc = meta_project_key(dfd, w->keys, p, false, key);
    if (rc < 0) {
        fprintf(stderr, "tracevault: project \"%s\": cannot load its name key: %s\n", p,
                rc == -EBADMSG ? "damaged .tvproject" : (keys_error(w->keys)[0] ? keys_error(w->keys) : strerror(-rc)));
        sodium_free(key);
        close(dfd);
        return rc;
    }
    names_derive(w->nk, key);
    sodium_free(key);
    return dfd;
}

static int run(const struct tv_config *cfg, const char *project, int rewrap)
{
    struct walk w = { 0 };
    int status = 0;

    w.keys = keys_new(cfg->keyd.socket, cfg->keyd.client_timeout_ms);
    w.nk = sodium_malloc(sizeof *w.nk);
    w.rewrap = rewrap;
    if (!w.keys || !w.nk) {
        status = 1;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_projects; i++) {
        const char *p = cfg->projects[i].name;
        if (project && strcmp(project, p) != 0)
            continue;
        w.project = p;
        if (rewrap) {
            /* learn the newest version: one fresh key, discarded */
            unsigned char *dek = sodium_malloc(BC_DEK), wr[BC_WRAPPED];
            int rc = dek ? keys_new_key(w.keys, p, dek, wr, &w.newest) : -ENOMEM;
            sodium_free(dek);
            if (rc < 0) {
                fprintf(stderr, "tracevault rewrap: project \"%s\": %s\n", p, keys_error(w.keys));
                status = 1;
                continue;
            }
        }
        int dfd = open_project(cfg, &w, p);
        if (dfd == -ENOENT)
            continue;                 /* never mounted: nothing to check or re-wrap */
        if (dfd < 0) {
            status = 1;
            continue;
        }
        if (rewrap) {
            unsigned char nw[BC_WRAPPED], wr[BC_WRAPPED];
            uint32_t v, nv;
            if (meta_project_read(dfd, &v, wr) == 0 && v != w.newest &&
                keys_rewrap(w.keys, p, v, NULL, false, wr, &nv, nw) == 0) {
                if (meta_project_write(dfd, nv, nw) == 0)
                    w.rewrapped++;
                else
                    w.errors++;
            }
        }
        w.jdir = openat(dfd, FIO_JOURNAL_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        walk_dir(&w, dfd, p);
        if (w.jdir >= 0)
            close(w.jdir);
        close(dfd);
    }
    if (project && !tv_config_project(cfg, project)) {
        fprintf(stderr, "tracevault: project \"%s\": not in the configuration\n", project);
        status = 1;
    }
    if (rewrap)
        printf("rewrap: %lu files, %lu headers re-wrapped (%lu upgraded to version 2), "
               "%lu errors\n", w.files, w.rewrapped, w.upgraded, w.errors);
    else
        printf("fsck: %lu files in %lu directories checked, %lu damaged, %lu errors, "
               "%lu torn tails restorable\n", w.files, w.dirs, w.damaged, w.errors, w.restorable);
    if (!rewrap && w.legacy)
        printf("fsck: %lu files have a version-1 header (their key is not bound to them): "
               "tracevault fsck --rewrap upgrades them\n", w.legacy);
    if (w.damaged || w.errors)
        status = 1;
out:
    sodium_free(w.nk);
    keys_free(w.keys);
    return status;
}

int vault_fsck(const struct tv_config *cfg, const char *project)
{
    return run(cfg, project, 0);
}

int vault_rewrap(const struct tv_config *cfg, const char *project)
{
    return run(cfg, project, 1);
}
