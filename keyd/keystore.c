/*
 * keystore.c - see keystore.h.  The keys in memory and their changes;
 * the sealed file they are saved to and loaded from is keystore_file.c
 * (keystore_int.h holds what both share).
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

unsigned char *ks_key_new(void)
{
    return sodium_malloc(SEAL_KEY_LEN);
}

void ks_key_free(unsigned char **k)
{
    if (*k)
        sodium_free(*k);     /* sodium_free wipes before unmapping */
    *k = NULL;
}

void ks_project_release(struct ks_project *p)
{
    for (size_t i = 0; i < p->nv; i++)
        ks_key_free(&p->v[i].kek);
    free(p->v);
    p->v = NULL;
    p->nv = 0;
    ks_key_free(&p->pseudonym);
    if (p->apikey)
        sodium_free(p->apikey);
    p->apikey = NULL;
    if (p->ing)
        sodium_memzero(p->ing, p->ning * sizeof(*p->ing));
    free(p->ing);
    p->ing = NULL;
    p->ning = 0;
}

void ks_free(struct keystore *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->np; i++)
        ks_project_release(&ks->p[i]);
    free(ks->p);
    free(ks->path);
    free(ks->seal_path);
    free(ks->pending);
    ks_key_free(&ks->seal_key);
    ks_key_free(&ks->file_key);
    ks_key_free(&ks->kek_key);
    ks_key_free(&ks->wrap_key);
    ks_key_free(&ks->ingest_vkey);
    free(ks);
}

/* Derive the keystore's working subkeys from KEY (the sealing key, or the
 * master key of a v1 keystore). */
int ks_use_key(struct keystore *ks, const unsigned char *key)
{
    int r = seal_derive(key, SEAL_SUB_KEYSTORE, ks->file_key);
    return r ? r : seal_derive(key, SEAL_SUB_KEK, ks->kek_key);
}

/* An empty keystore for PATH with its key buffers and wrap key. */
int ks_alloc(const char *path, const unsigned char *master, struct keystore **out)
{
    struct keystore *ks = calloc(1, sizeof(*ks));
    size_t n = strlen(path);
    int r = -ENOMEM;

    *out = NULL;
    if (!ks)
        return -ENOMEM;
    ks->slot = -1;
    if (!(ks->path = strdup(path)) || !(ks->seal_path = malloc(n + sizeof(".seal"))) ||
        !(ks->seal_key = ks_key_new()) || !(ks->file_key = ks_key_new()) ||
        !(ks->kek_key = ks_key_new()) || !(ks->wrap_key = ks_key_new()) ||
        !(ks->ingest_vkey = ks_key_new()))
        goto fail;
    /* A keystore without ingest keys yet gets its verifier key now; one
     * that has some replaces it with the stored one when it loads. */
    randombytes_buf(ks->ingest_vkey, SEAL_KEY_LEN);
    randombytes_buf(ks->dummy_verifier, sizeof(ks->dummy_verifier));
    memcpy(ks->seal_path, path, n);
    memcpy(ks->seal_path + n, ".seal", sizeof(".seal"));
    if ((r = seal_derive(master, SEAL_SUB_SEALKEY, ks->wrap_key)) != 0)
        goto fail;
    ks->gen = 1;
    *out = ks;
    return 0;
fail:
    ks_free(ks);
    return r;
}

int ks_new(const char *path, const unsigned char *master, struct keystore **out)
{
    int r = ks_alloc(path, master, out);
    if (r != 0)
        return r;
    randombytes_buf((*out)->seal_key, SEAL_KEY_LEN);
    if ((r = ks_use_key(*out, (*out)->seal_key)) != 0) {
        ks_free(*out);
        *out = NULL;
    }
    return r;
}

struct ks_project *ks_find(struct keystore *ks, const char *name)
{
    for (size_t i = 0; i < ks->np; i++)
        if (strcmp(ks->p[i].name, name) == 0)
            return &ks->p[i];
    return NULL;
}

