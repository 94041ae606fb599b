/*
 * meta.c - metadata files of the backing store (see meta.h).
 */
#include "config.h"
#include "vault/meta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/util.h"
#include "vault/keys.h"

int meta_pread_full(int fd, void *buf, size_t len, off_t off)
{
    int rc = tv_read_full(fd, buf, len, off, -1);
    return rc == -ENODATA ? -EBADMSG : rc;
}

static int read_small(int dirfd, const char *name, void *buf, size_t cap, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = pread(fd, buf, cap, 0);
    int rc = r < 0 ? -errno : 0;
    close(fd);
    if (rc == 0)
        *len = (size_t)r;
    return rc;
}

void meta_project_encode(uint32_t version, const unsigned char wrapped[BC_WRAPPED],
                         unsigned char out[META_PROJECT_LEN])
{
    memcpy(out, "TVP1", 4);
    for (int i = 0; i < 4; i++)
        out[4 + i] = (unsigned char)(version >> (8 * i));
    memcpy(out + 8, wrapped, BC_WRAPPED);
}

int meta_project_parse(const unsigned char *buf, size_t len, uint32_t *version,
                       unsigned char wrapped[BC_WRAPPED])
{
    if (len != META_PROJECT_LEN || memcmp(buf, "TVP1", 4) != 0)
        return -EBADMSG;
    *version = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
               (uint32_t)buf[7] << 24;
    memcpy(wrapped, buf + 8, BC_WRAPPED);
    return *version ? 0 : -EBADMSG;
}

/* True if DIRFD holds an entry that is not metadata (a name not starting
 * with '.'). */
static int has_entries(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    int found = 0;
    if (!dp) {
        if (fd >= 0)
            close(fd);
        return 1;                     /* cannot tell: do not invent an IV */
    }
    while (!found && (de = readdir(dp)))
        found = de->d_name[0] != '.';
    closedir(dp);
    return found;
}

int meta_project_key(int dirfd, struct keys *k, const char *project, int create,
                     unsigned char key[NAMES_KEY])
{
    unsigned char buf[META_PROJECT_LEN + 1], wrapped[BC_WRAPPED];
    uint32_t version;
    size_t len = 0;
    int rc = read_small(dirfd, META_PROJECT, buf, sizeof buf, &len);

    /* a new name key only for a project without entries: a lost .tvproject
     * must not silently hide every name */
    if (rc == -ENOENT && create && has_entries(dirfd))
        return -EBADMSG;
    if (rc == -ENOENT && create) {
        rc = keys_new_dek(k, project, key, wrapped, &version);
        if (rc < 0)
            return rc;
        meta_project_encode(version, wrapped, buf);
        rc = tv_write_atomic(dirfd, META_PROJECT, buf, META_PROJECT_LEN, 0600);
        if (rc < 0) {
            sodium_memzero(key, NAMES_KEY);
            return rc;
        }
        /* another mounter may have raced us: re-read what is on disk */
        rc = read_small(dirfd, META_PROJECT, buf, sizeof buf, &len);
    }
    if (rc < 0)
        return rc;
    if ((rc = meta_project_parse(buf, len, &version, wrapped)) < 0)
        return rc;
    return keys_unwrap(k, project, version, wrapped, key);
}

int meta_dir_iv_new(int dirfd)
{
    unsigned char iv[NAMES_IV];
    randombytes_buf(iv, sizeof iv);
    int fd = openat(dirfd, META_DIRIV, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write(fd, iv, sizeof iv) == (ssize_t)sizeof iv ? 0 : -EIO;
    close(fd);
    if (rc < 0)
        unlinkat(dirfd, META_DIRIV, 0);
    return rc;
}

int meta_dir_iv(int dirfd, int create, unsigned char iv[NAMES_IV])
{
    size_t len = 0;
    int rc = read_small(dirfd, META_DIRIV, iv, NAMES_IV, &len);
    /* a missing IV is only made for a directory without entries: inventing
     * one for a populated directory would silently hide its names */
    if (rc == -ENOENT && create && has_entries(dirfd))
        return -EBADMSG;
    if (rc == -ENOENT && create) {
        rc = meta_dir_iv_new(dirfd);
        if (rc < 0 && rc != -EEXIST)
            return rc;
        rc = read_small(dirfd, META_DIRIV, iv, NAMES_IV, &len);
    }
    if (rc < 0)
        return rc;
    return len == NAMES_IV ? 0 : -EBADMSG;
}

int meta_long_read(int dirfd, const char *backing, char enc[NAMES_ENC_MAX])
{
    char side[NAMES_ENC_MAX], check[NAMES_ENC_MAX];
    size_t len = 0;
    names_side(backing, side);
    int rc = read_small(dirfd, side, enc, NAMES_ENC_MAX - 1, &len);
    if (rc < 0)
        return rc;
    enc[len] = '\0';
    /* the side file must belong to this backing name */
    if (names_backing(enc, check) != 1 || strcmp(check, backing) != 0)
        return -EBADMSG;
    return 0;
}

int meta_long_write(int dirfd, const char *backing, const char *enc)
{
    char side[NAMES_ENC_MAX];
    names_side(backing, side);
    int fd = openat(dirfd, side, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(enc);
    int rc = write(fd, enc, len) == (ssize_t)len ? 0 : -EIO;
    close(fd);
    return rc;
}
