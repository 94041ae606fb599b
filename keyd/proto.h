/*
 * proto.h - names shared by both ends of the keyd protocol (docs/KEYD.md).
 *
 * The wire is lib/frame.h frames holding one msgpack map each.  This module
 * only maps between the names on the wire and C values: operation names and
 * their authorization class, and errno values and their names.  It holds no
 * state and no key material.
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
    KEYD_OP_COUNT
};

/* Who may call an operation: the [keyd] *_users list that must match. */
enum keyd_class { KEYD_CLASS_NONE = 0, KEYD_CLASS_VAULT, KEYD_CLASS_AGENT, KEYD_CLASS_ADMIN };

/* The wire name of OP ("GEN_DEK", ...), "?" for KEYD_OP_UNKNOWN. */
const char *keyd_op_name(enum keyd_op op);
/* The op named by the LEN bytes at NAME, or KEYD_OP_UNKNOWN. */
enum keyd_op keyd_op_parse(const char *name, size_t len);
/* The class allowed to call OP (KEYD_CLASS_NONE for unknown ops: nobody). */
enum keyd_class keyd_op_class(enum keyd_op op);

/* The name of a positive errno value ("ENOENT"); "EIO" for values outside
 * the protocol's set. */
const char *keyd_errno_name(int err);
/* The positive errno for NAME (LEN bytes), EPROTO if unknown. */
int keyd_errno_parse(const char *name, size_t len);

#endif
