/*
 * proto.h - the keyd protocol's one home (docs/KEYD.md "Protocol").
 *
 * Everything both ends must agree on lives here: frame caps, key and batch
 * sizes, operation names, version states, event types and errno names, each
 * with its one name table and parser.  The daemon (ops.c, keystore.c), the
 * client library (keyd_client.c) and the admin tool include it; the vault
 * and the agent get it through keyd_client.h.  Who may call an operation is
 * the daemon's policy and lives with its dispatcher (ops.c), not here.
 *
 * The wire is lib/frame.h frames holding one msgpack map each.  This module
 * holds no state and no key material.
 */
#ifndef TV_KEYD_PROTO_H
#define TV_KEYD_PROTO_H

#include <stddef.h>

/* Frame caps: requests are small (the largest is a batched UNWRAP); replies
 * may carry a full GEN_DEK batch or a long LIST. */
#define KEYD_REQ_MAX (128u * 1024u)
#define KEYD_REPLY_MAX (8u * 1024u * 1024u)
#define KEYD_APIKEY_MAX 4096
/* mp_decode bounds for a request: a flat map of a few keys. */
#define KEYD_REQ_DEPTH 4
#define KEYD_REQ_OBJECTS 64

#define KEYD_DEK_LEN 32          /* XChaCha20-Poly1305 key */
#define KEYD_WRAPPED_LEN 72      /* wrapped DEK: 24-byte nonce + 32 + 16-byte tag */
#define KEYD_FILE_ID_LEN 16      /* a vault file's ID, bound into its DEK's wrap */
#define KEYD_GEN_MAX 1024        /* DEKs per GEN_DEK or UNWRAP request */
#define KEYD_PSEUDONYM_KEY_LEN 32
#define KEYD_PROJECT_MAX 63      /* bytes in a project name */
#define KEYD_AUDIT_KEY_LEN 32    /* the vault's audit MAC key */

/* Ingest keys (docs/KEYD.md "Ingest keys"): the token a client sends is
 * "tvi_" ID "_" SECRET, ID 16 lowercase hex chars (8 random bytes, not
 * secret: it names the key), SECRET 43 chars of unpadded base64url (32
 * random bytes).  keyd keeps only a keyed hash of the whole token. */
#define KEYD_INGEST_ID_LEN 16        /* hex chars of an ingest key's ID */
#define KEYD_INGEST_TOKEN_LEN 64     /* chars of a well-formed token */
#define KEYD_INGEST_KEY_MAX 128      /* longest bearer value worth sending keyd */
#define KEYD_INGEST_PREFIX "tvi_"

enum keyd_op {
    KEYD_OP_UNKNOWN = 0,
    KEYD_OP_GEN_DEK,
    KEYD_OP_UNWRAP,
    KEYD_OP_REWRAP,
    KEYD_OP_SUBSCRIBE,
    KEYD_OP_APIKEY_GET,
    KEYD_OP_PSEUDONYM_KEY,
    KEYD_OP_CREATE,
    KEYD_OP_ROTATE,
    KEYD_OP_RETIRE,
    KEYD_OP_SHRED,
    KEYD_OP_APIKEY_SET,
    KEYD_OP_LIST,
    KEYD_OP_AUDIT_VERIFY,
    KEYD_OP_VAULT_AUDIT_KEY,
    KEYD_OP_REKEY_MASTER,
    KEYD_OP_INGEST_KEY_CREATE,
    KEYD_OP_INGEST_KEY_LIST,
    KEYD_OP_INGEST_KEY_REVOKE,
    KEYD_OP_INGEST_AUTH,
    KEYD_OP_COUNT
};

/* The state of one KEK version: ACTIVE unwraps (the newest also wraps),
 * RETIRED and SHREDDED have no key any more. */
enum keyd_version_state { KEYD_V_ACTIVE = 0, KEYD_V_RETIRED = 1, KEYD_V_SHREDDED = 2 };

/* Events sent to subscribers after a key change (0 is "none"). */
enum keyd_event_type { KEYD_EV_SHRED = 1, KEYD_EV_RETIRE = 2, KEYD_EV_ROTATE = 3 };

/* The wire name of OP ("GEN_DEK", ...), "?" for KEYD_OP_UNKNOWN. */
const char *keyd_op_name(enum keyd_op op);
/* The op named by the LEN bytes at NAME, or KEYD_OP_UNKNOWN. */
enum keyd_op keyd_op_parse(const char *name, size_t len);

/* "active", "retired", "shredded"; "?" for a value outside the enum. */
const char *keyd_state_name(enum keyd_version_state s);
/* The state named by the LEN bytes at NAME into *OUT: 0, or -EINVAL. */
int keyd_state_parse(const char *name, size_t len, enum keyd_version_state *out);

/* "SHRED", "RETIRE", "ROTATE"; "?" for anything else. */
const char *keyd_event_name(int type);
/* The event named by the LEN bytes at NAME, or 0 if unknown. */
int keyd_event_parse(const char *name, size_t len);

/* The name of a positive errno value ("ENOENT"); "EIO" for values outside
 * the protocol's set. */
const char *keyd_errno_name(int err);
/* The positive errno for NAME (LEN bytes), EPROTO if unknown. */
int keyd_errno_parse(const char *name, size_t len);

#endif
