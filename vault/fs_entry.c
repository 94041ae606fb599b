/*
 * fs_entry.c - the vault's namespace handlers: lookup and forget,
 * attributes, access, mkdir, unlink/rmdir, rename, extended attributes,
 * statfs (see fs_int.h).  Names are encrypted per directory (names.h);
 * every backing access is an *at call on a held descriptor with
 * O_NOFOLLOW.
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
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/config.h"
#include "vault/audit.h"
#include "vault/fileio.h"

int fs_enc_name(struct vfs *fs, struct vnode *d, const char *name, char enc[NAMES_ENC_MAX],
                char bname[NAMES_ENC_MAX], int *is_long)
{
    unsigned char iv[NAMES_IV];
    int rc;
    if (atomic_load(&d->proj->shredded) || !atomic_load(&d->proj->loaded))
        return -EIO;
    if ((rc = vn_dir_iv(fs->vt, d, iv)) < 0)
        return rc;
    if ((rc = names_encrypt(d->proj->nk, iv, name, enc)) < 0)
        return rc;
    *is_long = names_backing(enc, bname);
    return 0;
}

int fs_entry(struct vfs *fs, struct vnode *n, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    int rc = vn_stat(fs->vt, n, &e->attr);
    if (rc < 0)
        return rc;
    e->ino = ino_of(fs, n);
    if (n->is_proj_root) {
        /* never cached: every path walk into a project is a LOOKUP that
         * checks the requester (docs/THREAT_MODEL.md "Kernel caches") */
        e->attr_timeout = ROOT_TIMEOUT;
        e->entry_timeout = 0;
    } else {
        e->attr_timeout = fs->cache_timeout;
        e->entry_timeout = fs->cache_timeout;
    }
    return 0;
}

/* Open the backing child BNAME of D (whose descriptor is DFD) as an O_PATH
 * fd and make it a vnode. */
static int child_node(struct vfs *fs, struct vnode *d, int dfd, const char *bname,
                      struct vnode **out)
{
    struct stat st;
    int fd = openat(dfd, bname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        close(fd);
        return -ENOENT;       /* foreign object in the backing store: not ours */
    }
    *out = vt_get(fs->vt, fd, &st, d->proj, false);
    return *out ? 0 : -ENOMEM;
}

/* A project directory: the top level of the mount. */
static int lookup_project(struct vfs *fs, fuse_req_t req, const char *name,
                          struct fuse_entry_param *e)
{
    struct stat st;
    struct rq r;
    int rc;

    if (!tv_project_name_valid(name) || !fs_in_config(fs, name))
        return -ENOENT;
    struct vproj *p = proj_find(fs->pt, name, true);
    if (!p)
        return -ENOMEM;
    /* the one check every path into a project passes: entries below are
     * cached by the kernel, this one never is */
    rq_get(req, &r);
    if (roles_of(fs, req, &r, p) == 0) {
        audit_log(r.uid, r.pid, p->name, "lookup", -EACCES, NULL, "denied");
        return -EACCES;
    }
    if ((rc = proj_load(fs->pt, p)) < 0)
        return rc;
    struct vnode *n = vt_get_known(fs->vt, atomic_load(&p->dev), atomic_load(&p->ino));
    if (!n) {
        int fd = openat(vt_root(fs->vt)->fd, name,
                        O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0) {
            rc = -errno;
            close(fd);
            return rc;
        }
        if (!(n = vt_get(fs->vt, fd, &st, p, true)))
            return -ENOMEM;
        atomic_store(&p->dev, st.st_dev);
        atomic_store(&p->ino, st.st_ino);
    }
    if ((rc = fs_entry(fs, n, e)) < 0)
        vt_forget(fs->vt, n, 1);
    return rc;
}

