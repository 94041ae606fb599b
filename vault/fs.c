/*
 * fs.c - the vault's FUSE low-level filesystem: the filesystem object, the
 * policy glue every handler calls, configuration reload, keyd events and
 * the operations table (see fs.h, fs_int.h for the handler files, vnode.h
 * for the lock order, docs/ARCHITECTURE.md for the path of a request).
 *
 * The fuse inode number of a vnode is its pointer, as in libfuse's
 * passthrough_ll; the mount root is FUSE_ROOT_ID.
 */
#include "config.h"
#include "vault/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vault/audit.h"
#include "vault/keys.h"

/* ---- requester and policy ------------------------------------------------ */

void rq_get(fuse_req_t req, struct rq *r)
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

/* Fetches the supplementary groups (one /proc read) only when the project
 * names groups. */
unsigned roles_of(struct vfs *fs, fuse_req_t req, struct rq *r, struct vproj *proj)
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

int fs_audit(const struct rq *r, const struct vnode *n, const char *op, int rc)
{
    const char *fid = (n && n->fid_hex[0]) ? n->fid_hex : NULL;
    return audit_log(r->uid, r->pid, n && n->proj ? n->proj->name : NULL, op, rc, fid, NULL);
}

int fs_check(struct vfs *fs, fuse_req_t req, struct rq *r, struct vnode *n, enum pol_op op,
             uid_t owner)
{
    unsigned roles = roles_of(fs, req, r, n->proj);
    int rc = pol_check(roles, op, r->uid, owner);
    if (rc < 0)
        audit_log(r->uid, r->pid, n->proj->name, pol_op_name(op), rc,
                  n->fid_hex[0] ? n->fid_hex : NULL, "denied");
    return rc;
}

bool fs_in_config(struct vfs *fs, const char *name)
{
    pthread_rwlock_rdlock(&fs->cfg_lock);
    bool ok = tv_config_project(fs->cfg, name) != NULL;
    pthread_rwlock_unlock(&fs->cfg_lock);
    return ok;
}

int fs_io_result(const struct rq *r, struct vnode *n, const char *op, int rc)
{
    if (rc == -EBADMSG || rc == -EKEYREJECTED) {
        vn_integrity(n, rc == -EBADMSG ? "block" : "header made for another file");
        return -EIO;
    }
    if (rc == -EFBIG || rc == -EDQUOT || rc == -ENOSPC)
        audit_log(r->uid, r->pid, n->proj->name, op, rc, n->fid_hex[0] ? n->fid_hex : NULL,
                  "limit");
    return rc;
}

/* The backing filesystem must keep [vault] reserve_bytes free: growth that
 * would eat into it fails with ENOSPC before anything is written.  statvfs
 * is asked at most every 100 ms; growth in between is taken off the last
 * answer. */
static int space_check(struct vfs *fs, int64_t growth, int64_t reserve)
{
    uint64_t now = tv_now_ms();
    int64_t need = growth + growth / 64 + BC_CBLOCK;    /* backing bytes, generously */
    if (reserve <= 0)
        return 0;
    if (now - atomic_load(&fs->free_ms) >= 100) {
        struct statvfs sv;
        if (fstatvfs(fs->root_fd, &sv) == 0) {
            atomic_store(&fs->free_bytes, (int64_t)sv.f_bavail * (int64_t)sv.f_frsize);
            atomic_store(&fs->free_ms, now);
        }
    }
    if (atomic_load(&fs->free_bytes) - need < reserve)
        return -ENOSPC;
    atomic_fetch_sub(&fs->free_bytes, need);
    return 0;
}

static int io_charge(void *arg, int64_t delta)
{
    struct fs_io *io = arg;
    int rc;
    if (delta > 0) {
        pthread_rwlock_rdlock(&io->fs->cfg_lock);
        int64_t reserve = io->fs->cfg->vault.reserve_bytes;
        pthread_rwlock_unlock(&io->fs->cfg_lock);
        if ((rc = space_check(io->fs, delta, reserve)) < 0)
            return rc;
    }
    return proj_charge(io->p, delta, io->quota);
}

static bool io_interrupted(void *arg)
{
    struct fs_io *io = arg;
    return (io->req && fuse_req_interrupted(io->req)) ||
           (io->fs->se && fuse_session_exited(io->fs->se));
}

