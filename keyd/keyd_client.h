/*
 * keyd_client.h - the client side of the tracevault-keyd protocol, linked by
 * the vault, the agent and tracevault-keyctl (library keyd/libkeydclient.a).
 *
 * Protocol summary (full description: docs/KEYD.md): a Unix stream socket;
 * each request and reply is one frame (lib/frame.h) holding a msgpack map.
 * Requests carry "op" plus arguments; replies carry "ok" (bool) and either
 * results or "err" (an errno name such as "ENOENT") and "msg" (a sentence
 * naming the object and the reason).  One request is in flight per
 * connection; a keyd_client serialises its callers with a mutex, so one
 * client may be shared by threads (use several for parallelism).
 *
 * Ownership: plaintext DEKs and keys are written into buffers the caller
 * provides, which should be sodium_malloc'd and wiped by the caller.  The
 * client wipes its own copies (frame buffers) before freeing them.
 *
 * Every function returns 0 or a negative errno value:
 *   -ECONNREFUSED  keyd is not running / socket missing (after retries)
 *   -EACCES        the peer is not allowed this operation (audited by keyd)
 *   -ENOENT        no such project (or no API key set)
 *   -EEXIST        CREATE of a project that exists
 *   -EKEYREVOKED   the project was shredded
 *   -EKEYEXPIRED   UNWRAP/REWRAP with a retired key version
 *   -EBADMSG       a wrapped DEK failed authentication
 *   -EINVAL        bad argument (name, count, size)
 *   -EIO           keyd could not write its audit record or keystore
 *   -EPROTO        malformed reply
 *   -EPERM         the socket is not keyd's (see keyd_client_expect_user)
 *   -ETIMEDOUT     no reply within the client's timeout
 *   -ENOSPC        too many live ingest keys in the project
 * keyd_client_error() returns the server's message for the last failure.
 */
#ifndef TV_KEYD_CLIENT_H
#define TV_KEYD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Sizes, states and event types of the protocol (KEYD_DEK_LEN, ...). */
#include "keyd/proto.h"

struct keyd_client;

/* Who keyd runs as, checked on every connection before a byte is sent:
 * the socket's directory must not be writable by group or others, and the
 * peer must be root or USER (a name or a uid; [keyd] keyd_user, default
 * KEYD_USER_DEFAULT).  If no such user exists on this host, the owner of
 * the socket's directory stands for it.  Process-wide; call it once with
 * the configuration's value before making clients.  A failed check is
 * -EPERM with keyd_client_error() saying what was wrong. */
#define KEYD_USER_DEFAULT "tracevault-keyd"
void keyd_client_expect_user(const char *user);

/* A client for SOCKET_PATH with a per-request TIMEOUT_MS.  The connection is
 * made lazily and re-made after any I/O error (with a few short retries, so a
 * keyd restart is invisible to callers).  Returns NULL only on ENOMEM. */
struct keyd_client *keyd_client_new(const char *socket_path, int timeout_ms);
void keyd_client_free(struct keyd_client *c);

/* The server's message (or a local description) for the last failed call;
 * valid until the next call on C.  Never contains key bytes. */
const char *keyd_client_error(struct keyd_client *c);

/* --- vault_users ------------------------------------------------------- */

/* N (1..KEYD_GEN_MAX) fresh DEKs for PROJECT under its current KEK version:
 * DEKS receives N*KEYD_DEK_LEN bytes, WRAPPED N*KEYD_WRAPPED_LEN bytes,
 * *VERSION the KEK version they are wrapped with.  With FILE_IDS (N *
 * KEYD_FILE_ID_LEN bytes), each DEK is wrapped for a fresh random file ID,
 * written there: it then unwraps only for that ID; NULL: for no one file. */
int keyd_gen_dek(struct keyd_client *c, const char *project, unsigned n,
                 uint32_t *version, unsigned char *deks, unsigned char *wrapped,
                 unsigned char *file_ids);

/* Unwrap one DEK wrapped under PROJECT's KEK VERSION for FILE_ID
 * (KEYD_FILE_ID_LEN bytes; NULL: a DEK for no one file) into DEK. */
int keyd_unwrap(struct keyd_client *c, const char *project, uint32_t version,
                const unsigned char *file_id, const unsigned char wrapped[KEYD_WRAPPED_LEN],
                unsigned char dek[KEYD_DEK_LEN]);

/* Re-wrap a DEK to PROJECT's current version inside keyd (no plaintext
 * out), for the same FILE_ID (or NULL); with LEGACY the given DEK was
 * wrapped for no file and the new wrap is for FILE_ID (the upgrade of a
 * first-version file header). */
int keyd_rewrap(struct keyd_client *c, const char *project, uint32_t version,
                const unsigned char *file_id, int legacy,
                const unsigned char wrapped[KEYD_WRAPPED_LEN],
                uint32_t *new_version, unsigned char new_wrapped[KEYD_WRAPPED_LEN]);

/* The vault's audit MAC key (vault_users and admin_users): derived in keyd
 * from the master key, the same at every call; into KEY (guarded memory). */
int keyd_vault_audit_key(struct keyd_client *c, unsigned char key[KEYD_AUDIT_KEY_LEN]);

/* --- agent_users ------------------------------------------------------- */

/* PROJECT's upstream API key as a NUL-terminated string in a sodium_malloc'd
 * buffer the caller frees with sodium_free().  -ENOENT if none is set. */
int keyd_apikey_get(struct keyd_client *c, const char *project, char **key);

