/*
 * sealkey.c - see sealkey.h.
 */
#include "config.h"
#include "keyd/sealkey.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd/seal.h"
#include "lib/util.h"

#define SK_MAGIC "TVSK\x01"
#define SK_MAGIC_LEN 5
#define SK_SLOT 128

int sk_read(const char *path, const unsigned char *wrap, unsigned char *keys[SK_SLOTS],
            int found[SK_SLOTS])
{
    unsigned char buf[SK_SLOTS * SK_SLOT];
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), n = 0;

    found[0] = found[1] = 0;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO))) {
        close(fd);
        return -EPERM;
    }
    ssize_t got = pread(fd, buf, sizeof(buf), 0);
    close(fd);
    if (got < 0)
        return -errno;
    for (int s = 0; s < SK_SLOTS && (s + 1) * SK_SLOT <= got; s++) {
        const unsigned char *p = buf + s * SK_SLOT;
        if (memcmp(p, SK_MAGIC, SK_MAGIC_LEN) == 0 &&
            seal_open(wrap, (const unsigned char *)SK_MAGIC, SK_MAGIC_LEN, p + SK_MAGIC_LEN,
                      SEAL_KEY_LEN + SEAL_OVERHEAD, keys[s]) == 0) {
            found[s] = 1;
            n++;
        }
    }
    sodium_memzero(buf, sizeof(buf));
    return n;
}

/* Write one slot's bytes and fdatasync; a new file gets both slots (the
 * other random) and a synced directory entry. */
static int put_slot(const char *path, int slot, const unsigned char *bytes)
{
    int created = access(path, F_OK) != 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600), r = 0;

    if (fd < 0)
        return -errno;
    if (created) {
        unsigned char other[SK_SLOT];
        randombytes_buf(other, sizeof(other));
        r = tv_write_full(fd, other, sizeof(other), (off_t)(1 - slot) * SK_SLOT);
    }
    if (r == 0)
        r = tv_write_full(fd, bytes, SK_SLOT, (off_t)slot * SK_SLOT);
    if (r == 0 && fdatasync(fd) != 0)
        r = -errno;
    close(fd);
    if (r == 0 && created)
        r = tv_fsync_parent(path);
    return r;
}

int sk_write(const char *path, const unsigned char *wrap, int slot, const unsigned char *key)
{
    unsigned char s[SK_SLOT];
    memset(s, 0, sizeof(s));
    memcpy(s, SK_MAGIC, SK_MAGIC_LEN);
    seal_seal(wrap, (const unsigned char *)SK_MAGIC, SK_MAGIC_LEN, key, SEAL_KEY_LEN,
              s + SK_MAGIC_LEN);
    return put_slot(path, slot, s);
}

int sk_wipe(const char *path, int slot)
{
    unsigned char s[SK_SLOT];
    randombytes_buf(s, sizeof(s));
    return put_slot(path, slot, s);
}
