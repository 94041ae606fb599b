/*
 * test_keyd_keystore.c - the sealed keystore: save/load round trip keeps
 * projects, versions, states, API keys and the chain head; retired and
 * shredded versions come back without key bytes; another master key, a
 * flipped byte, a loose file mode each refuse to load; no KEK, API key or
 * pseudonym key appears in the file in clear.  Ingest keys: tokens of the
 * documented shape verify to their project; wrong secrets, unknown IDs,
 * other shapes, revoked keys and shredded projects do not; they survive a
 * save and load; the file holds no token; the limits hold.
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

/* Verify TOKEN; 0 and *WHO's name in NAME, or the error. */
static int verify(struct keystore *ks, const char *token, size_t len, const char **name,
                  char id[KEYD_INGEST_ID_LEN + 1])
{
    struct ks_project *who = NULL;
    int r = ks_ingest_verify(ks, token, len, &who, id);
    *name = who ? ks_name(who) : NULL;
    return r;
}

static void test_ingest(const char *dir, const unsigned char *master)
{
    char path[256], err[256], ta[KEYD_INGEST_TOKEN_LEN + 1], tb[KEYD_INGEST_TOKEN_LEN + 1],
        tc[KEYD_INGEST_TOKEN_LEN + 1], ida[KEYD_INGEST_ID_LEN + 1], idb[KEYD_INGEST_ID_LEN + 1],
        idc[KEYD_INGEST_ID_LEN + 1], id[KEYD_INGEST_ID_LEN + 1], bad[4096];
    struct keystore *ks = NULL, *ks2 = NULL;
    struct ks_project *a, *b;
    struct ks_ingest_info info;
    const char *name;
    unsigned changed;
    uint32_t v;

    snprintf(path, sizeof(path), "%s/ingest-keys", dir);
    ks_new(path, master, &ks);
    ks_create(ks, "a", &v);
    ks_create(ks, "b", &v);
    a = ks_find(ks, "a");
    b = ks_find(ks, "b");
    ok(ks_ingest_create(ks, a, 1000, ta, ida) == 0 && ks_ingest_create(ks, a, 1001, tb, idb) == 0 &&
       ks_ingest_create(ks, b, 1002, tc, idc) == 0, "ingest keys created");
    ok(strlen(ta) == KEYD_INGEST_TOKEN_LEN && !strncmp(ta, "tvi_", 4) &&
       !strncmp(ta + 4, ida, KEYD_INGEST_ID_LEN) && ta[20] == '_' &&
       strspn(ta + 21, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43,
       "token is tvi_<ID>_<43 base64url>");
    ok(verify(ks, ta, strlen(ta), &name, id) == 0 && !strcmp(name, "a") && !strcmp(id, ida),
       "key verifies to its project and ID");
    ok(verify(ks, tc, strlen(tc), &name, id) == 0 && !strcmp(name, "b") && !strcmp(id, idc),
       "another project's key verifies to that project");
    memcpy(bad, ta, KEYD_INGEST_TOKEN_LEN);
    bad[40] = bad[40] == 'A' ? 'B' : 'A';
    ok(verify(ks, bad, KEYD_INGEST_TOKEN_LEN, &name, id) == -EACCES && name && !strcmp(name, "a") &&
       !strcmp(id, ida), "wrong secret: EACCES, the known ID reported for the audit");
    memcpy(bad, tb, KEYD_INGEST_TOKEN_LEN);
    memcpy(bad + 4, ida, KEYD_INGEST_ID_LEN);
    ok(verify(ks, bad, KEYD_INGEST_TOKEN_LEN, &name, id) == -EACCES,
       "one key's ID with another's secret: EACCES");
    memcpy(bad, ta, KEYD_INGEST_TOKEN_LEN);
    memcpy(bad + 4, ida[0] == '0' ? "1" : "0", 1);
    ok(verify(ks, bad, KEYD_INGEST_TOKEN_LEN, &name, id) == -EACCES && !name && !id[0],
       "unknown ID: EACCES, nothing reported");
    int all = 1;
    static const size_t lens[] = { 0, 1, 4, 21, 63, 65, 128, 4096 };
    randombytes_buf(bad, sizeof(bad));
    memcpy(bad, ta, KEYD_INGEST_TOKEN_LEN);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        all &= verify(ks, bad, lens[i], &name, id) == -EACCES;
    ok(all, "prefixes, extensions and garbage of 0..4096 bytes: EACCES");
    ok(ks_ingest_revoke(ks, a, ida, 2000, &changed) == 0 && changed == 1 &&
       verify(ks, ta, strlen(ta), &name, id) == -EACCES &&
       verify(ks, tb, strlen(tb), &name, id) == 0, "revoked key refused at once, the other not");
    ok(ks_ingest_revoke(ks, a, ida, 2001, &changed) == 0 && changed == 0 &&
       ks_ingest_revoke(ks, a, idc, 2001, &changed) == -ENOENT &&
       ks_ingest_revoke(ks, a, "XYZ", 2001, &changed) == -EINVAL,
       "revoke twice: no change; another project's ID: ENOENT; not an ID: EINVAL");
    ok(ks_ingest_at(a, 0, &info) == 0 && !strcmp(info.id, ida) && info.created == 1000 &&
       info.revoked == 2000 && ks_ingest_count(a) == 2, "list entry: ID, created, revoked");

    ok(ks_save(ks) == 0 && ks_load(path, master, &ks2, err, sizeof(err)) == 0, "save and load");
    ok(ks2 && verify(ks2, tb, strlen(tb), &name, id) == 0 && !strcmp(name, "a") &&
       verify(ks2, tc, strlen(tc), &name, id) == 0 && verify(ks2, ta, strlen(ta), &name, id) ==
       -EACCES, "after load: live keys verify, the revoked one does not");
    ok(file_has(path, ta, KEYD_INGEST_TOKEN_LEN) == 0 && file_has(path, tb + 21, 43) == 0 &&
       file_has(path, tc + 21, 43) == 0, "no token or secret in the file");
    ok(ks_shred(ks2, ks_find(ks2, "b")) == 0 && ks_ingest_count(ks_find(ks2, "b")) == 0 &&
       verify(ks2, tc, strlen(tc), &name, id) == -EACCES &&
       ks_ingest_create(ks2, ks_find(ks2, "b"), 1, tc, idc) == -EKEYREVOKED,
       "SHRED removes the project's keys and refuses new ones");
    ks_free(ks2);

    int r = 0, n = 0;
    a = ks_find(ks, "a");
    while ((r = ks_ingest_create(ks, a, 3000, tc, idc)) == 0)
        n++;
    ok(r == -ENOSPC && n == KS_INGEST_LIVE_MAX - 1, "live keys capped at %d (ENOSPC)",
       KS_INGEST_LIVE_MAX);
    for (size_t i = 0; ks_ingest_at(a, i, &info) == 0; i++)
        ks_ingest_revoke(ks, a, info.id, 4000, &changed);
    r = 0;
    for (int i = 0; i < KS_INGEST_MAX + 100 && r == 0; i++)
        if ((r = ks_ingest_create(ks, a, 5000, tc, idc)) == 0)
            r = ks_ingest_revoke(ks, a, idc, 5001, &changed);
    ok(r == 0 && ks_ingest_count(a) == KS_INGEST_MAX && ks_ingest_at(a, 0, &info) == 0 &&
       strcmp(info.id, ida) != 0 && info.created == 5000,
       "entries capped at %d: the oldest revoked are forgotten", KS_INGEST_MAX);
    ks_free(ks);
    unlink(path);
    char seal[300];
    snprintf(seal, sizeof(seal), "%s.seal", path);
    unlink(seal);
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

    plan(32 + 17);
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
    test_ingest(dir, master);
    snprintf(path, sizeof(path), "%s/keys.seal", dir);
    unlink(path);
    rmdir(dir);
    return done();
}