/* PROJECT's pseudonymisation key (random, made at CREATE, destroyed by SHRED):
 * the agent's key for hashing session and user identifiers. */
int keyd_pseudonym_key(struct keyd_client *c, const char *project,
                       unsigned char key[KEYD_PSEUDONYM_KEY_LEN]);

/* --- admin_users ------------------------------------------------------- */

int keyd_create(struct keyd_client *c, const char *project, uint32_t *version);
int keyd_rotate(struct keyd_client *c, const char *project, uint32_t *new_version);
/* Versions below BELOW stop unwrapping (their KEKs are destroyed). */
int keyd_retire(struct keyd_client *c, const char *project, uint32_t below);
/* Destroy every KEK version, the API key and the pseudonym key of PROJECT. */
int keyd_shred(struct keyd_client *c, const char *project);
int keyd_apikey_set(struct keyd_client *c, const char *project, const char *key);
/* Re-seal the whole keystore under a fresh sealing key and destroy the old
 * one (what SHRED and RETIRE do too): a copy of the keystore taken before no
 * longer opens with the key material in place after. */
int keyd_rekey_master(struct keyd_client *c);

struct keyd_project_info {
    char name[64];
    uint32_t current;            /* version used for new wraps (0 if shredded) */
    uint32_t n_versions;
    struct { uint32_t version; enum keyd_version_state state; } *versions;
    int has_apikey;
    int shredded;
};

/* Every project; *OUT is an array of *N entries, freed with keyd_list_free. */
int keyd_list(struct keyd_client *c, struct keyd_project_info **out, size_t *n);
void keyd_list_free(struct keyd_project_info *list, size_t n);

/* Verify the audit chain; *RECORDS receives the number verified.  On a broken
 * chain returns -EBADMSG and keyd_client_error() says where and why. */
int keyd_audit_verify(struct keyd_client *c, uint64_t *records);

/* --- ingest keys (admin_users; INGEST_AUTH: ingest_users) ---------------
 *
 * A key is the token "tvi_<ID>_<SECRET>" (proto.h); keyd keeps only what
 * verifies it.  The ID names the key in lists, revocations and audit
 * records and is not secret. */

struct keyd_ingest_key_info {
    char id[KEYD_INGEST_ID_LEN + 1];
    uint64_t created;            /* unix seconds */
    uint64_t revoked;            /* unix seconds, 0 while live */
};

/* A new ingest key for PROJECT: *KEY receives the token, NUL-terminated, in
 * a sodium_malloc'd buffer the caller wipes and frees with sodium_free()
 * (keyd keeps no copy: this is the only one); ID its ID.  -ENOSPC when the
 * project has its maximum of live keys, -EKEYREVOKED if shredded.  Not
 * re-sent after a dead connection (it would make a second key). */
int keyd_ingest_key_create(struct keyd_client *c, const char *project, char **key,
                           char id[KEYD_INGEST_ID_LEN + 1]);
/* PROJECT's ingest keys, live and revoked, oldest first: *OUT an array of *N
 * entries (NULL when none) the caller frees with free(). */
int keyd_ingest_key_list(struct keyd_client *c, const char *project,
                         struct keyd_ingest_key_info **out, size_t *n);
/* Revoke PROJECT's key ID: every INGEST_AUTH after the reply refuses it.
 * -ENOENT if PROJECT has no such key; revoking twice is not an error. */
int keyd_ingest_key_revoke(struct keyd_client *c, const char *project, const char *id);
/* Verify the bearer value KEY (LEN bytes, untrusted, any content): 0 with
 * its PROJECT and ID, or -EACCES if it is not a live key of a live project
 * (unknown, wrong, revoked, shredded, malformed).  Every other error is not
 * about the key: -EPERM if this process may not ask (not in [keyd]
 * ingest_users, or the socket is not keyd's), transport errors as above. */
int keyd_ingest_auth(struct keyd_client *c, const char *key, size_t len,
                     char project[KEYD_PROJECT_MAX + 1], char id[KEYD_INGEST_ID_LEN + 1]);

/* --- subscriptions (vault_users) --------------------------------------- */

struct keyd_event {
    enum keyd_event_type type;
    char project[64];
    uint32_t version;            /* RETIRE: versions below this are gone; ROTATE: new version */
};

struct keyd_sub;

/* Open a dedicated connection that receives events.  Returns 0 and *OUT. */
int keyd_subscribe(const char *socket_path, struct keyd_sub **out);
/* The connection's fd, to poll for POLLIN. */
int keyd_sub_fd(const struct keyd_sub *s);
/* Read one event (blocks until one arrives; poll first to avoid blocking).
 * -ECONNRESET when keyd went away: free and subscribe again. */
int keyd_sub_read(struct keyd_sub *s, struct keyd_event *ev);
void keyd_sub_free(struct keyd_sub *s);

/* --- extensions (compatible additions) --------------------------------- */

/* Unwrap N (1..KEYD_GEN_MAX) DEKs, all wrapped under PROJECT's KEK VERSION,
 * in one round trip: WRAPPED holds N*KEYD_WRAPPED_LEN bytes, DEKS receives
 * N*KEYD_DEK_LEN.  All or nothing: -EBADMSG if any one fails. */
int keyd_unwrap_many(struct keyd_client *c, const char *project, uint32_t version,
                     unsigned n, const unsigned char *file_ids, const unsigned char *wrapped,
                     unsigned char *deks);

#endif
