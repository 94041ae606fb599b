/*
 * proto.c - see proto.h.  One name table per enumeration and one lookup
 * helper that parses them all.
 */
#include "config.h"
#include "keyd/proto.h"

#include <errno.h>
#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const op_names[KEYD_OP_COUNT] = {
    [KEYD_OP_UNKNOWN] = "?",
    [KEYD_OP_GEN_DEK] = "GEN_DEK",
    [KEYD_OP_UNWRAP] = "UNWRAP",
    [KEYD_OP_REWRAP] = "REWRAP",
    [KEYD_OP_SUBSCRIBE] = "SUBSCRIBE",
    [KEYD_OP_APIKEY_GET] = "APIKEY_GET",
    [KEYD_OP_PSEUDONYM_KEY] = "PSEUDONYM_KEY",
    [KEYD_OP_CREATE] = "CREATE",
    [KEYD_OP_ROTATE] = "ROTATE",
    [KEYD_OP_RETIRE] = "RETIRE",
    [KEYD_OP_SHRED] = "SHRED",
    [KEYD_OP_APIKEY_SET] = "APIKEY_SET",
    [KEYD_OP_LIST] = "LIST",
    [KEYD_OP_AUDIT_VERIFY] = "AUDIT_VERIFY",
    [KEYD_OP_VAULT_AUDIT_KEY] = "VAULT_AUDIT_KEY",
    [KEYD_OP_REKEY_MASTER] = "REKEY_MASTER",
    [KEYD_OP_INGEST_KEY_CREATE] = "INGEST_KEY_CREATE",
    [KEYD_OP_INGEST_KEY_LIST] = "INGEST_KEY_LIST",
    [KEYD_OP_INGEST_KEY_REVOKE] = "INGEST_KEY_REVOKE",
    [KEYD_OP_INGEST_AUTH] = "INGEST_AUTH",
};

static const char *const state_names[] = {
    [KEYD_V_ACTIVE] = "active",
    [KEYD_V_RETIRED] = "retired",
    [KEYD_V_SHREDDED] = "shredded",
};

static const char *const event_names[] = {
    [KEYD_EV_SHRED] = "SHRED",
    [KEYD_EV_RETIRE] = "RETIRE",
    [KEYD_EV_ROTATE] = "ROTATE",
};

static const struct {
    int err;
    const char *name;
} errs[] = {
    { EACCES, "EACCES" },         { ENOENT, "ENOENT" },
    { EEXIST, "EEXIST" },         { EKEYREVOKED, "EKEYREVOKED" },
    { EKEYEXPIRED, "EKEYEXPIRED" }, { EBADMSG, "EBADMSG" },
    { EINVAL, "EINVAL" },         { EIO, "EIO" },
    { EPROTO, "EPROTO" },         { ENOMEM, "ENOMEM" },
    { EMSGSIZE, "EMSGSIZE" },     { EOPNOTSUPP, "EOPNOTSUPP" },
    { ETIMEDOUT, "ETIMEDOUT" },   { EBUSY, "EBUSY" },
    { ENOSPC, "ENOSPC" },         { EKEYREJECTED, "EKEYREJECTED" },
};

/* The index in NAMES[FIRST..N) of the LEN bytes at S, or -1. */
static int lookup(const char *const *names, int first, int n, const char *s, size_t len)
{
    for (int i = first; i < n; i++)
        if (names[i] && strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return i;
    return -1;
}

const char *keyd_op_name(enum keyd_op op)
{
    return (int)op > 0 && op < KEYD_OP_COUNT ? op_names[op] : "?";
}

enum keyd_op keyd_op_parse(const char *name, size_t len)
{
    int i = lookup(op_names, 1, KEYD_OP_COUNT, name, len);
    return i < 0 ? KEYD_OP_UNKNOWN : (enum keyd_op)i;
}

const char *keyd_state_name(enum keyd_version_state s)
{
    return (unsigned)s < N_OF(state_names) ? state_names[s] : "?";
}

int keyd_state_parse(const char *name, size_t len, enum keyd_version_state *out)
{
    int i = lookup(state_names, 0, (int)N_OF(state_names), name, len);
    if (i < 0)
        return -EINVAL;
    *out = (enum keyd_version_state)i;
    return 0;
}

const char *keyd_event_name(int type)
{
    return type > 0 && (size_t)type < N_OF(event_names) ? event_names[type] : "?";
}

int keyd_event_parse(const char *name, size_t len)
{
    int i = lookup(event_names, 1, (int)N_OF(event_names), name, len);
    return i < 0 ? 0 : i;
}

const char *keyd_errno_name(int err)
{
    for (size_t i = 0; i < N_OF(errs); i++)
        if (errs[i].err == err)
            return errs[i].name;
    return "EIO";
}

int keyd_errno_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OF(errs); i++)
        if (strlen(errs[i].name) == len && memcmp(errs[i].name, name, len) == 0)
            return errs[i].err;
    return EPROTO;
}
