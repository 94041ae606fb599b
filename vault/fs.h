/*
 * fs.h - the FUSE low-level filesystem of the vault.
 *
 * vfs_new() takes the loaded config and a key manager; vfs_ops() gives the
 * fuse_lowlevel_ops to pass to fuse_session_new() with the vfs as userdata;
 * vfs_set_session() hands it the session (for kernel cache invalidation);
 * vfs_reload() swaps in a new config (SIGHUP) and re-applies the policy to
 * open handles; vfs_start_threads() starts the DEK reaper and the keyd event
 * subscription (SHRED purges a project at once).
 */
#ifndef TV_VAULT_FS_H
#define TV_VAULT_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

struct tv_config;
struct keys;
struct vfs;

/* BACKING is the backing directory; the vfs borrows KEYS and takes CFG
 * (freed by vfs_free).  WRITEBACK enables the kernel writeback cache.
 * Returns NULL with a logged reason on failure. */
struct vfs *vfs_new(struct tv_config *cfg, struct keys *keys, const char *backing, int writeback);
void vfs_free(struct vfs *fs);

const struct fuse_lowlevel_ops *vfs_ops(void);

/* How long the kernel may cache entries and attributes below a project
 * directory (default 60 s; 0: a LOOKUP per path component).  The entry of
 * a project directory is never cached: every path walk into a project
 * reaches the policy check (docs/THREAT_MODEL.md "Kernel caches"). */
void vfs_set_entry_timeout(struct vfs *fs, double seconds);
void vfs_set_session(struct vfs *fs, struct fuse_session *se);

/* Replace the config (takes NEW); open handles are checked against it from
 * their next request on. */
void vfs_reload(struct vfs *fs, struct tv_config *newcfg);

int vfs_start_threads(struct vfs *fs);
/* Stop the threads vfs_start_threads started that use the vfs (the keyd
 * subscription stops with keys_free). */
void vfs_stop_threads(struct vfs *fs);

/* At unmount: wipe every DEK, pooled DEK and name key this process holds,
 * and remove the tail journals of loaded files (no rewrite is in flight). */
void vfs_wipe_keys(struct vfs *fs);

#endif
