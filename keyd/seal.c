/*
 * seal.c - see seal.h.  Thin, deliberate wrappers over libsodium: one place
 * decides nonce handling (random 192-bit nonces, safe to draw at random for
 * XChaCha20) and AAD layout.
 */
#include "config.h"
#include "keyd/seal.h"
#include "keyd/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define KDF_CONTEXT "tvkeyd01"

int seal_master_load(const char *path, unsigned char **key, const char **from,
                     char *err, size_t errlen)
{
    static char credpath[PATH_MAX];
    const char *cred = getenv("CREDENTIALS_DIRECTORY");
    struct stat st;
    unsigned char *k = NULL;
    int fd = -1, r;

    *key = NULL;
    int from_cred = 0;
    if (cred && *cred &&
        snprintf(credpath, sizeof(credpath), "%s/master.key", cred) < (int)sizeof(credpath) &&
        access(credpath, F_OK) == 0) {
        path = credpath;
        from_cred = 1;
    }
    *from = path;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(err, errlen, "master key %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        r = -EINVAL;
        snprintf(err, errlen, "master key %s: not a regular file", path);
        goto out;
    }
    /* systemd grants the service user access to a credential with an ACL,
     * whose mask shows in the group bits; its directory is private to the
     * unit.  So there only "others" bits are refused. */
    if (st.st_mode & (from_cred ? S_IRWXO : (S_IRWXG | S_IRWXO))) {
        r = -EPERM;
        snprintf(err, errlen, "master key %s: mode %04o gives access to group or others "
                 "(must be 0400 or 0600)", path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size != SEAL_KEY_LEN) {
        r = -EINVAL;
        snprintf(err, errlen, "master key %s: %lld bytes, expected %d", path,
                 (long long)st.st_size, SEAL_KEY_LEN);
        goto out;
    }
    k = sodium_malloc(SEAL_KEY_LEN);
    if (!k) {
        r = -ENOMEM;
        snprintf(err, errlen, "master key %s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < SEAL_KEY_LEN) {
        ssize_t n = read(fd, k + got, SEAL_KEY_LEN - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EINVAL;
            snprintf(err, errlen, "master key %s: short read", path);
            goto out;
        }
        got += (size_t)n;
    }
    sodium_mprotect_readonly(k);
    *key = k;
    k = NULL;
    r = 0;
out:
    if (k)
        sodium_free(k);
    if (fd >= 0)
        close(fd);
    return r;
}

int seal_master_create(const char *path)
{
    unsigned char *k = sodium_malloc(SEAL_KEY_LEN);
    int fd, r = 0;

    if (!k)
        return -ENOMEM;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    randombytes_buf(k, SEAL_KEY_LEN);
    if (write(fd, k, SEAL_KEY_LEN) != SEAL_KEY_LEN)
        r = -EIO;
    if (r == 0 && fchmod(fd, 0400) != 0)
        r = -errno;
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    close(fd);
    if (r != 0)
        unlink(path);
    else
        r = tv_fsync_parent(path);
out:
    sodium_free(k);
    return r;
}

size_t seal_aad_file(unsigned char *aad, const char *project, uint32_t version,
                     const unsigned char *file_id)
{
    size_t n = seal_aad(aad, SEAL_KIND_FILE_DEK, project, version, 0);
    memcpy(aad + n, file_id, KEYD_FILE_ID_LEN);
    return n + KEYD_FILE_ID_LEN;
}

int seal_derive(const unsigned char *master, enum seal_subkey id, unsigned char *out)
{
    return crypto_kdf_derive_from_key(out, SEAL_KEY_LEN, (uint64_t)id, KDF_CONTEXT, master) == 0
               ? 0 : -EINVAL;
}

size_t seal_aad(unsigned char *aad, enum seal_kind kind, const char *project,
                uint32_t version, uint8_t state)
{
    static const char *const label[] = { "", "tv-kek", "tv-dek", "tv-apikey", "tv-pseudonym",
                                         "tv-file-dek", "tv-ingest-vkey" };
    const char *l = label[kind];
    size_t ll = strlen(l), pl = strlen(project), n = 0;

    if (pl > 63)
        pl = 63;
    memcpy(aad + n, l, ll + 1);          /* label and its NUL */
    n += ll + 1;
    aad[n++] = (unsigned char)pl;
    memcpy(aad + n, project, pl);
    n += pl;
    aad[n++] = (unsigned char)(version >> 24);
    aad[n++] = (unsigned char)(version >> 16);
    aad[n++] = (unsigned char)(version >> 8);
    aad[n++] = (unsigned char)version;
    aad[n++] = state;
    return n;
}

void seal_seal(const unsigned char *key, const unsigned char *aad, size_t aadlen,
               const unsigned char *pt, size_t len, unsigned char *out)
{
    randombytes_buf(out, SEAL_NONCE_LEN);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_NONCE_LEN, NULL, pt, len, aad, aadlen,
                                               NULL, out, key);
}

int seal_open(const unsigned char *key, const unsigned char *aad, size_t aadlen,
              const unsigned char *in, size_t inlen, unsigned char *out)
{
    if (inlen < SEAL_OVERHEAD)
        return -EBADMSG;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, in + SEAL_NONCE_LEN,
                                                   inlen - SEAL_NONCE_LEN, aad, aadlen, in,
                                                   key) != 0) {
        sodium_memzero(out, inlen - SEAL_OVERHEAD);
        return -EBADMSG;
    }
    return 0;
}
