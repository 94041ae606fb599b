/*
 * keystore.h - project keys, held unsealed in guarded memory while keyd
 * runs and sealed in one file on disk (docs/KEYD.md "Keystore").
 *
 * File: "TVKS" 0x03 || nonce(24) || XChaCha20-Poly1305(body, AAD = the first
 * five bytes) under the keystore subkey of the sealing key.  The body is a
 * msgpack map with the generation counter, the audit chain head, the pending
 * audit record and the projects; inside it every KEK version, API key and
 * pseudonym key is sealed again under the KEK subkey of the sealing key with
 * an AAD binding project, version and state, so the two layers fail
 * independently.  Version 3 added ingest keys (per project: ID, times and a
 * verifier, never the token) and the verifier key, sealed like a KEK; a
 * version 2 file reads as one without ingest keys and is written back as 3.
 *
 * The sealing key is random and lives in PATH.seal, sealed under the master
 * key (sealkey.h).  Saving after keys were destroyed (retire, shred) or
 * ks_rekey re-seals: a fresh sealing key, the keystore saved under it, the
 * old one overwritten, so no copy of the keystore taken before opens with
 * the master key and .seal file as they are after.  A v1 file ("TVKS" 0x01,
 * sealed under the master key's subkeys) is read and rewritten as v2.
 *
 * The structures are private to keystore.c: callers reach projects through
 * opaque struct ks_project pointers and the functions below, and KEK bytes
 * never leave this module (DEKs are wrapped and unwrapped here).  A project
 * pointer stays valid until the next ks_create or ks_free.
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

#include "lib/audit.h"
#include "keyd/proto.h"

#define KS_MAX_VERSIONS 100000
#define KS_INGEST_ID_BYTES 8         /* an ingest key's ID: 16 hex chars */
#define KS_INGEST_SECRET_BYTES 32    /* its secret: 43 base64url chars */
#define KS_VERIFIER_LEN 32           /* BLAKE2b-256 of the whole token */
#define KS_INGEST_LIVE_MAX 256       /* live (unrevoked) ingest keys per project */
#define KS_INGEST_MAX 1024           /* entries per project; beyond, the oldest revoked
                                        entry is forgotten */

struct keystore;
struct ks_project;

/* An empty keystore for PATH (not yet saved), generation 1. */
int ks_new(const char *path, const unsigned char *master, struct keystore **out);

/*
 * Load PATH.  The file must not be accessible by group or others (-EPERM).
 * -EBADMSG if it does not authenticate under MASTER, with ERR saying so.
 */
int ks_load(const char *path, const unsigned char *master, struct keystore **out,
            char *err, size_t errlen);

/* Seal and atomically write the whole keystore (mode 0600); re-seal under
 * a fresh sealing key when keys were destroyed since the last save (see
 * above; a kill at any step leaves a keystore that opens). */
int ks_save(struct keystore *ks);

/* Finish what a kill may have left: overwrite an older sealing key still in
 * the other slot of PATH.seal, and rewrite a v1 keystore as v2.  keyd calls
 * it at start-up.  Returns 0 or -errno. */
int ks_settle(struct keystore *ks);
/* Whether an older sealing key is still on disk (ks_settle not yet done or
 * failed). */
int ks_stale(const struct keystore *ks);

/* Wipe and free; NULL is fine. */
void ks_free(struct keystore *ks);

/* --- the keystore as a whole -------------------------------------------- */

uint64_t ks_gen(const struct keystore *ks);
const char *ks_path(const struct keystore *ks);
size_t ks_count(const struct keystore *ks);

/* The audit chain head stored with the keystore and the record that goes
 * with this state (*PENDING may be NULL; it points into KS). */
void ks_head(const struct keystore *ks, uint64_t *seq, unsigned char mac[AUDIT_MAC_LEN],
             const char **pending);
/* Set them (PENDING copied, NULL clears it) for the next ks_save.
 * Returns 0 or -ENOMEM (then nothing changed). */
int ks_set_head(struct keystore *ks, uint64_t seq, const unsigned char mac[AUDIT_MAC_LEN],
                const char *pending);

/* Whether the keystore was saved by a keyd that anchors its audit log
 * (lib/audit.h): from then on a log without an anchor is refused.  Every
 * save sets it; only keystores of older versions lack it. */
int ks_anchored(const struct keystore *ks);

/* --- projects ------------------------------------------------------------ */

/* The project NAME, the I-th project (0 <= I < ks_count), or NULL. */
struct ks_project *ks_find(struct keystore *ks, const char *name);
struct ks_project *ks_at(struct keystore *ks, size_t i);

const char *ks_name(const struct ks_project *p);
/* The version used for new wraps; 0 once shredded. */
uint32_t ks_current(const struct ks_project *p);
int ks_shredded(const struct ks_project *p);
/* Versions are numbered 1..ks_nversions(P). */
uint32_t ks_nversions(const struct ks_project *p);
/* State of version V (1..ks_nversions); KEYD_V_SHREDDED outside that range. */
enum keyd_version_state ks_state(const struct ks_project *p, uint32_t v);
/* 0 if version V of P can wrap and unwrap, else why not: -ENOENT (no such
 * version), -EKEYEXPIRED (retired), -EKEYREVOKED (shredded). */
