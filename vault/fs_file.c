/*
 * fs_file.c - the vault's open-file handlers: open, create, read, write,
 * release, fsync (see fs_int.h).
 *
 * A file's open state lives in its vnode (vnode.h), shared by all its
 * handles and guarded by the vnode's rwlock: reads share it, writes and
 * truncates own it, so writes to one file are atomic with respect to each
 * other (O_APPEND from many processes loses nothing).  A handle remembers
 * its opener; every read and write re-checks the opener against the current
 * policy (a SIGHUP reload applies to open handles).
 */
#include "config.h"
#include "vault/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vault/audit.h"
#include "vault/fileio.h"
#include "vault/fuseio.h"
#include "vault/keys.h"

static __thread struct tv_scratch read_buf;

static struct vhandle *handle_new(struct vfs *fs, struct vnode *n, const struct rq *r, int flags)
{
    struct vhandle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->n = n;
    int acc = flags & O_ACCMODE;
    h->rd = acc == O_RDONLY || acc == O_RDWR;
    h->wr = acc == O_WRONLY || acc == O_RDWR;
    h->append = (flags & O_APPEND) != 0;
    h->who = *r;
    pthread_mutex_lock(&fs->hlock);
    h->next = fs->handles;
    if (h->next)
        h->next->prev = h;
    fs->handles = h;
    pthread_mutex_unlock(&fs->hlock);
    return h;
}

static void handle_free(struct vfs *fs, struct vhandle *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&fs->hlock);
    if (h->prev)
        h->prev->next = h->next;
    else
        fs->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    pthread_mutex_unlock(&fs->hlock);
    free(h);
}

/* Policy for opening N with FLAGS; audited either way by the caller. */
static int open_check(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *n, int flags)
{
    int acc = flags & O_ACCMODE, rc = 0;
    unsigned roles = roles_of(fs, req, r, n->proj);
    uid_t owner = vn_owner(fs->vt, n);
    if (acc == O_RDONLY || acc == O_RDWR)
        rc = pol_check(roles, POL_READ, r->uid, owner);
    if (rc == 0 && (acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC)))
        rc = pol_check(roles, POL_WRITE, r->uid, owner);
    return rc;
}

/* Hand the kernel a handle of R on N (whose open state is held). */
static int attach_handle(struct vfs *fs, struct vnode *n, const struct rq *r,
                         struct fuse_file_info *fi)
{
    struct vhandle *h = handle_new(fs, n, r, fi->flags);
    if (!h)
        return -ENOMEM;
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->keep_cache = 1;
    fi->noflush = 1;        /* writes are not buffered here: close needs no FLUSH */
    return 0;
}

static int do_open(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *n,
                   struct fuse_file_info *fi)
{
    int rc;
    if (!n->proj || n->is_dir)
        return -EISDIR;
    if ((rc = open_check(fs, req, r, n, fi->flags)) < 0 || (rc = vn_acquire(fs->vt, n)) < 0)
        return rc;
    if ((fi->flags & O_TRUNC) && fuseio_kill_suidgid())
        rc = vn_kill_suidgid(fs->vt, n);
    if (rc == 0 && (fi->flags & O_TRUNC)) {
        struct fs_io io;
        fs_io_init(&io, fs, req, n->proj);
        pthread_rwlock_wrlock(&n->rw);
        rc = n->io ? fs_io_result(r, n, "truncate", fio_truncate(n->io, 0, &io.ctl)) : -EIO;
        pthread_rwlock_unlock(&n->rw);
    }
    if (rc == 0)
        rc = attach_handle(fs, n, r, fi);
    if (rc < 0)
        vn_release(fs->vt, n);
    return rc;
}

