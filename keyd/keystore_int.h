/*
 * keystore_int.h - what keystore.c (the keys in memory and their changes)
 * and keystore_file.c (the sealed file: save and load) share.  Private to
 * those two files; everyone else goes through keystore.h.
 */
#ifndef TV_KEYD_KEYSTORE_INT_H
#define TV_KEYD_KEYSTORE_INT_H

#include "keyd/keystore.h"
#include "keyd/proto.h"
#include "lib/audit.h"

#define KS_MAGIC "TVKS\x03"          /* sealed under the sealing key (sealkey.h) */
/* v2: the same sealing, without ingest keys.  It is read as it is; v3 is
 * written so that a keyd from before ingest keys refuses the file instead of
 * loading it and dropping the keys at its next save. */
#define KS_MAGIC_V2 "TVKS\x02"
#define KS_MAGIC_V1 "TVKS\x01"       /* sealed under the master key: read, then upgraded */
#define KS_MAGIC_LEN 5
#define KS_FILE_MAX (64u * 1024u * 1024u)

struct ks_version {
    uint32_t version;
    enum keyd_version_state state;
    unsigned char *kek;           /* sodium_malloc'd 32 bytes; NULL unless ACTIVE */
};

/* One ingest key: its ID and what verifies the token, never the token. */
struct ks_ingest {
    unsigned char id[KS_INGEST_ID_BYTES];
    uint64_t created, revoked;    /* unix seconds; revoked 0 = live */
    unsigned char verifier[KS_VERIFIER_LEN];  /* keyed BLAKE2b of the token; zero once revoked */
};

struct ks_project {
    char name[KEYD_PROJECT_MAX + 1];
    uint32_t current;             /* 0 once shredded */
    int shredded;
    struct ks_version *v;         /* ascending versions, v[i].version == i + 1 */
    size_t nv;
    unsigned char *pseudonym;     /* sodium_malloc'd 32 bytes; NULL once shredded */
    char *apikey;                 /* sodium_malloc'd, NUL-terminated; NULL if unset */
    size_t apikey_len;
    struct ks_ingest *ing;        /* in creation order */
    size_t ning;
};

struct keystore {
    char *path;
    uint64_t gen;
    uint64_t head_seq;            /* audit chain head as of the last save */
    unsigned char head_mac[AUDIT_MAC_LEN];
    char *pending;                /* the audit record line that goes with this state */
    int anchored;                 /* loaded from a keystore saved with anchored logs */
    struct ks_project *p;
    size_t np;
    unsigned char *seal_key;      /* sodium_malloc'd: the sealing key */
    unsigned char *file_key;      /* ...its subkeys */
    unsigned char *kek_key;
    unsigned char *wrap_key;      /* the master key's subkey that seals seal_key */
    char *seal_path;              /* PATH.seal */
    int slot;                     /* seal_key's slot in PATH.seal; -1: not written yet */
    int stale;                    /* the other slot still holds an older key */
    int legacy;                   /* loaded from a v1 keystore (keys from the master) */
    int reseal;                   /* keys were destroyed: save under a fresh sealing key */
    unsigned char *ingest_vkey;   /* sodium_malloc'd: keys the ingest-key verifiers */
    unsigned char dummy_verifier[KS_VERIFIER_LEN];  /* compared when no key has the ID */
};


/* sodium_malloc'd key buffers of SEAL_KEY_LEN bytes; ks_key_free wipes,
 * frees and NULLs. */
unsigned char *ks_key_new(void);
void ks_key_free(unsigned char **k);
/* Wipe and free everything project P holds. */
void ks_project_release(struct ks_project *p);
/* Derive the keystore's working subkeys from KEY. */
int ks_use_key(struct keystore *ks, const unsigned char *key);
/* An empty keystore for PATH with its key buffers and wrap key. */
int ks_alloc(const char *path, const unsigned char *master, struct keystore **out);

#endif
