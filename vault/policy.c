/*
 * policy.c - per-request project policy (see policy.h).
 */
#include "config.h"
#include "vault/policy.h"

#include <errno.h>
#include "lib/config.h"

unsigned pol_roles(const struct tv_project *p, const struct pol_who *who)
{
    unsigned r = 0;
    if (!p)
        return 0;
    if (tv_userlist_match(&p->writers, who->uid, who->gid, who->groups, who->ngroups))
        r |= POL_WRITER;
    if (tv_userlist_match(&p->readers, who->uid, who->gid, who->groups, who->ngroups))
        r |= POL_READER;
    if (tv_userlist_match(&p->maintainers, who->uid, who->gid, who->groups, who->ngroups))
        r |= POL_MAINTAINER;
    return r;
}

int pol_check(unsigned roles, enum pol_op op, uid_t uid, uid_t owner)
{
    bool w = roles & POL_WRITER, rd = roles & POL_READER, m = roles & POL_MAINTAINER;
    bool own = w && uid == owner;

    switch (op) {
    case POL_LOOKUP:
    case POL_LIST:
        return (w || rd || m) ? 0 : -EACCES;
    case POL_CREATE:
        return w ? 0 : -EACCES;
    case POL_READ:
        return rd ? 0 : -EACCES;
    case POL_WRITE:
    case POL_SETATTR:
    case POL_RENAME:
        return own ? 0 : -EACCES;
    case POL_UNLINK:
    case POL_RMDIR:
        return (m || own) ? 0 : -EACCES;
    }
    return -EACCES;
}

const char *pol_op_name(enum pol_op op)
{
    static const char *const n[] = { "lookup", "list", "create", "read", "write",
                                     "unlink", "rmdir", "rename", "setattr" };
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}