int fs_lookup(struct vfs *fs, fuse_req_t req, struct vnode *d, const char *name,
              struct fuse_entry_param *e)
{
    struct vnode *n = NULL;
    struct rq r;
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX];
    int rc, is_long;

    if (!d->is_dir)
        return -ENOTDIR;
    if (d == vt_root(fs->vt))
        return lookup_project(fs, req, name, e);
    rq_get(req, &r);
    if ((rc = fs_check(fs, req, &r, d, POL_LOOKUP, 0)) < 0 ||
        (rc = fs_enc_name(fs, d, name, enc, bname, &is_long)) < 0)
        return rc;
    int dfd = vn_fd_get(fs->vt, d);
    if (dfd < 0)
        return dfd;
    rc = child_node(fs, d, dfd, bname, &n);
    vn_fd_put(fs->vt, d);
    if (rc < 0)
        return rc;
    if ((rc = fs_entry(fs, n, e)) < 0)
        vt_forget(fs->vt, n, 1);
    return rc;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct vfs *fs = vfs_of(req);
    struct fuse_entry_param e;
    struct vnode *d = node_of(fs, parent);
    int rc = fs_lookup(fs, req, d, name, &e);
    if (rc == -ENOENT) {
        /* a negative entry: cached below projects like positive ones (every
         * change goes through the vault, which the kernel sees), never at
         * the top, where the config decides what exists */
        memset(&e, 0, sizeof e);
        e.entry_timeout = d == vt_root(fs->vt) ? 0 : fs->cache_timeout;
        fuse_reply_entry(req, &e);
        return;
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct vfs *fs = vfs_of(req);
    vt_forget(fs->vt, node_of(fs, ino), nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
    struct vfs *fs = vfs_of(req);
    for (size_t i = 0; i < count; i++)
        vt_forget(fs->vt, node_of(fs, f[i].ino), f[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *n = node_of(fs, ino);
    struct stat st;
    struct rq r;
    int rc = 0;

    (void)fi;
    if (n->proj && !n->is_proj_root) {
        rq_get(req, &r);
        rc = fs_check(fs, req, &r, n, POL_LOOKUP, 0);
    }
    if (rc == 0)
        rc = vn_stat(fs->vt, n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, n->proj && !n->is_proj_root ? fs->cache_timeout : ROOT_TIMEOUT);
}

/* Truncate file N to SIZE for R (its open state taken for the duration). */
static int truncate_node(struct vfs *fs, fuse_req_t req, const struct rq *r, struct vnode *n,
                         off_t size)
{
    struct fs_io io;
    int rc;
    if (n->is_dir)
        return -EISDIR;
    if ((rc = vn_acquire(fs->vt, n)) < 0)
        return rc;
    fs_io_init(&io, fs, req, n->proj);
    pthread_rwlock_wrlock(&n->rw);
    rc = n->io ? fs_io_result(r, n, "truncate", fio_truncate(n->io, size, &io.ctl)) : -EIO;
    pthread_rwlock_unlock(&n->rw);
    vn_release(fs->vt, n);
    return rc;
}

static int set_times(const char *path, const struct stat *attr, int valid)
{
    struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
    if (valid & FUSE_SET_ATTR_ATIME_NOW)
        ts[0].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_ATIME)
        ts[0] = attr->st_atim;
    if (valid & FUSE_SET_ATTR_MTIME_NOW)
        ts[1].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_MTIME)
        ts[1] = attr->st_mtim;
    return utimensat(AT_FDCWD, path, ts, 0) < 0 ? -errno : 0;
}

static int do_setattr(struct vfs *fs, fuse_req_t req, struct vnode *n, struct stat *attr,
                      int valid, struct fuse_file_info *fi)
{
    struct rq r;
    char pp[64];
    int rc;

    rq_get(req, &r);
    if (!n->proj || n->is_proj_root || (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
        return -EPERM;
    struct rq *who = &r;
    if (fi) {
        /* ftruncate on a handle opened for writing: its opener's rights */
        struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
        who = &h->who;
        rc = fs_check(fs, NULL, who, n, POL_WRITE, vn_owner(fs->vt, n));
        if (rc == 0 && !h->wr)
            rc = -EBADF;
    } else {
        rc = fs_check(fs, req, who, n, POL_SETATTR, vn_owner(fs->vt, n));
    }
    if (rc < 0)
        return rc;
    /* libfuse's KILL_SUID bit is the kernel's FATTR_KILL_SUIDGID: a truncation
     * by a caller without CAP_FSETID (fuseio.h) */
    if ((valid & FUSE_SET_ATTR_KILL_SUID) && !(valid & FUSE_SET_ATTR_MODE) &&
        (rc = vn_kill_suidgid(fs->vt, n)) < 0)
        return rc;
    if ((valid & FUSE_SET_ATTR_SIZE) && (rc = truncate_node(fs, req, who, n, attr->st_size)) < 0)
        return rc;
    if (!(valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
        return 0;
    int fd = vn_fd_get(fs->vt, n);
    if (fd < 0)
        return fd;
    snprintf(pp, sizeof pp, "/proc/self/fd/%d", fd);
    if ((valid & FUSE_SET_ATTR_MODE) && chmod(pp, fs_backing_mode(fs, attr->st_mode, n->is_dir)) < 0)
        rc = -errno;
    if (rc == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
        rc = set_times(pp, attr, valid);
    vn_fd_put(fs->vt, n);
    return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *n = node_of(fs, ino);
    struct stat st;
    int rc = do_setattr(fs, req, n, attr, valid, fi);
    if (rc == 0)
        rc = vn_stat(fs->vt, n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, n->is_proj_root ? ROOT_TIMEOUT : fs->cache_timeout);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *n = node_of(fs, ino);
    struct rq r;
    int rc = 0;

    if (n->proj && !(n->is_proj_root && mask == F_OK)) {
        rq_get(req, &r);
        unsigned roles = roles_of(fs, req, &r, n->proj);
        uid_t owner = n->is_dir ? 0 : vn_owner(fs->vt, n);
        rc = pol_check(roles, POL_LOOKUP, r.uid, owner);
        if (rc == 0 && (mask & R_OK))
            rc = pol_check(roles, n->is_dir ? POL_LIST : POL_READ, r.uid, owner);
        if (rc == 0 && (mask & W_OK))
            rc = pol_check(roles, n->is_dir ? POL_CREATE : POL_WRITE, r.uid, owner);
        if (rc == 0 && (mask & X_OK) && !n->is_dir)
            rc = -EACCES;
    } else if (!n->proj && (mask & W_OK)) {
        rc = -EACCES;
    }
    fuse_reply_err(req, -rc);
}

/* Whether backing directory PARENT/BNAME holds nothing but metadata (names
 * starting with '.'): 0, -ENOTEMPTY, or another negative errno.  With
 * CLEAR, that metadata is removed so the directory can be removed or
 * replaced. */
static int empty_dir(int parent, const char *bname, bool clear)
{
    int rc = 0, dfd = openat(parent, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dp = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *de;
    if (!dp) {
        rc = -errno;
        if (dfd >= 0)
            close(dfd);
        return rc;
    }
    while ((de = readdir(dp)))
        if (de->d_name[0] != '.') {
            rc = -ENOTEMPTY;
            break;
        }
    if (rc == 0 && clear) {
        rewinddir(dp);
        while ((de = readdir(dp)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                unlinkat(dirfd(dp), de->d_name, 0);
    }
    closedir(dp);
    return rc;
}

/* Make backing directory BNAME in D (descriptor PFD) for R (IV, owner);
 * the entry in *E. */
static int make_dir(struct vfs *fs, struct vnode *d, int pfd, const char *bname, mode_t mode,
                    const struct rq *r, struct fuse_entry_param *e)
{
    struct vnode *n = NULL;
    int rc = 0;

    if (mkdirat(pfd, bname, 0700) < 0)
        return -errno;
    int dfd = openat(pfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        rc = -errno;
    else if ((rc = meta_dir_iv_new(dfd)) == 0) {
        (void)!fchown(dfd, r->uid, r->gid);   /* EPERM when the vault runs unprivileged */
        /* after the chown, which clears setgid: the mode exactly as asked */
        if (fchmod(dfd, fs_backing_mode(fs, mode, true)) < 0)
            rc = -errno;
    }
    if (dfd >= 0)
        close(dfd);
    /* fail-closed: the directory exists only with its audit record */
    if (rc == 0 && audit_log(r->uid, r->pid, d->proj->name, "mkdir", 0, NULL, NULL) < 0)
        rc = -EIO;
    if (rc < 0) {
        empty_dir(pfd, bname, true);
        unlinkat(pfd, bname, AT_REMOVEDIR);
        return rc;
    }
    if ((rc = child_node(fs, d, pfd, bname, &n)) == 0 && (rc = fs_entry(fs, n, e)) < 0)
        vt_forget(fs->vt, n, 1);
    return rc;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *d = node_of(fs, parent);
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX];
    struct fuse_entry_param e;
    struct rq r;
    int rc, is_long;

    rq_get(req, &r);
    if (!d->proj)
        rc = -EPERM;
    else if ((rc = fs_check(fs, req, &r, d, POL_CREATE, 0)) == 0 &&
             (rc = fs_enc_name(fs, d, name, enc, bname, &is_long)) == 0 &&
             (rc = vn_fd_get(fs->vt, d)) >= 0) {
        int dfd = rc;
        rc = 0;
        if (!is_long || (rc = meta_long_write(dfd, bname, enc)) == 0)
            rc = make_dir(fs, d, dfd, bname, mode, &r, &e);
        vn_fd_put(fs->vt, d);
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)parent, (void)name, (void)mode, (void)rdev;
    fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link, (void)parent, (void)name;
    fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino, (void)newparent, (void)newname;
    fuse_reply_err(req, EPERM);
}

/* The file ID of backing file BNAME in DIRFD into FID ("" if unreadable). */
static void file_id_at(int dirfd, const char *bname, char fid[2 * BC_FILE_ID + 1])
{
    int fd = openat(dirfd, bname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fio_file_id_of(fd, fid) < 0)
        fid[0] = '\0';
    if (fd >= 0)
        close(fd);
}

/* Remove file BNAME (stat ST) of D, whose ID is FID (from the vnode when
 * the kernel knows the file, the usual case, else from the header). */
static int remove_file(struct vnode *d, int dfd, const char *bname, const struct stat *st,
                       const char *fid)
{
    if (unlinkat(dfd, bname, 0) < 0)
        return -errno;
    fio_journal_unlink(d->proj->jdir, fid);
    off_t size;
    if (bc_plain_size(st->st_size, &size) == 0)
        proj_charge(d->proj, -(int64_t)size, 0);
    return 0;
}

static int do_remove(struct vfs *fs, fuse_req_t req, struct vnode *d, int dfd, const char *name,
                     bool dir)
{
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX], side[NAMES_ENC_MAX];
    char fid[2 * BC_FILE_ID + 1] = "";
    struct stat st;
    struct rq r;
    int rc, is_long;

    rq_get(req, &r);
    if ((rc = fs_check(fs, req, &r, d, POL_LOOKUP, 0)) < 0 ||
        (rc = fs_enc_name(fs, d, name, enc, bname, &is_long)) < 0)
        return rc;
    if (fstatat(dfd, bname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (dir != !!S_ISDIR(st.st_mode))
        return dir ? -ENOTDIR : -EISDIR;
    if ((rc = fs_check(fs, req, &r, d, dir ? POL_RMDIR : POL_UNLINK, st.st_uid)) < 0)
        return rc;
    /* fail-closed: the record is written before the removal, which cannot
     * be undone (after every check that can refuse it); a removal that then
     * fails anyway is recorded again with its error */
    if (dir && (rc = empty_dir(dfd, bname, false)) < 0)
        return rc;
    if (!dir && !vt_file_id(fs->vt, &st, fid))
        file_id_at(dfd, bname, fid);
    if (audit_log(r.uid, r.pid, d->proj->name, dir ? "rmdir" : "unlink", 0,
                  fid[0] ? fid : NULL, NULL) < 0)
        return -EIO;
    if (!dir)
        rc = remove_file(d, dfd, bname, &st, fid);
    else if ((rc = empty_dir(dfd, bname, true)) == 0 && unlinkat(dfd, bname, AT_REMOVEDIR) < 0)
        rc = -errno;
    if (rc == 0 && is_long) {
        names_side(bname, side);
        unlinkat(dfd, side, 0);
    }
    if (rc < 0)
        audit_log(r.uid, r.pid, d->proj->name, dir ? "rmdir" : "unlink", rc,
                  fid[0] ? fid : NULL, NULL);
    return rc;
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *d = node_of(fs, parent);
    int rc = -EPERM;

    if (d->proj && (rc = vn_fd_get(fs->vt, d)) >= 0) {
        rc = do_remove(fs, req, d, rc, name, dir);
        vn_fd_put(fs->vt, d);
    }
    fuse_reply_err(req, -rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    op_remove(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    op_remove(req, parent, name, true);
}

static int do_rename(struct vfs *fs, fuse_req_t req, struct vnode *d1, int fd1, const char *name,
                     struct vnode *d2, int fd2, const char *newname, unsigned flags)
{
    char enc1[NAMES_ENC_MAX], b1[NAMES_ENC_MAX], enc2[NAMES_ENC_MAX], b2[NAMES_ENC_MAX];
    char side[NAMES_ENC_MAX];
    struct stat st1, st2;
    struct rq r;
    int rc, long1, long2;

    rq_get(req, &r);
    if ((rc = fs_check(fs, req, &r, d1, POL_LOOKUP, 0)) < 0 ||
        (rc = fs_enc_name(fs, d1, name, enc1, b1, &long1)) < 0 ||
        (rc = fs_enc_name(fs, d2, newname, enc2, b2, &long2)) < 0)
        return rc;
    if (fstatat(fd1, b1, &st1, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if ((rc = fs_check(fs, req, &r, d1, POL_RENAME, st1.st_uid)) < 0)
        return rc;
    bool have2 = fstatat(fd2, b2, &st2, AT_SYMLINK_NOFOLLOW) == 0;
    /* replacing an empty directory: its metadata must go first */
    bool clear2 = have2 && S_ISDIR(st2.st_mode) && S_ISDIR(st1.st_mode) &&
                  !(flags & RENAME_NOREPLACE);
    if (have2 && (rc = fs_check(fs, req, &r, d2, POL_RENAME, st2.st_uid)) < 0)
        return rc;
    if (clear2 && (rc = empty_dir(fd2, b2, false)) < 0)
        return rc;
    /* fail-closed: recorded before it happens (see op_remove) */
    if (audit_log(r.uid, r.pid, d1->proj->name, "rename", 0, NULL, NULL) < 0)
        return -EIO;
    if ((clear2 && (rc = empty_dir(fd2, b2, true)) < 0) ||
        (long2 && (rc = meta_long_write(fd2, b2, enc2)) < 0)) {
        audit_log(r.uid, r.pid, d1->proj->name, "rename", rc, NULL, NULL);
        return rc;
    }
    bool replaced = have2 && S_ISREG(st2.st_mode);
    if (renameat2(fd1, b1, fd2, b2, flags) < 0) {
        rc = -errno;
        audit_log(r.uid, r.pid, d1->proj->name, "rename", rc, NULL, NULL);
        return rc;
    }
    off_t gone;
    if (replaced && (st2.st_dev != st1.st_dev || st2.st_ino != st1.st_ino) &&
        bc_plain_size(st2.st_size, &gone) == 0)
        proj_charge(d1->proj, -(int64_t)gone, 0);     /* the file it replaced */
    if (long1 && !(d1 == d2 && strcmp(b1, b2) == 0)) {
        names_side(b1, side);
        unlinkat(fd1, side, 0);
    }
    return 0;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *d1 = node_of(fs, parent), *d2 = node_of(fs, newparent);
    int rc, fd1, fd2;

    if (!d1->proj || !d2->proj)
        rc = -EPERM;
    else if (d1->proj != d2->proj)
        rc = -EXDEV;
    else if (flags & RENAME_EXCHANGE)
        rc = -EINVAL;
    else if ((rc = fd1 = vn_fd_get(fs->vt, d1)) >= 0) {
        if ((rc = fd2 = vn_fd_get(fs->vt, d2)) >= 0) {
            rc = do_rename(fs, req, d1, fd1, name, d2, fd2, newname, flags);
            vn_fd_put(fs->vt, d2);
        }
        vn_fd_put(fs->vt, d1);
    }
    fuse_reply_err(req, -rc);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct vfs *fs = vfs_of(req);
    struct statvfs sv;
    (void)ino;
    if (fstatvfs(fs->root_fd, &sv) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_namemax = NAMES_PLAIN_MAX;
    fuse_reply_statfs(req, &sv);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *n = node_of(fs, ino);
    char hex[2 * BC_FILE_ID + 1];
    struct rq r;
    int rc;

    if (!n->proj || n->is_dir || strcmp(name, XATTR_FILE_ID) != 0) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    rq_get(req, &r);
    if ((rc = fs_check(fs, req, &r, n, POL_LOOKUP, 0)) < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (n->fid_hex[0]) {
        memcpy(hex, n->fid_hex, sizeof hex);
    } else {
        int fd = vn_fd_get(fs->vt, n);
        rc = fd < 0 ? fd : fio_file_id_of(fd, hex);
        if (fd >= 0)
            vn_fd_put(fs->vt, n);
        if (rc < 0) {
            fuse_reply_err(req, rc == -ENOENT ? ENOENT : EIO);
            return;
        }
    }
    if (size == 0)
        fuse_reply_xattr(req, 2 * BC_FILE_ID);
    else if (size < 2 * BC_FILE_ID)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, hex, 2 * BC_FILE_ID);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *n = node_of(fs, ino);
    static const char list[] = XATTR_FILE_ID;
    if (!n->proj || n->is_dir) {
        if (size == 0)
            fuse_reply_xattr(req, 0);
        else
            fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (size == 0)
        fuse_reply_xattr(req, sizeof list);
    else if (size < sizeof list)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, list, sizeof list);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    (void)ino, (void)value, (void)size, (void)flags;
    fuse_reply_err(req, strcmp(name, XATTR_FILE_ID) == 0 ? EPERM : ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    (void)ino;
    fuse_reply_err(req, strcmp(name, XATTR_FILE_ID) == 0 ? EPERM : ENOTSUP);
}

void fs_entry_ops(struct fuse_lowlevel_ops *ops)
{
    ops->lookup = op_lookup;
    ops->forget = op_forget;
    ops->forget_multi = op_forget_multi;
    ops->getattr = op_getattr;
    ops->setattr = op_setattr;
    ops->access = op_access;
    ops->mkdir = op_mkdir;
    ops->mknod = op_mknod;
    ops->symlink = op_symlink;
    ops->link = op_link;
    ops->unlink = op_unlink;
    ops->rmdir = op_rmdir;
    ops->rename = op_rename;
    ops->statfs = op_statfs;
    ops->getxattr = op_getxattr;
    ops->listxattr = op_listxattr;
    ops->setxattr = op_setxattr;
    ops->removexattr = op_removexattr;
}
