/*
 * project.c - the project table and the backing store's metadata files
 * (see project.h, docs/FORMAT.md).
 */
#include "config.h"
#include "vault/project.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vault/fileio.h"
#include "vault/keymem.h"
#include "vault/keys.h"

struct projects {
    int rootfd;                     /* backing root (borrowed) */
    struct keys *keys;              /* borrowed */
    pthread_mutex_t lock;           /* the table */
    struct vproj *p[PROJECTS_MAX];
    int n;
};

/* ---- the table ------------------------------------------------------------ */

struct projects *projects_new(int rootfd, struct keys *keys)
{
    struct projects *pt = calloc(1, sizeof *pt);
    if (!pt)
        return NULL;
    pt->rootfd = rootfd;
    pt->keys = keys;
    pthread_mutex_init(&pt->lock, NULL);
    return pt;
}

void projects_free(struct projects *pt)
{
    if (!pt)
        return;
    for (int i = 0; i < pt->n; i++) {
        sodium_free(pt->p[i]->nk);          /* wipes */
        if (pt->p[i]->jdir >= 0)
            close(pt->p[i]->jdir);
        pthread_mutex_destroy(&pt->p[i]->lock);
        free(pt->p[i]);
    }
    pthread_mutex_destroy(&pt->lock);
    free(pt);
}

struct vproj *proj_find(struct projects *pt, const char *name, bool create)
{
    struct vproj *p = NULL;
    pthread_mutex_lock(&pt->lock);
    for (int i = 0; i < pt->n; i++)
        if (strcmp(pt->p[i]->name, name) == 0) {
            p = pt->p[i];
            goto out;
        }
    if (!create || pt->n == PROJECTS_MAX)
        goto out;
    p = calloc(1, sizeof *p);
    if (!p)
        goto out;
    snprintf(p->name, sizeof p->name, "%s", name);
    pthread_mutex_init(&p->lock, NULL);
    p->jdir = -1;
    pt->p[pt->n++] = p;
out:
    pthread_mutex_unlock(&pt->lock);
    return p;
}

int proj_list(struct projects *pt, struct vproj **out, int max)
{
    pthread_mutex_lock(&pt->lock);
    int n = pt->n < max ? pt->n : max;
    memcpy(out, pt->p, sizeof out[0] * (size_t)n);
    pthread_mutex_unlock(&pt->lock);
    return n;
}

/* Journals of rewrites a kill interrupted, found at load. */
struct pending {
    char (*fid)[2 * BC_FILE_ID + 1];
    int n;
};

/* Walking a project's tree at load: its usage, and its torn files. */
struct load_walk {
    struct projects *pt;
    struct vproj *p;
    struct pending pend;
    int64_t used;
    int restored;
};

/* If the file BNAME in DFD has a pending journal, open it (which restores
 * its tail) and close it again (which removes the journal). */
static void restore_if_pending(struct load_walk *w, int dfd, const char *bname)
{
    char fid[2 * BC_FILE_ID + 1];
    int pfd = openat(dfd, bname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return;
    if (fio_file_id_of(pfd, fid) < 0) {
        close(pfd);
        return;
    }
    for (int i = 0; i < w->pend.n; i++) {
        if (strcmp(w->pend.fid[i], fid) != 0)
            continue;
        struct fileio *f = NULL;
        struct fio_report rep;
        int rc = fio_open(&f, w->pt->keys, w->p->name, w->p->jdir, pfd, FIO_RDWR, &rep);
        if (rc < 0 || rep.journal_damaged)
            log_warn("vault: project \"%s\": file %s: its tail journal could not restore it "
                     "(%s); tracevault fsck reports it", w->p->name, fid,
                     rc == -EBADMSG ? rep.what : rep.journal_damaged ? "journal damaged"
                                                                     : strerror(-rc));
        fio_close(f, rc == 0);
        w->restored += rc == 0;
        memcpy(w->pend.fid[i], w->pend.fid[--w->pend.n], sizeof w->pend.fid[0]);
        break;
    }
    close(pfd);
}

/* Count the plaintext bytes of the regular files below directory DFD
 * (consumed), restoring torn ones on the way; metadata (names starting
 * with '.') is skipped. */
static void walk_tree(struct load_walk *w, int dfd, int depth)
{
    DIR *dp = fdopendir(dfd);
    struct dirent *de;
    if (!dp) {
        close(dfd);
        return;
    }
    while ((de = readdir(dp))) {
        struct stat st;
        off_t size;
        if (de->d_name[0] == '.')
            continue;
        if (w->pend.n && de->d_type != DT_DIR)
            restore_if_pending(w, dirfd(dp), de->d_name);
        if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode) && bc_plain_size(st.st_size, &size) == 0)
            w->used += size;
        else if (S_ISDIR(st.st_mode) && depth < 4096) {
            int sub = openat(dirfd(dp), de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk_tree(w, sub, depth + 1);
        }
    }
    closedir(dp);
}

