/*
 * fs.c - the vault's FUSE low-level filesystem (see fs.h, docs/FORMAT.md).
 *
 * Layout:
 *   - vnodes: one per backing object the kernel knows (keyed by backing
 *     dev/ino), holding an O_PATH fd; the fuse inode number is the pointer,
 *     as in libfuse's passthrough_ll.  Every backing access is an *at call
 *     relative to such an fd with O_NOFOLLOW.
 *   - projects: the top-level directories; loaded on first lookup (backing
 *     directory, name key unwrapped by keyd).
 *   - open state of a regular file (a struct fileio: backing O_RDWR fd, DEK
 *     in guarded memory, plaintext size; the block engine is fileio.c) lives
 *     in its vnode, shared by all handles and guarded
 *     by the vnode's rwlock: reads share it, writes and truncates own it, so
 *     writes to one file are atomic with respect to each other (O_APPEND from
 *     many processes loses nothing).  After the last close the DEK stays for
 *     dek_cache_seconds, then the reaper thread wipes it.
 *   - policy: every request inside a project is checked against the current
 *     config (swapped on SIGHUP); handles remember their opener and are
 *     re-checked on every read and write.  Entries inside projects are not
 *     cached by the kernel (timeout 0 unless --entry-timeout), so every path
 *     walk reaches the policy check in lookup; attributes are cached briefly,
 *     being reachable only through such a lookup or an authorised handle.
 */
#include "config.h"
#include "vault/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vault/audit.h"
#include "vault/blockcrypt.h"
#include "vault/fileio.h"
#include "vault/keymem.h"
#include "vault/keys.h"
#include "vault/meta.h"
#include "vault/names.h"
#include "vault/policy.h"

#define XATTR_FILE_ID "user.tracevault.file_id"
#define ROOT_TIMEOUT 1.0
/* Inside projects entries are never cached (every path walk reaches the
 * policy check in lookup); attributes may be, since they are only reachable
 * after such a lookup or through an already-authorised open file. */
#define ATTR_TIMEOUT 1.0
#define NGROUPS_CAP 64
#define HASH_BUCKETS 4096
#define MAX_PROJECTS 256

struct vproj {
    char name[TV_PROJECT_NAME_MAX + 1];
    pthread_mutex_t lock;
    int loaded;
    atomic_int shredded;
    struct names_keys *nk;          /* sodium_malloc'd */
};

struct vnode {
    struct vnode *hnext;            /* hash chain (table lock) */
    struct vnode *lnext, *lprev;    /* loaded list (loaded lock) */
    bool on_list;
    dev_t dev;
    ino_t bino;
    int fd;                         /* O_PATH */
    uint64_t nlookup;               /* table lock */
    struct vproj *proj;             /* NULL: mount root */
    bool is_dir, is_proj_root;
    /* directories */
    pthread_mutex_t dlock;
    bool have_iv;
    unsigned char iv[NAMES_IV];
    /* regular files */
    pthread_rwlock_t rw;
    int nopen;
    struct fileio io;               /* fd O_RDWR (-1 when not loaded), DEK (keymem
                                       slot, NULL when not loaded), file ID, size */
    uid_t owner;                    /* creator (backing st_uid), valid while loaded */
    char fid_hex[2 * BC_FILE_ID + 1];
    uint64_t closed_ms;
};

struct vhandle {
    struct vnode *n;
    bool rd, wr, append;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int ngroups;
    gid_t groups[NGROUPS_CAP];
};

struct dent {
    char *name;
    ino_t ino;
    unsigned type;
};

struct dhandle {
    size_t n;
    struct dent *e;
};

struct vfs {
    pthread_rwlock_t cfg_lock;
    struct tv_config *cfg;
    struct keys *keys;
    int root_fd;                    /* O_RDONLY directory: statfs */
    struct vnode root;
    pthread_mutex_t table_lock;
    struct vnode *table[HASH_BUCKETS];
    pthread_mutex_t proj_lock;
    struct vproj *projs[MAX_PROJECTS];
    int nprojs;
    pthread_mutex_t loaded_lock;
    struct vnode *loaded;           /* vnodes whose DEK is loaded */
    struct fuse_session *se;
    int writeback;
    double entry_timeout;           /* inside projects; 0 = every walk is checked */
    int dek_cache_ms;
};

/* The requester of one FUSE request. */
struct rq {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int ngroups;                    /* -1: not fetched */
    gid_t groups[NGROUPS_CAP];
};