/* Drop a handle attach_handle gave FI, and its reference on N. */
static void detach_handle(struct vfs *fs, struct vnode *n, struct fuse_file_info *fi)
{
    handle_free(fs, (struct vhandle *)(uintptr_t)fi->fh);
    fi->fh = 0;
    vn_release(fs->vt, n);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *n = node_of(fs, ino);
    struct rq r;

    rq_get(req, &r);
    int rc = do_open(fs, req, &r, n, fi);
    /* fail-closed: no handle leaves without its audit record */
    if (rc != -EISDIR && fs_audit(&r, n, "open", rc) < 0 && rc == 0) {
        detach_handle(fs, n, fi);
        rc = -EIO;
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_open(req, fi);
}

/* Create lost a race with another creator of NAME in D: open the existing
 * file instead (no O_EXCL). */
static int open_existing(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *d,
                         const char *name, int flags, struct fuse_entry_param *e,
                         struct vnode **out)
{
    int rc = fs_lookup(fs, req, d, name, e);
    if (rc < 0)
        return rc;
    struct vnode *n = node_of(fs, e->ino);
    if ((rc = open_check(fs, req, r, n, flags)) < 0 || (rc = vn_acquire(fs->vt, n)) < 0) {
        vt_forget(fs->vt, n, 1);
        return rc;
    }
    *out = n;
    return 0;
}

/* Make the new sealed file BNAME in D for R, with its open state held. */
static int create_new(struct vfs *fs, struct rq *r, struct vnode *d, int dfd, const char *bname,
                      mode_t mode, struct fuse_entry_param *e, struct vnode **out)
{
    struct fileio *io = NULL;
    struct stat st;
    int rc;

    int fd = openat(dfd, bname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (fchown(fd, r->uid, r->gid) < 0 && errno != EPERM)
        log_warn("vault: project \"%s\": cannot give a new file to uid %u: %s", d->proj->name,
                 (unsigned)r->uid, strerror(errno));
    /* after the chown, which clears setuid/setgid: the mode exactly as asked */
    if (fchmod(fd, fs_backing_mode(fs, mode, false)) < 0)
        log_warn("vault: project \"%s\": cannot set a new file's mode: %s", d->proj->name,
                 strerror(errno));
    int pfd = openat(dfd, bname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        goto fail;
    }
    struct vnode *n = vt_get(fs->vt, pfd, &st, d->proj, false);
    pfd = -1;
    if (!n) {
        close(fd);
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = fio_create(&io, fs->keys, d->proj->name, d->proj->jdir, fd)) < 0) {
        if (rc == -EKEYREVOKED) {
            atomic_store(&d->proj->shredded, true);
            rc = -EIO;
        }
        vt_forget(fs->vt, n, 1);
        goto fail;
    }
    vn_adopt(fs->vt, n, io);
    if ((rc = fs_entry(fs, n, e)) < 0) {
        vn_release(fs->vt, n);
        vt_forget(fs->vt, n, 1);
        return rc;
    }
    *out = n;
    return 0;
fail:
    if (pfd >= 0)
        close(pfd);
    unlinkat(dfd, bname, 0);
    return rc;
}

static int do_create(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *d, int dfd,
                     const char *name, mode_t mode, struct fuse_file_info *fi,
                     struct fuse_entry_param *e, struct vnode **out)
{
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX];
    int rc, is_long;

    if ((rc = fs_check(fs, req, r, d, POL_CREATE, 0)) < 0 ||
        (rc = fs_enc_name(fs, d, name, enc, bname, &is_long)) < 0 ||
        (is_long && (rc = meta_long_write(dfd, bname, enc)) < 0))
        return rc;
    bool made = true;
    rc = create_new(fs, r, d, dfd, bname, mode, e, out);
    if (rc == -EEXIST && !(fi->flags & O_EXCL)) {
        made = false;
        rc = open_existing(fs, req, r, d, name, fi->flags, e, out);
    }
    if (rc < 0)
        return rc;
    /* fail-closed: the file exists only with its audit record */
    if ((rc = fs_audit(r, *out, made ? "create" : "open", 0)) < 0 ||
        (rc = attach_handle(fs, *out, r, fi)) < 0) {
        vn_release(fs->vt, *out);
        vt_forget(fs->vt, *out, 1);
        if (made)
            unlinkat(dfd, bname, 0);
        rc = rc == -ENOMEM ? rc : -EIO;
    }
    return rc;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vnode *d = node_of(fs, parent), *n = NULL;
    struct fuse_entry_param e;
    struct rq r;

    rq_get(req, &r);
    int rc = -EPERM;
    if (d->proj && (rc = vn_fd_get(fs->vt, d)) >= 0) {
        rc = do_create(fs, req, &r, d, rc, name, mode, fi, &e, &n);
        vn_fd_put(fs->vt, d);
    }
    if (rc == 0) {
        fuse_reply_create(req, &e, fi);
        return;
    }
    if (rc != -EACCES && d->proj)
        audit_log(r.uid, r.pid, d->proj->name, "create", rc, NULL, NULL);
    fuse_reply_err(req, -rc);
}

