/*
 * keystore_file.c - the keystore's sealed file (docs/KEYD.md "Keystore"):
 * serialisation and the crash-safe save (write, fsync, rename, re-seal
 * under a fresh sealing key), and loading every format version.  The keys
 * in memory are keystore.c's.
 */
#include "config.h"
#include "keyd/keystore_int.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd/proto.h"
#include "keyd/seal.h"
#include "keyd/sealkey.h"
#include "lib/config.h"
#include "lib/frame.h"
#include "lib/util.h"

/* --- save ---------------------------------------------------------------- */

static void pk_str(msgpack_packer *pk, const char *s)
{
    mp_pack_cstr(pk, s);
}

/* Pack a sealed copy of LEN bytes at KEY under AAD for (KIND, name, v, state). */
static int pk_sealed(msgpack_packer *pk, const struct keystore *ks, enum seal_kind kind,
                     const char *name, uint32_t v, uint8_t state, const void *key, size_t len)
{
    unsigned char aad[SEAL_AAD_MAX];
    unsigned char *out = malloc(len + SEAL_OVERHEAD);
    if (!out)
        return -ENOMEM;
    size_t al = seal_aad(aad, kind, name, v, state);
    seal_seal(ks->kek_key, aad, al, key, len, out);
    msgpack_pack_bin(pk, len + SEAL_OVERHEAD);
    msgpack_pack_bin_body(pk, out, len + SEAL_OVERHEAD);
    free(out);
    return 0;
}

static int pack_body(const struct keystore *ks, msgpack_packer *pk)
{
    int r = 0;

    msgpack_pack_map(pk, 7);
    pk_str(pk, "anchored");
    msgpack_pack_true(pk);
    pk_str(pk, "gen");
    msgpack_pack_uint64(pk, ks->gen);
    pk_str(pk, "head_seq");
    msgpack_pack_uint64(pk, ks->head_seq);
    pk_str(pk, "head_mac");
    msgpack_pack_bin(pk, AUDIT_MAC_LEN);
    msgpack_pack_bin_body(pk, ks->head_mac, AUDIT_MAC_LEN);
    pk_str(pk, "pending");
    if (ks->pending)
        pk_str(pk, ks->pending);
    else
        msgpack_pack_nil(pk);
    pk_str(pk, "ingest_vkey");
    r = pk_sealed(pk, ks, SEAL_KIND_INGEST_VKEY, "", 0, 0, ks->ingest_vkey, SEAL_KEY_LEN);
    pk_str(pk, "projects");
    msgpack_pack_array(pk, ks->np);
    for (size_t i = 0; r == 0 && i < ks->np; i++) {
        const struct ks_project *p = &ks->p[i];
        msgpack_pack_map(pk, 7);
        pk_str(pk, "name");
        pk_str(pk, p->name);
        pk_str(pk, "current");
        msgpack_pack_uint32(pk, p->current);
        pk_str(pk, "shredded");
        p->shredded ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        pk_str(pk, "versions");
        msgpack_pack_array(pk, p->nv);
        for (size_t j = 0; r == 0 && j < p->nv; j++) {
            const struct ks_version *v = &p->v[j];
            msgpack_pack_map(pk, 3);
            pk_str(pk, "v");
            msgpack_pack_uint32(pk, v->version);
            pk_str(pk, "state");
            pk_str(pk, keyd_state_name(v->state));
            pk_str(pk, "kek");
            if (v->kek)
                r = pk_sealed(pk, ks, SEAL_KIND_KEK, p->name, v->version, (uint8_t)v->state,
                              v->kek, SEAL_KEY_LEN);
            else
                msgpack_pack_nil(pk);
        }
        pk_str(pk, "pseudonym");
        if (r == 0 && p->pseudonym)
            r = pk_sealed(pk, ks, SEAL_KIND_PSEUDONYM, p->name, 0, 0, p->pseudonym,
                          SEAL_KEY_LEN);
        else
            msgpack_pack_nil(pk);
        pk_str(pk, "apikey");
        if (r == 0 && p->apikey)
            r = pk_sealed(pk, ks, SEAL_KIND_APIKEY, p->name, 0, 0, p->apikey, p->apikey_len);
        else
            msgpack_pack_nil(pk);
        /* Verifiers are not secrets (the tokens have 256 random bits) but
         * they stay inside the file key's sealing like everything else. */
        pk_str(pk, "ingest");
        msgpack_pack_array(pk, p->ning);
        for (size_t j = 0; j < p->ning; j++) {
            const struct ks_ingest *k = &p->ing[j];
            msgpack_pack_map(pk, 4);
            pk_str(pk, "id");
            msgpack_pack_bin(pk, sizeof(k->id));
            msgpack_pack_bin_body(pk, k->id, sizeof(k->id));
            pk_str(pk, "created");
            msgpack_pack_uint64(pk, k->created);
            pk_str(pk, "revoked");
            msgpack_pack_uint64(pk, k->revoked);
            pk_str(pk, "verifier");
            if (k->revoked) {
                msgpack_pack_nil(pk);
            } else {
                msgpack_pack_bin(pk, sizeof(k->verifier));
                msgpack_pack_bin_body(pk, k->verifier, sizeof(k->verifier));
            }
        }
    }
    return r;
}