void fs_io_init(struct fs_io *io, struct vfs *fs, fuse_req_t req, struct vproj *p)
{
    io->fs = fs;
    io->p = p;
    io->req = req;
    io->quota = 0;
    io->ctl.max_size = 0;
    pthread_rwlock_rdlock(&fs->cfg_lock);
    const struct tv_project *cp = tv_config_project(fs->cfg, p->name);
    if (cp) {
        io->quota = cp->quota_bytes;
        io->ctl.max_size = (off_t)cp->max_file_bytes;
    }
    pthread_rwlock_unlock(&fs->cfg_lock);
    io->ctl.charge = io_charge;
    io->ctl.interrupted = io_interrupted;
    io->ctl.arg = io;
}

mode_t fs_backing_mode(const struct vfs *fs, mode_t mode, bool dir)
{
    mode &= 07777;
    return fs->dac_override ? mode : mode | (dir ? 0700 : 0600);
}

/* Whether this process has CAP_DAC_OVERRIDE (root, or the systemd unit's
 * capability set): only then may backing modes be exactly what callers ask
 * for (a directory 0151 would otherwise lock the vault out of it). */
static bool has_dac_override(void)
{
    char line[256];
    bool yes = false;
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "CapEff:", 7) == 0) {
            unsigned long long caps = strtoull(line + 7, NULL, 16);
            yes = (caps >> 1) & 1;          /* CAP_DAC_OVERRIDE */
        }
    if (f)
        fclose(f);
    return yes;
}

/* ---- lifecycle ------------------------------------------------------------- */

/* How many descriptors of unused vnodes may stay open: [vault] fd_limit, or
 * half the open-file limit (the rest: open files, their journals, keyd,
 * FUSE's cloned channels). */
static size_t fd_budget(const struct tv_config *cfg)
{
    struct rlimit rl;
    if (cfg->vault.fd_limit > 0)
        return (size_t)cfg->vault.fd_limit;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 65536;
    size_t half = (size_t)rl.rlim_cur / 2;
    return half < 64 ? 64 : half > 65536 ? 65536 : half;
}

struct vfs *vfs_new(struct tv_config *cfg, struct keys *keys, const char *backing, int writeback)
{
    struct vfs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return NULL;
    pthread_rwlock_init(&fs->cfg_lock, NULL);
    pthread_mutex_init(&fs->hlock, NULL);
    fs->cfg = cfg;
    fs->keys = keys;
    fs->writeback = writeback;
    fs->cache_timeout = CACHE_TIMEOUT_DEFAULT;
    fs->dac_override = has_dac_override();
    fs->root_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int pathfd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fs->root_fd < 0 || pathfd < 0) {
        log_error("vault: backing directory \"%s\": %s", backing, strerror(errno));
        if (pathfd >= 0)
            close(pathfd);
        vfs_free(fs);
        return NULL;
    }
    fs->vt = vt_new(pathfd, keys, cfg->vault.dek_cache_seconds * 1000, fd_budget(cfg));
    fs->pt = fs->vt ? projects_new(vt_root(fs->vt)->fd, keys) : NULL;
    if (!fs->pt) {
        log_error("vault: out of memory");
        vfs_free(fs);
        return NULL;
    }
    return fs;
}

void vfs_free(struct vfs *fs)
{
    if (!fs)
        return;
    /* Handles the kernel never released: the session is over, so are they
     * (their vnodes go with the table). */
    for (struct vhandle *h = fs->handles, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    pthread_mutex_destroy(&fs->hlock);
    vt_free(fs->vt);
    projects_free(fs->pt);
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    tv_config_free(fs->cfg);
    pthread_rwlock_destroy(&fs->cfg_lock);
    free(fs);
}

void vfs_wipe_keys(struct vfs *fs)
{
    struct vproj *list[PROJECTS_MAX];
    /* the session is over: no rewrite is in flight, and a journal left at
     * rest would only hand out older blocks (docs/THREAT_MODEL.md) */
    vt_purge(fs->vt, NULL);
    int n = proj_list(fs->pt, list, PROJECTS_MAX);
    for (int i = 0; i < n; i++)
        proj_shred(fs->pt, list[i]);        /* nothing may load keys any more */
}

void vfs_set_entry_timeout(struct vfs *fs, double seconds)
{
    fs->cache_timeout = seconds;
}

void vfs_set_session(struct vfs *fs, struct fuse_session *se)
{
    fs->se = se;
}

/* Drop the kernel's cached pages of every loaded file (of PROJ, or all), so
 * the next read comes to us and meets the current policy / key state. */
static void invalidate_loaded(struct vfs *fs, struct vproj *proj)
{
    struct vnode **list;
    size_t n = vt_loaded(fs->vt, proj, &list);
    /* outside every lock: invalidation may make the kernel write back dirty
     * pages, which comes back to us as write requests */
    for (size_t i = 0; fs->se && i < n; i++)
        fuse_lowlevel_notify_inval_inode(fs->se, ino_of(fs, list[i]), 0, 0);
    free(list);
}

/* Drop the kernel's cached entries of every project (of the config CFG,
 * and every project met since the mount): entries below a project are only
 * reachable through the project's entry, which is never cached, but a
 * process may hold a directory inside one (its cwd, an open fd): pruning
 * the subtree makes its next relative lookup come to us and meet the
 * current policy.  Outside every lock. */
static void invalidate_projects(struct vfs *fs, const struct tv_config *cfg)
{
    struct vproj *list[PROJECTS_MAX];
    int n = proj_list(fs->pt, list, PROJECTS_MAX);
    if (!fs->se)
        return;
    for (int i = 0; i < n; i++)
        fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, list[i]->name,
                                         strlen(list[i]->name));
    for (size_t i = 0; cfg && i < cfg->n_projects; i++)
        if (!proj_find(fs->pt, cfg->projects[i].name, false))
            fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, cfg->projects[i].name,
                                             strlen(cfg->projects[i].name));
}

