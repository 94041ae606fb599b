/*
 * audit.c - JSON-lines audit log of the vault (see audit.h).
 */
#include "config.h"
#include "vault/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

static int audit_fd = -1;

int audit_open(const char *path)
{
    if (!path || !*path)
        return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    audit_fd = fd;
    return 0;
}

int audit_reopen(const char *path)
{
    if (!path || !*path || audit_fd < 0)
        return audit_open(path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    /* dup3 swaps the descriptor atomically: concurrent writers never see a
     * closed or half-set fd */
    int rc = dup3(fd, audit_fd, O_CLOEXEC) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

void audit_close(void)
{
    if (audit_fd >= 0)
        close(audit_fd);
    audit_fd = -1;
}

const char *audit_errname(int err, char buf[16])
{
    static const struct { int e; const char *n; } t[] = {
        { EACCES, "EACCES" }, { EPERM, "EPERM" }, { EIO, "EIO" }, { ENOENT, "ENOENT" },
        { EEXIST, "EEXIST" }, { EXDEV, "EXDEV" }, { ENOSPC, "ENOSPC" }, { EBADMSG, "EBADMSG" },
        { ENOTEMPTY, "ENOTEMPTY" }, { EINVAL, "EINVAL" }, { ENOTCONN, "ENOTCONN" },
        { EKEYREVOKED, "EKEYREVOKED" }, { ENAMETOOLONG, "ENAMETOOLONG" }, { EISDIR, "EISDIR" },
        { EFBIG, "EFBIG" }, { EDQUOT, "EDQUOT" }, { EINTR, "EINTR" }, { EROFS, "EROFS" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].e == err)
            return t[i].n;
    snprintf(buf, 16, "E%d", err);
    return buf;
}

/* Project names are validated ([A-Za-z0-9._-]) and details are literals, so
 * no JSON escaping is needed; anything else is replaced defensively. */
static void put_safe(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < cap; i++) {
        char c = s[i];
        dst[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
    }
    dst[i] = '\0';
}

int audit_log(uid_t uid, pid_t pid, const char *project, const char *op, int result,
              const char *file_id_hex, const char *detail)
{
    char ts[32], line[512], proj[72], fid[40], det[40], eb[16];
    int n;

    if (audit_fd < 0)
        return 0;
    tv_rfc3339(tv_wall_ns(), ts);
    put_safe(proj, sizeof proj, project ? project : "");
    put_safe(fid, sizeof fid, file_id_hex ? file_id_hex : "");
    put_safe(det, sizeof det, detail ? detail : "");
    n = snprintf(line, sizeof line,
                 "{\"time\":\"%s\",\"uid\":%u,\"pid\":%d,\"project\":\"%s\",\"op\":\"%s\","
                 "\"result\":\"%s\"%s%s%s%s%s%s}\n",
                 ts, (unsigned)uid, (int)pid, proj, op,
                 result == 0 ? "ok" : audit_errname(-result, eb),
                 fid[0] ? ",\"file_id\":\"" : "", fid, fid[0] ? "\"" : "",
                 det[0] ? ",\"detail\":\"" : "", det, det[0] ? "\"" : "");
    if (n <= 0 || (size_t)n >= sizeof line)
        return -EIO;
    if (write(audit_fd, line, (size_t)n) != n) {
        log_warn("vault: audit log: write failed: %s", strerror(errno));
        return -EIO;
    }
    return 0;
}