struct ks_project *ks_at(struct keystore *ks, size_t i)
{
    return i < ks->np ? &ks->p[i] : NULL;
}

uint64_t ks_gen(const struct keystore *ks)
{
    return ks->gen;
}

const char *ks_path(const struct keystore *ks)
{
    return ks->path;
}

size_t ks_count(const struct keystore *ks)
{
    return ks->np;
}

void ks_head(const struct keystore *ks, uint64_t *seq, unsigned char mac[AUDIT_MAC_LEN],
             const char **pending)
{
    *seq = ks->head_seq;
    memcpy(mac, ks->head_mac, AUDIT_MAC_LEN);
    if (pending)
        *pending = ks->pending;
}

int ks_set_head(struct keystore *ks, uint64_t seq, const unsigned char mac[AUDIT_MAC_LEN],
                const char *pending)
{
    char *copy = NULL;
    if (pending && !(copy = strdup(pending)))
        return -ENOMEM;
    free(ks->pending);
    ks->pending = copy;
    ks->head_seq = seq;
    memcpy(ks->head_mac, mac, AUDIT_MAC_LEN);
    return 0;
}

int ks_anchored(const struct keystore *ks)
{
    return ks->anchored;
}

const char *ks_name(const struct ks_project *p)
{
    return p->name;
}

uint32_t ks_current(const struct ks_project *p)
{
    return p->current;
}

int ks_shredded(const struct ks_project *p)
{
    return p->shredded;
}

uint32_t ks_nversions(const struct ks_project *p)
{
    return (uint32_t)p->nv;
}

enum keyd_version_state ks_state(const struct ks_project *p, uint32_t v)
{
    return v >= 1 && v <= p->nv ? p->v[v - 1].state : KEYD_V_SHREDDED;
}

int ks_usable(const struct ks_project *p, uint32_t v)
{
    /* Versions are dense from 1, so index directly. */
    if (v == 0 || v > p->nv)
        return -ENOENT;
    switch (p->v[v - 1].state) {
    case KEYD_V_ACTIVE: return 0;
    case KEYD_V_RETIRED: return -EKEYEXPIRED;
    default: return -EKEYREVOKED;
    }
}

/* The ACTIVE version V of P, or NULL. */
static const struct ks_version *active_version(const struct ks_project *p, uint32_t v)
{
    return ks_usable(p, v) == 0 ? &p->v[v - 1] : NULL;
}

static size_t dek_aad(unsigned char *aad, const struct ks_project *p, uint32_t v,
                      const unsigned char *file_id)
{
    return file_id ? seal_aad_file(aad, p->name, v, file_id)
                   : seal_aad(aad, SEAL_KIND_DEK, p->name, v, 0);
}

int ks_wrap(const struct ks_project *p, uint32_t v, const unsigned char *file_id,
            const unsigned char *dek, unsigned char *out)
{
    unsigned char aad[SEAL_AAD_MAX];
    const struct ks_version *kv = active_version(p, v);
    if (!kv)
        return ks_usable(p, v);
    size_t al = dek_aad(aad, p, v, file_id);
    seal_seal(kv->kek, aad, al, dek, KEYD_DEK_LEN, out);
    return 0;
}

int ks_unwrap(const struct ks_project *p, uint32_t v, const unsigned char *file_id,
              const unsigned char *w, unsigned char *dek)
{
    unsigned char aad[SEAL_AAD_MAX];
    const struct ks_version *kv = active_version(p, v);
    if (!kv)
        return ks_usable(p, v);
    size_t al = dek_aad(aad, p, v, file_id);
    return seal_open(kv->kek, aad, al, w, KEYD_WRAPPED_LEN, dek);
}

const unsigned char *ks_pseudonym(const struct ks_project *p)
{
    return p->pseudonym;
}

