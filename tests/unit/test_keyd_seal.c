/*
 * test_keyd_seal.c - sealing: a sealed blob opens only under the same key
 * and the same AAD; every flipped byte, a truncation, another key, another
 * project/version/state/kind each fail.  Master key loading refuses loose
 * modes and wrong sizes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd/seal.h"
#include "tests/unit/tap.h"

int main(void)
{
    unsigned char master[32], k1[32], k2[32], kek[32], back[32];
    unsigned char blob[32 + SEAL_OVERHEAD], aad[SEAL_AAD_MAX], aad2[SEAL_AAD_MAX];
    size_t al, al2;

    plan(22);
    ok(sodium_init() >= 0, "sodium_init");
    randombytes_buf(master, sizeof(master));
    randombytes_buf(kek, sizeof(kek));
    is_int(seal_derive(master, SEAL_SUB_KEK, k1), 0, "derive KEK subkey");
    seal_derive(master, SEAL_SUB_AUDIT, k2);
    ok(memcmp(k1, k2, 32) != 0, "subkeys for different purposes differ");

    al = seal_aad(aad, SEAL_KIND_KEK, "checkout", 3, 0);
    seal_seal(k1, aad, al, kek, 32, blob);
    is_int(seal_open(k1, aad, al, blob, sizeof(blob), back), 0, "opens with the same key and AAD");
    ok(memcmp(back, kek, 32) == 0, "plaintext is back");
    is_int(seal_open(k2, aad, al, blob, sizeof(blob), back), -EBADMSG, "another key fails");
    ok(sodium_is_zero(back, 32), "output wiped after a failed open");

    al2 = seal_aad(aad2, SEAL_KIND_KEK, "checkouT", 3, 0);
    is_int(seal_open(k1, aad2, al2, blob, sizeof(blob), back), -EBADMSG, "another project fails");
    al2 = seal_aad(aad2, SEAL_KIND_KEK, "checkout", 4, 0);
    is_int(seal_open(k1, aad2, al2, blob, sizeof(blob), back), -EBADMSG, "another version fails");
    al2 = seal_aad(aad2, SEAL_KIND_KEK, "checkout", 3, 1);
    is_int(seal_open(k1, aad2, al2, blob, sizeof(blob), back), -EBADMSG, "another state fails");
    al2 = seal_aad(aad2, SEAL_KIND_DEK, "checkout", 3, 0);
    is_int(seal_open(k1, aad2, al2, blob, sizeof(blob), back), -EBADMSG, "another kind fails");
    /* Length-prefixed fields: ("ab", v) and ("a", ...) can never collide. */
    al = seal_aad(aad, SEAL_KIND_KEK, "a1", 0, 0);
    al2 = seal_aad(aad2, SEAL_KIND_KEK, "a", 0x31000000u, 0);
    ok(al != al2 || memcmp(aad, aad2, al) != 0, "AADs of different tuples differ");

    al = seal_aad(aad, SEAL_KIND_KEK, "checkout", 3, 0);
    int flips_caught = 0;
    for (size_t i = 0; i < sizeof(blob); i++) {
        blob[i] ^= 0x01;
        flips_caught += seal_open(k1, aad, al, blob, sizeof(blob), back) == -EBADMSG;
        blob[i] ^= 0x01;
    }
    is_int(flips_caught, (int)sizeof(blob), "every single flipped byte (nonce, ciphertext, tag) fails");
    is_int(seal_open(k1, aad, al, blob, sizeof(blob) - 1, back), -EBADMSG, "truncated blob fails");
    is_int(seal_open(k1, aad, al, blob, 10, back), -EBADMSG, "blob shorter than the overhead fails");

    /* Master key files. */
    char dir[] = "/tmp/tv-seal.XXXXXX", path[256], err[256];
    unsigned char *mk;
    const char *from;
    ok(mkdtemp(dir) != NULL, "temp dir");
    snprintf(path, sizeof(path), "%s/master.key", dir);
    is_int(seal_master_create(path), 0, "master key created");
    is_int(seal_master_create(path), -EEXIST, "create refuses to overwrite");
    unsetenv("CREDENTIALS_DIRECTORY");
    is_int(seal_master_load(path, &mk, &from, err, sizeof(err)), 0, "0400 master key loads");
    if (mk)
        sodium_free(mk);
    chmod(path, 0440);
    is_int(seal_master_load(path, &mk, &from, err, sizeof(err)), -EPERM,
           "group-readable master key refused");
    chmod(path, 0404);
    is_int(seal_master_load(path, &mk, &from, err, sizeof(err)), -EPERM,
           "world-readable master key refused");
    chmod(path, 0600);
    int fd = open(path, O_WRONLY | O_APPEND);
    if (write(fd, "x", 1) != 1)
        perror("write");
    close(fd);
    is_int(seal_master_load(path, &mk, &from, err, sizeof(err)), -EINVAL,
           "33-byte master key refused");
    unlink(path);
    rmdir(dir);
    return done();
}
