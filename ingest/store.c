/*
 * store.c - durable one-file-per-request writes into the vault (store.h).
 */
#include "config.h"
#include "ingest/store.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
              const void *data, size_t len, char rel[STORE_NAME_MAX])
{
    char path[PATH_MAX], ymd[3][16], name[64], tmp[72], fin[80];
    unsigned char rnd[8];
    struct tm tm;
    time_t now = time(NULL);
    int fds[5] = { -1, -1, -1, -1, -1 }, fd = -1, r = 0, made_tmp = 0;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    gmtime_r(&now, &tm);
    snprintf(ymd[0], sizeof(ymd[0]), "%04d", tm.tm_year + 1900);
    snprintf(ymd[1], sizeof(ymd[1]), "%02d", tm.tm_mon + 1);
    snprintf(ymd[2], sizeof(ymd[2]), "%02d", tm.tm_mday);
    char hex[17];
    tv_hex(rnd, sizeof(rnd), hex);
    /* Time first, so names sort by arrival; 64 random bits make collisions
     * between concurrent requests negligible (O_EXCL catches one anyway). */
    snprintf(name, sizeof(name), "%02d%02d%02d-%s", tm.tm_hour, tm.tm_min, tm.tm_sec, hex);
    snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
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
    if (renameat(dd, tmp, dd, fin) != 0) {
        r = -errno;
        goto out;
    }
    made_tmp = 0;
    if (fsync(dd) != 0) {
        r = -errno;
        /* The name may or may not have reached the disk: take it back so the
         * client's retry is the only copy. */
        unlinkat(dd, fin, 0);
        goto out;
    }
    snprintf(rel, STORE_NAME_MAX, "%s/ingest/%s/%s/%s/%s", project, ymd[0], ymd[1], ymd[2], fin);
out:
    if (fd >= 0)
        close(fd);
    if (made_tmp)
        unlinkat(fds[4], tmp, 0);
    for (int i = 4; i >= 0; i--)
        if (fds[i] >= 0)
            close(fds[i]);
    return r;
}
