/*
 * retention.c - tracevault-retention: expire traces older than each
 * project's retention_days (DESIGN §7).  Meant for cron and systemd timers.
 *
 * Where it deletes:
 *   - through the vault's mount, when [vault] mountpoint is a FUSE mount of the
 *     vault: the vault then sees every unlink, writes it to its audit log and
 *     the agent stops tailing the file.  The vault allows this to the
 *     project's maintainers (default root);
 *   - otherwise in the backing store, [vault] backing/<project>/, where a
 *     file's mtime equals the plaintext mtime.  There every entry whose name
 *     starts with '.' is vault metadata and is never expired; removing a file
 *     X also removes its side files ".X.*" in the same directory, and a
 *     directory emptied of traces loses its own metadata with it.
 *
 * How it walks: every directory is opened with openat(O_NOFOLLOW) relative
 * to the held descriptor of its parent, entries are examined with
 * fstatat(AT_SYMLINK_NOFOLLOW) and removed with unlinkat() on that same
 * descriptor.  No path string is ever resolved by the kernel, so a symlink,
 * a rename race or a name with spaces, newlines or a leading dash can neither
 * redirect a deletion nor take the walk out of the project; subdirectories on
 * another filesystem are skipped.  Directories that become empty because
 * files were removed from them are removed (never the project directory).
 *
 * One run at a time: an flock on [retention] lock_file (by default
 * "retention.lock" in the directory holding [vault] backing), taken without
 * waiting; when that directory does not exist either, nothing was ever
 * stored and there is nothing to guard.  Exit codes (for cron mailers; also in tracevault-retention(8)):
 *   0  success (including "nothing to expire")
 *   1  failure: configuration, lock file, vault not reachable, or at least one
 *      entry could not be examined or removed (the others were still handled)
 *   2  usage error (bad option, unknown project)
 *   3  another run holds the lock; this run did nothing
 */
#include "config.h"
#include "lib/config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PROG "tracevault-retention"

#define EXIT_OK      0
#define EXIT_FAIL    1
#define EXIT_USAGE   2
#define EXIT_LOCKED  3

/* Deeper trees are not walked (one descriptor is held per level). */
#define MAX_DEPTH 128

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

enum mode { MODE_BACKING, MODE_MOUNT };

/* Options and the per-project tallies of one run. */
struct run {
    bool dry_run;
    bool verbose;
    bool use_syslog;
    enum mode mode;
    time_t cutoff;        /* regular files with mtime < cutoff expire */
    dev_t dev;            /* the project directory's filesystem */
    /* tallies for the current project */
    uint64_t files, bytes, dirs, errors;
    char path[PATH_MAX];  /* display path of the directory being walked */
};

/* A directory listing, read completely before anything is removed so that
 * unlinking never disturbs readdir.  Names are owned by the list. */
struct names {
    char **v;
    size_t n, cap;
};

/*
 * Print an error on stderr and, unless disabled, to syslog.  Never called
 * with trace content: only paths, project names and errno strings.
 */
static void __attribute__((format(printf, 2, 3)))
report(struct run *r, const char *fmt, ...)
{
    char buf[PATH_MAX + 512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", PROG, buf);
    if (r && r->use_syslog)
        syslog(LOG_ERR, "%s", buf);
}

/*
 * Append NAME to the display path in OUT (size OUTLEN) with every byte that
 * is not printable ASCII, and the backslash, written as \ooo.  Returns the
 * new length; a path that does not fit is cut (it is for humans only).
 */
static size_t path_push(char *out, size_t outlen, size_t len, const char *name)
{
    if (len + 1 < outlen && len > 0)
        out[len++] = '/';
    for (const unsigned char *p = (const unsigned char *)name; *p && len + 5 < outlen; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            len += (size_t)snprintf(out + len, outlen - len, "\\%03o", *p);
        else
            out[len++] = (char)*p;
    }
    out[len] = '\0';
    return len;
}

/* Free every name of L and the array; L is left empty and reusable. */
static void names_release(struct names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* qsort comparator for an array of C strings (byte order, as strcmp). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Read every entry of the directory open at DIRFD (except "." and "..") into
 * OUT, sorted.  DIRFD stays open and owned by the caller.  Returns 0 or -errno.
 */
static int list_dir(int dirfd, struct names *out)
{
    int fd, r = 0;
    DIR *d;
    struct dirent *de;

    fd = dup(dirfd);
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        r = -errno;
        close(fd);
        return r;
    }
    rewinddir(d);
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno)
                r = -errno;
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 64;
            char **v = realloc(out->v, cap * sizeof(*v));
            if (!v) {
                r = -ENOMEM;
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        if (!(out->v[out->n] = strdup(de->d_name))) {
            r = -ENOMEM;
            break;
        }
        out->n++;
    }
    closedir(d);
    if (r == 0 && out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_str);
    return r;
}

