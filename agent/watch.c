/*
 * watch.c - inotify discovery and scans (watch.h).
 *
 * The watches are kept here, on the raw inotify descriptor, with our own
 * wd -> directory map, rather than through libinotifytools.  Its
 * inotifytools_watch_recursively lists a directory before it watches it, so
 * a subdirectory made in between is neither watched nor reported (files
 * written into a tree made while we follow were lost until a restart); its
 * map keeps a renamed directory's old name and stale entries after
 * IN_IGNORED, and its state is process-global, so it could not be reset
 * cleanly when the mount goes away.
 *
 * The one rule that makes discovery gap-free: a directory is watched BEFORE
 * it is listed.  Whatever was made in it before the watch existed is in the
 * listing; whatever is made after raises an event.  Subdirectories found by
 * the listing are walked the same way (watch, then list), so every
 * directory that exists is either watched or reported.  Seeing a file twice
 * is harmless: the checkpoints decide what is new.
 *
 * The root is checked every second (stat: same device and inode as when it
 * was watched).  A vault killed and remounted leaves a dead FUSE mount
 * (ENOTCONN), then a new mount (a new device) on the same path; the kernel
 * may never send IN_UNMOUNT while descriptors on the old mount are open.
 * When the root goes away, every watch is dropped and the loss logged once;
 * when a usable root is back (a mount point again, if it was one), the
 * whole tree is watched and rescanned.
 */
