/*
 * fs_int.h - what the vault's FUSE handler files share (not a public
 * interface: fs.h is).
 *
 *   fs.c        the filesystem object, configuration reload, keyd events,
 *               the policy glue every handler calls, the operations table
 *   fs_entry.c  the namespace: lookup, attributes, create/remove/rename of
 *               names, extended attributes, statfs
 *   fs_file.c   open files: open, create, read, write, release, fsync
 *   fs_dir.c    directory listings
 *
 * Every request inside a project is checked against the current config
 * (swapped on SIGHUP); handles remember their opener and are re-checked on
 * every read and write.  The entry of a project directory is never cached
 * by the kernel, so every path walk into a project is a LOOKUP that checks
 * the requester; entries and attributes below it are cached for
 * cache_timeout (--entry-timeout), reachable only through that checked
 * entry (docs/THREAT_MODEL.md "Kernel caches").
 */
#ifndef TV_VAULT_FS_INT_H
#define TV_VAULT_FS_INT_H

#include "vault/fs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vault/fileio.h"
#include "vault/names.h"
#include "vault/policy.h"
#include "vault/project.h"
#include "vault/vnode.h"

#define ROOT_TIMEOUT 1.0          /* the mount root and project directories' attributes */
#define CACHE_TIMEOUT_DEFAULT 60.0
#define NGROUPS_CAP 64
#define XATTR_FILE_ID "user.tracevault.file_id"

struct vfs {
    pthread_rwlock_t cfg_lock;      /* a leaf: taken alone, briefly */
    _Atomic int64_t free_bytes;     /* backing filesystem's free space, as last seen */
    _Atomic uint64_t free_ms;       /* when (tv_now_ms) */
    struct tv_config *cfg;
    struct keys *keys;              /* borrowed */
    int root_fd;                    /* backing root, O_RDONLY: statfs */
    struct vtable *vt;
    struct projects *pt;
    struct fuse_session *se;
    int writeback;
    double cache_timeout;           /* entries and attributes below project
                                       directories (the project entry itself is
                                       never cached); 0: nothing cached */
    bool dac_override;              /* may open backing objects whatever their mode */
    pthread_mutex_t hlock;          /* a leaf: protects handles */
    struct vhandle *handles;        /* every open handle: the kernel may never
                                       release some (a lazy unmount with files
                                       open), vfs_free frees what is left */
};

/* The requester of one FUSE request. */
struct rq {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int ngroups;                    /* -1: not fetched */
    gid_t groups[NGROUPS_CAP];
};

/* An open file handle: the opener's identity, re-checked on every request. */
struct vhandle {
    struct vnode *n;
    bool rd, wr, append;
    struct rq who;
    struct vhandle *prev, *next;    /* on vfs.handles */
};

static inline struct vfs *vfs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static inline struct vnode *node_of(struct vfs *fs, fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? vt_root(fs->vt) : (struct vnode *)(uintptr_t)ino;
}

static inline fuse_ino_t ino_of(struct vfs *fs, struct vnode *n)
{
    return n == vt_root(fs->vt) ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* ---- policy glue (fs.c) --------------------------------------------------- */

/* The requester of REQ (supplementary groups fetched lazily). */
void rq_get(fuse_req_t req, struct rq *r);

/* Role bits of R in PROJ under the current config; REQ (may be NULL) is
 * used to fetch the groups when the project names groups. */
unsigned roles_of(struct vfs *fs, fuse_req_t req, struct rq *r, struct vproj *proj);

/* Check OP for R on N (OWNER for per-object ops); a denial is audited.
 * 0 or -EACCES. */
int fs_check(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *n, enum pol_op op,
             uid_t owner);

/* Audit OP with result RC by R on N (its project and file ID). */
int fs_audit(const struct rq *r, const struct vnode *n, const char *op, int rc);

/* The backing mode for MODE (the mode a caller asked for, already under its
 * umask): exactly MODE & 07777 when the vault may open backing objects
 * whatever their mode; else with the owner bits it needs itself. */
mode_t fs_backing_mode(const struct vfs *fs, mode_t mode, bool dir);

/* True if NAME is a project of the current config. */
bool fs_in_config(struct vfs *fs, const char *name);

/* ---- shared by the handler files (fs_entry.c) ------------------------------ */

/* The encrypted encoding ENC and backing name BNAME of NAME in directory D;
 * *IS_LONG when the backing name is the hashed long form. */
int fs_enc_name(struct vfs *fs, struct vnode *d, const char *name, char enc[NAMES_ENC_MAX],
                char bname[NAMES_ENC_MAX], int *is_long);

/* Fill E for N (attributes and timeouts). */
int fs_entry(struct vfs *fs, struct vnode *n, struct fuse_entry_param *e);

/* Look NAME up in D for REQ (policy checked); one lookup reference taken. */
int fs_lookup(struct vfs *fs, fuse_req_t req, struct vnode *d, const char *name,
              struct fuse_entry_param *e);

/* The limits and hooks of one write or truncate of a file of project P for
 * REQ (may be NULL): the project's max_file_bytes and quota, the backing
 * filesystem's reserve, the request's interruption. */
struct fs_io {
    struct vfs *fs;
    struct vproj *p;
    fuse_req_t req;
    int64_t quota;
    struct fio_ctl ctl;
};
void fs_io_init(struct fs_io *io, struct vfs *fs, fuse_req_t req, struct vproj *p);

/* The engine's result RC of OP by R on N: an integrity failure is reported
 * and becomes EIO; a refusal by a limit (EFBIG, EDQUOT, ENOSPC) is audited. */
int fs_io_result(const struct rq *r, struct vnode *n, const char *op, int rc);

/* Each handler file fills its part of the operations table. */
void fs_entry_ops(struct fuse_lowlevel_ops *ops);
void fs_file_ops(struct fuse_lowlevel_ops *ops);
void fs_dir_ops(struct fuse_lowlevel_ops *ops);

#endif
