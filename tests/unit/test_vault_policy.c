/*
 * test_vault_policy.c - the project policy: writers (drop box), readers,
 * maintainers, outsiders and root, for every operation.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "lib/config.h"
#include "tests/unit/tap.h"
#include "vault/policy.h"

#define WRITER 2001
#define READER 2002
#define MAINT 2003
#define OUTSIDER 2004
#define GWRITER 2005
#define APPS_GID 3000

int main(void)
{
    struct tv_principal w[] = { { false, WRITER }, { true, APPS_GID } };
    struct tv_principal r[] = { { false, READER } };
    struct tv_principal m[] = { { false, MAINT } };
    struct tv_project p;
    memset(&p, 0, sizeof p);
    p.name = "checkout";
    p.writers = (struct tv_userlist){ 2, w };
    p.readers = (struct tv_userlist){ 1, r };
    p.maintainers = (struct tv_userlist){ 1, m };

    struct pol_who ww = { WRITER, WRITER, NULL, 0 }, rr = { READER, READER, NULL, 0 };
    struct pol_who mm = { MAINT, MAINT, NULL, 0 }, oo = { OUTSIDER, OUTSIDER, NULL, 0 };
    struct pol_who root = { 0, 0, NULL, 0 };
    gid_t sup[] = { 10, APPS_GID };
    struct pol_who gw = { GWRITER, GWRITER, sup, 2 };
    struct pol_who gp = { GWRITER, APPS_GID, NULL, 0 };

    unsigned W = pol_roles(&p, &ww), R = pol_roles(&p, &rr), M = pol_roles(&p, &mm);
    unsigned O = pol_roles(&p, &oo), Z = pol_roles(&p, &root);
    is_int(W, POL_WRITER, "writer is a writer only");
    is_int(R, POL_READER, "reader is a reader only");
    is_int(M, POL_MAINTAINER, "maintainer is a maintainer only");
    is_int(O, 0, "outsider has no role");
    is_int(Z, 0, "root has no role unless listed");
    is_int(pol_roles(&p, &gw), POL_WRITER, "writer through a supplementary group");
    is_int(pol_roles(&p, &gp), POL_WRITER, "writer through the primary group");
    is_int(pol_roles(NULL, &ww), 0, "no project, no role");

    const uid_t other = 4242;
    /* writer */
    is_int(pol_check(W, POL_LOOKUP, WRITER, other), 0, "writer may look up");
    is_int(pol_check(W, POL_LIST, WRITER, other), 0, "writer may list");
    is_int(pol_check(W, POL_CREATE, WRITER, 0), 0, "writer may create");
    is_int(pol_check(W, POL_WRITE, WRITER, WRITER), 0, "writer may write own file");
    is_int(pol_check(W, POL_WRITE, WRITER, other), -EACCES, "writer may not write others' files");
    is_int(pol_check(W, POL_READ, WRITER, WRITER), -EACCES, "writer may not read (drop box)");
    is_int(pol_check(W, POL_READ, WRITER, other), -EACCES, "writer may not read others' files");
    is_int(pol_check(W, POL_RENAME, WRITER, WRITER), 0, "writer may rename own file");
    is_int(pol_check(W, POL_RENAME, WRITER, other), -EACCES, "writer may not rename others' files");
    is_int(pol_check(W, POL_UNLINK, WRITER, WRITER), 0, "writer may unlink own file");
    is_int(pol_check(W, POL_UNLINK, WRITER, other), -EACCES, "writer may not unlink others' files");
    /* reader */
    is_int(pol_check(R, POL_READ, READER, other), 0, "reader may read any file");
    is_int(pol_check(R, POL_LIST, READER, other), 0, "reader may list");
    is_int(pol_check(R, POL_WRITE, READER, READER), -EACCES, "reader may not write");
    is_int(pol_check(R, POL_CREATE, READER, 0), -EACCES, "reader may not create");
    is_int(pol_check(R, POL_UNLINK, READER, other), -EACCES, "reader may not unlink");
    is_int(pol_check(R, POL_SETATTR, READER, READER), -EACCES, "reader may not set attributes");
    /* maintainer */
    is_int(pol_check(M, POL_LIST, MAINT, other), 0, "maintainer may list");
    is_int(pol_check(M, POL_LOOKUP, MAINT, other), 0, "maintainer may stat");
    is_int(pol_check(M, POL_UNLINK, MAINT, other), 0, "maintainer may unlink");
    is_int(pol_check(M, POL_RMDIR, MAINT, other), 0, "maintainer may rmdir");
    is_int(pol_check(M, POL_READ, MAINT, other), -EACCES, "maintainer may not read content");
    is_int(pol_check(M, POL_WRITE, MAINT, MAINT), -EACCES, "maintainer may not write");
    is_int(pol_check(M, POL_CREATE, MAINT, 0), -EACCES, "maintainer may not create");
    /* outsider and root */
    static const enum pol_op all[] = { POL_LOOKUP, POL_LIST, POL_CREATE, POL_READ, POL_WRITE,
                                       POL_UNLINK, POL_RMDIR, POL_RENAME, POL_SETATTR };
    int allowed = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        allowed += pol_check(O, all[i], OUTSIDER, OUTSIDER) == 0;
        allowed += pol_check(Z, all[i], 0, 0) == 0;
    }
    is_int(allowed, 0, "outsider and unlisted root are denied every operation, even on own files");
    is_str(pol_op_name(POL_READ), "read", "op names for the audit log");
    return done();
}