#include "config.h"
#include "agent/watch.h"
#include "agent/ingest.h"
#include "agent/metrics.h"
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENTS (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | \
                IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
#define RESCAN_PERIOD_MS 5000
#define ROOT_CHECK_MS 1000
#define MAX_DEPTH 64
#define NBUCKETS 4096
#define DRAIN_MAX 20000

/* One watched directory. */
struct wdir {
    int wd;
    char *path;                    /* absolute, no trailing slash */
    struct wdir *next;
};

struct watch {
    char *root;
    int fd;
    struct ingest *in;
    struct metrics *m;
    struct wdir *buckets[NBUCKETS];
    int root_wd;                   /* -1 while the root is not watched */
    dev_t root_dev;
    ino_t root_ino;
    int root_mounted;              /* the root was a mount point when watched */
    int lost;                      /* the root went away: no watches */
    int rescan_due;
    int short_of_watches;
    int warned;                    /* the shortage was logged */
    uint64_t next_periodic;
    uint64_t next_root_check;
};

/* ---- wd -> directory map ------------------------------------------------- */

static struct wdir **wd_slot(struct watch *w, int wd)
{
    struct wdir **pp = &w->buckets[(unsigned)wd % NBUCKETS];
    while (*pp && (*pp)->wd != wd)
        pp = &(*pp)->next;
    return pp;
}

/* Map WD to PATH.  The kernel gives an already watched inode its old wd: a
 * directory walked again under a new name (moved) gets its new name. */
static void wd_set(struct watch *w, int wd, const char *path)
{
    struct wdir **pp = wd_slot(w, wd), *d = *pp;
    char *copy = strdup(path);

    if (!copy) {
        log_error("%s: out of memory: a directory under it is not followed", w->root);
        return;
    }
    if (d) {
        free(d->path);
        d->path = copy;
        return;
    }
    if (!(d = calloc(1, sizeof(*d)))) {
        free(copy);
        log_error("%s: out of memory: a directory under it is not followed", w->root);
        return;
    }
    d->wd = wd;
    d->path = copy;
    *pp = d;
}

/* Forget WD (the kernel removed the watch: IN_IGNORED). */
static void wd_forget(struct watch *w, int wd)
{
    struct wdir **pp = wd_slot(w, wd), *d = *pp;
    if (!d)
        return;
    *pp = d->next;
    free(d->path);
    free(d);
}

/* Remove the watches of PREFIX and everything below it (all when PREFIX is
 * NULL).  RM: also tell the kernel (not needed when the descriptor closes). */
static void wd_drop(struct watch *w, const char *prefix, int rm)
{
    size_t plen = prefix ? strlen(prefix) : 0;

    for (size_t b = 0; b < NBUCKETS; b++) {
        struct wdir **pp = &w->buckets[b];
        while (*pp) {
            struct wdir *d = *pp;
            if (prefix && (strncmp(d->path, prefix, plen) != 0 ||
                           (d->path[plen] != '\0' && d->path[plen] != '/'))) {
                pp = &d->next;
                continue;
            }
            if (rm)
                inotify_rm_watch(w->fd, d->wd);  /* its IN_IGNORED finds no entry */
            if (d->wd == w->root_wd)
                w->root_wd = -1;
            *pp = d->next;
            free(d->path);
            free(d);
        }
    }
}

/* ---- watching and walking -------------------------------------------------- */

/* How the log names directory DIR: the mount root by its (configured) path,
 * any other directory by its inode (find ROOT -inum N), never by name: names
 * under the mount are trace content (docs/THREAT_MODEL.md). */
static const char *dir_label(const struct watch *w, const char *dir, char *buf, size_t n)
{
    struct stat st;

    if (!strcmp(dir, w->root))
        snprintf(buf, n, "%s", w->root);
    else if (lstat(dir, &st) == 0)
        snprintf(buf, n, "%s: directory at inode %llu", w->root, (unsigned long long)st.st_ino);
    else
        snprintf(buf, n, "%s: a directory under it", w->root);
    return buf;
}

/* Watch directory DIR.  Returns 0, or a negative errno (shortage logged). */
static int watch_dir(struct watch *w, const char *dir)
{
    int wd = inotify_add_watch(w->fd, dir, EVENTS);
    char label[PATH_MAX + 64];

    if (wd >= 0) {
        wd_set(w, wd, dir);
        if (!strcmp(dir, w->root))
            w->root_wd = wd;
        return 0;
    }
    int err = errno;
    if (err == ENOSPC) {
        if (!w->warned)
            log_error("%s: out of inotify watches (raise fs.inotify.max_user_watches): "
                      "rescanning every %d s until watches are available",
                      dir_label(w, dir, label, sizeof(label)),
                      RESCAN_PERIOD_MS / 1000);
        w->warned = 1;
        if (!w->short_of_watches)
            w->next_periodic = tv_now_ms() + RESCAN_PERIOD_MS;
        w->short_of_watches = 1;
    } else if (err == EACCES) {
        log_debug("%s: cannot watch: %s", dir_label(w, dir, label, sizeof(label)), strerror(err));
    } else if (err != ENOENT && err != ENOTDIR) {
        log_warn("%s: cannot watch: %s", dir_label(w, dir, label, sizeof(label)), strerror(err));
    }
    return -err;
}

/* What a walk does with the trace files it lists. */
enum walk_scan {
    WALK_WATCH_ONLY = 0,           /* nothing (the caller scans next) */
    WALK_SCAN,                     /* report them to ingest_scanned */
    WALK_RESCAN_FRESH,             /* after a remount: ingest_gone first, so a
                                    * descriptor on the dead mount is not kept
                                    * for the path; the file is opened and
                                    * identified afresh (its checkpoint, found
                                    * by file ID, says where to resume) */
};

/* Watch DIR (when W is set), then list it: report trace files to IN as SCAN
 * says and walk subdirectories the same way.  Watching before listing is
 * what closes the gap (see the top of the file). */
static void walk(struct watch *w, struct ingest *in, const char *dir, enum walk_scan scan,
                 int settle, int depth)
{
    DIR *d;
    struct dirent *e;
    char path[PATH_MAX];

    if (depth > MAX_DEPTH)
        return;
    if (w)
        watch_dir(w, dir);
    if (!(d = opendir(dir)))
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;                  /* ".", "..", hidden and vault metadata */
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (lstat(path, &st) != 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (type == DT_DIR)
            walk(w, in, path, scan, settle, depth + 1);
        else if (scan != WALK_WATCH_ONLY && type == DT_REG && ingest_kind(e->d_name) != FK_NONE) {
            if (scan == WALK_RESCAN_FRESH)
                ingest_gone(in, path);
            ingest_scanned(in, path, settle);
        }
    }
    closedir(d);
}

/* stat ROOT; *MOUNTED: it is a mount point (another device than its parent). */
static int root_identity(const char *root, struct stat *st, int *mounted)
{
    char parent[PATH_MAX];
    struct stat pst;
    size_t len = strlen(root);
    char *slash;

    if (stat(root, st) != 0)
        return -errno;
    if (!S_ISDIR(st->st_mode))
        return -ENOTDIR;
    *mounted = 1;
    while (len > 1 && root[len - 1] == '/')
        len--;                         /* "/srv/traces/": the parent is /srv */
    if (len >= sizeof(parent))
        return 0;
    memcpy(parent, root, len);
    parent[len] = '\0';
    if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
        *slash = '\0';
        if (stat(parent, &pst) == 0)
            *mounted = pst.st_dev != st->st_dev;
    }
    return 0;
}

/* Watch the whole tree, and scan it as SCAN says. */
static void watch_tree(struct watch *w, enum walk_scan scan)
{
    int was_short = w->short_of_watches;

    w->short_of_watches = 0;
    walk(w, w->in, w->root, scan, 1, 0);
    if (was_short && !w->short_of_watches && w->warned) {
        log_info("%s: every directory is watched again", w->root);
        w->warned = 0;
    }
}

static void rescan(struct watch *w, enum walk_scan scan)
{
    w->rescan_due = 0;
    w->m->rescans++;
    /* Watch again too: directories made while events were lost (overflow,
     * shortage) have no watch yet. */
    watch_tree(w, scan);
}

/* The root went away (REASON): drop every watch and say so once. */
static void root_lost(struct watch *w, const char *reason)
{
    if (w->lost)
        return;
    log_warn("mount at %s went away (%s); rewatching when it returns", w->root, reason);
    wd_drop(w, NULL, 1);
    w->root_wd = -1;
    w->lost = 1;
    w->rescan_due = 0;
}

