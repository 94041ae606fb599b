/*
 * vnode.c - the vnode table, open-state references and the reaper (see
 * vnode.h for the lock order).
 *
 * Layout: the hash table (get, forget, file IDs), the loaded list, open
 * state (acquire, adopt, release, stat), directory IVs, purge and the
 * reaper thread.
 */
#include "config.h"
#include "vault/vnode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vault/audit.h"
#include "vault/fileio.h"
#include "vault/project.h"

/* The vnode hash table starts at 4,096 buckets and doubles whenever it
 * holds twice as many vnodes as buckets, so a lookup stays O(1) however many
 * files the kernel remembers (a fixed 4,096 made chains of ~250 at a million
 * files: creates and stats at 0.4x their small-vault rate). */
#define HASH_BITS_MIN 12
#define HASH_BITS_MAX 26

struct vtable {
    struct keys *keys;
    struct vnode root;
    atomic_int dek_cache_ms;
    /* descriptors (fd_lock) */
    pthread_mutex_t fd_lock;
    struct vnode *lru_head, *lru_tail;  /* the clock ring, newest first; the
                                           hand is at the tail */
    size_t nfds;                        /* vnodes' open descriptors */
    size_t fd_limit;                    /* 0: none */
    bool reopen;                        /* open_by_handle_at works here */
    int mount_fd;                       /* the backing root opened O_RDONLY: the
                                           mount for open_by_handle_at (O_PATH
                                           does not do) */
    unsigned closed_max;                /* closed files kept loaded */
    atomic_uint nclosed;                /* ... how many are now */
    atomic_uint nparked;                /* closed files keeping only their DEK */
    pthread_mutex_t table_lock;
    struct vnode **table;               /* 1 << bits buckets */
    unsigned bits;
    size_t count;
    pthread_mutex_t loaded_lock;
    struct vnode *loaded;
    /* the reaper */
    pthread_t reaper;
    bool reaper_running;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
};

static size_t hash_bits(dev_t dev, ino_t ino, unsigned bits)
{
    /* Fibonacci hashing: the product's high bits mix every bit of the key */
    return (size_t)((((uint64_t)ino ^ ((uint64_t)dev << 40)) * 0x9E3779B97F4A7C15ull) >>
                    (64 - bits));
}

#define hash_of(dev, ino) hash_bits((dev), (ino), vt->bits)

/* Double the table when it is twice as full as it has buckets.  Called with
 * table_lock held; if the bigger array cannot be had, the table stays as it
 * is (slower, not wrong). */
static void grow_locked(struct vtable *vt)
{
    if (vt->count <= (2ul << vt->bits) || vt->bits >= HASH_BITS_MAX)
        return;
    unsigned bits = vt->bits + 1;
    struct vnode **t = calloc((size_t)1 << bits, sizeof *t);
    if (!t)
        return;
    for (size_t h = 0; h < (size_t)1 << vt->bits; h++)
        for (struct vnode *n = vt->table[h], *next; n; n = next) {
            next = n->hnext;
            size_t nh = hash_bits(n->dev, n->bino, bits);
            n->hnext = t[nh];
            t[nh] = n;
        }
    free(vt->table);
    vt->table = t;
    vt->bits = bits;
}

/* ---- descriptors ------------------------------------------------------------ */

static void lru_del_locked(struct vtable *vt, struct vnode *n)
{
    if (!n->on_lru)
        return;
    if (n->fprev)
        n->fprev->fnext = n->fnext;
    else
        vt->lru_head = n->fnext;
    if (n->fnext)
        n->fnext->fprev = n->fprev;
    else
        vt->lru_tail = n->fprev;
    n->fnext = n->fprev = NULL;
    n->on_lru = false;
}

/* Put N (open, reopenable) on the ring at the head. */
static void lru_push_locked(struct vtable *vt, struct vnode *n)
{
    if (n->on_lru || n->fd < 0 || !n->fh || !vt->reopen)
        return;
    n->fprev = NULL;
    n->fnext = vt->lru_head;
    if (vt->lru_head)
        vt->lru_head->fprev = n;
    vt->lru_head = n;
    if (!vt->lru_tail)
        vt->lru_tail = n;
    n->on_lru = true;
}

#define PINS_EVICTING (-1)