/* Open (make) P's journal directory in DFD and list into PEND the journals
 * of rewrites a kill interrupted; voided records (completed rewrites) are
 * removed.  Caller holds p->lock. */
static int load_journals(struct vproj *p, int dfd, struct pending *pend)
{
    if (mkdirat(dfd, FIO_JOURNAL_DIR, 0700) < 0 && errno != EEXIST)
        return -errno;
    int jfd = openat(dfd, FIO_JOURNAL_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (jfd < 0)
        return -errno;
    p->jdir = openat(jfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    DIR *dp = fdopendir(jfd);
    if (p->jdir < 0 || !dp) {
        int e = -errno;
        if (dp)
            closedir(dp);
        else
            close(jfd);
        return e;
    }
    struct dirent *de;
    int cap = 0;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || strlen(de->d_name) != 2 * BC_FILE_ID)
            continue;
        if (!fio_journal_valid(p->jdir, de->d_name)) {
            unlinkat(p->jdir, de->d_name, 0);
            continue;
        }
        if (pend->n == cap) {
            int nc = cap ? 2 * cap : 8;
            void *np = realloc(pend->fid, (size_t)nc * sizeof *pend->fid);
            if (!np)
                break;
            pend->fid = np;
            cap = nc;
        }
        snprintf(pend->fid[pend->n++], sizeof pend->fid[0], "%s", de->d_name);
    }
    closedir(dp);
    return 0;
}

/* Count P's usage and restore its torn files (DFD: its directory). */
static int load_tree(struct projects *pt, struct vproj *p, int dfd)
{
    struct load_walk w = { .pt = pt, .p = p };
    int rc = load_journals(p, dfd, &w.pend);
    if (rc < 0) {
        log_error("vault: project \"%s\": journal directory: %s", p->name, strerror(-rc));
        return rc;
    }
    int n = w.pend.n, sub = dup(dfd);
    if (sub >= 0)
        walk_tree(&w, sub, 0);
    for (int i = 0; i < w.pend.n; i++)
        unlinkat(p->jdir, w.pend.fid[i], 0);        /* its file is gone */
    if (n)
        log_info("vault: project \"%s\": %d tail journal(s) of interrupted rewrites: "
                 "%d file(s) restored, %d journal(s) of files that are gone removed",
                 p->name, n, w.restored, w.pend.n);
    free(w.pend.fid);
    atomic_store(&p->used, w.used);
    return 0;
}

int proj_charge(struct vproj *p, int64_t delta, int64_t quota)
{
    int64_t now = atomic_fetch_add(&p->used, delta) + delta;
    if (delta > 0 && quota > 0 && now > quota) {
        atomic_fetch_sub(&p->used, delta);
        return -EDQUOT;
    }
    return 0;
}

