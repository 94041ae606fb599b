/*
 * watch.c - inotify discovery and scans (watch.h).
 *
 * libinotifytools keeps the wd -> directory name map and adds watches
 * recursively; it does not expose its descriptor, so we find it once in
 * /proc/self/fd right after initialising it and poll it ourselves (events
 * are then read with a zero timeout).
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
#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENTS (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | \
                IN_DELETE | IN_DELETE_SELF)
#define RESCAN_PERIOD_MS 5000

struct watch {
    char *root;
    int fd;
    struct ingest *in;
    struct metrics *m;
    int rescan_due;
    int short_of_watches;
    int warned;                    /* the shortage was logged */
    uint64_t next_periodic;
};

static int find_inotify_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char p[300], link[64];
        ssize_t n;
        snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
        if ((n = readlink(p, link, sizeof(link) - 1)) <= 0)
            continue;
        link[n] = '\0';
        if (!strcmp(link, "anon_inode:inotify"))
            found = atoi(e->d_name);
    }
    closedir(d);
    return found;
}

static void add_watches(struct watch *w, const char *dir)
{
    if (inotifytools_watch_recursively(dir, EVENTS)) {
        if (w->warned && !strcmp(dir, w->root)) {
            log_info("%s: every directory is watched again", dir);
            w->warned = 0;
        }
        return;
    }
    int err = inotifytools_error();
    if (err == ENOSPC) {
        if (!w->warned)
            log_error("%s: out of inotify watches (raise fs.inotify.max_user_watches): "
                      "rescanning every %d s until watches are available", dir,
                      RESCAN_PERIOD_MS / 1000);
        w->warned = 1;
        w->short_of_watches = 1;
        w->next_periodic = tv_now_ms() + RESCAN_PERIOD_MS;
    } else if (err != ENOENT) {
        log_warn("%s: cannot watch: %s", dir, strerror(err));
    }
}

int watch_new(const char *root, struct ingest *in, struct metrics *m, struct watch **out)
{
    struct watch *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (!w || !(w->root = strdup(root))) {
        free(w);
        return -ENOMEM;
    }
    w->in = in;
    w->m = m;
    if (!inotifytools_initialize()) {
        log_error("inotify: %s", strerror(inotifytools_error()));
        watch_free(w);
        return -EMFILE;
    }
    if ((w->fd = find_inotify_fd()) < 0) {
        log_error("inotify: cannot find the descriptor");
        watch_free(w);
        return -EBADF;
    }
    add_watches(w, root);
    *out = w;
    return 0;
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    inotifytools_cleanup();
    free(w->root);
    free(w);
}

int watch_fd(const struct watch *w)
{
    return w->fd;
}

static void scan_dir(const char *dir, struct ingest *in, int settle, int depth)
{
    DIR *d;
    struct dirent *e;
    char path[PATH_MAX];

    if (depth > 64 || !(d = opendir(dir)))
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
            scan_dir(path, in, settle, depth + 1);
        else if (type == DT_REG && ingest_kind(e->d_name) != FK_NONE)
            ingest_scanned(in, path, settle);
    }
    closedir(d);
}

int watch_scan(const char *root, struct ingest *in, int settle)
{
    scan_dir(root, in, settle, 0);
    return 0;
}

static void rescan(struct watch *w)
{
    w->rescan_due = 0;
    w->m->rescans++;
    if (w->short_of_watches) {
        w->short_of_watches = 0;
        add_watches(w, w->root);
    }
    watch_scan(w->root, w->in, 1);
}

int watch_drain(struct watch *w)
{
    struct inotify_event *ev;
    char path[PATH_MAX];
    int n = 0;

    while (n++ < 20000 && (ev = inotifytools_next_events(0, 1)) != NULL) {
        if (ev->mask & IN_Q_OVERFLOW) {
            log_warn("inotify queue overflow: rescanning %s", w->root);
            w->rescan_due = 1;
            continue;
        }
        if (ev->mask & IN_IGNORED)
            continue;
        const char *dir = inotifytools_filename_from_wd(ev->wd);
        if (!dir || ev->len == 0)
            continue;
        if (snprintf(path, sizeof(path), "%s%s", dir, ev->name) >= (int)sizeof(path))
            continue;
        if (ev->mask & IN_ISDIR) {
            if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                if (ev->name[0] == '.')
                    continue;
                /* Watch first, then scan: anything created in between is
                 * seen by one or the other (the checkpoints dedupe). */
                char slash[PATH_MAX + 2];
                snprintf(slash, sizeof(slash), "%s/", path);
                add_watches(w, slash);
                watch_scan(path, w->in, 1);
            }
            continue;
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
    if (w->rescan_due)
        rescan(w);
    return 0;
}

uint64_t watch_maintain(struct watch *w)
{
    uint64_t now = tv_now_ms();

    if (w->short_of_watches && now >= w->next_periodic) {
        w->next_periodic = now + RESCAN_PERIOD_MS;
        rescan(w);
        if (w->short_of_watches)
            w->next_periodic = now + RESCAN_PERIOD_MS;
    }
    if (w->rescan_due)
        rescan(w);
    return w->short_of_watches ? w->next_periodic : 0;
}