/* Close unused descriptors down to the limit: the hand at the tail of the
 * ring gives one used since it last passed a second chance and skips a
 * pinned one, both to the head; it stops after two turns without a victim
 * (everything pinned: the excess is closed at a later call). */
static void evict_locked(struct vtable *vt)
{
    size_t steps = 2 * vt->nfds + 2;
    while (vt->fd_limit && vt->nfds > vt->fd_limit && vt->lru_tail && steps--) {
        struct vnode *n = vt->lru_tail;
        int zero = 0;
        lru_del_locked(vt, n);
        if (atomic_exchange_explicit(&n->ref, false, memory_order_relaxed) ||
            !atomic_compare_exchange_strong(&n->pins, &zero, PINS_EVICTING)) {
            lru_push_locked(vt, n);
            continue;
        }
        close(n->fd);
        n->fd = -1;
        vt->nfds--;
        atomic_store_explicit(&n->pins, 0, memory_order_release);
    }
}

/* A file handle for the backing object behind FD, or NULL. */
static struct file_handle *handle_of(int fd)
{
    struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
    int mount_id;
    if (!fh)
        return NULL;
    fh->handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) < 0) {
        free(fh);
        return NULL;
    }
    struct file_handle *small = realloc(fh, sizeof *fh + fh->handle_bytes);
    return small ? small : fh;
}