/* Seal and atomically write the keystore under the current keys. */
static int write_file(struct keystore *ks)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned char *file = NULL;
    size_t flen = 0;
    int r;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if ((r = pack_body(ks, &pk)) != 0)
        goto out;
    flen = KS_MAGIC_LEN + sb.size + SEAL_OVERHEAD;
    if (!(file = malloc(flen))) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(file, KS_MAGIC, KS_MAGIC_LEN);
    seal_seal(ks->file_key, file, KS_MAGIC_LEN, (const unsigned char *)sb.data, sb.size,
              file + KS_MAGIC_LEN);
    r = tv_write_atomic(AT_FDCWD, ks->path, file, flen, 0600);
out:
    free(file);
    if (sb.data)
        sodium_memzero(sb.data, sb.alloc);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

/* Fault injection for keyd-shred.sh: die at step NAME of a re-seal. */
static void crash_point(const char *name)
{
    const char *c = getenv("TRACEVAULT_KEYD_TEST_CRASH");
    if (c && strcmp(c, name) == 0)
        _exit(137);
}

/*
 * Save under a fresh sealing key and destroy the old one, in an order that
 * a kill at any point leaves a keystore that opens: (1) the new key into the
 * spare slot (the keystore still opens with the old one), (2) the keystore
 * under the new key (atomic rename: it opens with one of the two), (3) the
 * old slot overwritten.  A failure at (3) leaves the keystore saved and the
 * old key to be wiped by ks_settle (logged by the caller's next start).
 */
static int reseal(struct keystore *ks)
{
    unsigned char *old[3] = { ks->seal_key, ks->file_key, ks->kek_key };
    unsigned char *fresh[3] = { ks_key_new(), ks_key_new(), ks_key_new() };
    int old_slot = ks->slot, slot = old_slot < 0 ? 0 : 1 - old_slot, r = -ENOMEM;

    if (!fresh[0] || !fresh[1] || !fresh[2])
        goto fail;
    randombytes_buf(fresh[0], SEAL_KEY_LEN);
    if ((r = sk_write(ks->seal_path, ks->wrap_key, slot, fresh[0])) != 0)
        goto fail;
    crash_point("reseal-1");
    ks->seal_key = fresh[0];
    ks->file_key = fresh[1];
    ks->kek_key = fresh[2];
    if ((r = ks_use_key(ks, fresh[0])) != 0 || (r = write_file(ks)) != 0) {
        ks->seal_key = old[0];          /* the keystore on disk is the old one */
        ks->file_key = old[1];
        ks->kek_key = old[2];
        goto fail;
    }
    crash_point("reseal-2");
    ks->slot = slot;
    ks->reseal = ks->legacy = 0;
    ks->stale = sk_wipe(ks->seal_path, 1 - slot) != 0;
    crash_point("reseal-3");
    for (int i = 0; i < 3; i++)
        ks_key_free(&old[i]);
    return 0;
fail:
    for (int i = 0; i < 3; i++)
        ks_key_free(&fresh[i]);
    return r;
}

int ks_save(struct keystore *ks)
{
    if (ks->reseal || ks->slot < 0)
        return reseal(ks);
    return write_file(ks);
}

int ks_settle(struct keystore *ks)
{
    if (ks->stale) {
        int r = sk_wipe(ks->seal_path, 1 - ks->slot);
        if (r != 0)
            return r;
        ks->stale = 0;
    }
    return ks->slot < 0 ? reseal(ks) : 0;
}

int ks_stale(const struct keystore *ks)
{
    return ks->stale;
}

/* --- load ---------------------------------------------------------------- */

/* Open a sealed key blob O (bin or nil) into a new guarded buffer *OUT.
 * EXACT, if non-zero, is the required plaintext length. */
