/*
 * store.c - durable one-file-per-request writes into the vault (store.h).
 */
#include "config.h"
#include "ingest/store.h"
#include "lib/util.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Temp files whose removal failed (the vault was gone at the time): tried
 * again after each later store, so an outage leaves no hidden debris.
 * Bounded: past STALE_MAX paths, the oldest is forgotten (and stays a dot
 * file the agent ignores). */
#define STALE_MAX 1024
static pthread_mutex_t stale_lock = PTHREAD_MUTEX_INITIALIZER;
static char *stale[STALE_MAX];
static size_t n_stale;

static void stale_add(const char *mount, const char *project, const char ymd[3][16], const char *tmp)
{
    char *p;
    if (asprintf(&p, "%s/%s/ingest/%s/%s/%s/%s", mount, project, ymd[0], ymd[1], ymd[2], tmp) < 0)
        return;
    pthread_mutex_lock(&stale_lock);
    if (n_stale == STALE_MAX) {
        free(stale[0]);
        memmove(stale, stale + 1, (STALE_MAX - 1) * sizeof(stale[0]));
        n_stale--;
    }
    stale[n_stale++] = p;
    pthread_mutex_unlock(&stale_lock);
}

static void stale_sweep(void)
{
    pthread_mutex_lock(&stale_lock);
    size_t k = 0;
    for (size_t i = 0; i < n_stale; i++) {
        if (unlink(stale[i]) == 0 || errno == ENOENT)
            free(stale[i]);
        else
            stale[k++] = stale[i];
    }
    n_stale = k;
    pthread_mutex_unlock(&stale_lock);
}

/* Open (making it if needed) directory NAME below DIRFD.  A directory made
 * here is fsync'd into its parent, so the file's path survives a crash. */
static int subdir(int dirfd, const char *name)
{
    int fd;

    if (mkdirat(dirfd, name, 0750) == 0) {
        if (fsync(dirfd) != 0)
            return -errno;
    } else if (errno != EEXIST) {
        return -errno;
    }
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int store_put(const char *mount, const char *project, const char *suffix,
              const void *data, size_t len, char rel[STORE_NAME_MAX], int *duplicate)
{
    char path[PATH_MAX], ymd[3][16], name[40], tmp[80], fin[80], rhex[17];
    unsigned char rnd[8], h[16];
    struct tm tm;
    struct stat st;
    time_t now = time(NULL);
    int fds[5] = { -1, -1, -1, -1, -1 }, fd = -1, r = 0, made_tmp = 0;

    *duplicate = 0;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    gmtime_r(&now, &tm);
    snprintf(ymd[0], sizeof(ymd[0]), "%04d", tm.tm_year + 1900);
    snprintf(ymd[1], sizeof(ymd[1]), "%02d", tm.tm_mon + 1);
    snprintf(ymd[2], sizeof(ymd[2]), "%02d", tm.tm_mday);
    /* The name is a hash of the project and the content: an exporter that
     * retries a request whose answer it never got (the gateway stored it,
     * then failed or was cut before the 200) finds the file there and is
     * answered 200 without a second copy, so the agent ships its spans once. */
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, sizeof(h));
    crypto_generichash_update(&hs, (const unsigned char *)project, strlen(project) + 1);
    crypto_generichash_update(&hs, data, len);
    crypto_generichash_final(&hs, h, sizeof(h));
    tv_hex(h, sizeof(h), name);
    tv_hex(rnd, sizeof(rnd), rhex);
    snprintf(tmp, sizeof(tmp), ".%s-%s.tmp", name, rhex);
    snprintf(fin, sizeof(fin), "%s%s", name, suffix);

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", mount, project) >= sizeof(path))
        return -ENAMETOOLONG;
    fds[0] = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fds[0] < 0)
        return -errno;
    const char *names[4] = { "ingest", ymd[0], ymd[1], ymd[2] };
    for (int i = 0; i < 4; i++) {
        fds[i + 1] = subdir(fds[i], names[i]);
        if (fds[i + 1] < 0) {
            r = fds[i + 1];
            goto out;
        }
    }
    int dd = fds[4];
    if (fstatat(dd, fin, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        *duplicate = 1;
        goto durable;         /* already stored: make sure its name is durable */
    }
    fd = openat(dd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    made_tmp = 1;
    if ((r = tv_write_full(fd, data, len, 0)) != 0)
        goto out;
    if (fsync(fd) != 0) {
        r = -errno;
        goto out;
    }
    /* The vault reports deferred write errors at close (FUSE flush). */
    r = close(fd);
    fd = -1;
    if (r != 0) {
        r = -errno;
        goto out;
    }
    /* NOREPLACE: of two identical requests racing, the second finds the
     * first's file and drops its own copy. */
    if (renameat2(dd, tmp, dd, fin, RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST) {
            *duplicate = 1;
            unlinkat(dd, tmp, 0);
            made_tmp = 0;
            goto durable;
        }
        if (errno != EINVAL || renameat(dd, tmp, dd, fin) != 0) {
            r = -errno;
            goto out;
        }
    }
    made_tmp = 0;
durable:
    if (fsync(dd) != 0) {
        r = -errno;
        goto out;             /* the retry finds the file, if it reached the disk */
    }
    snprintf(rel, STORE_NAME_MAX, "%s/ingest/%s/%s/%s/%s", project, ymd[0], ymd[1], ymd[2], fin);
out:
    if (fd >= 0)
        close(fd);
    if (made_tmp && unlinkat(fds[4], tmp, 0) != 0 && errno != ENOENT)
        stale_add(mount, project, ymd, tmp);
    if (r == 0)
        stale_sweep();
    for (int i = 4; i >= 0; i--)
        if (fds[i] >= 0)
            close(fds[i]);
    return r;
}

int store_sweep(const char *mount, const char *project, int max_age_s)
{
    char dir[PATH_MAX];
    time_t now = time(NULL);
    int removed = 0;

    for (int day = 0; day < 2; day++) {
        time_t t = now - day * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/ingest/%04d/%02d/%02d", mount, project,
                             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) >= sizeof(dir))
            continue;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            continue;
        DIR *d = fdopendir(dfd);
        if (!d) {
            close(dfd);
            continue;
        }
        struct dirent *e;
        struct stat st;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (e->d_name[0] != '.' || n < 6 || strcmp(e->d_name + n - 4, ".tmp") != 0)
                continue;
            if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                now - st.st_mtime > max_age_s && unlinkat(dfd, e->d_name, 0) == 0)
                removed++;
        }
        closedir(d);
    }
    return removed;
}
