/*
 * xattr-flaky.c - LD_PRELOAD shim for agent-identity.sh: the first
 * fgetxattr of user.tracevault.file_id on each inode fails with EIO, as it
 * does for a descriptor whose vault died (its bytes still readable from the
 * page cache); later ones reach the filesystem.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define MAXF 4096

static ino_t seen[MAXF];
static int nseen;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

ssize_t fgetxattr(int fd, const char *name, void *value, size_t size)
{
    static ssize_t (*real)(int, const char *, void *, size_t);
    struct stat st;
    int first = 0;

    if (!real)
        real = (ssize_t (*)(int, const char *, void *, size_t))dlsym(RTLD_NEXT, "fgetxattr");
    if (strcmp(name, "user.tracevault.file_id") == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        pthread_mutex_lock(&mu);
        int i;
        for (i = 0; i < nseen && seen[i] != st.st_ino; i++)
            ;
        if (i == nseen && nseen < MAXF) {
            seen[nseen++] = st.st_ino;
            first = 1;
        }
        pthread_mutex_unlock(&mu);
    }
    if (first) {
        errno = EIO;
        return -1;
    }
    return real(fd, name, value, size);
}