static int open_sealed(const struct keystore *ks, const msgpack_object *o, enum seal_kind kind,
                       const char *name, uint32_t v, uint8_t state, size_t exact,
                       unsigned char **out, size_t *outlen)
{
    unsigned char aad[SEAL_AAD_MAX];
    *out = NULL;
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size < SEAL_OVERHEAD + 1 ||
        o->via.bin.size > SEAL_OVERHEAD + KEYD_APIKEY_MAX ||
        (exact && o->via.bin.size != exact + SEAL_OVERHEAD))
        return -EBADMSG;
    size_t n = o->via.bin.size - SEAL_OVERHEAD;
    unsigned char *k = sodium_malloc(n + 1);
    if (!k)
        return -ENOMEM;
    size_t al = seal_aad(aad, kind, name, v, state);
    if (seal_open(ks->kek_key, aad, al, (const unsigned char *)o->via.bin.ptr, o->via.bin.size,
                  k) != 0) {
        sodium_free(k);
        return -EBADMSG;
    }
    k[n] = 0;
    *out = k;
    if (outlen)
        *outlen = n;
    return 0;
}

static int parse_state(const msgpack_object *o, enum keyd_version_state *st)
{
    if (!o || o->type != MSGPACK_OBJECT_STR ||
        keyd_state_parse(o->via.str.ptr, o->via.str.size, st) != 0)
        return -EBADMSG;
    return 0;
}

/* A project's "ingest" array (absent before keystore v3). */
static int parse_ingest(const msgpack_object *a, struct ks_project *p)
{
    if (!a)
        return 0;
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > KS_INGEST_MAX ||
        (p->shredded && a->via.array.size))
        return -EBADMSG;
    if (a->via.array.size == 0)
        return 0;
    if (!(p->ing = calloc(a->via.array.size, sizeof(*p->ing))))
        return -ENOMEM;
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *e = &a->via.array.ptr[i], *vo;
        struct ks_ingest *k = &p->ing[i];
        const void *b;
        size_t bl;
        p->ning = i + 1;
        if (mp_get_bin(e, "id", &b, &bl) != 0 || bl != sizeof(k->id) ||
            mp_get_uint(e, "created", &k->created) != 0 ||
            mp_get_uint(e, "revoked", &k->revoked) != 0)
            return -EBADMSG;
        memcpy(k->id, b, bl);
        vo = mp_map_get(e, "verifier");
        /* Exactly the live keys carry a verifier. */
        if (k->revoked) {
            if (!vo || vo->type != MSGPACK_OBJECT_NIL)
                return -EBADMSG;
        } else {
            if (!vo || vo->type != MSGPACK_OBJECT_BIN || vo->via.bin.size != KS_VERIFIER_LEN)
                return -EBADMSG;
            memcpy(k->verifier, vo->via.bin.ptr, KS_VERIFIER_LEN);
        }
        for (uint32_t j = 0; j < i; j++)
            if (memcmp(p->ing[j].id, k->id, sizeof(k->id)) == 0)
                return -EBADMSG;
    }
    return 0;
}