int proj_load(struct projects *pt, struct vproj *p)
{
    bool made = false;
    int rc = 0, dfd = -1;
    unsigned char *key = NULL;

    if (atomic_load(&p->shredded))
        return -EIO;
    if (atomic_load(&p->loaded))
        return 0;
    pthread_mutex_lock(&p->lock);
    if (atomic_load(&p->loaded) || atomic_load(&p->shredded)) {
        rc = atomic_load(&p->shredded) ? -EIO : 0;
        goto out;
    }
    made = mkdirat(pt->rootfd, p->name, 0700) == 0;
    if (!made && errno != EEXIST) {
        rc = -errno;
        log_error("vault: project \"%s\": cannot create backing directory: %s", p->name,
                  strerror(errno));
        goto out;
    }
    dfd = openat(pt->rootfd, p->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        goto out;
    }
    key = keymem_alloc();
    p->nk = p->nk ? p->nk : sodium_malloc(sizeof *p->nk);
    if (!key || !p->nk) {
        rc = -ENOMEM;
        goto out;
    }
    rc = meta_project_key(dfd, pt->keys, p->name, true, key);
    if (rc < 0) {
        if (rc == -EKEYREVOKED) {
            atomic_store(&p->shredded, true);
            rc = -EIO;
        } else if (rc == -EBADMSG) {
            log_error("vault: project \"%s\": .tvproject missing or damaged: its names "
                      "cannot be decrypted", p->name);
            rc = -EIO;
        } else if (rc != -ENOENT) {
            log_error("vault: project \"%s\": cannot load its name key: %s; "
                      "its files cannot be opened until keyd answers",
                      p->name, keys_error(pt->keys)[0] ? keys_error(pt->keys) : strerror(-rc));
            rc = -EIO;
        }
        goto out;
    }
    unsigned char iv[NAMES_IV];
    if ((rc = meta_dir_iv(dfd, true, iv)) < 0) {
        log_error("vault: project \"%s\": directory IV missing or damaged", p->name);
        rc = -EIO;
        goto out;
    }
    if (p->jdir >= 0) {
        close(p->jdir);             /* a retried load */
        p->jdir = -1;
    }
    if (load_tree(pt, p, dfd) < 0) {
        rc = -EIO;
        goto out;
    }
    names_derive(p->nk, key);
    atomic_store(&p->loaded, true);
out:
    /* a project keyd does not know leaves no directory behind */
    if (rc < 0 && made && dfd >= 0) {
        unlinkat(dfd, META_DIRIV, 0);
        unlinkat(pt->rootfd, p->name, AT_REMOVEDIR);
    }
    keymem_free(key);
    if (dfd >= 0)
        close(dfd);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int proj_recheck(struct projects *pt, struct vproj *p)
{
    if (!atomic_load(&p->loaded) || atomic_load(&p->shredded))
        return 0;
    unsigned char *key = keymem_alloc();
    int dfd = openat(pt->rootfd, p->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = 0;
    if (key && dfd >= 0 && meta_project_key(dfd, pt->keys, p->name, false, key) == -EKEYREVOKED)
        rc = -EKEYREVOKED;
    if (dfd >= 0)
        close(dfd);
    keymem_free(key);
    return rc;
}

void proj_shred(struct projects *pt, struct vproj *p)
{
    atomic_store(&p->shredded, true);       /* nothing may load keys any more */
    pthread_mutex_lock(&p->lock);
    if (p->nk)
        sodium_memzero(p->nk, sizeof *p->nk);
    pthread_mutex_unlock(&p->lock);
    keys_purge(pt->keys, p->name);
}

/* ---- metadata ------------------------------------------------------------- */

static int read_small(int dirfd, const char *name, void *buf, size_t cap, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = pread(fd, buf, cap, 0);
    int rc = r < 0 ? -errno : 0;
    close(fd);
    if (rc == 0)
        *len = (size_t)r;
    return rc;
}

void meta_project_encode(uint32_t version, const unsigned char wrapped[BC_WRAPPED],
                         unsigned char out[META_PROJECT_LEN])
{
    memcpy(out, "TVP1", 4);
    for (int i = 0; i < 4; i++)
        out[4 + i] = (unsigned char)(version >> (8 * i));
    memcpy(out + 8, wrapped, BC_WRAPPED);
}

int meta_project_parse(const unsigned char *buf, size_t len, uint32_t *version,
                       unsigned char wrapped[BC_WRAPPED])
{
    if (len != META_PROJECT_LEN || memcmp(buf, "TVP1", 4) != 0)
        return -EBADMSG;
    *version = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
               (uint32_t)buf[7] << 24;
    memcpy(wrapped, buf + 8, BC_WRAPPED);
    return *version ? 0 : -EBADMSG;
}

int meta_project_read(int dirfd, uint32_t *version, unsigned char wrapped[BC_WRAPPED])
{
    unsigned char buf[META_PROJECT_LEN + 1];
    size_t len = 0;
    int rc = read_small(dirfd, META_PROJECT, buf, sizeof buf, &len);
    return rc < 0 ? rc : meta_project_parse(buf, len, version, wrapped);
}

int meta_project_write(int dirfd, uint32_t version, const unsigned char wrapped[BC_WRAPPED])
{
    unsigned char buf[META_PROJECT_LEN];
    meta_project_encode(version, wrapped, buf);
    return tv_write_atomic(dirfd, META_PROJECT, buf, sizeof buf, 0600);
}

/* True if DIRFD holds an entry that is not metadata (a name not starting
 * with '.'). */
static int has_entries(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    int found = 0;
    if (!dp) {
        if (fd >= 0)
            close(fd);
        return 1;                     /* cannot tell: do not invent an IV */
    }
    while (!found && (de = readdir(dp)))
        found = de->d_name[0] != '.';
    closedir(dp);
    return found;
}

int meta_project_key(int dirfd, struct keys *k, const char *project, bool create,
                     unsigned char key[NAMES_KEY])
{
    unsigned char wrapped[BC_WRAPPED];
    uint32_t version;
    int rc = meta_project_read(dirfd, &version, wrapped);

    /* a new name key only for a project without entries: a lost .tvproject
     * must not silently hide every name */
    if (rc == -ENOENT && create && has_entries(dirfd))
        return -EBADMSG;
    if (rc == -ENOENT && create) {
        rc = keys_new_key(k, project, key, wrapped, &version);
        if (rc < 0)
            return rc;
        rc = meta_project_write(dirfd, version, wrapped);
        sodium_memzero(key, NAMES_KEY);
        if (rc < 0)
            return rc;
        /* another mounter may have raced us: re-read what is on disk */
        rc = meta_project_read(dirfd, &version, wrapped);
    }
    if (rc < 0)
        return rc;
    return keys_unwrap(k, project, version, NULL, wrapped, key);
}

int meta_dir_iv_new(int dirfd)
{
    unsigned char iv[NAMES_IV];
    randombytes_buf(iv, sizeof iv);
    int fd = openat(dirfd, META_DIRIV, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write(fd, iv, sizeof iv) == (ssize_t)sizeof iv ? 0 : -EIO;
    close(fd);
    if (rc < 0)
        unlinkat(dirfd, META_DIRIV, 0);
    return rc;
}

int meta_dir_iv(int dirfd, bool create, unsigned char iv[NAMES_IV])
{
    size_t len = 0;
    int rc = read_small(dirfd, META_DIRIV, iv, NAMES_IV, &len);
    /* a missing IV is only made for a directory without entries: inventing
     * one for a populated directory would silently hide its names */
    if (rc == -ENOENT && create && has_entries(dirfd))
        return -EBADMSG;
    if (rc == -ENOENT && create) {
        rc = meta_dir_iv_new(dirfd);
        if (rc < 0 && rc != -EEXIST)
            return rc;
        rc = read_small(dirfd, META_DIRIV, iv, NAMES_IV, &len);
    }
    if (rc < 0)
        return rc;
    return len == NAMES_IV ? 0 : -EBADMSG;
}

int meta_long_read(int dirfd, const char *backing, char enc[NAMES_ENC_MAX])
{
    char side[NAMES_ENC_MAX], check[NAMES_ENC_MAX];
    size_t len = 0;
    names_side(backing, side);
    int rc = read_small(dirfd, side, enc, NAMES_ENC_MAX - 1, &len);
    if (rc < 0)
        return rc;
    enc[len] = '\0';
    /* the side file must belong to this backing name */
    if (names_backing(enc, check) != 1 || strcmp(check, backing) != 0)
        return -EBADMSG;
    return 0;
}

int meta_long_write(int dirfd, const char *backing, const char *enc)
{
    char side[NAMES_ENC_MAX];
    names_side(backing, side);
    int fd = openat(dirfd, side, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(enc);
    int rc = write(fd, enc, len) == (ssize_t)len ? 0 : -EIO;
    close(fd);
    return rc;
}
