/*
 * vnode.h - the vault's table of backing objects the kernel knows, and the
 * open state of regular files.
 *
 * One struct vnode per backing object the kernel holds a lookup reference
 * to (keyed by backing dev/ino).  Every backing access is an *at call
 * relative to an O_PATH descriptor of a vnode, with O_NOFOLLOW; those
 * descriptors are a bounded cache: each vnode keeps a file handle
 * (name_to_handle_at), descriptors not in use are closed once more than
 * the table's limit are open (a clock: one not used since the hand last
 * passed goes first), and reopened from the handle (open_by_handle_at) when
 * needed again.  Taking and giving back an open descriptor is lock-free:
 * every request does it, and a lock all FUSE workers took for it was the
 * vault's most contended one.  So the vault's
 * descriptors do not grow with the number of files the kernel remembers.
 * Users take a descriptor with vn_fd_get and give it back with vn_fd_put.  A regular file's open state (a struct fileio: backing
 * descriptor, DEK, size, tail journal) is loaded by the first open and
 * shared by all its handles; after the last close it stays for
 * dek_cache_ms (with its descriptors while few closed files are kept so,
 * else parked: DEK, file ID and size only, so a reopen needs no keyd round
 * trip and costs no descriptor), then the reaper thread drops it (the DEK
 * is wiped).  A
 * vnode with loaded state is on the table's "loaded" list.
 *
 * Lock order (a lock may only be taken while holding those above it):
 *
 *     vtable.loaded_lock      the loaded list (reaper, purge, wipe walk it)
 *       vnode.rw              a file's open state: reads share it; writes,
 *                             truncates, loading and dropping own it
 *         vproj.lock          (project.h) loading a project's name keys
 *           keys locks        (keys.h) keyd clients and DEK pools
 *     vtable.table_lock       the hash table and lookup counts (a leaf)
 *     vtable.fd_lock          descriptors: open count, clock ring, (re)opening
 *                             and closing them (a leaf)
 *     vnode.dlock             a directory's cached IV (a leaf)
 *
 * The config lock of the filesystem (fs.c) is a leaf taken alone.  Nothing
 * here calls into FUSE: invalidating the kernel's caches is the caller's,
 * outside every lock (the kernel may answer with requests of its own).
 */
#ifndef TV_VAULT_VNODE_H
#define TV_VAULT_VNODE_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "vault/blockcrypt.h"
#include "vault/names.h"

struct fileio;
struct keys;
struct vproj;

struct vnode {
    /* set at creation, constant after */
    dev_t dev;
    ino_t bino;
    struct file_handle *fh;         /* to reopen fd; NULL: fd is never closed early */
    struct vproj *proj;             /* NULL: the mount root */
    bool is_dir, is_proj_root;
    atomic_uint mode;               /* permission bits as last seen (07777): the
                                       vault clears setuid/setgid itself */
    /* the descriptor: use vn_fd_get / vn_fd_put.  A user pins it with a
     * compare-and-swap on PINS, no lock while it is open; it changes only
     * under fd_lock, and is closed only at zero pins (PINS becomes
     * PINS_EVICTING for that moment, so no pin can be taken meanwhile) */
    _Atomic int fd;                 /* O_PATH of the backing object, -1 when closed */
    _Atomic int pins;               /* users of fd now (an open state is one) */
    atomic_bool ref;                /* used since the clock hand last passed */
    struct vnode *fnext, *fprev;    /* fd_lock: the clock ring of evictable open
                                       descriptors, pinned or not */
    bool on_lru;
    /* table_lock */
    struct vnode *hnext;
    uint64_t nlookup;
    /* loaded_lock */
    struct vnode *lnext, *lprev;
    bool on_list;
    /* dlock: directories */
    pthread_mutex_t dlock;
    bool have_iv;
    unsigned char iv[NAMES_IV];
    /* rw: regular files */
    pthread_rwlock_t rw;
    int nopen;                      /* handles open on it */
    struct fileio *io;              /* open state; NULL when not loaded (or purged) */
    uid_t owner;                    /* creator (backing st_uid), valid while loaded */
    char fid_hex[2 * BC_FILE_ID + 1]; /* file ID once known ("" before); written
                                       under rw and table_lock, read under either */
    uint64_t closed_ms;             /* when nopen fell to 0 */
    bool cached;                    /* closed, its open state kept, descriptors
                                       and all (counted in nclosed) */
    bool parked;                    /* closed, its open state kept without
                                       descriptors: DEK, ID, size (nparked) */
};

struct vtable;