/* Pin N's descriptor if it is open: no lock (see vnode.h). */
static int fd_pin_fast(struct vnode *n)
{
    int p = atomic_load_explicit(&n->pins, memory_order_relaxed);
    while (p >= 0)
        if (atomic_compare_exchange_weak_explicit(&n->pins, &p, p + 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
            int fd = atomic_load_explicit(&n->fd, memory_order_relaxed);
            if (fd >= 0)
                return fd;
            atomic_fetch_sub_explicit(&n->pins, 1, memory_order_release);   /* closed */
            break;
        }
    return -1;
}

int vn_fd_get(struct vtable *vt, struct vnode *n)
{
    int fd = fd_pin_fast(n);
    if (fd >= 0)
        return fd;
    /* closed, or being closed: reopen it from its handle (a system call,
     * outside the lock), unless another thread has meanwhile */
    pthread_mutex_lock(&vt->fd_lock);
    if (n->fd >= 0) {
        atomic_fetch_add(&n->pins, 1);      /* no eviction runs: it needs the lock */
        fd = n->fd;
        pthread_mutex_unlock(&vt->fd_lock);
        return fd;
    }
    pthread_mutex_unlock(&vt->fd_lock);
    int nfd = n->fh ? open_by_handle_at(vt->mount_fd, n->fh, O_PATH | O_CLOEXEC) : -1;
    if (nfd < 0)
        return errno == ESTALE || !n->fh ? -ENOENT : -errno;
    pthread_mutex_lock(&vt->fd_lock);
    if (n->fd < 0) {
        n->fd = nfd;
        vt->nfds++;
        lru_push_locked(vt, n);
        nfd = -1;
    }
    atomic_fetch_add(&n->pins, 1);
    fd = n->fd;
    evict_locked(vt);                       /* never N: it is pinned */
    pthread_mutex_unlock(&vt->fd_lock);
    if (nfd >= 0)
        close(nfd);                         /* another thread reopened it meanwhile */
    return fd;
}

void vn_fd_put(struct vtable *vt, struct vnode *n)
{
    (void)vt;
    /* the reference bit first: the hand may take N as soon as it is unpinned */
    if (!atomic_load_explicit(&n->ref, memory_order_relaxed))
        atomic_store_explicit(&n->ref, true, memory_order_relaxed);
    int p = atomic_load_explicit(&n->pins, memory_order_relaxed);
    while (p > 0 && !atomic_compare_exchange_weak_explicit(&n->pins, &p, p - 1,
                                                           memory_order_release,
                                                           memory_order_relaxed))
        ;
}

size_t vt_open_fds(struct vtable *vt)
{
    pthread_mutex_lock(&vt->fd_lock);
    size_t n = vt->nfds;
    pthread_mutex_unlock(&vt->fd_lock);
    return n;
}

/* ---- the hash table ------------------------------------------------------- */

static void node_init(struct vnode *n)
{
    pthread_mutex_init(&n->dlock, NULL);
    pthread_rwlock_init(&n->rw, NULL);
}

/* Drop N's open state and the descriptor pin it held; caller holds n->rw
 * for writing (or is the last user). */
static void unload_locked(struct vtable *vt, struct vnode *n)
{
    bool parked = n->parked;
    if (n->cached) {
        n->cached = false;
        atomic_fetch_sub(&vt->nclosed, 1);
    }
    if (n->parked) {
        n->parked = false;
        atomic_fetch_sub(&vt->nparked, 1);
    }
    if (!n->io)
        return;
    fio_close(n->io, true);         /* nothing is in flight: its journal can go */
    n->io = NULL;
    if (!parked)
        vn_fd_put(vt, n);           /* a parked state holds no descriptor pin */
}

/* A parked state, wanted again: its descriptors back (and the pin). */
static int unpark_locked(struct vtable *vt, struct vnode *n)
{
    int fd = vn_fd_get(vt, n);
    int rc = fd < 0 ? fd : fio_unpark(n->io, fd);
    n->parked = false;
    atomic_fetch_sub(&vt->nparked, 1);
    if (rc < 0) {
        if (fd >= 0)
            vn_fd_put(vt, n);
        fio_close(n->io, false);
        n->io = NULL;
    }
    return rc;
}

static void node_free(struct vtable *vt, struct vnode *n)
{
    unload_locked(vt, n);
    pthread_mutex_lock(&vt->fd_lock);
    lru_del_locked(vt, n);
    if (n->fd >= 0) {
        close(n->fd);
        vt->nfds--;
    }
    pthread_mutex_unlock(&vt->fd_lock);
    free(n->fh);
    pthread_rwlock_destroy(&n->rw);
    pthread_mutex_destroy(&n->dlock);
    free(n);
}

struct vtable *vt_new(int rootfd, struct keys *keys, int dek_cache_ms, size_t fd_limit)
{
    struct stat st;
    struct vtable *vt = calloc(1, sizeof *vt);
    if (vt) {
        vt->bits = HASH_BITS_MIN;
        vt->table = calloc((size_t)1 << vt->bits, sizeof *vt->table);
    }
    if (!vt || !vt->table || fstatat(rootfd, "", &st, AT_EMPTY_PATH) < 0) {
        if (vt)
            free(vt->table);
        free(vt);
        close(rootfd);
        return NULL;
    }
    vt->keys = keys;
    atomic_store(&vt->dek_cache_ms, dek_cache_ms);
    pthread_mutex_init(&vt->table_lock, NULL);
    pthread_mutex_init(&vt->loaded_lock, NULL);
    pthread_mutex_init(&vt->fd_lock, NULL);
    pthread_mutex_init(&vt->stop_lock, NULL);
    pthread_cond_init(&vt->stop_cond, NULL);
    node_init(&vt->root);
    vt->root.fd = rootfd;
    vt->root.dev = st.st_dev;
    vt->root.bino = st.st_ino;
    vt->root.is_dir = true;
    vt->root.pins = 1;                  /* the root's descriptor is never closed */
    vt->fd_limit = fd_limit;
    vt->closed_max = VT_CLOSED_MAX;
    if (fd_limit && fd_limit / 8 < vt->closed_max)
        vt->closed_max = fd_limit / 8 > 16 ? (unsigned)(fd_limit / 8) : 16;
    /* can descriptors be closed and reopened from a handle here? */
    struct file_handle *fh = handle_of(rootfd);
    vt->mount_fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int probe = fh && vt->mount_fd >= 0 ? open_by_handle_at(vt->mount_fd, fh, O_PATH | O_CLOEXEC)
                                        : -1;
    vt->reopen = probe >= 0;
    if (probe >= 0)
        close(probe);
    else if (fd_limit)
        log_warn("vault: descriptors are not bounded: reopening backing files by handle "
                 "failed (%s; needs CAP_DAC_READ_SEARCH and a backing filesystem with file "
                 "handles); every file the kernel remembers keeps one open",
                 fh ? strerror(errno) : "no file handles");
    free(fh);
    return vt;
}

void vt_free(struct vtable *vt)
{
    if (!vt)
        return;
    vt_stop_reaper(vt);
    for (size_t h = 0; vt->table && h < (size_t)1 << vt->bits; h++) {
        struct vnode *n = vt->table[h], *next;
        for (; n; n = next) {
            next = n->hnext;
            node_free(vt, n);
        }
    }
    close(vt->root.fd);
    if (vt->mount_fd >= 0)
        close(vt->mount_fd);
    pthread_rwlock_destroy(&vt->root.rw);
    pthread_mutex_destroy(&vt->root.dlock);
    pthread_mutex_destroy(&vt->table_lock);
    free(vt->table);
    pthread_mutex_destroy(&vt->loaded_lock);
    pthread_mutex_destroy(&vt->fd_lock);
    pthread_mutex_destroy(&vt->stop_lock);
    pthread_cond_destroy(&vt->stop_cond);
    free(vt);
}

struct vnode *vt_root(struct vtable *vt)
{
    return &vt->root;
}

void vt_set_cache_ms(struct vtable *vt, int ms)
{
    atomic_store(&vt->dek_cache_ms, ms);
}

size_t vt_count(struct vtable *vt)
{
    pthread_mutex_lock(&vt->table_lock);
    size_t n = vt->count;
    pthread_mutex_unlock(&vt->table_lock);
    return n;
}

struct vnode *vt_get(struct vtable *vt, int fd, const struct stat *st, struct vproj *proj,
                     bool proj_root)
{
    struct vnode *n;

    /* the table may grow whenever table_lock is free: hash under the lock */
    pthread_mutex_lock(&vt->table_lock);
    for (n = vt->table[hash_of(st->st_dev, st->st_ino)]; n; n = n->hnext)
        if (n->dev == st->st_dev && n->bino == st->st_ino) {
            n->nlookup++;
            atomic_store_explicit(&n->mode, st->st_mode & 07777, memory_order_relaxed);
            pthread_mutex_unlock(&vt->table_lock);
            if (n->fd < 0) {
                pthread_mutex_lock(&vt->fd_lock);
                if (n->fd < 0) {        /* closed earlier: take this one */
                    n->fd = fd;
                    vt->nfds++;
                    lru_push_locked(vt, n);
                    fd = -1;
                    evict_locked(vt);
                }
                pthread_mutex_unlock(&vt->fd_lock);
            }
            if (fd >= 0)
                close(fd);
            return n;
        }
    pthread_mutex_unlock(&vt->table_lock);
    /* a new vnode: its handle first, outside the lock (a system call) */
    n = calloc(1, sizeof *n);
    if (!n) {
        close(fd);
        return NULL;
    }
    node_init(n);
    n->dev = st->st_dev;
    n->bino = st->st_ino;
    n->fh = vt->reopen ? handle_of(fd) : NULL;
    n->fd = fd;
    n->nlookup = 1;
    n->proj = proj;
    n->is_dir = S_ISDIR(st->st_mode);
    n->is_proj_root = proj_root;
    n->mode = st->st_mode & 07777;
    pthread_mutex_lock(&vt->table_lock);
    size_t h = hash_of(st->st_dev, st->st_ino);
    for (struct vnode *o = vt->table[h]; o; o = o->hnext)
        if (o->dev == st->st_dev && o->bino == st->st_ino) {
            /* another thread inserted it meanwhile */
            o->nlookup++;
            pthread_mutex_unlock(&vt->table_lock);
            free(n->fh);
            close(fd);
            pthread_rwlock_destroy(&n->rw);
            pthread_mutex_destroy(&n->dlock);
            free(n);
            return o;
        }
    n->hnext = vt->table[h];
    vt->table[h] = n;
    vt->count++;
    grow_locked(vt);
    pthread_mutex_unlock(&vt->table_lock);
    pthread_mutex_lock(&vt->fd_lock);
    vt->nfds++;
    lru_push_locked(vt, n);
    evict_locked(vt);
    pthread_mutex_unlock(&vt->fd_lock);
    return n;
}

struct vnode *vt_get_known(struct vtable *vt, dev_t dev, ino_t ino)
{
    struct vnode *n = NULL;
    if (!dev && !ino)
        return NULL;
    pthread_mutex_lock(&vt->table_lock);
    for (n = vt->table[hash_of(dev, ino)]; n; n = n->hnext)
        if (n->dev == dev && n->bino == ino) {
            n->nlookup++;
            break;
        }
    pthread_mutex_unlock(&vt->table_lock);
    return n;
}

static void loaded_del_locked(struct vtable *vt, struct vnode *n)
{
    if (!n->on_list)
        return;
    if (n->lprev)
        n->lprev->lnext = n->lnext;
    else
        vt->loaded = n->lnext;
    if (n->lnext)
        n->lnext->lprev = n->lprev;
    n->on_list = false;
}

void vt_forget(struct vtable *vt, struct vnode *n, uint64_t count)
{
    if (n == &vt->root)
        return;
    pthread_mutex_lock(&vt->table_lock);
    n->nlookup -= count < n->nlookup ? count : n->nlookup;
    if (n->nlookup > 0) {
        pthread_mutex_unlock(&vt->table_lock);
        return;
    }
    for (struct vnode **pp = &vt->table[hash_of(n->dev, n->bino)]; *pp; pp = &(*pp)->hnext)
        if (*pp == n) {
            *pp = n->hnext;
            break;
        }
    vt->count--;
    pthread_mutex_unlock(&vt->table_lock);
    /* the kernel forgets an inode only once no handle is open on it, and no
     * other thread can reach N any more: the lock is only for the list */
    pthread_mutex_lock(&vt->loaded_lock);
    loaded_del_locked(vt, n);
    pthread_mutex_unlock(&vt->loaded_lock);
    node_free(vt, n);
}

bool vt_file_id(struct vtable *vt, const struct stat *st, char hex[2 * BC_FILE_ID + 1])
{
    bool found = false;
    pthread_mutex_lock(&vt->table_lock);
    for (struct vnode *n = vt->table[hash_of(st->st_dev, st->st_ino)]; n; n = n->hnext)
        if (n->dev == st->st_dev && n->bino == st->st_ino && n->fid_hex[0]) {
            memcpy(hex, n->fid_hex, sizeof n->fid_hex);
            found = true;
            break;
        }
    pthread_mutex_unlock(&vt->table_lock);
    return found;
}

/* ---- open state ----------------------------------------------------------- */

static void loaded_add(struct vtable *vt, struct vnode *n)
{
    pthread_mutex_lock(&vt->loaded_lock);
    if (!n->on_list) {
        n->lprev = NULL;
        n->lnext = vt->loaded;
        if (vt->loaded)
            vt->loaded->lprev = n;
        vt->loaded = n;
        n->on_list = true;
    }
    pthread_mutex_unlock(&vt->loaded_lock);
}

void vn_integrity(const struct vnode *n, const char *what)
{
    const char *fid = n->fid_hex[0] ? n->fid_hex : NULL;
    log_warn("vault: project \"%s\": file %s: %s: integrity check failed", n->proj->name,
             fid ? fid : "?", what);
    audit_log(0, 0, n->proj->name, "integrity", -EIO, fid, what);
}

/* Publish the file ID of N (readers take either lock). */
static void set_fid(struct vtable *vt, struct vnode *n, const char *hex)
{
    if (n->fid_hex[0])
        return;
    pthread_mutex_lock(&vt->table_lock);
    memcpy(n->fid_hex, hex, sizeof n->fid_hex);
    pthread_mutex_unlock(&vt->table_lock);
}

/* Load the open state of N; caller holds n->rw for writing.  The state
 * keeps a pin on N's descriptor while it lives. */
static int load_locked(struct vtable *vt, struct vnode *n)
{
    struct fio_report rep;
    struct stat st;

    if (atomic_load(&n->proj->shredded))
        return -EIO;
    if (n->io && n->parked)
        (void)unpark_locked(vt, n);     /* on failure it is dropped: loaded afresh below */
    if (n->io)
        return 0;
    int fd = vn_fd_get(vt, n);
    if (fd < 0)
        return fd;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        int e = -errno;
        vn_fd_put(vt, n);
        return e;
    }
    int rc = fio_open(&n->io, vt->keys, n->proj->name, n->proj->jdir, fd, FIO_RDWR, &rep);
    if (rep.fid_hex[0])
        set_fid(vt, n, rep.fid_hex);
    if (rep.journal_damaged)
        vn_integrity(n, "tail journal");
    if (rc < 0)
        vn_fd_put(vt, n);
    if (rc == -EBADMSG) {
        vn_integrity(n, rep.what);
        return -EIO;
    }
    if (rc == -EKEYREVOKED) {
        atomic_store(&n->proj->shredded, true);
        return -EIO;
    }
    if (rc < 0)
        return rc;
    n->owner = st.st_uid;
    return 0;
}

