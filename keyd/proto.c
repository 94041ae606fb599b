/*
 * proto.c - see proto.h.  Two small tables: operations and error names.
 */
#include "config.h"
#include "keyd/proto.h"

#include <errno.h>
#include <string.h>

static const struct {
    const char *name;
    enum keyd_class cls;
} ops[KEYD_OP_COUNT] = {
    [KEYD_OP_UNKNOWN] = { "?", KEYD_CLASS_NONE },
    [KEYD_OP_GEN_DEK] = { "GEN_DEK", KEYD_CLASS_VAULT },
    [KEYD_OP_UNWRAP] = { "UNWRAP", KEYD_CLASS_VAULT },
    [KEYD_OP_REWRAP] = { "REWRAP", KEYD_CLASS_VAULT },
    [KEYD_OP_SUBSCRIBE] = { "SUBSCRIBE", KEYD_CLASS_VAULT },
    [KEYD_OP_APIKEY_GET] = { "APIKEY_GET", KEYD_CLASS_AGENT },
    [KEYD_OP_PSEUDONYM_KEY] = { "PSEUDONYM_KEY", KEYD_CLASS_AGENT },
    [KEYD_OP_CREATE] = { "CREATE", KEYD_CLASS_ADMIN },
    [KEYD_OP_ROTATE] = { "ROTATE", KEYD_CLASS_ADMIN },
    [KEYD_OP_RETIRE] = { "RETIRE", KEYD_CLASS_ADMIN },
    [KEYD_OP_SHRED] = { "SHRED", KEYD_CLASS_ADMIN },
    [KEYD_OP_APIKEY_SET] = { "APIKEY_SET", KEYD_CLASS_ADMIN },
    [KEYD_OP_LIST] = { "LIST", KEYD_CLASS_ADMIN },
    [KEYD_OP_AUDIT_VERIFY] = { "AUDIT_VERIFY", KEYD_CLASS_ADMIN },
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
};

const char *keyd_op_name(enum keyd_op op)
{
    if ((int)op <= 0 || op >= KEYD_OP_COUNT)
        return "?";
    return ops[op].name;
}

enum keyd_op keyd_op_parse(const char *name, size_t len)
{
    for (int i = 1; i < KEYD_OP_COUNT; i++)
        if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0)
            return (enum keyd_op)i;
    return KEYD_OP_UNKNOWN;
}

enum keyd_class keyd_op_class(enum keyd_op op)
{
    if ((int)op <= 0 || op >= KEYD_OP_COUNT)
        return KEYD_CLASS_NONE;
    return ops[op].cls;
}

const char *keyd_errno_name(int err)
{
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (errs[i].err == err)
            return errs[i].name;
    return "EIO";
}

int keyd_errno_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (strlen(errs[i].name) == len && memcmp(errs[i].name, name, len) == 0)
            return errs[i].err;
    return EPROTO;
}