void vfs_reload(struct vfs *fs, struct tv_config *newcfg)
{
    pthread_rwlock_wrlock(&fs->cfg_lock);
    struct tv_config *old = fs->cfg;
    fs->cfg = newcfg;
    pthread_rwlock_unlock(&fs->cfg_lock);
    vt_set_cache_ms(fs->vt, newcfg->vault.dek_cache_seconds * 1000);
    tv_config_free(old);
    if (audit_reopen(newcfg->vault.audit_log) < 0)
        log_error("vault: audit log \"%s\": cannot reopen: %s", newcfg->vault.audit_log,
                  strerror(errno));
    invalidate_loaded(fs, NULL);
    invalidate_projects(fs, newcfg);
    log_info("vault: configuration reloaded; policy applies to open files from now on");
}

/* ---- keyd events ------------------------------------------------------------ */

/* Wipe every key of P held by this process and make its files fail. */
static void purge_project(struct vfs *fs, struct vproj *p)
{
    audit_log(0, 0, p->name, "shred", 0, NULL, NULL);
    proj_shred(fs->pt, p);
    vt_purge(fs->vt, p);
    invalidate_loaded(fs, p);
    if (fs->se)
        fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, p->name, strlen(p->name));
}

/* After (re)subscribing: a SHRED sent while we were not listening must still
 * purge.  Ask keyd to unwrap each loaded project's name key; EKEYREVOKED
 * means the project is gone. */
static void resync(struct vfs *fs)
{
    struct vproj *list[PROJECTS_MAX];
    int n = proj_list(fs->pt, list, PROJECTS_MAX);
    for (int i = 0; i < n; i++)
        if (proj_recheck(fs->pt, list[i]) == -EKEYREVOKED) {
            log_warn("vault: project \"%s\" was shredded while the event subscription was down",
                     list[i]->name);
            purge_project(fs, list[i]);
        }
}

/* SHRED: from now on every file of PROJECT fails with EIO, open ones too. */
static void on_event(void *arg, enum keys_event type, const char *project, uint32_t version)
{
    struct vfs *fs = arg;
    (void)version;
    if (type == KEYS_EV_RESYNC) {
        resync(fs);
        return;
    }
    if (type != KEYS_EV_SHRED)
        return;
    struct vproj *p = proj_find(fs->pt, project, false);
    log_warn("vault: project \"%s\" was shredded: purging its keys", project);
    if (p)
        purge_project(fs, p);
    else
        audit_log(0, 0, project, "shred", 0, NULL, NULL);
}

int vfs_start_threads(struct vfs *fs)
{
    int rc = vt_start_reaper(fs->vt);
    if (rc < 0)
        return rc;
    return keys_start_events(fs->keys, on_event, fs);
}

void vfs_stop_threads(struct vfs *fs)
{
    vt_stop_reaper(fs->vt);
}

/* ---- the operations table ---------------------------------------------------- */

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

static struct fuse_lowlevel_ops ops;

static void ops_fill(void)
{
    ops.init = vfs_init;
    fs_entry_ops(&ops);
    fs_file_ops(&ops);
    fs_dir_ops(&ops);
}

const struct fuse_lowlevel_ops *vfs_ops(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ops_fill);
    return &ops;
}