int vn_acquire(struct vtable *vt, struct vnode *n)
{
    pthread_rwlock_wrlock(&n->rw);
    int rc = load_locked(vt, n);
    if (rc == 0 && n->cached) {         /* a closed file's kept state, in use again */
        n->cached = false;
        atomic_fetch_sub(&vt->nclosed, 1);
    }
    if (rc == 0)
        n->nopen++;
    pthread_rwlock_unlock(&n->rw);
    if (rc == 0)
        loaded_add(vt, n);
    return rc;
}

void vn_adopt(struct vtable *vt, struct vnode *n, struct fileio *io)
{
    pthread_rwlock_wrlock(&n->rw);
    unload_locked(vt, n);
    n->owner = vn_owner(vt, n);
    if (vn_fd_get(vt, n) < 0)       /* the pin of the open state; a file just
                                       made: cannot fail but for EMFILE/ENOMEM */
        atomic_fetch_add(&n->pins, 1);  /* pinned, closed: the next get reopens */
    n->io = io;
    set_fid(vt, n, fio_file_id_hex(io));
    n->nopen++;
    pthread_rwlock_unlock(&n->rw);
    loaded_add(vt, n);
}

void vn_release(struct vtable *vt, struct vnode *n)
{
    pthread_rwlock_wrlock(&n->rw);
    if (--n->nopen == 0) {
        n->closed_ms = tv_now_ms();
        /* keep the state of at most closed_max closed files with their
         * descriptors (two or three each), of more without (parked: the
         * DEK, so the next open needs no keyd round trip); past both caps,
         * drop it at once rather than wait for the reaper, or a burst of
         * creates would run out of descriptors */
        if (!n->io || atomic_load(&vt->dek_cache_ms) == 0) {
            unload_locked(vt, n);
        } else if (atomic_load(&vt->nclosed) < vt->closed_max) {
            n->cached = true;
            atomic_fetch_add(&vt->nclosed, 1);
        } else if (atomic_load(&vt->nparked) < VT_PARKED_MAX) {
            fio_park(n->io);
            vn_fd_put(vt, n);
            n->parked = true;
            atomic_fetch_add(&vt->nparked, 1);
        } else {
            unload_locked(vt, n);
        }
    }
    pthread_rwlock_unlock(&n->rw);
}