/*
 * Remove the backing-store side files ".NAME.*" of NAME from the directory at
 * DIRFD.  LIST is the directory's sorted listing, so the side files are one
 * contiguous run found by binary search.  Only regular files are removed.
 */
static void remove_side_files(struct run *r, int dirfd, const struct names *list,
                              const char *name, size_t plen)
{
    size_t nlen = strlen(name) + 2;  /* "." NAME "." */
    char *prefix = malloc(nlen + 1);
    size_t lo = 0, hi = list->n;

    if (!prefix) {
        r->errors++;
        report(r, "%s: out of memory", r->path);
        return;
    }
    snprintf(prefix, nlen + 1, ".%s.", name);
    while (lo < hi) {          /* first entry >= prefix */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(list->v[mid], prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < list->n && strncmp(list->v[i], prefix, nlen) == 0; i++) {
        struct stat st;
        if (fstatat(dirfd, list->v[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) {
                r->errors++;
                report(r, "%s: side file: %s", r->path, strerror(errno));
            }
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (!r->dry_run && unlinkat(dirfd, list->v[i], 0) != 0) {
            if (errno != ENOENT) {
                r->errors++;
                path_push(r->path, sizeof(r->path), plen, list->v[i]);
                report(r, "%s: cannot remove: %s", r->path, strerror(errno));
                r->path[plen] = '\0';
            }
            continue;
        }
        r->bytes += (uint64_t)st.st_size;
    }
    free(prefix);
}

/*
 * Backing store: the vault keeps per-directory metadata (e.g. the directory's
 * name IV, ".tvdir") inside each directory, so a directory whose traces all
 * expired still holds dot files.  If the directory open at DIRFD holds
 * nothing but regular dot files, remove them so that the caller's rmdir can
 * succeed; if anything else is left (a trace, a subdirectory, a symlink),
 * touch nothing.  The vault does the same when it removes a directory.
 */
static void drop_metadata_if_only(struct run *r, int dirfd)
{
    struct names list = { 0 };
    struct stat st;
    size_t i;

    if (list_dir(dirfd, &list) != 0)
        goto out;                  /* the rmdir will simply fail */
    for (i = 0; i < list.n; i++) {
        if (list.v[i][0] != '.' ||
            fstatat(dirfd, list.v[i], &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            goto out;
    }
    for (i = 0; i < list.n; i++) {
        if (fstatat(dirfd, list.v[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            unlinkat(dirfd, list.v[i], 0) == 0)
            r->bytes += (uint64_t)st.st_size;
    }
out:
    names_release(&list);
}

/*
 * Expire what is old in the directory open at DIRFD (owned by the caller),
 * recursing into subdirectories.  r->path holds its display path.  Sets
 * *emptied when at least one entry below was removed (or would be, in a dry
 * run), so the caller knows it may try to remove the directory itself.
 */
static void walk(struct run *r, int dirfd, int depth, bool *emptied)
{
    struct names list = { 0 };
    size_t plen = strlen(r->path);
    int e;

    *emptied = false;
    if ((e = list_dir(dirfd, &list)) != 0) {
        r->errors++;
        report(r, "%s: cannot list: %s", r->path, strerror(-e));
        goto out;
    }
    for (size_t i = 0; i < list.n; i++) {
        const char *name = list.v[i];
        struct stat st;

        /* Backing store: dot entries are the vault's metadata. */
        if (r->mode == MODE_BACKING && name[0] == '.')
            continue;
        path_push(r->path, sizeof(r->path), plen, name);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) {   /* gone meanwhile: nothing to do */
                r->errors++;
                report(r, "%s: cannot stat: %s", r->path, strerror(errno));
            }
            goto next;
        }
        if (S_ISDIR(st.st_mode)) {
            bool sub_emptied = false;
            int fd;
            struct stat fst;

            if (st.st_dev != r->dev)        /* a mount inside the project */
                goto next;
            if (depth >= MAX_DEPTH) {
                r->errors++;
                report(r, "%s: deeper than %d levels, not walked", r->path, MAX_DEPTH);
                goto next;
            }
            fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                if (errno != ENOENT) {
                    r->errors++;
                    report(r, "%s: cannot open: %s", r->path, strerror(errno));
                }
                goto next;
            }
            /* Replaced between fstatat and openat?  Then leave it alone. */
            if (fstat(fd, &fst) != 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
                close(fd);
                goto next;
            }
            walk(r, fd, depth + 1, &sub_emptied);
            if (sub_emptied && !r->dry_run && r->mode == MODE_BACKING)
                drop_metadata_if_only(r, fd);
            close(fd);
            r->path[plen] = '\0';
            path_push(r->path, sizeof(r->path), plen, name);
            if (sub_emptied && !r->dry_run) {
                /* Only directories we emptied: an empty directory an
                 * application just made is left for it to use. */
                if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0) {
                    r->dirs++;
                    *emptied = true;
                    if (r->verbose)
                        printf("removed directory %s\n", r->path);
                    if (r->mode == MODE_BACKING)
                        remove_side_files(r, dirfd, &list, name, plen);
                } else if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
                    r->errors++;
                    report(r, "%s: cannot remove directory: %s", r->path, strerror(errno));
                }
            }
            goto next;
        }
        if (!S_ISREG(st.st_mode))          /* symlinks, fifos...: not traces */
            goto next;
        if (st.st_mtime >= r->cutoff)
            goto next;
        if (!r->dry_run && unlinkat(dirfd, name, 0) != 0) {
            if (errno != ENOENT) {
                r->errors++;
                report(r, "%s: cannot remove: %s", r->path, strerror(errno));
            }
            goto next;
        }
        r->files++;
        r->bytes += (uint64_t)st.st_size;
        *emptied = true;
        if (r->verbose)
            printf("%s %s\n", r->dry_run ? "would remove" : "removed", r->path);
        if (r->mode == MODE_BACKING) {
            r->path[plen] = '\0';
            remove_side_files(r, dirfd, &list, name, plen);
        }
next:
        r->path[plen] = '\0';
    }
out:
    names_release(&list);
}

/*
 * Decode the octal escapes (\040 for space, \012 for newline...) that
 * /proc/self/mountinfo uses in paths, in place.
 */
static void unescape_mountinfo(char *s)
{
    char *w = s;
    for (char *p = s; *p; ) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *w++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
            p += 4;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
}

/*
 * Find the topmost mount at MOUNTPOINT in /proc/self/mountinfo.  Returns 1
 * and fills FSTYPE and SOURCE when something is mounted there, 0 when not,
 * -errno on error.  The mount point is compared after resolving its parent
 * directory, so "/srv/../srv/traces" and symlinked parents match too.
 */
static int find_mount(const char *mountpoint, char *fstype, size_t tlen,
                      char *source, size_t slen)
{
    char want[PATH_MAX + NAME_MAX + 2], parent[PATH_MAX], *copy, *base;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    FILE *f;

    copy = strdup(mountpoint);
    if (!copy)
        return -ENOMEM;
    base = basename(copy);
    {
        char *copy2 = strdup(mountpoint);
        if (!copy2) {
            free(copy);
            return -ENOMEM;
        }
        if (!realpath(dirname(copy2), parent)) {
            free(copy2);
            free(copy);
            return 0;      /* no parent: nothing can be mounted there */
        }
        free(copy2);
    }
    if (strcmp(base, "/") == 0)
        snprintf(want, sizeof(want), "/");
    else
        snprintf(want, sizeof(want), "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, base);
    free(copy);

    f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    while (getline(&line, &cap, f) > 0) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
        char *save = NULL, *tok, *mp = NULL;
        int field = 0;
        line[strcspn(line, "\n")] = '\0';
        for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            if (++field == 5)
                mp = tok;
            if (field > 6 && strcmp(tok, "-") == 0)
                break;
        }
        if (!mp || !tok)
            continue;
        unescape_mountinfo(mp);
        if (strcmp(mp, want) != 0)
            continue;
        char *t = strtok_r(NULL, " ", &save);
        char *s = strtok_r(NULL, " ", &save);
        if (!t)
            continue;
        unescape_mountinfo(t);
        snprintf(fstype, tlen, "%s", t);
        if (s)
            unescape_mountinfo(s);
        snprintf(source, slen, "%s", s ? s : "");
        found = 1;          /* keep going: the last entry is the top mount */
    }
    free(line);
    fclose(f);
    return found;
}

/* True if a mount of type FSTYPE from SOURCE is the TraceVault vault. */
static bool is_vault_mount(const char *fstype, const char *source)
{
    if (strncmp(fstype, "fuse", 4) != 0)
        return false;
    return strstr(fstype, "tracevault") != NULL || strstr(source, "tracevault") != NULL;
}

/*
 * Expire one project below the base directory open at BASEFD (-1: there is
 * no base directory, so nothing to expire) and print its summary line.
 * Returns 0, or -1 when anything went wrong (already reported).
 */
static int expire_project(struct run *r, int basefd, const struct tv_project *p)
{
    const char *how = r->mode == MODE_MOUNT ? "mount" : "backing";
    char line[512];
    int fd = -1;
    struct stat st;
    bool emptied;

    r->files = r->bytes = r->dirs = r->errors = 0;
    r->path[0] = '\0';
    path_push(r->path, sizeof(r->path), 0, p->name);
    if (p->retention_days > 0 && basefd >= 0) {
        r->cutoff = time(NULL) - (time_t)p->retention_days * 86400;
        fd = openat(basefd, p->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT) {
            r->errors++;
            report(r, "project \"%s\": cannot open %s directory: %s", p->name, how,
                   strerror(errno));
        } else if (fd >= 0) {
            if (fstat(fd, &st) != 0) {
                r->errors++;
                report(r, "project \"%s\": %s", p->name, strerror(errno));
            } else {
                r->dev = st.st_dev;
                walk(r, fd, 0, &emptied);
            }
            close(fd);
        }
    }
    snprintf(line, sizeof(line),
             "project=%s via=%s retention_days=%d%s files=%" PRIu64 " bytes=%" PRIu64
             " dirs=%" PRIu64 " errors=%" PRIu64,
             p->name, how, p->retention_days, r->dry_run ? " dry_run=yes" : "",
             r->files, r->bytes, r->dirs, r->errors);
    printf("%s\n", line);
    fflush(stdout);
    if (r->use_syslog)
        syslog(r->errors ? LOG_WARNING : LOG_INFO, "%s", line);
    return r->errors ? -1 : 0;
}

/* The --help text, which also states the exit codes cron acts on. */
static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [-c CONF] [--dry-run] [--project P] [-v]\n"
        "Expire traces older than each project's retention_days.\n"
        "\n"
        "  -c, --config CONF  configuration file (default " TV_DEFAULT_CONFIG ")\n"
        "  -n, --dry-run      count what would be removed, remove nothing\n"
        "  -p, --project P    only project P\n"
        "  -v, --verbose      print every file removed (escaped names)\n"
        "      --no-syslog    summary lines on stdout only\n"
        "  -h, --help         this text\n"
        "  -V, --version      print the version\n"
        "\n"
        "Deletes through the vault's mount when it is mounted at [vault] mountpoint,\n"
        "otherwise in [vault] backing.  One summary line per project on stdout and\n"
        "to syslog.  Exit: 0 ok, 1 failure, 2 usage, 3 another run in progress.\n");
}