/* A table whose root is the backing directory ROOTFD (an O_PATH descriptor,
 * consumed); files are opened with keys from KEYS (borrowed).  DEK_CACHE_MS:
 * how long a closed file's state is kept; FD_LIMIT: how many descriptors of
 * unused vnodes may stay open (0: no limit).  The limit needs
 * open_by_handle_at (CAP_DAC_READ_SEARCH) and a backing filesystem that
 * gives file handles; without them descriptors are kept (logged once).
 * NULL on failure. */
struct vtable *vt_new(int rootfd, struct keys *keys, int dek_cache_ms, size_t fd_limit);

/* An O_PATH descriptor of N's backing object, reopened if it was closed;
 * valid until the matching vn_fd_put.  -ENOENT if the object is gone. */
int vn_fd_get(struct vtable *vt, struct vnode *n);
void vn_fd_put(struct vtable *vt, struct vnode *n);

/* Descriptors of vnodes open now (for tests and metrics). */
size_t vt_open_fds(struct vtable *vt);

/* Stop the reaper, drop every vnode (open states closed, DEKs wiped, tail
 * journals kept for the next mount), free the table.  NULL is fine. */
void vt_free(struct vtable *vt);

struct vnode *vt_root(struct vtable *vt);
void vt_set_cache_ms(struct vtable *vt, int ms);

/* Find or insert the vnode for FD (an O_PATH descriptor, consumed) whose
 * backing object has stat ST, in project PROJ; one lookup reference is
 * taken.  NULL on ENOMEM. */
struct vnode *vt_get(struct vtable *vt, int fd, const struct stat *st, struct vproj *proj,
                     bool proj_root);

/* The vnode of backing object DEV/INO with one more lookup reference, if
 * the table has it; NULL otherwise (0/0: NULL). */
struct vnode *vt_get_known(struct vtable *vt, dev_t dev, ino_t ino);

/* Drop COUNT lookup references (the kernel's FORGET); the last one frees. */
void vt_forget(struct vtable *vt, struct vnode *n, uint64_t count);

/* The file ID of the known vnode of backing object ST into HEX; false if
 * there is none or its ID was never read. */
bool vt_file_id(struct vtable *vt, const struct stat *st, char hex[2 * BC_FILE_ID + 1]);

/* Take a reference on N's open state, loading it if needed (an interrupted
 * rewrite is restored then).  0, or -EIO (damage: reported; shredded; keyd
 * unreachable: logged), or another negative errno. */
int vn_acquire(struct vtable *vt, struct vnode *n);

/* Give N the open state IO of a file just created (IO consumed) with one
 * reference taken, as vn_acquire would. */
void vn_adopt(struct vtable *vt, struct vnode *n, struct fileio *io);

/* Drop a reference taken by vn_acquire or vn_adopt. */
void vn_release(struct vtable *vt, struct vnode *n);

/* stat of N as the mount shows it: plaintext size of regular files. */
int vn_stat(struct vtable *vt, struct vnode *n, struct stat *st);

/* Clear N's setuid bit, and its setgid bit if it is group-executable, as a
 * write or truncation by a caller without CAP_FSETID must (Linux's rule;
 * the kernel leaves it to the vault, see fuseio.h).  0 or a negative errno. */
int vn_kill_suidgid(struct vtable *vt, struct vnode *n);

/* The backing owner of N, (uid_t)-1 if it cannot be read. */
uid_t vn_owner(struct vtable *vt, struct vnode *n);

/* The directory IV of directory N (read once, then cached). */
int vn_dir_iv(struct vtable *vt, struct vnode *n, unsigned char iv[NAMES_IV]);

/* Report an integrity failure of WHAT in N (log and audit). */
void vn_integrity(const struct vnode *n, const char *what);

/* Drop the open state of every loaded file of PROJ (all files if NULL), its
 * DEK wiped; handles still open on them fail with EIO from now on. */
void vt_purge(struct vtable *vt, const struct vproj *proj);

/* The loaded vnodes of PROJ (all if NULL) into a malloc'd array *OUT
 * (caller frees); returns how many (0 on ENOMEM).  For cache invalidation:
 * the vnodes stay valid while the kernel holds them. */
size_t vt_loaded(struct vtable *vt, const struct vproj *proj, struct vnode ***out);

/* Start / stop the reaper thread (drops closed files' open state after
 * dek_cache_ms).  At most VT_CLOSED_MAX closed files keep their descriptors
 * (fewer under a descriptor limit: two or three each), at most
 * VT_PARKED_MAX more keep only their DEK. */
#define VT_CLOSED_MAX 4096
#define VT_PARKED_MAX 65536             /* closed files keeping only their DEK (32 bytes) */
int vt_start_reaper(struct vtable *vt);
void vt_stop_reaper(struct vtable *vt);

/* Number of vnodes in the table (for tests). */
size_t vt_count(struct vtable *vt);

#endif