static int parse_project(struct keystore *ks, const msgpack_object *m, struct ks_project *p)
{
    const char *s;
    size_t sl;
    uint64_t cur;
    int shredded = 0, r;
    const msgpack_object *vs;

    if (mp_get_str(m, "name", &s, &sl) != 0 || sl == 0 || sl >= sizeof(p->name))
        return -EBADMSG;
    memcpy(p->name, s, sl);
    p->name[sl] = '\0';
    if (!tv_project_name_valid(p->name) || mp_get_uint(m, "current", &cur) != 0 ||
        mp_get_bool(m, "shredded", &shredded) != 0)
        return -EBADMSG;
    vs = mp_map_get(m, "versions");
    if (!vs || vs->type != MSGPACK_OBJECT_ARRAY || vs->via.array.size > KS_MAX_VERSIONS)
        return -EBADMSG;
    p->shredded = shredded;
    p->current = (uint32_t)cur;
    p->v = calloc(vs->via.array.size ? vs->via.array.size : 1, sizeof(*p->v));
    if (!p->v)
        return -ENOMEM;
    for (uint32_t i = 0; i < vs->via.array.size; i++) {
        const msgpack_object *e = &vs->via.array.ptr[i];
        struct ks_version *v = &p->v[i];
        uint64_t vn;
        p->nv = i + 1;
        if (mp_get_uint(e, "v", &vn) != 0 || vn != i + 1 ||
            parse_state(mp_map_get(e, "state"), &v->state) != 0)
            return -EBADMSG;
        v->version = (uint32_t)vn;
        r = open_sealed(ks, mp_map_get(e, "kek"), SEAL_KIND_KEK, p->name, v->version,
                        (uint8_t)v->state, SEAL_KEY_LEN, &v->kek, NULL);
        if (r != 0)
            return r;
        /* Exactly the active versions carry a KEK. */
        if ((v->state == KEYD_V_ACTIVE) != (v->kek != NULL))
            return -EBADMSG;
    }
    if (shredded ? cur != 0 : (cur > UINT32_MAX || ks_usable(p, (uint32_t)cur) != 0))
        return -EBADMSG;
    if ((r = open_sealed(ks, mp_map_get(m, "pseudonym"), SEAL_KIND_PSEUDONYM, p->name, 0, 0,
                         SEAL_KEY_LEN, &p->pseudonym, NULL)) != 0)
        return r;
    if (!shredded && !p->pseudonym)
        return -EBADMSG;
    unsigned char *ak = NULL;
    if ((r = open_sealed(ks, mp_map_get(m, "apikey"), SEAL_KIND_APIKEY, p->name, 0, 0, 0, &ak,
                         &p->apikey_len)) != 0)
        return r;
    p->apikey = (char *)ak;
    return parse_ingest(mp_map_get(m, "ingest"), p);
}

static int parse_body(struct keystore *ks, const msgpack_object *m)
{
    const void *mac;
    size_t ml;
    const msgpack_object *pend, *ps;
    int r;

    if (m->type != MSGPACK_OBJECT_MAP || mp_get_uint(m, "gen", &ks->gen) != 0 ||
        mp_get_uint(m, "head_seq", &ks->head_seq) != 0 ||
        mp_get_bin(m, "head_mac", &mac, &ml) != 0 || ml != AUDIT_MAC_LEN)
        return -EBADMSG;
    memcpy(ks->head_mac, mac, AUDIT_MAC_LEN);
    if (mp_get_bool(m, "anchored", &ks->anchored) == -EBADMSG)
        return -EBADMSG;
    pend = mp_map_get(m, "pending");
    if (pend && pend->type == MSGPACK_OBJECT_STR) {
        if ((r = mp_strdup(pend, &ks->pending)) != 0)
            return r;
    } else if (pend && pend->type != MSGPACK_OBJECT_NIL) {
        return -EBADMSG;
    }
    if (mp_map_get(m, "ingest_vkey")) {
        unsigned char *vk = NULL;
        if ((r = open_sealed(ks, mp_map_get(m, "ingest_vkey"), SEAL_KIND_INGEST_VKEY, "", 0, 0,
                             SEAL_KEY_LEN, &vk, NULL)) != 0)
            return r;
        if (vk) {
            ks_key_free(&ks->ingest_vkey);
            ks->ingest_vkey = vk;
        }
    }
    ps = mp_map_get(m, "projects");
    if (!ps || ps->type != MSGPACK_OBJECT_ARRAY)
        return -EBADMSG;
    ks->p = calloc(ps->via.array.size ? ps->via.array.size : 1, sizeof(*ks->p));
    if (!ks->p)
        return -ENOMEM;
    for (uint32_t i = 0; i < ps->via.array.size; i++) {
        ks->np = i + 1;
        if ((r = parse_project(ks, &ps->via.array.ptr[i], &ks->p[i])) != 0)
            return r;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(ks->p[j].name, ks->p[i].name) == 0)
                return -EBADMSG;
    }
    return 0;
}

/* Open the sealed FILE (FLEN bytes) of a v2 keystore into BODY with the
 * sealing key that does it, from KS's .seal file. */