int ks_usable(const struct ks_project *p, uint32_t v);

/* Wrap DEK (KEYD_DEK_LEN bytes) under version V of P into OUT
 * (KEYD_WRAPPED_LEN bytes); the AAD binds project and version, and FILE_ID
 * (KEYD_FILE_ID_LEN bytes) unless it is NULL (a DEK for no one file: a
 * project's name key, or a file of the first header version).  Returns 0 or
 * ks_usable's error. */
int ks_wrap(const struct ks_project *p, uint32_t v, const unsigned char *file_id,
            const unsigned char *dek, unsigned char *out);
/* Unwrap W (KEYD_WRAPPED_LEN bytes), wrapped for FILE_ID (or NULL) under
 * version V of P, into DEK: 0, ks_usable's error, or -EBADMSG (DEK wiped)
 * if it does not authenticate (a DEK wrapped for one file never opens for
 * another, nor as one for no file). */
int ks_unwrap(const struct ks_project *p, uint32_t v, const unsigned char *file_id,
              const unsigned char *w, unsigned char *dek);

/* P's pseudonym key (KEYD_PSEUDONYM_KEY_LEN bytes, guarded memory owned by
 * the keystore); NULL once shredded. */
const unsigned char *ks_pseudonym(const struct ks_project *p);
/* P's API key and its length, or -ENOENT if none is set. */
int ks_apikey(const struct ks_project *p, const char **key, size_t *len);

/* --- mutations ------------------------------------------------------------ */

/* Mutations of the in-memory state; each returns 0 or -errno (-EEXIST,
 * -ENOENT, -EKEYREVOKED, -EINVAL, -ENOMEM) and bumps the generation on
 * success.  The caller saves. */
int ks_create(struct keystore *ks, const char *name, uint32_t *version);
int ks_rotate(struct keystore *ks, struct ks_project *p, uint32_t *version);
/* Retire (destroy) every active version below BELOW; BELOW may not exceed
 * the current version.  *CHANGED = number of versions retired. */
int ks_retire(struct keystore *ks, struct ks_project *p, uint32_t below, unsigned *changed);
int ks_shred(struct keystore *ks, struct ks_project *p);
/* Nothing but a new generation and a fresh sealing key at the next save
 * (tracevault-keyctl rekey-master). */
int ks_rekey(struct keystore *ks);
int ks_apikey_set(struct keystore *ks, struct ks_project *p, const char *key, size_t len);

/* --- ingest keys ----------------------------------------------------------
 *
 * A token "tvi_<ID>_<SECRET>" is made by keyd, handed out once and kept
 * only as its verifier: BLAKE2b-256 of the whole token keyed with the
 * keystore's verifier key (random, sealed in the keystore, never leaves
 * keyd).  Revoking wipes the verifier; SHRED removes the project's keys. */

struct ks_ingest_info {
    char id[KEYD_INGEST_ID_LEN + 1];
    uint64_t created, revoked;    /* unix seconds; revoked 0 = live */
};

/* P's ingest keys (live and revoked), in creation order. */
size_t ks_ingest_count(const struct ks_project *p);
/* The I-th one into OUT: 0 or -ENOENT. */
int ks_ingest_at(const struct ks_project *p, size_t i, struct ks_ingest_info *out);

/* A new ingest key for P created at NOW: the token into TOKEN (the caller's
 * buffer, guarded memory; wipe it after use: this is its only copy), its ID
 * into ID.  -EKEYREVOKED (shredded), -ENOSPC (KS_INGEST_LIVE_MAX live keys)
 * or -ENOMEM.  A mutation: the caller saves. */
int ks_ingest_create(struct keystore *ks, struct ks_project *p, uint64_t now,
                     char token[KEYD_INGEST_TOKEN_LEN + 1], char id[KEYD_INGEST_ID_LEN + 1]);
/* Revoke P's key ID (hex) at NOW; *CHANGED = 0 if it was revoked already.
 * -ENOENT (no such key in P), -EINVAL (not an ID), -EKEYREVOKED. */
int ks_ingest_revoke(struct keystore *ks, struct ks_project *p, const char *id, uint64_t now,
                     unsigned *changed);
/* Verify the LEN bytes at TOKEN (untrusted, any length).  0 if it is a live
 * key of a live project: *WHO its project, ID its ID.  Otherwise -EACCES,
 * with *WHO and ID still set when the token names an existing key (for the
 * audit record) and NULL / "" when not.  The same work is done whether the
 * ID is unknown or the secret wrong (see keystore.c). */
int ks_ingest_verify(struct keystore *ks, const void *token, size_t len,
                     struct ks_project **who, char id[KEYD_INGEST_ID_LEN + 1]);

#endif