int ks_apikey(const struct ks_project *p, const char **key, size_t *len)
{
    if (!p->apikey)
        return -ENOENT;
    *key = p->apikey;
    *len = p->apikey_len;
    return 0;
}

/* Append a fresh random ACTIVE version to P. */
static int add_version(struct ks_project *p, uint32_t *version)
{
    if (p->nv >= KS_MAX_VERSIONS)
        return -EINVAL;
    struct ks_version *nv = realloc(p->v, (p->nv + 1) * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    p->v = nv;
    struct ks_version *v = &p->v[p->nv];
    v->kek = ks_key_new();
    if (!v->kek)
        return -ENOMEM;
    randombytes_buf(v->kek, SEAL_KEY_LEN);
    v->version = (uint32_t)p->nv + 1;
    v->state = KEYD_V_ACTIVE;
    p->nv++;
    p->current = v->version;
    *version = v->version;
    return 0;
}

int ks_create(struct keystore *ks, const char *name, uint32_t *version)
{
    struct ks_project *np, *p;
    int r;

    if (!tv_project_name_valid(name))
        return -EINVAL;
    if (ks_find(ks, name))
        return -EEXIST;
    np = realloc(ks->p, (ks->np + 1) * sizeof(*np));
    if (!np)
        return -ENOMEM;
    ks->p = np;
    p = &ks->p[ks->np];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (!(p->pseudonym = ks_key_new())) {
        r = -ENOMEM;
        goto fail;
    }
    randombytes_buf(p->pseudonym, SEAL_KEY_LEN);
    if ((r = add_version(p, version)) != 0)
        goto fail;
    ks->np++;
    ks->gen++;
    return 0;
fail:
    ks_project_release(p);
    return r;
}

int ks_rotate(struct keystore *ks, struct ks_project *p, uint32_t *version)
{
    int r;
    if (p->shredded)
        return -EKEYREVOKED;
    if ((r = add_version(p, version)) != 0)
        return r;
    ks->gen++;
    return 0;
}

int ks_retire(struct keystore *ks, struct ks_project *p, uint32_t below, unsigned *changed)
{
    *changed = 0;
    if (p->shredded)
        return -EKEYREVOKED;
    if (below > p->current)
        return -EINVAL;        /* would retire the version used for new wraps */
    for (size_t i = 0; i < p->nv; i++) {
        if (p->v[i].version < below && p->v[i].state == KEYD_V_ACTIVE) {
            ks_key_free(&p->v[i].kek);
            p->v[i].state = KEYD_V_RETIRED;
            (*changed)++;
        }
    }
    if (*changed) {
        ks->gen++;
        ks->reseal = 1;
    }
    return 0;
}

int ks_shred(struct keystore *ks, struct ks_project *p)
{
    if (p->shredded)
        return -EKEYREVOKED;
    for (size_t i = 0; i < p->nv; i++) {
        ks_key_free(&p->v[i].kek);
        p->v[i].state = KEYD_V_SHREDDED;
    }
    ks_key_free(&p->pseudonym);
    if (p->apikey)
        sodium_free(p->apikey);
    p->apikey = NULL;
    p->apikey_len = 0;
    if (p->ing)
        sodium_memzero(p->ing, p->ning * sizeof(*p->ing));
    free(p->ing);
    p->ing = NULL;
    p->ning = 0;
    p->current = 0;
    p->shredded = 1;
    ks->gen++;
    ks->reseal = 1;
    return 0;
}

int ks_rekey(struct keystore *ks)
{
    ks->gen++;
    ks->reseal = 1;
    return 0;
}

int ks_apikey_set(struct keystore *ks, struct ks_project *p, const char *key, size_t len)
{
    if (p->shredded)
        return -EKEYREVOKED;
    if (len == 0 || len > KEYD_APIKEY_MAX)
        return -EINVAL;
    char *k = sodium_malloc(len + 1);
    if (!k)
        return -ENOMEM;
    memcpy(k, key, len);
    k[len] = '\0';
    if (p->apikey)
        sodium_free(p->apikey);
    p->apikey = k;
    p->apikey_len = len;
    ks->gen++;
    return 0;
}

/* --- ingest keys -------------------------------------------------------- */

static void hex_id(const unsigned char id[KS_INGEST_ID_BYTES], char out[KEYD_INGEST_ID_LEN + 1])
{
    sodium_bin2hex(out, KEYD_INGEST_ID_LEN + 1, id, KS_INGEST_ID_BYTES);
}

/* The verifier of the LEN bytes at TOKEN: BLAKE2b-256 keyed with the
 * keystore's verifier key. */
static void verifier(const struct keystore *ks, const void *token, size_t len,
                     unsigned char out[KS_VERIFIER_LEN])
{
    crypto_generichash(out, KS_VERIFIER_LEN, token, len, ks->ingest_vkey, SEAL_KEY_LEN);
}

size_t ks_ingest_count(const struct ks_project *p)
{
    return p->ning;
}

int ks_ingest_at(const struct ks_project *p, size_t i, struct ks_ingest_info *out)
{
    if (i >= p->ning)
        return -ENOENT;
    hex_id(p->ing[i].id, out->id);
    out->created = p->ing[i].created;
    out->revoked = p->ing[i].revoked;
    return 0;
}

/* Does any project hold an ingest key with ID? */
static int id_taken(const struct keystore *ks, const unsigned char *id)
{
    for (size_t i = 0; i < ks->np; i++)
        for (size_t j = 0; j < ks->p[i].ning; j++)
            if (memcmp(ks->p[i].ing[j].id, id, KS_INGEST_ID_BYTES) == 0)
                return 1;
    return 0;
}

int ks_ingest_create(struct keystore *ks, struct ks_project *p, uint64_t now,
                     char token[KEYD_INGEST_TOKEN_LEN + 1], char id[KEYD_INGEST_ID_LEN + 1])
{
    unsigned char secret[KS_INGEST_SECRET_BYTES];
    size_t live = 0, prefix = sizeof(KEYD_INGEST_PREFIX) - 1;
    struct ks_ingest k;

    if (p->shredded)
        return -EKEYREVOKED;
    for (size_t i = 0; i < p->ning; i++)
        live += p->ing[i].revoked == 0;
    if (live >= KS_INGEST_LIVE_MAX)
        return -ENOSPC;
    /* Full of revoked entries: forget the oldest revoked one. */
    if (p->ning >= KS_INGEST_MAX) {
        size_t i = 0;
        while (i < p->ning && p->ing[i].revoked == 0)
            i++;
        memmove(&p->ing[i], &p->ing[i + 1], (p->ning - i - 1) * sizeof(*p->ing));
        p->ning--;
    } else {
        struct ks_ingest *n = realloc(p->ing, (p->ning + 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        p->ing = n;
    }
    memset(&k, 0, sizeof(k));
    do
        randombytes_buf(k.id, sizeof(k.id));
    while (id_taken(ks, k.id));
    randombytes_buf(secret, sizeof(secret));
    memcpy(token, KEYD_INGEST_PREFIX, prefix);
    hex_id(k.id, token + prefix);
    token[prefix + KEYD_INGEST_ID_LEN] = '_';
    sodium_bin2base64(token + prefix + KEYD_INGEST_ID_LEN + 1,
                      KEYD_INGEST_TOKEN_LEN - prefix - KEYD_INGEST_ID_LEN, secret,
                      sizeof(secret), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(secret, sizeof(secret));
    verifier(ks, token, KEYD_INGEST_TOKEN_LEN, k.verifier);
    k.created = now;
    p->ing[p->ning++] = k;
    sodium_memzero(&k, sizeof(k));
    hex_id(p->ing[p->ning - 1].id, id);
    ks->gen++;
    return 0;
}

/* Parse the hex ID of ingest key ID (KEYD_INGEST_ID_LEN lowercase hex). */
static int parse_id(const char *id, size_t len, unsigned char out[KS_INGEST_ID_BYTES])
{
    size_t got = 0;
    if (len != KEYD_INGEST_ID_LEN)
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return -EINVAL;
    if (sodium_hex2bin(out, KS_INGEST_ID_BYTES, id, len, NULL, &got, NULL) != 0 ||
        got != KS_INGEST_ID_BYTES)
        return -EINVAL;
    return 0;
}

int ks_ingest_revoke(struct keystore *ks, struct ks_project *p, const char *id, uint64_t now,
                     unsigned *changed)
{
    unsigned char bin[KS_INGEST_ID_BYTES];
    *changed = 0;
    if (p->shredded)
        return -EKEYREVOKED;
    if (parse_id(id, strlen(id), bin) != 0)
        return -EINVAL;
    for (size_t i = 0; i < p->ning; i++) {
        struct ks_ingest *k = &p->ing[i];
        if (memcmp(k->id, bin, sizeof(bin)) != 0)
            continue;
        if (k->revoked)
            return 0;               /* already revoked: nothing changes */
        k->revoked = now ? now : 1;
        sodium_memzero(k->verifier, sizeof(k->verifier));
        *changed = 1;
        ks->gen++;
        return 0;
    }
    return -ENOENT;
}

/* Is the LEN bytes at T shaped like a token: "tvi_", 16 lowercase hex, "_",
 * 43 base64url?  Its ID into ID.  The shape is public: no need to hide
 * where it fails. */
static int token_shape(const unsigned char *t, size_t len, unsigned char id[KS_INGEST_ID_BYTES])
{
    size_t prefix = sizeof(KEYD_INGEST_PREFIX) - 1;
    if (len != KEYD_INGEST_TOKEN_LEN || memcmp(t, KEYD_INGEST_PREFIX, prefix) != 0 ||
        t[prefix + KEYD_INGEST_ID_LEN] != '_' ||
        parse_id((const char *)t + prefix, KEYD_INGEST_ID_LEN, id) != 0)
        return 0;
    for (size_t i = prefix + KEYD_INGEST_ID_LEN + 1; i < len; i++) {
        unsigned char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int ks_ingest_verify(struct keystore *ks, const void *token, size_t len,
                     struct ks_project **who, char id[KEYD_INGEST_ID_LEN + 1])
{
    unsigned char want[KS_INGEST_ID_BYTES] = { 0 }, mac[KS_VERIFIER_LEN];
    struct ks_project *mp = NULL;
    struct ks_ingest *mk = NULL;
    int shaped = token_shape(token, len, want);

    /* One path for every input: the hash is computed, every key's ID is
     * compared (no early exit), and the hash is compared in constant time
     * against the match's verifier or a dummy one.  So an unknown ID, a
     * wrong secret and a revoked key cost the same; only the length of the
     * input (public) changes the time. */
    verifier(ks, token, len, mac);
    for (size_t i = 0; i < ks->np; i++)
        for (size_t j = 0; j < ks->p[i].ning; j++) {
            int eq = sodium_memcmp(ks->p[i].ing[j].id, want, sizeof(want)) == 0;
            if (eq && !mk) {
                mk = &ks->p[i].ing[j];
                mp = &ks->p[i];
            }
        }
    int good = sodium_memcmp(mac, mk ? mk->verifier : ks->dummy_verifier, sizeof(mac)) == 0;
    sodium_memzero(mac, sizeof(mac));
    *who = NULL;
    id[0] = '\0';
    if (shaped && mk) {
        *who = mp;                  /* for the audit record, also on failure */
        hex_id(mk->id, id);
    }
    return shaped && mk && good && !mk->revoked && !mp->shredded ? 0 : -EACCES;
}

