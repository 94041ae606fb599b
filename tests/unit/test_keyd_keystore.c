/*
 * test_keyd_keystore.c - the sealed keystore: save/load round trip keeps
 * projects, versions, states, API keys and the chain head; retired and
 * shredded versions come back without key bytes; another master key, a
 * flipped byte, a loose file mode each refuse to load; no KEK, API key or
 * pseudonym key appears in the file in clear.
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

#include "keyd/keystore.h"
#include "lib/util.h"
#include "tests/unit/tap.h"

static int file_has(const char *path, const void *needle, size_t n)
{
    char *buf;
    size_t len;
    int found = 0;
    if (tv_read_file(path, 1 << 24, &buf, &len) != 0)
        return -1;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, needle, n) == 0)
            found = 1;
    free(buf);
    return found;
}

/* Does version V of P unwrap W into the DEK D? */
static int unwraps(const struct ks_project *p, uint32_t v, const unsigned char *w,
                   const unsigned char *d)
{
    unsigned char out[KEYD_DEK_LEN];
    return ks_unwrap(p, v, NULL, w, out) == 0 && memcmp(out, d, KEYD_DEK_LEN) == 0;
}

int main(void)
{
    char dir[] = "/tmp/tv-ks.XXXXXX", path[256], err[256];
    unsigned char master[32], other[32], dek[KEYD_DEK_LEN], w1[KEYD_WRAPPED_LEN],
        w3[KEYD_WRAPPED_LEN], w3b[KEYD_WRAPPED_LEN], pseudo[32], mac[AUDIT_MAC_LEN];
    struct keystore *ks = NULL, *ks2 = NULL;
    struct ks_project *p;
    uint32_t v;
    unsigned changed;
    uint64_t seq;
    const char *apikey = "sk-CANARY-apikey-0123456789", *k;
    size_t kl;

    plan(32);
    ok(sodium_init() >= 0 && mkdtemp(dir) != NULL, "set-up");
    snprintf(path, sizeof(path), "%s/keys", dir);
    randombytes_buf(master, 32);
    randombytes_buf(other, 32);
    randombytes_buf(dek, sizeof(dek));

    is_int(ks_new(path, master, &ks), 0, "new keystore");
    is_int(ks_create(ks, "checkout", &v), 0, "create checkout");
    is_int(v, 1, "first version is 1");
    is_int(ks_create(ks, "checkout", &v), -EEXIST, "create twice: EEXIST");
    is_int(ks_create(ks, "../etc", &v), -EINVAL, "invalid name: EINVAL");
    ks_create(ks, "search", &v);
    p = ks_find(ks, "checkout");
    ks_rotate(ks, p, &v);
    ks_rotate(ks, p, &v);
    is_int(v, 3, "two rotations: version 3");
    ok(ks_wrap(p, 1, NULL, dek, w1) == 0 && ks_wrap(p, 3, NULL, dek, w3) == 0 &&
       ks_wrap(p, 3, NULL, dek, w3b) == 0, "wrap under versions 1 and 3");
    {
        /* a DEK wrapped for one file opens for that file only */
        unsigned char fa[KEYD_FILE_ID_LEN], fb[KEYD_FILE_ID_LEN], wf[KEYD_WRAPPED_LEN],
            back[KEYD_DEK_LEN];
        randombytes_buf(fa, sizeof fa);
        memcpy(fb, fa, sizeof fb);
        fb[15] ^= 1;
        ok(ks_wrap(p, 3, fa, dek, wf) == 0 && ks_unwrap(p, 3, fa, wf, back) == 0 &&
           memcmp(back, dek, KEYD_DEK_LEN) == 0, "a DEK wrapped for a file ID unwraps for it");
        is_int(ks_unwrap(p, 3, fb, wf, back), -EBADMSG, "... not for another file ID");
        is_int(ks_unwrap(p, 3, NULL, wf, back), -EBADMSG, "... nor as a DEK for no file");
        is_int(ks_unwrap(p, 3, fa, w3, back), -EBADMSG,
               "and a DEK for no file does not open as one for a file");
    }
    ok(unwraps(p, 3, w3, dek) && !unwraps(p, 1, w3, dek) && !unwraps(p, 2, w3, dek) &&
       memcmp(w3, w3b, sizeof(w3)) != 0,
       "versions have distinct KEKs; each wrap has its own nonce");
    memcpy(pseudo, ks_pseudonym(p), 32);
    is_int(ks_retire(ks, p, 2, &changed), 0, "retire below 2");
    is_int(changed, 1, "one version retired");
    ok(ks_usable(p, 1) == -EKEYEXPIRED && ks_unwrap(p, 1, NULL, w1, dek) == -EKEYEXPIRED &&
       ks_state(p, 1) == KEYD_V_RETIRED, "retired KEK no longer unwraps");
    is_int(ks_retire(ks, p, 4, &changed), -EINVAL, "retiring the current version refused");
    is_int(ks_apikey_set(ks, p, apikey, strlen(apikey)), 0, "API key set");
    is_int(ks_shred(ks, ks_find(ks, "search")), 0, "shred search");
    uint64_t gen = ks_gen(ks);
    memset(mac, 0xab, sizeof(mac));
    is_int(ks_set_head(ks, 77, mac, NULL), 0, "chain head set");
    is_int(ks_save(ks), 0, "save");
    struct stat st;
    stat(path, &st);
    is_int(st.st_mode & 0777, 0600, "keystore written 0600");
    ok(file_has(path, pseudo, 32) == 0 && file_has(path, apikey, strlen(apikey)) == 0 &&
       file_has(path, "checkout", 8) == 0,
       "no pseudonym key, API key or project name in clear in the file");

    is_int(ks_load(path, master, &ks2, err, sizeof(err)), 0, "load");
    p = ks2 ? ks_find(ks2, "checkout") : NULL;
    ok(p && ks_current(p) == 3 && ks_nversions(p) == 3 && ks_state(p, 1) == KEYD_V_RETIRED &&
       ks_usable(p, 1) == -EKEYEXPIRED && unwraps(p, 3, w3, dek) &&
       memcmp(ks_pseudonym(p), pseudo, 32) == 0 && ks_apikey(p, &k, &kl) == 0 &&
       kl == strlen(apikey) && !strcmp(k, apikey),
       "checkout comes back: versions, states, KEKs, pseudonym and API key");
    p = ks2 ? ks_find(ks2, "search") : NULL;
    ok(p && ks_shredded(p) && ks_current(p) == 0 && !ks_pseudonym(p) &&
       ks_state(p, 1) == KEYD_V_SHREDDED && ks_usable(p, 1) == -EKEYREVOKED,
       "shredded project comes back without any key");
    memset(mac, 0, sizeof(mac));
    if (ks2)
        ks_head(ks2, &seq, mac, NULL);
    ok(ks2 && ks_gen(ks2) == gen && seq == 77 && mac[5] == 0xab,
       "generation and chain head preserved");
    ks_free(ks2);
    ks2 = NULL;

    is_int(ks_load(path, other, &ks2, err, sizeof(err)), -EBADMSG, "another master key: refused");
    char *buf;
    size_t len;
    tv_read_file(path, 1 << 24, &buf, &len);
    buf[len / 2] ^= 0x20;
    tv_write_atomic(AT_FDCWD, path, buf, len, 0600);
    is_int(ks_load(path, master, &ks2, err, sizeof(err)), -EBADMSG, "flipped byte: refused");
    buf[len / 2] ^= 0x20;
    tv_write_atomic(AT_FDCWD, path, buf, len, 0600);
    free(buf);
    chmod(path, 0644);
    is_int(ks_load(path, master, &ks2, err, sizeof(err)), -EPERM, "world-readable keystore refused");
    chmod(path, 0640);
    is_int(ks_load(path, master, &ks2, err, sizeof(err)), -EPERM, "group-readable keystore refused");
    chmod(path, 0600);
    is_int(ks_load(path, master, &ks2, err, sizeof(err)), 0, "restored bytes load again");
    ks_free(ks2);
    ks_free(ks);
    unlink(path);
    rmdir(dir);
    return done();
}
