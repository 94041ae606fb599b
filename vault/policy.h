/*
 * policy.h - who may do what inside a project (DESIGN §5, docs/CONFIG.md).
 *
 * Roles come from the project's config section: writers (create files and
 * write the files they created: a drop box), readers (read everything),
 * maintainers (list, stat, unlink, rmdir; never content).  Anyone else,
 * root included, gets EACCES for everything inside the project.  The
 * decision is pure: callers pass the requester and, for per-file operations,
 * the file's owner (its creator).
 */
#ifndef TV_VAULT_POLICY_H
#define TV_VAULT_POLICY_H

#include <stdbool.h>
#include <sys/types.h>

struct tv_project;

enum pol_role { POL_WRITER = 1, POL_READER = 2, POL_MAINTAINER = 4 };

enum pol_op {
    POL_LOOKUP,       /* lookup, getattr, getxattr, access(F_OK) */
    POL_LIST,         /* opendir/readdir */
    POL_CREATE,       /* create a file, mkdir */
    POL_READ,         /* open for reading, read */
    POL_WRITE,        /* open for writing, write, truncate, utimens, fsync */
    POL_UNLINK,       /* unlink a file */
    POL_RMDIR,        /* remove a directory */
    POL_RENAME,       /* rename (source; target checked as POL_UNLINK-by-owner) */
    POL_SETATTR,      /* chmod, utimens */
};

struct pol_who {
    uid_t uid;
    gid_t gid;
    const gid_t *groups;   /* supplementary groups, or NULL */
    int ngroups;           /* -1: look them up from the passwd entry */
};

/* The role bits of WHO in project P (0 when P is NULL). */
unsigned pol_roles(const struct tv_project *p, const struct pol_who *who);

/* 0 if ROLES allow OP on an object owned by OWNER (ignored for directory-level
 * operations) for requester UID, else -EACCES. */
int pol_check(unsigned roles, enum pol_op op, uid_t uid, uid_t owner);

/* Name of an op for the audit log ("open", "read", ...). */
const char *pol_op_name(enum pol_op op);

#endif