static struct vfs *FS(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static struct vnode *N(struct vfs *fs, fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? &fs->root : (struct vnode *)(uintptr_t)ino;
}

static fuse_ino_t INO(struct vfs *fs, struct vnode *n)
{
    return n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static void proc_path(int fd, char buf[64])
{
    snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

/* ---- requester and policy ------------------------------------------------ */

static void rq_get(fuse_req_t req, struct rq *r)
{
    const struct fuse_ctx *c = fuse_req_ctx(req);
    r->uid = c->uid;
    r->gid = c->gid;
    r->pid = c->pid;
    r->ngroups = -1;
}

static bool list_has_groups(const struct tv_userlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->e[i].is_group)
            return true;
    return false;
}

/* Role bits of the requester in PROJ under the current config.  Fetches the
 * supplementary groups (one /proc read) only when the project names groups. */
static unsigned roles_of(struct vfs *fs, fuse_req_t req, struct rq *r, struct vproj *proj)
{
    unsigned roles = 0;
    pthread_rwlock_rdlock(&fs->cfg_lock);
    const struct tv_project *p = tv_config_project(fs->cfg, proj->name);
    if (p) {
        if (r->ngroups < 0 && req &&
            (list_has_groups(&p->writers) || list_has_groups(&p->readers) ||
             list_has_groups(&p->maintainers))) {
            int ng = fuse_req_getgroups(req, NGROUPS_CAP, r->groups);
            r->ngroups = ng < 0 ? -1 : (ng > NGROUPS_CAP ? NGROUPS_CAP : ng);
        }
        struct pol_who who = { r->uid, r->gid, r->ngroups >= 0 ? r->groups : NULL, r->ngroups };
        roles = pol_roles(p, &who);
    }
    pthread_rwlock_unlock(&fs->cfg_lock);
    return roles;
}

static void aud(struct rq *r, struct vnode *n, const char *op, int rc)
{
    const char *fid = (n && n->fid_hex[0]) ? n->fid_hex : NULL;
    audit_log(r->uid, r->pid, n && n->proj ? n->proj->name : NULL, op, rc, fid, NULL);
}

/* Check OP for the requester on N (owner from the backing object when the op
 * is per-object).  Denials are audited. */
static int check(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *n,
                 enum pol_op op, uid_t owner)
{
    unsigned roles = roles_of(fs, req, r, n->proj);
    int rc = pol_check(roles, op, r->uid, owner);
    if (rc < 0)
        audit_log(r->uid, r->pid, n->proj->name, pol_op_name(op), rc,
                  n->fid_hex[0] ? n->fid_hex : NULL, "denied");
    return rc;
}

/* ---- projects ------------------------------------------------------------ */

static bool in_config(struct vfs *fs, const char *name)
{
    pthread_rwlock_rdlock(&fs->cfg_lock);
    bool ok = tv_config_project(fs->cfg, name) != NULL;
    pthread_rwlock_unlock(&fs->cfg_lock);
    return ok;
}

static struct vproj *proj_find(struct vfs *fs, const char *name, bool create)
{
    struct vproj *p = NULL;
    pthread_mutex_lock(&fs->proj_lock);
    for (int i = 0; i < fs->nprojs; i++)
        if (strcmp(fs->projs[i]->name, name) == 0) {
            p = fs->projs[i];
            goto out;
        }
    if (!create || fs->nprojs == MAX_PROJECTS)
        goto out;
    p = calloc(1, sizeof *p);
    if (!p)
        goto out;
    snprintf(p->name, sizeof p->name, "%s", name);
    pthread_mutex_init(&p->lock, NULL);
    fs->projs[fs->nprojs++] = p;
out:
    pthread_mutex_unlock(&fs->proj_lock);
    return p;
}

/* Make sure project P is usable: backing dir exists, name keys loaded.
 * Returns 0, -ENOENT (not a project), -EIO (shredded or keyd failure). */
static int proj_load(struct vfs *fs, struct vproj *p)
{
    bool made = false;
    int rc = 0, dfd = -1;
    unsigned char *key = NULL;

    if (atomic_load(&p->shredded))
        return -EIO;
    if (p->loaded)
        return 0;
    pthread_mutex_lock(&p->lock);
    if (p->loaded)
        goto out;
    made = mkdirat(fs->root.fd, p->name, 0700) == 0;
    if (!made && errno != EEXIST) {
        rc = -errno;
        log_error("vault: project \"%s\": cannot create backing directory: %s", p->name,
                  strerror(errno));
        goto out;
    }
    dfd = openat(fs->root.fd, p->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        goto out;
    }
    key = sodium_malloc(NAMES_KEY);
    p->nk = p->nk ? p->nk : sodium_malloc(sizeof *p->nk);
    if (!key || !p->nk) {
        rc = -ENOMEM;
        goto out;
    }
    rc = meta_project_key(dfd, fs->keys, p->name, 1, key);
    if (rc < 0) {
        if (rc == -EKEYREVOKED) {
            atomic_store(&p->shredded, 1);
            rc = -EIO;
        } else if (rc == -EBADMSG) {
            log_error("vault: project \"%s\": .tvproject missing or damaged: its names "
                      "cannot be decrypted", p->name);
            rc = -EIO;
        } else if (rc != -ENOENT) {
            log_error("vault: project \"%s\": cannot load its name key: %s; "
                      "its files cannot be opened until keyd answers",
                      p->name, keys_error(fs->keys)[0] ? keys_error(fs->keys) : strerror(-rc));
            rc = -EIO;
        }
        goto out;
    }
    unsigned char iv[NAMES_IV];
    if ((rc = meta_dir_iv(dfd, 1, iv)) < 0) {
        log_error("vault: project \"%s\": directory IV missing or damaged", p->name);
        rc = -EIO;
        goto out;
    }
    names_derive(p->nk, key);
    p->loaded = 1;
out:
    /* a project keyd does not know leaves no directory behind */
    if (rc < 0 && made && dfd >= 0) {
        unlinkat(dfd, META_DIRIV, 0);
        unlinkat(fs->root.fd, p->name, AT_REMOVEDIR);
    }
    sodium_free(key);
    if (dfd >= 0)
        close(dfd);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* ---- vnode table --------------------------------------------------------- */

static size_t hash_of(dev_t dev, ino_t ino)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) % HASH_BUCKETS;
}

static void node_init(struct vnode *n)
{
    n->io.fd = -1;
    pthread_mutex_init(&n->dlock, NULL);
    pthread_rwlock_init(&n->rw, NULL);
}

/* Find or insert the vnode for FD (an O_PATH fd, consumed) with stat ST. */
static struct vnode *node_get(struct vfs *fs, int fd, const struct stat *st, struct vproj *proj,
                              bool proj_root)
{
    size_t h = hash_of(st->st_dev, st->st_ino);
    struct vnode *n;

    pthread_mutex_lock(&fs->table_lock);
    for (n = fs->table[h]; n; n = n->hnext)
        if (n->dev == st->st_dev && n->bino == st->st_ino) {
            n->nlookup++;
            pthread_mutex_unlock(&fs->table_lock);
            close(fd);
            return n;
        }
    n = calloc(1, sizeof *n);
    if (!n) {
        pthread_mutex_unlock(&fs->table_lock);
        close(fd);
        return NULL;
    }
    node_init(n);
    n->dev = st->st_dev;
    n->bino = st->st_ino;
    n->fd = fd;
    n->nlookup = 1;
    n->proj = proj;
    n->io.project = proj ? proj->name : NULL;
    n->is_dir = S_ISDIR(st->st_mode);
    n->is_proj_root = proj_root;
    n->hnext = fs->table[h];
    fs->table[h] = n;
    pthread_mutex_unlock(&fs->table_lock);
    return n;
}

/* Copy the file ID of the known vnode for backing object ST into HEX;
 * false if there is none or its ID was never read. */
static bool node_fid(struct vfs *fs, const struct stat *st, char hex[2 * BC_FILE_ID + 1])
{
    bool found = false;
    pthread_mutex_lock(&fs->table_lock);
    for (struct vnode *n = fs->table[hash_of(st->st_dev, st->st_ino)]; n; n = n->hnext)
        if (n->dev == st->st_dev && n->bino == st->st_ino && n->fid_hex[0]) {
            memcpy(hex, n->fid_hex, sizeof n->fid_hex);
            found = true;
            break;
        }
    pthread_mutex_unlock(&fs->table_lock);
    return found;
}

static void loaded_add(struct vfs *fs, struct vnode *n)
{
    pthread_mutex_lock(&fs->loaded_lock);
    if (!n->on_list) {
        n->lprev = NULL;
        n->lnext = fs->loaded;
        if (fs->loaded)
            fs->loaded->lprev = n;
        fs->loaded = n;
        n->on_list = true;
    }
    pthread_mutex_unlock(&fs->loaded_lock);
}

static void loaded_del_locked(struct vfs *fs, struct vnode *n)
{
    if (!n->on_list)
        return;
    if (n->lprev)
        n->lprev->lnext = n->lnext;
    else
        fs->loaded = n->lnext;
    if (n->lnext)
        n->lnext->lprev = n->lprev;
    n->on_list = false;
}

/* ---- tail journal (docs/FORMAT.md "Crash consistency") -------------------- */

/* The current path of the backing object behind FD into OUT; -ENOENT when
 * it has been unlinked.  Backing names never contain a space. */
static int fd_path(int fd, char out[PATH_MAX])
{
    char pp[64];
    proc_path(fd, pp);
    ssize_t l = readlink(pp, out, PATH_MAX - 1);
    if (l < 0)
        return -errno;
    out[l] = '\0';
    if (l > 10 && strcmp(out + l - 10, " (deleted)") == 0)
        return -ENOENT;
    return 0;
}

/* Open N's journal ".<backing name>.tail" (made when CREATE) into n->io.jfd.
 * The name is found from the file itself, so it is right after renames
 * (which move the journal along).  -ENOENT: none, or the file is unlinked.
 * Caller holds n->rw for writing. */
static int journal_open(struct vnode *n, bool create)
{
    char path[PATH_MAX], jp[PATH_MAX];
    int rc;

    if (n->io.jfd > 0)
        return 0;
    if ((rc = fd_path(n->fd, path)) < 0)
        return rc;
    char *slash = strrchr(path, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0';
    if (snprintf(jp, sizeof jp, "%s/.%s.tail", path, slash + 1) >= (int)sizeof jp)
        return -ENAMETOOLONG;
    int fd = open(jp, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd == 0) {                      /* jfd 0 means "no journal" */
        fd = fcntl(0, F_DUPFD_CLOEXEC, 1);
        close(0);
    }
    if (fd < 0)
        return -errno;
    n->io.jfd = fd;
    return 0;
}

/* Before N is rewritten: make sure it has a journal (an unlinked file needs
 * none: nobody can open it after a crash).  Caller holds n->rw for writing. */
static int journal_ready(struct vnode *n)
{
    int rc = journal_open(n, true);
    if (rc < 0 && rc != -ENOENT)
        log_error("vault: project \"%s\": file %s: cannot make its tail journal: %s",
                  n->proj->name, n->fid_hex, strerror(-rc));
    return rc == -ENOENT ? 0 : rc;
}

/* Close N's journal; with REMOVE unlink it first, if the name still holds
 * this journal.  Called when the open state is dropped (the DEK leaves the
 * cache): no rewrite can be in flight then, so the record is not needed;
 * keeping it until then spares a create and an unlink per open/close of a
 * file written in bursts.  Caller holds n->rw for writing. */
static void journal_close(struct vnode *n, bool remove)
{
    char jp[PATH_MAX];
    struct stat a, b;

    if (n->io.jfd <= 0)
        return;
    if (remove && fd_path(n->io.jfd, jp) == 0 && fstat(n->io.jfd, &a) == 0 &&
        lstat(jp, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
        unlink(jp);
    close(n->io.jfd);
    n->io.jfd = 0;
}

/* Drop the open state (DEK wiped); caller holds n->rw for writing. */
static void node_unload_locked(struct vnode *n)
{
    journal_close(n, true);
    if (n->io.dek) {
        keymem_free(n->io.dek);     /* wipes */
        n->io.dek = NULL;
    }
    if (n->io.fd >= 0) {
        close(n->io.fd);
        n->io.fd = -1;
    }
}

static void node_forget(struct vfs *fs, struct vnode *n, uint64_t count)
{
    if (n == &fs->root)
        return;
    pthread_mutex_lock(&fs->table_lock);
    n->nlookup -= count < n->nlookup ? count : n->nlookup;
    if (n->nlookup > 0) {
        pthread_mutex_unlock(&fs->table_lock);
        return;
    }
    size_t h = hash_of(n->dev, n->bino);
    for (struct vnode **pp = &fs->table[h]; *pp; pp = &(*pp)->hnext)
        if (*pp == n) {
            *pp = n->hnext;
            break;
        }
    pthread_mutex_unlock(&fs->table_lock);
    pthread_mutex_lock(&fs->loaded_lock);
    loaded_del_locked(fs, n);
    pthread_mutex_unlock(&fs->loaded_lock);
    node_unload_locked(n);
    close(n->fd);
    pthread_rwlock_destroy(&n->rw);
    pthread_mutex_destroy(&n->dlock);
    free(n);
}

static int node_stat(struct vnode *n, struct stat *st)
{
    if (fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (S_ISREG(st->st_mode)) {
        off_t sz = 0;
        pthread_rwlock_rdlock(&n->rw);
        if (n->io.dek)
            sz = n->io.size;
        else if (bc_plain_size(st->st_size, &sz) < 0)
            sz = 0;
        pthread_rwlock_unlock(&n->rw);
        st->st_size = sz;
        st->st_blocks = (sz + 511) / 512;
    }
    st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
    return 0;
}

/* ---- names --------------------------------------------------------------- */

static void integrity_failure(struct vnode *n, const char *what);

static int dir_iv(struct vnode *d, unsigned char iv[NAMES_IV])
{
    int rc = 0;
    pthread_mutex_lock(&d->dlock);
    if (!d->have_iv) {
        int dfd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            rc = -errno;
        } else {
            rc = meta_dir_iv(dfd, 1, d->iv);
            close(dfd);
        }
        if (rc == -EBADMSG) {
            integrity_failure(d, "directory IV");
            rc = -EIO;
        }
        if (rc == 0)
            d->have_iv = true;
    }
    if (rc == 0)
        memcpy(iv, d->iv, NAMES_IV);
    pthread_mutex_unlock(&d->dlock);
    return rc;
}

/* Encrypted encoding and backing name of NAME in directory D. */
static int enc_name(struct vnode *d, const char *name, char enc[NAMES_ENC_MAX],
                    char bname[NAMES_ENC_MAX], int *is_long)
{
    unsigned char iv[NAMES_IV];
    int rc;
    if (atomic_load(&d->proj->shredded) || !d->proj->loaded)
        return -EIO;
    if ((rc = dir_iv(d, iv)) < 0)
        return rc;
    if ((rc = names_encrypt(d->proj->nk, iv, name, enc)) < 0)
        return rc;
    *is_long = names_backing(enc, bname);
    return 0;
}

/* ---- open state, reading and writing --------------------------------------- */

static __thread unsigned char *tbuf;
static __thread size_t tbuf_cap;

static unsigned char *scratch(size_t need)
{
    if (need > tbuf_cap) {
        free(tbuf);
        tbuf = malloc(need);
        tbuf_cap = tbuf ? need : 0;
    }
    return tbuf;
}

static void integrity_failure(struct vnode *n, const char *what)
{
    log_warn("vault: project \"%s\": file %s: %s: integrity check failed", n->proj->name,
             n->fid_hex[0] ? n->fid_hex : "?", what);
    audit_log(0, 0, n->proj->name, "integrity", -EIO, n->fid_hex[0] ? n->fid_hex : NULL, what);
}

/* Load the open state of N (backing fd, header, DEK, size).  Caller holds
 * n->rw for writing. */
static int node_load_locked(struct vfs *fs, struct vnode *n)
{
    unsigned char hdr[BC_HDR];
    struct bc_header h;
    struct stat st;
    char pp[64];
    int rc;

    if (atomic_load(&n->proj->shredded))
        return -EIO;
    if (n->io.dek)
        return 0;
    if (n->io.fd < 0) {
        proc_path(n->fd, pp);
        n->io.fd = open(pp, O_RDWR | O_CLOEXEC);
        if (n->io.fd < 0)
            return -errno;
    }
    if (fstat(n->io.fd, &st) < 0)
        return -errno;
    if ((rc = meta_pread_full(n->io.fd, hdr, BC_HDR, 0)) < 0 ||
        (rc = bc_header_parse(hdr, BC_HDR, &h)) < 0) {
        integrity_failure(n, "header");
        return -EIO;
    }
    memcpy(n->io.file_id, h.file_id, BC_FILE_ID);
    tv_hex(h.file_id, BC_FILE_ID, n->fid_hex);
    n->owner = st.st_uid;
    unsigned char *dek = keymem_alloc();
    if (!dek)
        return -ENOMEM;
    rc = keys_unwrap(fs->keys, n->proj->name, h.kek_version, h.wrapped, dek);
    if (rc < 0) {
        keymem_free(dek);
        if (rc == -EBADMSG) {
            integrity_failure(n, "wrapped key");
        } else if (rc == -EKEYREVOKED) {
            atomic_store(&n->proj->shredded, 1);
        } else {
            log_error("vault: project \"%s\": file %s: cannot unwrap its key: %s", n->proj->name,
                      n->fid_hex, keys_error(fs->keys)[0] ? keys_error(fs->keys) : strerror(-rc));
        }
        return -EIO;
    }
    n->io.dek = dek;
    /* a journal left by a kill: undo a rewrite it interrupted */
    if (journal_open(n, false) == 0) {
        struct fio_tail t;
        rc = fio_recover(&n->io, n->io.jfd, st.st_size, 1, &t);
        if (rc == 1) {
            log_warn("vault: project \"%s\": file %s: torn tail restored from its journal "
                     "(%u block(s) from %llu, size %lld)", n->proj->name, n->fid_hex, t.count,
                     (unsigned long long)t.first, (long long)t.old_size);
            audit_log(0, 0, n->proj->name, "recover", 0, n->fid_hex, "tail");
        } else if (rc == -EBADMSG) {
            integrity_failure(n, "tail journal");
        } else if (rc < 0) {
            log_error("vault: project \"%s\": file %s: cannot apply its tail journal: %s",
                      n->proj->name, n->fid_hex, strerror(-rc));
        }
        if (fstat(n->io.fd, &st) < 0) {
            rc = -errno;
            journal_close(n, false);        /* keep the record for a later try */
            node_unload_locked(n);
            return rc;
        }
    }
    if (bc_plain_size(st.st_size, &n->io.size) < 0) {
        integrity_failure(n, "size");
        journal_close(n, false);
        node_unload_locked(n);
        return -EIO;
    }
    return 0;
}

/* Map the engine's result for N: an integrity failure is reported once and
 * becomes EIO. */
static int io_result(struct vnode *n, int rc)
{
    if (rc == -EBADMSG) {
        integrity_failure(n, "block");
        return -EIO;
    }
    return rc;
}

/* Take a reference on N's open state (loading it if needed). */
static int node_acquire(struct vfs *fs, struct vnode *n)
{
    pthread_rwlock_wrlock(&n->rw);
    int rc = node_load_locked(fs, n);
    if (rc == 0)
        n->nopen++;
    pthread_rwlock_unlock(&n->rw);
    if (rc == 0)
        loaded_add(fs, n);
    return rc;
}

static void node_release(struct vfs *fs, struct vnode *n)
{
    pthread_rwlock_wrlock(&n->rw);
    if (--n->nopen == 0) {
        n->closed_ms = tv_now_ms();
        if (fs->dek_cache_ms == 0)
            node_unload_locked(n);
    }
    pthread_rwlock_unlock(&n->rw);
}

/* ---- FUSE operations ----------------------------------------------------- */

static void vfs_init(void *userdata, struct fuse_conn_info *conn)
{
    struct vfs *fs = userdata;
    conn->max_write = 1u << 20;
    conn->max_readahead = 1u << 20;
    conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        fs->writeback = 0;
    /* we are the only writer of the backing store: no need for the kernel to
     * drop cached pages on every mtime change */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static int entry_of(struct vfs *fs, struct vnode *n, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    int rc = node_stat(n, &e->attr);
    if (rc < 0)
        return rc;
    e->ino = INO(fs, n);
    if (n->is_proj_root || n == &fs->root) {
        e->attr_timeout = ROOT_TIMEOUT;
        e->entry_timeout = ROOT_TIMEOUT;
    } else {
        e->attr_timeout = ATTR_TIMEOUT;
        e->entry_timeout = fs->entry_timeout;
    }
    return 0;
}

/* Open the backing child BNAME of D as an O_PATH fd and make it a vnode. */
static int child_node(struct vfs *fs, struct vnode *d, const char *bname, struct vnode **out)
{
    struct stat st;
    int fd = openat(d->fd, bname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
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
    *out = node_get(fs, fd, &st, d->proj, false);
    return *out ? 0 : -ENOMEM;
}

static int tail_name(const char *bname, char out[NAMES_ENC_MAX]);

/* A valid tail journal record next to file N (backing name BNAME in D),
 * left by a kill during a rewrite: load N now, which restores a torn tail, so that the size the kernel is
 * about to cache is the restored one (it would not ask again before reading
 * below a stale, larger size). */
static void recover_on_lookup(struct vfs *fs, struct vnode *d, struct vnode *n, const char *bname)
{
    char tn[NAMES_ENC_MAX];
    unsigned char magic[4];

    if (n->is_dir || tail_name(bname, tn) < 0)
        return;
    int jfd = openat(d->fd, tn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (jfd < 0)
        return;
    /* a voided record (a completed rewrite) needs no key from keyd */
    bool valid = pread(jfd, magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
                 memcmp(magic, "TVJ1", 4) == 0;
    close(jfd);
    if (!valid)
        return;
    pthread_rwlock_rdlock(&n->rw);
    bool loaded = n->io.dek != NULL;
    pthread_rwlock_unlock(&n->rw);
    if (!loaded && node_acquire(fs, n) == 0)
        node_release(fs, n);
}

static int do_lookup(struct vfs *fs, fuse_req_t req, struct vnode *d, const char *name,
                     struct fuse_entry_param *e)
{
    struct vnode *n = NULL;
    struct rq r;
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX];
    int rc, is_long;

    if (!d->is_dir)
        return -ENOTDIR;
    if (d == &fs->root) {
        if (!tv_project_name_valid(name) || !in_config(fs, name))
            return -ENOENT;
        struct vproj *p = proj_find(fs, name, true);
        if (!p)
            return -ENOMEM;
        if ((rc = proj_load(fs, p)) < 0)
            return rc;
        int fd = openat(fs->root.fd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            return -errno;
        if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0) {
            rc = -errno;
            close(fd);
            return rc;
        }
        n = node_get(fs, fd, &st, p, true);
        if (!n)
            return -ENOMEM;
        rc = entry_of(fs, n, e);
        if (rc < 0)
            node_forget(fs, n, 1);
        return rc;
    }
    rq_get(req, &r);
    if ((rc = check(fs, req, &r, d, POL_LOOKUP, 0)) < 0)
        return rc;
    if ((rc = enc_name(d, name, enc, bname, &is_long)) < 0)
        return rc;
    if ((rc = child_node(fs, d, bname, &n)) < 0)
        return rc;
    recover_on_lookup(fs, d, n, bname);
    rc = entry_of(fs, n, e);
    if (rc < 0)
        node_forget(fs, n, 1);
    return rc;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct vfs *fs = FS(req);
    struct fuse_entry_param e;
    int rc = do_lookup(fs, req, N(fs, parent), name, &e);
    if (rc == -ENOENT) {
        memset(&e, 0, sizeof e);
        fuse_reply_entry(req, &e);   /* negative entry, not cached (timeout 0) */
        return;
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct vfs *fs = FS(req);
    node_forget(fs, N(fs, ino), nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
    struct vfs *fs = FS(req);
    for (size_t i = 0; i < count; i++)
        node_forget(fs, N(fs, f[i].ino), f[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vnode *n = N(fs, ino);
    struct stat st;
    struct rq r;
    int rc = 0;

    if (n->proj && !n->is_proj_root) {
        rq_get(req, &r);
        rc = check(fs, req, &r, n, POL_LOOKUP, 0);
    }
    if (rc == 0)
        rc = node_stat(n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, n->proj && !n->is_proj_root ? ATTR_TIMEOUT : ROOT_TIMEOUT);
}

static uid_t owner_of(struct vnode *n)
{
    struct stat st;
    if (fstatat(n->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
        return (uid_t)-1;
    return st.st_uid;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vnode *n = N(fs, ino);
    struct rq r;
    char pp[64];
    int rc = 0;

    rq_get(req, &r);
    if (!n->proj || n->is_proj_root) {
        rc = -EPERM;
        goto out;
    }
    if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        rc = -EPERM;
        goto out;
    }
    if (fi) {
        struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
        /* ftruncate on a handle opened for writing: its opener's rights */
        struct rq hr = { h->uid, h->gid, h->pid, h->ngroups, { 0 } };
        memcpy(hr.groups, h->groups, sizeof hr.groups);
        rc = check(fs, NULL, &hr, n, POL_WRITE, owner_of(n));
        if (rc == 0 && !h->wr)
            rc = -EBADF;
    } else {
        rc = check(fs, req, &r, n, POL_SETATTR, owner_of(n));
    }
    if (rc < 0)
        goto out;
    proc_path(n->fd, pp);
    if ((valid & FUSE_SET_ATTR_MODE) && chmod(pp, attr->st_mode & 07777) < 0) {
        rc = -errno;
        goto out;
    }
    if (valid & FUSE_SET_ATTR_SIZE) {
        if (n->is_dir) {
            rc = -EISDIR;
            goto out;
        }
        if ((rc = node_acquire(fs, n)) < 0)
            goto out;
        pthread_rwlock_wrlock(&n->rw);
        rc = n->io.dek ? journal_ready(n) : -EIO;
        if (rc == 0)
            rc = io_result(n, fio_truncate(&n->io, attr->st_size));
        pthread_rwlock_unlock(&n->rw);
        node_release(fs, n);
        if (rc < 0)
            goto out;
    }
    if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
        struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
        if (valid & FUSE_SET_ATTR_ATIME_NOW)
            ts[0].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_ATIME)
            ts[0] = attr->st_atim;
        if (valid & FUSE_SET_ATTR_MTIME_NOW)
            ts[1].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_MTIME)
            ts[1] = attr->st_mtim;
        if (utimensat(AT_FDCWD, pp, ts, 0) < 0) {
            rc = -errno;
            goto out;
        }
    }
out:
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct stat st;
    rc = node_stat(n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    struct vfs *fs = FS(req);
    struct vnode *n = N(fs, ino);
    struct rq r;
    int rc = 0;

    if (n->proj && !(n->is_proj_root && mask == F_OK)) {
        rq_get(req, &r);
        unsigned roles = roles_of(fs, req, &r, n->proj);
        uid_t owner = n->is_dir ? 0 : owner_of(n);
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

static void reply_created_dir(fuse_req_t req, struct vfs *fs, struct vnode *d, const char *bname)
{
    struct fuse_entry_param e;
    struct vnode *n = NULL;
    int rc = child_node(fs, d, bname, &n);
    if (rc == 0 && (rc = entry_of(fs, n, &e)) < 0)
        node_forget(fs, n, 1);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct vfs *fs = FS(req);
    struct vnode *d = N(fs, parent);
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX];
    struct rq r;
    int rc, is_long;

    rq_get(req, &r);
    if (!d->proj) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if ((rc = check(fs, req, &r, d, POL_CREATE, 0)) < 0 ||
        (rc = enc_name(d, name, enc, bname, &is_long)) < 0)
        goto err;
    if (is_long && (rc = meta_long_write(d->fd, bname, enc)) < 0)
        goto err;
    if (mkdirat(d->fd, bname, (mode & 07777) | 0700) < 0) {
        rc = -errno;
        goto err;
    }
    int dfd = openat(d->fd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || (rc = meta_dir_iv_new(dfd)) < 0 || fchown(dfd, r.uid, r.gid) < 0) {
        rc = dfd < 0 ? -errno : rc;
        if (dfd >= 0)
            close(dfd);
        if (rc < 0) {
            unlinkat(d->fd, bname, AT_REMOVEDIR);
            goto err;
        }
    } else {
        close(dfd);
    }
    audit_log(r.uid, r.pid, d->proj->name, "mkdir", 0, NULL, NULL);
    reply_created_dir(req, fs, d, bname);
    return;
err:
    fuse_reply_err(req, -rc);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fuse_reply_err(req, EPERM);
}

/* If backing directory PARENT/BNAME holds nothing but metadata (names
 * starting with '.'), remove that metadata so the directory can be removed
 * or replaced; else -ENOTEMPTY. */
static int clear_empty_dir(int parent, const char *bname)
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
    if (rc == 0) {
        rewinddir(dp);
        while ((de = readdir(dp)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                unlinkat(dirfd(dp), de->d_name, 0);
    }
    closedir(dp);
    return rc;
}

/* The name of the tail journal of backing file BNAME: ".<bname>.tail". */
static int tail_name(const char *bname, char out[NAMES_ENC_MAX])
{
    return snprintf(out, NAMES_ENC_MAX, ".%s.tail", bname) < (int)NAMES_ENC_MAX ? 0 : -ENAMETOOLONG;
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
    struct vfs *fs = FS(req);
    struct vnode *d = N(fs, parent);
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX], side[NAMES_ENC_MAX];
    char fid[2 * BC_FILE_ID + 1] = "";
    struct stat st;
    struct rq r;
    int rc, is_long;

    rq_get(req, &r);
    if (!d->proj) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if ((rc = check(fs, req, &r, d, POL_LOOKUP, 0)) < 0 ||
        (rc = enc_name(d, name, enc, bname, &is_long)) < 0)
        goto out;
    if (fstatat(d->fd, bname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
        goto out;
    }
    if (dir != !!S_ISDIR(st.st_mode)) {
        rc = dir ? -ENOTDIR : -EISDIR;
        goto out;
    }
    if ((rc = check(fs, req, &r, d, dir ? POL_RMDIR : POL_UNLINK, st.st_uid)) < 0)
        goto out;
    if (dir) {
        if ((rc = clear_empty_dir(d->fd, bname)) == 0 && unlinkat(d->fd, bname, AT_REMOVEDIR) < 0)
            rc = -errno;
    } else {
        /* the audit record names the file by its ID: from the vnode when the
         * kernel knows the file (the usual case), else from the header */
        if (!node_fid(fs, &st, fid)) {
            unsigned char hdr[BC_HDR];
            struct bc_header h;
            int fd = openat(d->fd, bname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0 && meta_pread_full(fd, hdr, BC_HDR, 0) == 0 &&
                bc_header_parse(hdr, BC_HDR, &h) == 0)
                tv_hex(h.file_id, BC_FILE_ID, fid);
            if (fd >= 0)
                close(fd);
        }
        if (unlinkat(d->fd, bname, 0) < 0)
            rc = -errno;
    }
    if (rc == 0 && !dir && tail_name(bname, side) == 0)
        unlinkat(d->fd, side, 0);       /* the file's tail journal, if any */
    if (rc == 0 && is_long) {
        names_side(bname, side);
        unlinkat(d->fd, side, 0);
    }
    audit_log(r.uid, r.pid, d->proj->name, dir ? "rmdir" : "unlink", rc, fid[0] ? fid : NULL,
              NULL);
out:
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

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    struct vfs *fs = FS(req);
    struct vnode *d1 = N(fs, parent), *d2 = N(fs, newparent);
    char enc1[NAMES_ENC_MAX], b1[NAMES_ENC_MAX], enc2[NAMES_ENC_MAX], b2[NAMES_ENC_MAX];
    char side[NAMES_ENC_MAX];
    struct stat st1, st2;
    struct rq r;
    int rc, long1, long2;

    rq_get(req, &r);
    if (!d1->proj || !d2->proj) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (d1->proj != d2->proj) {
        fuse_reply_err(req, EXDEV);
        return;
    }
    if (flags & RENAME_EXCHANGE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if ((rc = check(fs, req, &r, d1, POL_LOOKUP, 0)) < 0 ||
        (rc = enc_name(d1, name, enc1, b1, &long1)) < 0 ||
        (rc = enc_name(d2, newname, enc2, b2, &long2)) < 0)
        goto out;
    if (fstatat(d1->fd, b1, &st1, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = check(fs, req, &r, d1, POL_RENAME, st1.st_uid)) < 0)
        goto out;
    if (fstatat(d2->fd, b2, &st2, AT_SYMLINK_NOFOLLOW) == 0) {
        if ((rc = check(fs, req, &r, d2, POL_RENAME, st2.st_uid)) < 0)
            goto out;
        /* replacing an empty directory: its metadata must go first */
        if (S_ISDIR(st2.st_mode) && S_ISDIR(st1.st_mode) && !(flags & RENAME_NOREPLACE) &&
            (rc = clear_empty_dir(d2->fd, b2)) < 0)
            goto out;
    }
    if (long2 && (rc = meta_long_write(d2->fd, b2, enc2)) < 0)
        goto out;
    if (renameat2(d1->fd, b1, d2->fd, b2, flags) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISREG(st1.st_mode) && !(d1 == d2 && strcmp(b1, b2) == 0)) {
        /* the tail journal follows the file; without one, a journal of the
         * file just replaced must not be taken for it */
        char t1[NAMES_ENC_MAX], t2[NAMES_ENC_MAX];
        if (tail_name(b1, t1) == 0 && tail_name(b2, t2) == 0 &&
            renameat(d1->fd, t1, d2->fd, t2) < 0)
            unlinkat(d2->fd, t2, 0);
    }
    if (long1 && !(d1 == d2 && strcmp(b1, b2) == 0)) {
        names_side(b1, side);
        unlinkat(d1->fd, side, 0);
    }
    audit_log(r.uid, r.pid, d1->proj->name, "rename", 0, NULL, NULL);
out:
    fuse_reply_err(req, -rc);
}

static struct vhandle *handle_new(struct vnode *n, struct rq *r, int flags)
{
    struct vhandle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->n = n;
    int acc = flags & O_ACCMODE;
    h->rd = acc == O_RDONLY || acc == O_RDWR;
    h->wr = acc == O_WRONLY || acc == O_RDWR;
    h->append = (flags & O_APPEND) != 0;
    h->uid = r->uid;
    h->gid = r->gid;
    h->pid = r->pid;
    h->ngroups = r->ngroups;
    if (r->ngroups > 0)
        memcpy(h->groups, r->groups, sizeof(gid_t) * (size_t)r->ngroups);
    return h;
}

/* Policy for opening N with FLAGS; audited either way by the caller. */
static int open_check(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *n, int flags)
{
    int acc = flags & O_ACCMODE, rc = 0;
    unsigned roles = roles_of(fs, req, r, n->proj);
    uid_t owner = owner_of(n);
    if (acc == O_RDONLY || acc == O_RDWR)
        rc = pol_check(roles, POL_READ, r->uid, owner);
    if (rc == 0 && (acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC)))
        rc = pol_check(roles, POL_WRITE, r->uid, owner);
    return rc;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vnode *n = N(fs, ino);
    struct vhandle *h = NULL;
    struct rq r;
    int rc;

    rq_get(req, &r);
    if (!n->proj || n->is_dir) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if ((rc = open_check(fs, req, &r, n, fi->flags)) < 0)
        goto out;
    if ((rc = node_acquire(fs, n)) < 0)
        goto out;
    if (fi->flags & O_TRUNC) {
        pthread_rwlock_wrlock(&n->rw);
        rc = n->io.dek ? journal_ready(n) : -EIO;
        if (rc == 0)
            rc = io_result(n, fio_truncate(&n->io, 0));
        pthread_rwlock_unlock(&n->rw);
    }
    if (rc == 0 && !(h = handle_new(n, &r, fi->flags)))
        rc = -ENOMEM;
    if (rc < 0) {
        node_release(fs, n);
        goto out;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->keep_cache = 1;
    fi->noflush = 1;        /* writes are not buffered here: close needs no FLUSH */
out:
    aud(&r, n, "open", rc);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vnode *d = N(fs, parent), *n = NULL;
    char enc[NAMES_ENC_MAX], bname[NAMES_ENC_MAX];
    unsigned char *dek = NULL;
    struct bc_header h;
    struct fuse_entry_param e;
    struct vhandle *vh = NULL;
    struct stat st;
    struct rq r;
    int rc, is_long, fd = -1, pfd = -1;

    rq_get(req, &r);
    if (!d->proj) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if ((rc = check(fs, req, &r, d, POL_CREATE, 0)) < 0 ||
        (rc = enc_name(d, name, enc, bname, &is_long)) < 0)
        goto out;
    if (is_long && (rc = meta_long_write(d->fd, bname, enc)) < 0)
        goto out;
    fd = openat(d->fd, bname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
    if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL)) {
        /* lost a race with another creator: open the existing file instead */
        if ((rc = do_lookup(fs, req, d, name, &e)) < 0)
            goto out;
        n = N(fs, e.ino);
        if ((rc = open_check(fs, req, &r, n, fi->flags)) < 0 ||
            (rc = node_acquire(fs, n)) < 0) {
            node_forget(fs, n, 1);
            goto out;
        }
        goto have_node;
    }
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (fchown(fd, r.uid, r.gid) < 0 && errno != EPERM)
        log_warn("vault: project \"%s\": cannot give a new file to uid %u: %s", d->proj->name,
                 (unsigned)r.uid, strerror(errno));
    if (!(dek = keymem_alloc())) {
        rc = -ENOMEM;
        goto fail_unlink;
    }
    if ((rc = keys_new_dek(fs->keys, d->proj->name, dek, h.wrapped, &h.kek_version)) < 0) {
        if (rc == -EKEYREVOKED)
            atomic_store(&d->proj->shredded, 1);
        rc = -EIO;
        goto fail_unlink;
    }
    randombytes_buf(h.file_id, sizeof h.file_id);
    struct fileio nf = { .fd = fd, .dek = dek, .project = d->proj->name };
    if ((rc = fio_init(&nf, &h)) < 0)
        goto fail_unlink;
    pfd = openat(d->fd, bname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        goto fail_unlink;
    }
    n = node_get(fs, pfd, &st, d->proj, false);
    pfd = -1;
    if (!n) {
        rc = -ENOMEM;
        goto fail_unlink;
    }
    pthread_rwlock_wrlock(&n->rw);
    node_unload_locked(n);
    n->io.fd = fd;
    fd = -1;
    n->io.dek = dek;
    dek = NULL;
    n->owner = st.st_uid;
    memcpy(n->io.file_id, h.file_id, BC_FILE_ID);
    tv_hex(h.file_id, BC_FILE_ID, n->fid_hex);
    n->io.size = 0;
    n->nopen++;
    pthread_rwlock_unlock(&n->rw);
    loaded_add(fs, n);
    if ((rc = entry_of(fs, n, &e)) < 0) {
        node_release(fs, n);
        node_forget(fs, n, 1);
        goto out;
    }
have_node:
    if (!(vh = handle_new(n, &r, fi->flags))) {
        node_release(fs, n);
        node_forget(fs, n, 1);
        rc = -ENOMEM;
        goto out;
    }
    fi->fh = (uint64_t)(uintptr_t)vh;
    fi->keep_cache = 1;
    fi->noflush = 1;
    aud(&r, n, "create", 0);
    fuse_reply_create(req, &e, fi);
    return;
fail_unlink:
    unlinkat(d->fd, bname, 0);
out:
    if (fd >= 0)
        close(fd);
    if (pfd >= 0)
        close(pfd);
    keymem_free(dek);
    if (rc != -EACCES)
        audit_log(r.uid, r.pid, d->proj->name, "create", rc, NULL, NULL);
    fuse_reply_err(req, -rc);
}

/* Re-check a handle against the current policy (SIGHUP applies to open
 * handles): reads need read rights (or, for the kernel's page fills through
 * a write handle, write rights), writes need write rights. */
static int handle_check(struct vfs *fs, struct vhandle *h, bool write)
{
    struct rq hr = { h->uid, h->gid, h->pid, h->ngroups, { 0 } };
    if (h->ngroups > 0)
        memcpy(hr.groups, h->groups, sizeof(gid_t) * (size_t)h->ngroups);
    unsigned roles = roles_of(fs, NULL, &hr, h->n->proj);
    uid_t owner = h->n->owner;      /* loaded while a handle is open; never changes */
    int rc;
    if (write || !h->rd)
        rc = h->wr ? pol_check(roles, POL_WRITE, h->uid, owner) : -EBADF;
    else
        rc = pol_check(roles, POL_READ, h->uid, owner);
    if (rc == -EACCES)
        aud(&hr, h->n, write ? "write" : "read", rc);
    return rc;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    struct vnode *n = h->n;
    int rc;

    if ((rc = handle_check(fs, h, false)) < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    pthread_rwlock_rdlock(&n->rw);
    if (!n->io.dek || atomic_load(&n->proj->shredded)) {
        rc = -EIO;
        goto out;
    }
    unsigned char *buf = scratch(size);
    size_t got = 0;
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = io_result(n, fio_read(&n->io, buf, size, off, &got))) < 0) {
        sodium_memzero(buf, size);
        goto out;
    }
    pthread_rwlock_unlock(&n->rw);
    fuse_reply_buf(req, (const char *)buf, got);
    sodium_memzero(buf, got);
    return;
out:
    pthread_rwlock_unlock(&n->rw);
    if (rc == -EIO)
        audit_log(h->uid, h->pid, n->proj->name, "read", rc, n->fid_hex, NULL);
    fuse_reply_err(req, -rc);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    struct vnode *n = h->n;
    int rc;

    if ((rc = handle_check(fs, h, true)) < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    pthread_rwlock_wrlock(&n->rw);
    if (!n->io.dek || atomic_load(&n->proj->shredded))
        rc = -EIO;
    else if ((rc = journal_ready(n)) == 0)
        rc = io_result(n, fio_write(&n->io, buf, size,
                                    (h->append && !fs->writeback) ? n->io.size : off));
    pthread_rwlock_unlock(&n->rw);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    node_release(fs, h->n);
    free(h);
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct vhandle *h = (struct vhandle *)(uintptr_t)fi->fh;
    int rc = 0;
    pthread_rwlock_rdlock(&h->n->rw);
    if (h->n->io.fd >= 0 && (datasync ? fdatasync(h->n->io.fd) : fsync(h->n->io.fd)) < 0)
        rc = errno;
    pthread_rwlock_unlock(&h->n->rw);
    fuse_reply_err(req, rc);
}

static void dh_free(struct dhandle *dh)
{
    if (!dh)
        return;
    for (size_t i = 0; i < dh->n; i++)
        free(dh->e[i].name);
    free(dh->e);
    free(dh);
}

static int dh_add(struct dhandle *dh, size_t *cap, const char *name, ino_t ino, unsigned type)
{
    if (dh->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        struct dent *ne = realloc(dh->e, nc * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        dh->e = ne;
        *cap = nc;
    }
    if (!(dh->e[dh->n].name = strdup(name)))
        return -ENOMEM;
    dh->e[dh->n].ino = ino;
    dh->e[dh->n].type = type;
    dh->n++;
    return 0;
}

/* Collect the decrypted listing of directory D. */
static int list_dir(struct vfs *fs, struct vnode *d, struct dhandle *dh)
{
    size_t cap = 0;
    int rc = 0;

    if ((rc = dh_add(dh, &cap, ".", d->bino, DT_DIR)) < 0 ||
        (rc = dh_add(dh, &cap, "..", 1, DT_DIR)) < 0)
        return rc;
    if (d == &fs->root) {
        pthread_rwlock_rdlock(&fs->cfg_lock);
        size_t np = fs->cfg->n_projects;
        char (*names)[TV_PROJECT_NAME_MAX + 1] = calloc(np ? np : 1, sizeof *names);
        for (size_t i = 0; names && i < np; i++)
            snprintf(names[i], sizeof names[i], "%s", fs->cfg->projects[i].name);
        pthread_rwlock_unlock(&fs->cfg_lock);
        if (!names)
            return -ENOMEM;
        for (size_t i = 0; i < np && rc == 0; i++) {
            struct vproj *p = proj_find(fs, names[i], true);
            struct stat st;
            if (p && proj_load(fs, p) == 0 &&
                fstatat(fs->root.fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
                rc = dh_add(dh, &cap, names[i], st.st_ino, DT_DIR);
        }
        free(names);
        return rc;
    }
    unsigned char iv[NAMES_IV];
    char enc[NAMES_ENC_MAX], plain[NAMES_PLAIN_MAX + 1];
    if ((rc = dir_iv(d, iv)) < 0)
        return rc;
    int dfd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
                integrity_failure(d, "long name");
                continue;
            }
            e = enc;
        }
        if (names_decrypt(d->proj->nk, iv, e, plain) < 0) {
            integrity_failure(d, "name");
            continue;
        }
        unsigned type = de->d_type == DT_DIR ? DT_DIR : DT_REG;
        rc = dh_add(dh, &cap, plain, de->d_ino, type);
        sodium_memzero(plain, sizeof plain);
    }
    closedir(dp);
    return rc;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vnode *d = N(fs, ino);
    struct dhandle *dh = NULL;
    struct rq r;
    int rc = 0;

    if (d->proj) {
        rq_get(req, &r);
        if ((rc = check(fs, req, &r, d, POL_LIST, 0)) < 0)
            goto out;
        if (atomic_load(&d->proj->shredded) || !d->proj->loaded) {
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
    dh_free((struct dhandle *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct vfs *fs = FS(req);
    struct vnode *d = N(fs, ino);
    int rc = 0, fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        rc = errno;
    if (fd >= 0)
        close(fd);
    fuse_reply_err(req, rc);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct vfs *fs = FS(req);
    struct statvfs sv;
    if (fstatvfs(fs->root_fd, &sv) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_namemax = NAMES_PLAIN_MAX;
    fuse_reply_statfs(req, &sv);
}

/* The file ID from a loaded vnode or the backing header. */
static int file_id_of(struct vnode *n, char hex[2 * BC_FILE_ID + 1])
{
    if (n->fid_hex[0]) {
        memcpy(hex, n->fid_hex, sizeof n->fid_hex);
        return 0;
    }
    unsigned char hdr[BC_HDR];
    struct bc_header h;
    char pp[64];
    proc_path(n->fd, pp);
    int fd = open(pp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = meta_pread_full(fd, hdr, BC_HDR, 0);
    close(fd);
    if (rc < 0 || bc_header_parse(hdr, BC_HDR, &h) < 0)
        return -EIO;
    tv_hex(h.file_id, BC_FILE_ID, hex);
    return 0;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct vfs *fs = FS(req);
    struct vnode *n = N(fs, ino);
    char hex[2 * BC_FILE_ID + 1];
    struct rq r;
    int rc;

    if (!n->proj || n->is_dir || strcmp(name, XATTR_FILE_ID) != 0) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    rq_get(req, &r);
    if ((rc = check(fs, req, &r, n, POL_LOOKUP, 0)) < 0 || (rc = file_id_of(n, hex)) < 0) {
        fuse_reply_err(req, -rc);
        return;
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
    struct vfs *fs = FS(req);
    struct vnode *n = N(fs, ino);
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
    fuse_reply_err(req, strcmp(name, XATTR_FILE_ID) == 0 ? EPERM : ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    fuse_reply_err(req, strcmp(name, XATTR_FILE_ID) == 0 ? EPERM : ENOTSUP);
}

static const struct fuse_lowlevel_ops ops = {
    .init = vfs_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .access = op_access,
    .mkdir = op_mkdir,
    .mknod = op_mknod,
    .symlink = op_symlink,
    .link = op_link,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
};

const struct fuse_lowlevel_ops *vfs_ops(void)
{
    return &ops;
}

/* ---- lifecycle, reload, shred, reaper ------------------------------------ */

struct vfs *vfs_new(struct tv_config *cfg, struct keys *keys, const char *backing, int writeback)
{
    struct vfs *fs = calloc(1, sizeof *fs);
    struct stat st;
    if (!fs)
        return NULL;
    pthread_rwlock_init(&fs->cfg_lock, NULL);
    pthread_mutex_init(&fs->table_lock, NULL);
    pthread_mutex_init(&fs->proj_lock, NULL);
    pthread_mutex_init(&fs->loaded_lock, NULL);
    fs->cfg = cfg;
    fs->keys = keys;
    fs->writeback = writeback;
    fs->dek_cache_ms = cfg->vault.dek_cache_seconds * 1000;
    node_init(&fs->root);
    fs->root.is_dir = true;
    fs->root_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fs->root.fd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fs->root_fd < 0 || fs->root.fd < 0 || fstat(fs->root.fd, &st) < 0) {
        log_error("vault: backing directory \"%s\": %s", backing, strerror(errno));
        vfs_free(fs);
        return NULL;
    }
    fs->root.bino = st.st_ino;
    fs->root.dev = st.st_dev;
    return fs;
}

void vfs_free(struct vfs *fs)
{
    if (!fs)
        return;
    for (size_t h = 0; h < HASH_BUCKETS; h++) {
        struct vnode *n = fs->table[h], *next;
        for (; n; n = next) {
            next = n->hnext;
            node_unload_locked(n);
            close(n->fd);
            free(n);
        }
    }
    for (int i = 0; i < fs->nprojs; i++) {
        sodium_free(fs->projs[i]->nk);
        free(fs->projs[i]);
    }
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    if (fs->root.fd >= 0)
        close(fs->root.fd);
    tv_config_free(fs->cfg);
    free(fs);
}

void vfs_wipe_keys(struct vfs *fs)
{
    pthread_mutex_lock(&fs->loaded_lock);
    for (struct vnode *v = fs->loaded; v; v = v->lnext) {
        pthread_rwlock_wrlock(&v->rw);
        keymem_free(v->io.dek);
        v->io.dek = NULL;
        /* the session is over: no rewrite is in flight, and a journal left
         * at rest would only hand out older blocks (docs/THREAT_MODEL.md) */
        journal_close(v, true);
        pthread_rwlock_unlock(&v->rw);
    }
    pthread_mutex_unlock(&fs->loaded_lock);
    pthread_mutex_lock(&fs->proj_lock);
    for (int i = 0; i < fs->nprojs; i++) {
        struct vproj *p = fs->projs[i];
        atomic_store(&p->shredded, 1);      /* nothing may load keys any more */
        pthread_mutex_lock(&p->lock);
        if (p->nk)
            sodium_memzero(p->nk, sizeof *p->nk);
        pthread_mutex_unlock(&p->lock);
        keys_purge(fs->keys, p->name);
    }
    pthread_mutex_unlock(&fs->proj_lock);
}

void vfs_set_entry_timeout(struct vfs *fs, double seconds)
{
    fs->entry_timeout = seconds;
}

void vfs_set_session(struct vfs *fs, struct fuse_session *se)
{
    fs->se = se;
}

/* Drop the kernel's cached pages of every loaded file (of PROJ, or all), so
 * the next read comes to us and meets the current policy / key state. */
static void invalidate_loaded(struct vfs *fs, struct vproj *proj)
{
    size_t cap = 64, n = 0;
    fuse_ino_t *inos = malloc(cap * sizeof *inos);
    pthread_mutex_lock(&fs->loaded_lock);
    for (struct vnode *v = fs->loaded; v && inos; v = v->lnext) {
        if (proj && v->proj != proj)
            continue;
        if (n == cap) {
            fuse_ino_t *ni = realloc(inos, 2 * cap * sizeof *ni);
            if (!ni)
                break;
            inos = ni;
            cap *= 2;
        }
        inos[n++] = INO(fs, v);
    }
    pthread_mutex_unlock(&fs->loaded_lock);
    /* outside the lock: invalidation may make the kernel write back dirty
     * pages, which comes back to us as write requests */
    for (size_t i = 0; fs->se && i < n; i++)
        fuse_lowlevel_notify_inval_inode(fs->se, inos[i], 0, 0);
    free(inos);
}

void vfs_reload(struct vfs *fs, struct tv_config *newcfg)
{
    pthread_rwlock_wrlock(&fs->cfg_lock);
    struct tv_config *old = fs->cfg;
    fs->cfg = newcfg;
    fs->dek_cache_ms = newcfg->vault.dek_cache_seconds * 1000;
    pthread_rwlock_unlock(&fs->cfg_lock);
    tv_config_free(old);
    if (audit_reopen(newcfg->vault.audit_log) < 0)
        log_error("vault: audit log \"%s\": cannot reopen: %s", newcfg->vault.audit_log,
                  strerror(errno));
    invalidate_loaded(fs, NULL);
    log_info("vault: configuration reloaded; policy applies to open files from now on");
}

static void purge_project(struct vfs *fs, struct vproj *p);

/* After (re)subscribing: a SHRED sent while we were not listening must still
 * purge.  Ask keyd to unwrap each loaded project's name key; EKEYREVOKED
 * means the project is gone. */
static void resync(struct vfs *fs)
{
    unsigned char *key = keymem_alloc();
    if (!key)
        return;
    pthread_mutex_lock(&fs->proj_lock);
    int n = fs->nprojs;
    struct vproj *list[MAX_PROJECTS];
    memcpy(list, fs->projs, sizeof(list[0]) * (size_t)n);
    pthread_mutex_unlock(&fs->proj_lock);
    for (int i = 0; i < n; i++) {
        if (!list[i]->loaded || atomic_load(&list[i]->shredded))
            continue;
        int dfd = openat(fs->root.fd, list[i]->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            continue;
        if (meta_project_key(dfd, fs->keys, list[i]->name, 0, key) == -EKEYREVOKED) {
            log_warn("vault: project \"%s\" was shredded while the event subscription was down",
                     list[i]->name);
            purge_project(fs, list[i]);
        }
        close(dfd);
    }
    keymem_free(key);
}

/* SHRED: from now on every file of PROJECT fails with EIO, open ones too. */
static void on_event(void *arg, int type, const char *project, uint32_t version)
{
    struct vfs *fs = arg;
    if (type == KEYS_EV_RESYNC) {
        resync(fs);
        return;
    }
    if (type != 1 /* KEYD_EV_SHRED */)
        return;
    struct vproj *p = proj_find(fs, project, false);
    log_warn("vault: project \"%s\" was shredded: purging its keys", project);
    if (p)
        purge_project(fs, p);
    else
        audit_log(0, 0, project, "shred", 0, NULL, NULL);
}

/* Wipe every key of P held by this process and make its files fail. */
static void purge_project(struct vfs *fs, struct vproj *p)
{
    audit_log(0, 0, p->name, "shred", 0, NULL, NULL);
    keys_purge(fs->keys, p->name);
    atomic_store(&p->shredded, 1);
    pthread_mutex_lock(&fs->loaded_lock);
    for (struct vnode *v = fs->loaded; v; v = v->lnext) {
        if (v->proj != p)
            continue;
        pthread_rwlock_wrlock(&v->rw);
        if (v->io.dek) {
            keymem_free(v->io.dek);
            v->io.dek = NULL;
        }
        pthread_rwlock_unlock(&v->rw);
    }
    pthread_mutex_unlock(&fs->loaded_lock);
    pthread_mutex_lock(&p->lock);
    if (p->nk)
        sodium_memzero(p->nk, sizeof *p->nk);
    pthread_mutex_unlock(&p->lock);
    invalidate_loaded(fs, p);
}

/* Wipe DEKs of files closed longer than dek_cache_seconds ago, and keep at
 * most DEK_CACHE_MAX closed files' DEKs (the oldest go first). */
#define DEK_CACHE_MAX 4096
static void *reaper_main(void *arg)
{
    struct vfs *fs = arg;
    for (;;) {
        sleep(1);
        uint64_t now = tv_now_ms(), cutoff = 0;
        unsigned closed = 0;
        pthread_mutex_lock(&fs->loaded_lock);
        for (int pass = 0; pass < 2; pass++) {
            struct vnode *v = fs->loaded, *next;
            for (; v; v = next) {
                next = v->lnext;
                if (pthread_rwlock_trywrlock(&v->rw) != 0)
                    continue;
                if (v->io.dek && atomic_load(&v->proj->shredded)) {
                    keymem_free(v->io.dek);        /* found shredded by a failed unwrap */
                    v->io.dek = NULL;
                }
                if (v->nopen == 0 && (now - v->closed_ms >= (uint64_t)fs->dek_cache_ms ||
                                      (pass == 1 && v->closed_ms <= cutoff))) {
                    node_unload_locked(v);
                    loaded_del_locked(fs, v);
                } else if (v->nopen == 0 && pass == 0) {
                    closed++;
                }
                pthread_rwlock_unlock(&v->rw);
            }
            if (closed <= DEK_CACHE_MAX)
                break;
            /* over the cap: drop those closed in the older half of the window */
            cutoff = now - (uint64_t)fs->dek_cache_ms / 2;
        }
        pthread_mutex_unlock(&fs->loaded_lock);
    }
    return NULL;
}

int vfs_start_threads(struct vfs *fs)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, reaper_main, fs);
    if (rc != 0)
        return -rc;
    pthread_detach(t);
    return keys_start_events(fs->keys, on_event, fs);
}