/* Re-check a handle against the current policy (SIGHUP applies to open
 * handles): reads need read rights (or, for the kernel's page fills through
 * a write handle, write rights), writes need write rights. */
static int handle_check(struct vfs *fs, struct vhandle *h, bool write)
{
    struct rq hr = h->who;
    unsigned roles = roles_of(fs, NULL, &hr, h->n->proj);
    uid_t owner = h->n->owner;      /* loaded while a handle is open; never changes */
    int rc;
    if (write || !h->rd)
        rc = h->wr ? pol_check(roles, POL_WRITE, hr.uid, owner) : -EBADF;
    else
        rc = pol_check(roles, POL_READ, hr.uid, owner);
    if (rc == -EACCES)
        fs_audit(&hr, h->n, write ? "write" : "read", rc);
    return rc;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    struct vnode *n = h->n;
    unsigned char *buf = NULL;
    size_t got = 0;
    int rc;

    (void)ino;
    if ((rc = handle_check(fs, h, false)) < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    pthread_rwlock_rdlock(&n->rw);
    if (!n->io || atomic_load(&n->proj->shredded))
        rc = -EIO;
    else if (!(buf = tv_scratch(&read_buf, size)))
        rc = -ENOMEM;
    else
        rc = fs_io_result(&h->who, n, "read", fio_read(n->io, buf, size, off, &got));
    pthread_rwlock_unlock(&n->rw);
    if (rc < 0) {
        if (buf)
            sodium_memzero(buf, size);
        if (rc == -EIO)
            fs_audit(&h->who, n, "read", rc);
        fuse_reply_err(req, -rc);
        return;
    }
    fuse_reply_buf(req, (const char *)buf, got);
    sodium_memzero(buf, got);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    struct vnode *n = h->n;
    int rc;

    (void)ino;
    if ((rc = handle_check(fs, h, true)) < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    /* before the data, as Linux's own file systems do */
    if (fuseio_kill_suidgid() && (rc = vn_kill_suidgid(fs->vt, n)) < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fs_io io;
    fs_io_init(&io, fs, req, n->proj);
    pthread_rwlock_wrlock(&n->rw);
    if (!n->io || atomic_load(&n->proj->shredded))
        rc = -EIO;
    else
        rc = fs_io_result(&h->who, n, "write",
                          fio_write(n->io, buf, size,
                                    (h->append && !fs->writeback) ? fio_size(n->io) : off,
                                    &io.ctl));
    pthread_rwlock_unlock(&n->rw);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino, (void)fi;
    fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = vfs_of(req);
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    (void)ino;
    vn_release(fs->vt, h->n);
    handle_free(fs, h);
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    int rc = 0;
    (void)ino;
    pthread_rwlock_rdlock(&h->n->rw);
    if (h->n->io)
        rc = fio_sync(h->n->io, datasync);
    pthread_rwlock_unlock(&h->n->rw);
    fuse_reply_err(req, -rc);
}

void fs_file_ops(struct fuse_lowlevel_ops *ops)
{
    ops->open = op_open;
    ops->create = op_create;
    ops->read = op_read;
    ops->write = op_write;
    ops->flush = op_flush;
    ops->release = op_release;
    ops->fsync = op_fsync;
}