/*
 * Parse options, load the configuration, take the lock, decide between the
 * mount and the backing store, expire every (or the one chosen) project.
 * Returns the exit code documented at the top of this file.
 */
int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "dry-run", no_argument, NULL, 'n' },
        { "project", required_argument, NULL, 'p' },
        { "verbose", no_argument, NULL, 'v' },
        { "no-syslog", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct run *r;
    const char *conf = TV_DEFAULT_CONFIG, *only = NULL, *base;
    struct tv_config *cfg = NULL;
    char err[1024], fstype[128] = "", source[PATH_MAX] = "";
    int c, rc = EXIT_OK, lockfd = -1, basefd = -1, m;
    struct statfs sfs;

    r = calloc(1, sizeof(*r));
    if (!r) {
        fputs(PROG ": out of memory\n", stderr);
        return EXIT_FAIL;
    }
    r->use_syslog = true;
    while ((c = getopt_long(argc, argv, "c:np:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case 'n': r->dry_run = true; break;
        case 'p': only = optarg; break;
        case 'v': r->verbose = true; break;
        case 'S': r->use_syslog = false; break;
        case 'h': usage(stdout); free(r); return EXIT_OK;
        case 'V': printf(PROG " (tracevault) " PACKAGE_VERSION "\n"); free(r); return EXIT_OK;
        default: usage(stderr); free(r); return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        free(r);
        return EXIT_USAGE;
    }
    if (r->use_syslog)
        openlog(PROG, LOG_PID, LOG_DAEMON);

    if (tv_config_load(conf, &cfg, err, sizeof(err)) != 0) {
        report(r, "%s", err);
        rc = EXIT_FAIL;
        goto out;
    }
    if (only && !tv_config_project(cfg, only)) {
        fprintf(stderr, PROG ": project \"%s\": not in %s\n", only, conf);
        rc = EXIT_USAGE;
        goto out;
    }

    /* One run at a time: a cron run that overlaps a slow one does nothing. */
    lockfd = open(cfg->retention.lock_file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lockfd < 0 && errno == ENOENT && access(cfg->vault.backing, F_OK) != 0 &&
        errno == ENOENT &&
        find_mount(cfg->vault.mountpoint, fstype, sizeof(fstype), source, sizeof(source)) == 0) {
        /* No lock directory and no backing store, nor a mount: nothing was
         * ever stored.  Report every project as empty, as below. */
        r->mode = MODE_BACKING;
        for (size_t i = 0; i < cfg->n_projects; i++)
            if (!only || strcmp(only, cfg->projects[i].name) == 0)
                (void)expire_project(r, -1, &cfg->projects[i]);
        goto out;
    }
    if (lockfd < 0) {
        report(r, "lock file %s: %s", cfg->retention.lock_file, strerror(errno));
        rc = EXIT_FAIL;
        goto out;
    }
    if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            fprintf(stderr, PROG ": another run holds %s; nothing done\n",
                    cfg->retention.lock_file);
            if (r->use_syslog)
                syslog(LOG_NOTICE, "another run holds %s; nothing done",
                       cfg->retention.lock_file);
            rc = EXIT_LOCKED;
        } else {
            report(r, "lock file %s: %s", cfg->retention.lock_file, strerror(errno));
            rc = EXIT_FAIL;
        }
        goto out;
    }

    /* Through the mount when the vault is there, so it audits the unlinks. */
    m = find_mount(cfg->vault.mountpoint, fstype, sizeof(fstype), source, sizeof(source));
    if (m < 0) {
        report(r, "/proc/self/mountinfo: %s", strerror(-m));
        rc = EXIT_FAIL;
        goto out;
    }
    if (m == 1 && !is_vault_mount(fstype, source)) {
        report(r, "%s: a %s mount, not the vault: refusing to expire through it or "
               "behind it", cfg->vault.mountpoint, fstype);
        rc = EXIT_FAIL;
        goto out;
    }
    r->mode = m == 1 ? MODE_MOUNT : MODE_BACKING;
    base = r->mode == MODE_MOUNT ? cfg->vault.mountpoint : cfg->vault.backing;
    basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (basefd < 0) {
        if (errno == ENOENT && r->mode == MODE_BACKING) {
            /* No backing store yet: nothing was ever stored. */
            for (size_t i = 0; i < cfg->n_projects; i++)
                if (!only || strcmp(only, cfg->projects[i].name) == 0)
                    (void)expire_project(r, -1, &cfg->projects[i]);
            goto out;
        }
        report(r, "%s: %s", base, strerror(errno));
        rc = EXIT_FAIL;
        goto out;
    }
    /* The mount may have gone between the mountinfo check and the open: then
     * we would hold the directory underneath.  Verify what we opened. */
    if (r->mode == MODE_MOUNT &&
        (fstatfs(basefd, &sfs) != 0 || (unsigned long)sfs.f_type != FUSE_SUPER_MAGIC)) {
        report(r, "%s: the vault was unmounted during the run", base);
        rc = EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_projects; i++) {
        if (only && strcmp(only, cfg->projects[i].name) != 0)
            continue;
        if (expire_project(r, basefd, &cfg->projects[i]) != 0)
            rc = EXIT_FAIL;
    }

out:
    if (basefd >= 0)
        close(basefd);
    if (lockfd >= 0)
        close(lockfd);          /* releases the lock */
    tv_config_free(cfg);
    free(r);
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = EXIT_FAIL;
    return rc;
}
