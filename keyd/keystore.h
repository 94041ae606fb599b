/*
 * keystore.h - project keys, held unsealed in guarded memory while keyd
 * runs and sealed in one file on disk (docs/KEYD.md "Keystore").
 *
 * File: "TVKS" 0x01 || nonce(24) || XChaCha20-Poly1305(body, AAD = the first
 * five bytes) under the keystore subkey.  The body is a msgpack map with the
 * generation counter, the audit chain head, the pending audit record and
 * the projects; inside it every KEK version, API key and pseudonym key is
 * sealed again under the KEK subkey with an AAD binding project, version
 * and state, so the two layers fail independently.
 *
 * Invariants: every ACTIVE version has its KEK in memory; retired and
 * shredded versions have none (destroyed, not just hidden).  The generation
 * counter grows by one with every change of key material; keyd records it
 * in every audit record, which is how a restored older keystore is spotted.
 * Saving is atomic (lib/util.h tv_write_atomic).
 */
#ifndef TV_KEYD_KEYSTORE_H
#define TV_KEYD_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "keyd/audit.h"
#include "keyd/keyd_client.h"

#define KS_MAX_VERSIONS 100000

struct ks_version {
    uint32_t version;
    enum keyd_version_state state;
    unsigned char *kek;           /* sodium_malloc'd 32 bytes; NULL unless ACTIVE */
};

struct ks_project {
    char name[64];
    uint32_t current;             /* 0 once shredded */
    int shredded;
    struct ks_version *v;         /* ascending versions */
    size_t nv;
    unsigned char *pseudonym;     /* sodium_malloc'd 32 bytes; NULL once shredded */
    char *apikey;                 /* sodium_malloc'd, NUL-terminated; NULL if unset */
    size_t apikey_len;
};

struct keystore {
    char *path;
    uint64_t gen;
    uint64_t head_seq;            /* audit chain head as of the last save */
    unsigned char head_mac[AUDIT_MAC_LEN];
    char *pending;                /* the audit record line that goes with this state */
    struct ks_project *p;
    size_t np;
    unsigned char *file_key;      /* sodium_malloc'd subkeys */
    unsigned char *kek_key;
};

/* An empty keystore for PATH (not yet saved), generation 1. */
int ks_new(const char *path, const unsigned char *master, struct keystore **out);

/*
 * Load PATH.  The file must not be accessible by group or others (-EPERM).
 * -EBADMSG if it does not authenticate under MASTER, with ERR saying so.
 */
int ks_load(const char *path, const unsigned char *master, struct keystore **out,
            char *err, size_t errlen);

/* Seal and atomically write the whole keystore (mode 0600). */
int ks_save(struct keystore *ks);

/* Wipe and free; NULL is fine. */
void ks_free(struct keystore *ks);

struct ks_project *ks_find(struct keystore *ks, const char *name);
/* The ACTIVE version V of P, or NULL. */
struct ks_version *ks_version(struct ks_project *p, uint32_t v);

/* Mutations of the in-memory state; each returns 0 or -errno (-EEXIST,
 * -ENOENT, -EKEYREVOKED, -EINVAL, -ENOMEM) and bumps the generation on
 * success.  The caller saves. */
int ks_create(struct keystore *ks, const char *name, uint32_t *version);
int ks_rotate(struct keystore *ks, struct ks_project *p, uint32_t *version);
/* Retire (destroy) every active version below BELOW; BELOW may not exceed
 * the current version.  *CHANGED = number of versions retired. */
int ks_retire(struct keystore *ks, struct ks_project *p, uint32_t below, unsigned *changed);
int ks_shred(struct keystore *ks, struct ks_project *p);
int ks_apikey_set(struct keystore *ks, struct ks_project *p, const char *key, size_t len);

#endif