int vn_stat(struct vtable *vt, struct vnode *n, struct stat *st)
{
    int fd = vn_fd_get(vt, n);
    if (fd < 0)
        return fd;
    int rc = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    vn_fd_put(vt, n);
    if (rc < 0)
        return rc;
    atomic_store_explicit(&n->mode, st->st_mode & 07777, memory_order_relaxed);
    if (S_ISREG(st->st_mode)) {
        off_t sz = 0;
        pthread_rwlock_rdlock(&n->rw);
        if (n->io)
            sz = fio_size(n->io);
        else if (bc_plain_size(st->st_size, &sz) < 0)
            sz = 0;
        pthread_rwlock_unlock(&n->rw);
        st->st_size = sz;
        st->st_blocks = (sz + 511) / 512;
    }
    /* the backing link count: subdirectories counted in a directory's, 0 for
     * an open file that was unlinked; a project directory's journal
     * directory is metadata, not counted */
    if (n->is_proj_root && st->st_nlink > 2)
        st->st_nlink--;
    return 0;
}

static bool has_suidgid(mode_t m)
{
    return (m & S_ISUID) || (m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP);
}

int vn_kill_suidgid(struct vtable *vt, struct vnode *n)
{
    struct stat st;
    char pp[64];
    if (n->is_dir || !has_suidgid(atomic_load_explicit(&n->mode, memory_order_relaxed)))
        return 0;                   /* the usual case: nothing to clear, no system call */
    int fd = vn_fd_get(vt, n);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
    } else if (has_suidgid(st.st_mode)) {
        mode_t m = st.st_mode & 07777 & ~(mode_t)S_ISUID;
        if (m & S_IXGRP)
            m &= ~(mode_t)S_ISGID;
        /* an O_PATH descriptor cannot be fchmod'ed: its /proc link can */
        snprintf(pp, sizeof pp, "/proc/self/fd/%d", fd);
        rc = chmod(pp, m) < 0 ? -errno : 0;
        if (rc == 0)
            st.st_mode = m;
    }
    if (rc == 0)
        atomic_store_explicit(&n->mode, st.st_mode & 07777, memory_order_relaxed);
    vn_fd_put(vt, n);
    return rc;
}