/* Compare the root with what is watched; lose it or take it back. */
static void check_root(struct watch *w)
{
    struct stat st;
    int mounted = 0, r = root_identity(w->root, &st, &mounted);

    if (!w->lost) {
        if (r == 0 && st.st_dev == w->root_dev && st.st_ino == w->root_ino)
            return;
        root_lost(w, r ? strerror(-r) : "another directory is mounted there");
    }
    if (r != 0 || (w->root_mounted && !mounted))
        return;                        /* not back yet (or only the bare mount point) */
    w->root_dev = st.st_dev;
    w->root_ino = st.st_ino;
    w->lost = 0;
    log_info("mount at %s is back: watching and rescanning it", w->root);
    rescan(w, WALK_RESCAN_FRESH);
}

/* ---- API ------------------------------------------------------------------- */

int watch_new(const char *root, struct ingest *in, struct metrics *m, struct watch **out)
{
    struct watch *w = calloc(1, sizeof(*w));
    struct stat st;
    int r;

    *out = NULL;
    if (!w || !(w->root = strdup(root))) {
        free(w);
        return -ENOMEM;
    }
    w->in = in;
    w->m = m;
    w->root_wd = -1;
    if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        r = -errno;
        log_error("inotify: %s", strerror(-r));
        free(w->root);
        free(w);
        return r;
    }
    w->next_root_check = tv_now_ms() + ROOT_CHECK_MS;
    if ((r = root_identity(root, &st, &w->root_mounted)) != 0) {
        /* Not there yet: watched as soon as it is (check_root). */
        log_warn("mount at %s is not usable (%s); watching it when it is", root, strerror(-r));
        w->lost = 1;
        w->root_mounted = 0;
    } else {
        w->root_dev = st.st_dev;
        w->root_ino = st.st_ino;
        watch_tree(w, WALK_WATCH_ONLY); /* the caller scans next (watch, then scan) */
    }
    *out = w;
    return 0;
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    wd_drop(w, NULL, 0);
    if (w->fd >= 0)
        close(w->fd);
    free(w->root);
    free(w);
}

int watch_fd(const struct watch *w)
{
    return w->fd;
}

int watch_scan(const char *root, struct ingest *in, int settle)
{
    walk(NULL, in, root, WALK_SCAN, settle, 0);
    return 0;
}

/* Handle one event. */
static void handle(struct watch *w, const struct inotify_event *ev)
{
    char path[PATH_MAX];
    struct wdir *d;

    if (ev->mask & IN_Q_OVERFLOW) {
        log_warn("inotify queue overflow: rescanning %s", w->root);
        w->rescan_due = 1;
        return;
    }
    if (w->lost)
        return;                        /* everything is rescanned when it is back */
    if (ev->mask & IN_UNMOUNT) {
        root_lost(w, "unmounted");
        return;
    }
    if (ev->wd == w->root_wd && (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))) {
        root_lost(w, "its watch was removed");
        return;
    }
    if (ev->mask & IN_IGNORED) {
        wd_forget(w, ev->wd);
        return;
    }
    if (!(d = *wd_slot(w, ev->wd)) || ev->len == 0 || ev->name[0] == '\0')
        return;
    if (snprintf(path, sizeof(path), "%s/%s", d->path, ev->name) >= (int)sizeof(path))
        return;
    if (ev->mask & IN_ISDIR) {
        if (ev->mask & IN_MOVED_FROM)
            wd_drop(w, path, 1);       /* gone or renamed: its new name is walked afresh */
        else if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->name[0] != '.')
            walk(w, w->in, path, WALK_SCAN, 1, 0);
        return;
    }
    if (ev->mask & IN_CREATE)
        ingest_created(w->in, path);
    if (ev->mask & IN_MODIFY)
        ingest_modified(w->in, path);
    if (ev->mask & IN_CLOSE_WRITE)
        ingest_closed(w->in, path);
    if (ev->mask & IN_MOVED_TO)
        ingest_moved_in(w->in, path);
    if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
        ingest_gone(w->in, path);
}

int watch_drain(struct watch *w)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    int n = 0;

    while (n < DRAIN_MAX) {
        ssize_t len = read(w->fd, buf, sizeof(buf));
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0) {
            if (len < 0 && errno != EAGAIN) {
                log_warn("inotify read: %s: rescanning %s", strerror(errno), w->root);
                w->rescan_due = 1;
            }
            break;
        }
        for (char *p = buf; p < buf + len; n++) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            handle(w, ev);
        }
    }
    if (w->rescan_due && !w->lost)
        rescan(w, WALK_SCAN);
    return 0;
}

uint64_t watch_maintain(struct watch *w)
{
    uint64_t now = tv_now_ms(), next;

    if (now >= w->next_root_check) {
        w->next_root_check = now + ROOT_CHECK_MS;
        check_root(w);
    }
    if (!w->lost && w->short_of_watches && now >= w->next_periodic) {
        w->next_periodic = now + RESCAN_PERIOD_MS;
        w->rescan_due = 1;
    }
    if (w->rescan_due && !w->lost)
        rescan(w, WALK_SCAN);
    next = w->next_root_check;
    if (w->short_of_watches && w->next_periodic < next)
        next = w->next_periodic;
    return next;
}
