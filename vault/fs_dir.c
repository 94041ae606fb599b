/*
 * fs_dir.c - the vault's directory listings (see fs_int.h): opendir takes
 * a snapshot of the decrypted names (metadata, whose names start with '.',
 * is never listed), readdir pages through it.  The mount root lists the
 * configured projects.
 */
#include "config.h"
#include "vault/fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/config.h"

struct dent {
    char *name;
    ino_t ino;
    unsigned type;
};

struct dhandle {
    size_t n, cap;
    struct dent *e;
};

static void dh_free(struct dhandle *dh)
{
    if (!dh)
        return;
    for (size_t i = 0; i < dh->n; i++)
        free(dh->e[i].name);
    free(dh->e);
    free(dh);
}

static int dh_add(struct dhandle *dh, const char *name, ino_t ino, unsigned type)
{
    if (dh->n == dh->cap) {
        size_t nc = dh->cap ? dh->cap * 2 : 32;
        struct dent *ne = realloc(dh->e, nc * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        dh->e = ne;
        dh->cap = nc;
    }
    if (!(dh->e[dh->n].name = strdup(name)))
        return -ENOMEM;
    dh->e[dh->n].ino = ino;
    dh->e[dh->n].type = type;
    dh->n++;
    return 0;
}

/* The mount root: the projects of the config that keyd knows. */
static int list_root(struct vfs *fs, struct dhandle *dh)
{
    int rc = 0;
    pthread_rwlock_rdlock(&fs->cfg_lock);
    size_t np = fs->cfg->n_projects;
    char (*names)[TV_PROJECT_NAME_MAX + 1] = calloc(np ? np : 1, sizeof *names);
    for (size_t i = 0; names && i < np; i++)
        snprintf(names[i], sizeof names[i], "%s", fs->cfg->projects[i].name);
    pthread_rwlock_unlock(&fs->cfg_lock);
    if (!names)
        return -ENOMEM;
    for (size_t i = 0; i < np && rc == 0; i++) {
        struct vproj *p = proj_find(fs->pt, names[i], true);
        struct stat st;
        if (p && proj_load(fs->pt, p) == 0 &&
            fstatat(vt_root(fs->vt)->fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
            rc = dh_add(dh, names[i], st.st_ino, DT_DIR);
    }
    free(names);
    return rc;
}

/* Collect the decrypted listing of directory D. */
static int list_dir(struct vfs *fs, struct vnode *d, struct dhandle *dh)
{
    unsigned char iv[NAMES_IV];
    char enc[NAMES_ENC_MAX], plain[NAMES_PLAIN_MAX + 1];
    int rc;

    if ((rc = dh_add(dh, ".", d->bino, DT_DIR)) < 0 || (rc = dh_add(dh, "..", 1, DT_DIR)) < 0)
        return rc;
    if (d == vt_root(fs->vt))
        return list_root(fs, dh);
    if ((rc = vn_dir_iv(fs->vt, d, iv)) < 0)
        return rc;
    int pfd = vn_fd_get(fs->vt, d);
    if (pfd < 0)
        return pfd;
    int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    vn_fd_put(fs->vt, d);
    DIR *dp = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dp) {
        rc = -errno;
        if (dfd >= 0)
            close(dfd);
        return rc;
    }
    struct dirent *de;
    while (rc == 0 && (de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;                 /* metadata */
        const char *e = de->d_name;
        if (names_is_long(e)) {
            if (meta_long_read(dirfd(dp), e, enc) < 0) {
                vn_integrity(d, "long name");
                continue;
            }
            e = enc;
        }
        if (names_decrypt(d->proj->nk, iv, e, plain) < 0) {
            vn_integrity(d, "name");
            continue;
        }
        rc = dh_add(dh, plain, de->d_ino, de->d_type == DT_DIR ? DT_DIR : DT_REG);
        sodium_memzero(plain, sizeof plain);
    }
    closedir(dp);
    return rc;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *d = node_of(fs, ino);
    struct dhandle *dh = NULL;
    struct rq r;
    int rc = 0;

    if (d->proj) {
        rq_get(req, &r);
        if ((rc = fs_check(fs, req, &r, d, POL_LIST, 0)) < 0)
            goto out;
        if (atomic_load(&d->proj->shredded) || !atomic_load(&d->proj->loaded)) {
            rc = -EIO;
            goto out;
        }
    }
    if (!(dh = calloc(1, sizeof *dh))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = list_dir(fs, d, dh)) < 0)
        goto out;
    fi->fh = (uint64_t)(uintptr_t)dh;
    fuse_reply_open(req, fi);
    return;
out:
    dh_free(dh);
    fuse_reply_err(req, -rc);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct dhandle *dh = (struct dhandle *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    size_t used = 0;

    (void)ino;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    for (size_t i = (size_t)off; i < dh->n; i++) {
        struct stat st = { .st_ino = dh->e[i].ino, .st_mode = dh->e[i].type << 12 };
        size_t l = fuse_add_direntry(req, buf + used, size - used, dh->e[i].name, &st,
                                     (off_t)(i + 1));
        if (l > size - used)
            break;
        used += l;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    dh_free((struct dhandle *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *d = node_of(fs, ino);
    int rc = 0, pfd = vn_fd_get(fs->vt, d), fd = -1;
    (void)datasync, (void)fi;
    if (pfd >= 0) {
        fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        vn_fd_put(fs->vt, d);
    }
    if (pfd < 0)
        rc = -pfd;
    else if (fd < 0 || fsync(fd) < 0)
        rc = errno;
    if (fd >= 0)
        close(fd);
    fuse_reply_err(req, rc);
}

void fs_dir_ops(struct fuse_lowlevel_ops *ops)
{
    ops->opendir = op_opendir;
    ops->readdir = op_readdir;
    ops->releasedir = op_releasedir;
    ops->fsyncdir = op_fsyncdir;
}