static int open_v2(struct keystore *ks, const char *file, size_t flen, unsigned char *body,
                   char *err, size_t errlen)
{
    unsigned char *keys[SK_SLOTS] = { ks_key_new(), ks_key_new() };
    int found[SK_SLOTS], chosen = -1, n;

    if (!keys[0] || !keys[1]) {
        n = -ENOMEM;
        snprintf(err, errlen, "keystore %s: out of memory", ks->path);
        goto out;
    }
    n = sk_read(ks->seal_path, ks->wrap_key, keys, found);
    if (n < 0) {
        snprintf(err, errlen, "keystore %s: sealing key file %s: %s", ks->path, ks->seal_path,
                 n == -EPERM ? "gives access to group or others (must be 0600)" : strerror(-n));
        goto out;
    }
    for (int i = 0; i < SK_SLOTS && chosen < 0; i++)
        if (found[i] && ks_use_key(ks, keys[i]) == 0 &&
            seal_open(ks->file_key, (const unsigned char *)file, KS_MAGIC_LEN,
                      (const unsigned char *)file + KS_MAGIC_LEN, flen - KS_MAGIC_LEN,
                      body) == 0)
            chosen = i;
    if (chosen < 0) {
        n = -EBADMSG;
        snprintf(err, errlen, "keystore %s: does not open with the sealing keys in %s (%s)",
                 ks->path, ks->seal_path, found[0] || found[1]
                     ? "a copy from before a shred, retire or rekey-master, or a damaged file"
                     : "no sealing key opens under this master key: wrong master key or a "
                       "damaged .seal file");
        goto out;
    }
    memcpy(ks->seal_key, keys[chosen], SEAL_KEY_LEN);
    ks->slot = chosen;
    ks->stale = found[1 - chosen];      /* an interrupted re-seal left the other one */
    n = 0;
out:
    ks_key_free(&keys[0]);
    ks_key_free(&keys[1]);
    return n;
}

int ks_load(const char *path, const unsigned char *master, struct keystore **out, char *err,
            size_t errlen)
{
    struct keystore *ks = NULL;
    struct stat st;
    char *file = NULL;
    unsigned char *body = NULL;
    size_t flen = 0, blen = 0;
    msgpack_unpacked up;
    int r;

    *out = NULL;
    msgpack_unpacked_init(&up);
    if (stat(path, &st) != 0) {
        r = -errno;
        snprintf(err, errlen, "keystore %s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        r = -EPERM;
        snprintf(err, errlen, "keystore %s: mode %04o gives access to group or others "
                 "(must be 0600)", path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if ((r = tv_read_file(path, KS_FILE_MAX, &file, &flen)) != 0) {
        snprintf(err, errlen, "keystore %s: %s", path, strerror(-r));
        goto out;
    }
    if ((r = ks_alloc(path, master, &ks)) != 0) {
        snprintf(err, errlen, "keystore %s: %s", path, strerror(-r));
        goto out;
    }
    r = -EBADMSG;
    if (flen < KS_MAGIC_LEN + SEAL_OVERHEAD + 1 ||
        (memcmp(file, KS_MAGIC, KS_MAGIC_LEN) != 0 &&
         memcmp(file, KS_MAGIC_V2, KS_MAGIC_LEN) != 0 &&
         memcmp(file, KS_MAGIC_V1, KS_MAGIC_LEN) != 0)) {
        snprintf(err, errlen, "keystore %s: not a TraceVault keystore", path);
        goto out;
    }
    blen = flen - KS_MAGIC_LEN - SEAL_OVERHEAD;
    if (!(body = malloc(blen))) {
        r = -ENOMEM;
        snprintf(err, errlen, "keystore %s: out of memory", path);
        goto out;
    }
    if (memcmp(file, KS_MAGIC_V1, KS_MAGIC_LEN) != 0) {
        /* v2 and v3 are sealed alike; the magic is the AAD. */
        if ((r = open_v2(ks, file, flen, body, err, errlen)) != 0)
            goto out;
    } else {
        /* v1, sealed under the master key: the next save writes a sealing
         * key (ks_settle does it at start-up). */
        ks->legacy = 1;
        randombytes_buf(ks->seal_key, SEAL_KEY_LEN);
        if (ks_use_key(ks, master) != 0 ||
            seal_open(ks->file_key, (unsigned char *)file, KS_MAGIC_LEN,
                      (unsigned char *)file + KS_MAGIC_LEN, flen - KS_MAGIC_LEN, body) != 0) {
            snprintf(err, errlen, "keystore %s: does not authenticate under this master key "
                     "(wrong key or damaged file)", path);
            goto out;
        }
    }
    r = -EBADMSG;
    if (mp_decode(body, blen, 8, blen + 16, &up) != 0 || (r = parse_body(ks, &up.data)) != 0) {
        if (r == -EBADMSG || r == 0)
            r = -EBADMSG;
        snprintf(err, errlen, "keystore %s: malformed contents", path);
        goto out;
    }
    *out = ks;
    ks = NULL;
    r = 0;
out:
    msgpack_unpacked_destroy(&up);
    if (body) {
        sodium_memzero(body, blen);
        free(body);
    }
    free(file);
    ks_free(ks);
    return r;
}
