/*
 * keys.h - the vault's side of key management: a keyd client, a pool of
 * fresh DEKs per project (GEN_DEK in batches, so creating a file costs no
 * round trip), UNWRAP of existing files' DEKs, and the event subscription
 * that reports SHRED (and others) from keyd.
 *
 * Every plaintext DEK handed out is written into caller memory which must be
 * sodium_malloc'd; the pool itself lives in sodium_malloc'd memory and is
 * wiped on purge and on free.  Functions return 0 or a negative errno
 * (see keyd_client.h); failures to reach keyd are logged once per outage
 * with a clear line and the vault keeps serving already-open files.
 */
#ifndef TV_VAULT_KEYS_H
#define TV_VAULT_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "vault/blockcrypt.h"

struct keys;

/* What the event subscription reports: keyd's events, and RESYNC (project
 * "") each time the subscription is (re)established, since events sent
 * while it was down are lost. */
enum keys_event { KEYS_EV_RESYNC, KEYS_EV_SHRED, KEYS_EV_ROTATE, KEYS_EV_RETIRE };

/* Event callback; runs on the subscriber thread. */
typedef void (*keys_event_fn)(void *arg, enum keys_event type, const char *project,
                              uint32_t version);

/* A key manager for keyd at SOCKET with TIMEOUT_MS per request; NULL on ENOMEM. */
struct keys *keys_new(const char *socket, int timeout_ms);
void keys_free(struct keys *k);

/* One fresh DEK for a new file of PROJECT: DEK (32 bytes, guarded memory),
 * the file's ID, chosen by keyd (FILE_ID, 16 bytes), WRAPPED (72: the DEK
 * wrapped for that file ID only) and *VERSION.  Refills the project's pool
 * from keyd (GEN_DEK in batches) when empty. */
int keys_new_dek(struct keys *k, const char *project, unsigned char *dek,
                 unsigned char file_id[BC_FILE_ID], unsigned char wrapped[BC_WRAPPED],
                 uint32_t *version);

/* One fresh key for PROJECT wrapped for no one file (the project's name
 * key): one GEN_DEK round trip, no pool. */
int keys_new_key(struct keys *k, const char *project, unsigned char *key,
                 unsigned char wrapped[BC_WRAPPED], uint32_t *version);

/* Unwrap a DEK wrapped for FILE_ID (NULL: for no one file) into DEK
 * (guarded memory). */
int keys_unwrap(struct keys *k, const char *project, uint32_t version,
                const unsigned char *file_id, const unsigned char wrapped[BC_WRAPPED],
                unsigned char *dek);

/* Unwrap N (1..KEYD_GEN_MAX) DEKs of PROJECT, all under KEK VERSION, each
 * wrapped for its file ID (FILE_IDS: N*16 bytes, WRAPPED: N*72), in one keyd
 * round trip, and hold them for the keys_unwrap calls that will ask for
 * exactly those wraps (each served once, then wiped).  Replaces (and wipes)
 * the previous batch.  For a walk over many files (fsck): one request, and
 * one keyd audit record, per batch instead of per file.  All or nothing: on
 * -EBADMSG (one wrap is bad) nothing is held and each open asks keyd alone,
 * which names the bad file. */
int keys_prefetch(struct keys *k, const char *project, uint32_t version, unsigned n,
                  const unsigned char *file_ids, const unsigned char *wrapped);

/* Re-wrap under PROJECT's newest KEK version (no plaintext leaves keyd),
 * for the same FILE_ID (or NULL); LEGACY: the DEK was wrapped for no file,
 * the new wrap is for FILE_ID. */
int keys_rewrap(struct keys *k, const char *project, uint32_t version,
                const unsigned char *file_id, bool legacy,
                const unsigned char wrapped[BC_WRAPPED], uint32_t *new_version,
                unsigned char new_wrapped[BC_WRAPPED]);

/* Wipe PROJECT's pooled DEKs (after SHRED or ROTATE). */
void keys_purge(struct keys *k, const char *project);

/* Start a thread that subscribes to keyd events and calls FN for each;
 * it reconnects by itself when keyd restarts. */
int keys_start_events(struct keys *k, keys_event_fn fn, void *arg);

/* The last keyd error message (for logs); never key bytes. */
const char *keys_error(struct keys *k);

#endif