uid_t vn_owner(struct vtable *vt, struct vnode *n)
{
    struct stat st;
    int fd = vn_fd_get(vt, n);
    if (fd < 0)
        return (uid_t)-1;
    uid_t uid = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? (uid_t)-1
                                                                             : st.st_uid;
    vn_fd_put(vt, n);
    return uid;
}

int vn_dir_iv(struct vtable *vt, struct vnode *d, unsigned char iv[NAMES_IV])
{
    int rc = 0;
    pthread_mutex_lock(&d->dlock);
    if (!d->have_iv) {
        int pfd = vn_fd_get(vt, d);
        int dfd = pfd < 0 ? pfd : openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0)
            vn_fd_put(vt, d);
        if (dfd < 0) {
            rc = pfd < 0 ? pfd : -errno;
        } else {
            rc = meta_dir_iv(dfd, true, d->iv);
            close(dfd);
        }
        if (rc == -EBADMSG) {
            vn_integrity(d, "directory IV");
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

/* ---- purge and invalidation ---------------------------------------------- */

void vt_purge(struct vtable *vt, const struct vproj *proj)
{
    pthread_mutex_lock(&vt->loaded_lock);
    for (struct vnode *v = vt->loaded; v; v = v->lnext) {
        if (proj && v->proj != proj)
            continue;
        pthread_rwlock_wrlock(&v->rw);
        unload_locked(vt, v);
        pthread_rwlock_unlock(&v->rw);
    }
    pthread_mutex_unlock(&vt->loaded_lock);
}

size_t vt_loaded(struct vtable *vt, const struct vproj *proj, struct vnode ***out)
{
    size_t cap = 64, n = 0;
    struct vnode **list = malloc(cap * sizeof *list);
    pthread_mutex_lock(&vt->loaded_lock);
    for (struct vnode *v = vt->loaded; v && list; v = v->lnext) {
        if (proj && v->proj != proj)
            continue;
        if (n == cap) {
            struct vnode **nl = realloc(list, 2 * cap * sizeof *nl);
            if (!nl)
                break;
            list = nl;
            cap *= 2;
        }
        list[n++] = v;
    }
    pthread_mutex_unlock(&vt->loaded_lock);
    *out = list;
    return list ? n : 0;
}

/* ---- the reaper ----------------------------------------------------------- */

/* One pass: drop the state of files closed longer than dek_cache_ms ago
 * (the caps on closed files are kept by vn_release). */
static void reap(struct vtable *vt)
{
    uint64_t now = tv_now_ms(), cache = (uint64_t)atomic_load(&vt->dek_cache_ms);

    pthread_mutex_lock(&vt->loaded_lock);
    struct vnode *v = vt->loaded, *next;
    for (; v; v = next) {
        next = v->lnext;
        if (pthread_rwlock_trywrlock(&v->rw) != 0)
            continue;
        if (v->io && atomic_load(&v->proj->shredded))
            unload_locked(vt, v);           /* found shredded by a failed unwrap */
        if (v->nopen == 0 && now - v->closed_ms >= cache) {
            unload_locked(vt, v);
            loaded_del_locked(vt, v);
        }
        pthread_rwlock_unlock(&v->rw);
    }
    pthread_mutex_unlock(&vt->loaded_lock);
}

static void *reaper_main(void *arg)
{
    struct vtable *vt = arg;
    pthread_mutex_lock(&vt->stop_lock);
    while (!vt->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&vt->stop_cond, &vt->stop_lock, &ts);
        if (vt->stopping)
            break;
        pthread_mutex_unlock(&vt->stop_lock);
        reap(vt);
        pthread_mutex_lock(&vt->stop_lock);
    }
    pthread_mutex_unlock(&vt->stop_lock);
    return NULL;
}

int vt_start_reaper(struct vtable *vt)
{
    int rc = pthread_create(&vt->reaper, NULL, reaper_main, vt);
    if (rc != 0)
        return -rc;
    vt->reaper_running = true;
    return 0;
}

void vt_stop_reaper(struct vtable *vt)
{
    if (!vt->reaper_running)
        return;
    pthread_mutex_lock(&vt->stop_lock);
    vt->stopping = true;
    pthread_cond_signal(&vt->stop_cond);
    pthread_mutex_unlock(&vt->stop_lock);
    pthread_join(vt->reaper, NULL);
    vt->reaper_running = false;
}
