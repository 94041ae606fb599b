/*
 * main.c - tracevault: mount the vault, or run its offline tools.
 *
 *   tracevault -c CONF [-f] [-d] [--writeback] [BACKING MOUNTPOINT]
 *
 * --entry-timeout: how long the kernel caches names and attributes below a
 * project directory (default 60 s; the project entry never is: see fs.h).
 * --writeback enables the kernel's writeback cache: measured slower for the
 * small-trace workload (docs/PERFORMANCE.md), so it is off by default.
 *   tracevault fsck -c CONF [PROJECT]
 *   tracevault rewrap -c CONF PROJECT
 *   tracevault audit-verify -c CONF [ROTATED...]
 *
 * Wires the modules: config (lib/config), key manager (keys.c), audit log
 * (audit.c, whose MAC key comes from keyd: no key, no mount), the filesystem
 * (fs.c) on a multithreaded libfuse session, and the offline checker
 * (fsck.c).  Under systemd (Type=notify, run with -f)
 * READY=1 is sent once the mount is up.  SIGTERM/SIGINT unmount cleanly (libfuse's
 * handlers); SIGHUP reloads the config through a small thread, since a
 * signal handler may only post a semaphore.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "keyd/keyd_client.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vault/audit.h"
#include "vault/fs.h"
#include "vault/fsck.h"
#include "vault/fuseio.h"
#include "vault/keys.h"

static sem_t hup_sem;
static volatile int hup_stop;
static struct vfs *the_fs;
static const char *conf_path = TV_DEFAULT_CONFIG;
static double entry_timeout = -1;     /* -1: the vault's default */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tracevault [-c CONF] [-f] [-d] [--writeback] [--entry-timeout SECONDS]\n"
            "                  [BACKING MOUNTPOINT]\n"
            "       tracevault fsck [-c CONF] [PROJECT]\n"
            "       tracevault fsck --rewrap [-c CONF] [PROJECT]\n"
            "       tracevault rewrap [-c CONF] PROJECT\n"
            "       tracevault audit-verify [-c CONF] [ROTATED-LOG...]\n"
            "Mount the TraceVault encrypted filesystem (daemonizes unless -f), check\n"
            "every block of every file (fsck), re-wrap file keys to the newest KEK\n"
            "version after keyctl rotate (rewrap), or verify the audit log's chain and\n"
            "anchor, after its rotated files given oldest first (audit-verify).\n");
}

/* The audit log's MAC key from keyd into guarded memory (*KEY, freed with
 * sodium_free).  The caller must be in vault_users or admin_users. */
static int audit_key(const struct tv_config *cfg, unsigned char **key)
{
    struct keyd_client *c = keyd_client_new(cfg->keyd.socket, cfg->keyd.client_timeout_ms);
    int r = -ENOMEM;

    *key = sodium_malloc(KEYD_AUDIT_KEY_LEN);
    if (c && *key && (r = keyd_vault_audit_key(c, *key)) == 0) {
        keyd_client_free(c);
        return 0;
    }
    log_error("vault: audit log \"%s\": cannot get its key from keyd (%s): %s",
              cfg->vault.audit_log, cfg->keyd.socket,
              c ? keyd_client_error(c) : strerror(-r));
    keyd_client_free(c);
    if (*key)
        sodium_free(*key);
    *key = NULL;
    return r;
}

static int open_audit(const struct tv_config *cfg)
{
    unsigned char *key = NULL;
    char err[768];
    int r;

    if ((r = audit_key(cfg, &key)) != 0) {
        log_error("vault: not mounting without an audit log (start keyd first)");
        return r;
    }
    r = vault_audit_open(cfg->vault.audit_log, key, cfg->vault.audit_denied_interval, err,
                         sizeof err);
    sodium_free(key);
    if (r != 0)
        log_error("vault: %s; not mounting", err);
    return r;
}

/* tracevault audit-verify: exit 0 if the chain over ROTATED... and the live
 * log verifies and reaches its anchor, 1 otherwise. */
static int run_audit_verify(const struct tv_config *cfg, char **rotated, int n)
{
    const char **paths = calloc((size_t)n + 1, sizeof(*paths));
    unsigned char *key = NULL;
    struct audit_scan sc;
    char err[768];
    int r;

    if (!paths)
        return 1;
    for (int i = 0; i < n; i++)
        paths[i] = rotated[i];
    paths[n] = cfg->vault.audit_log;
    memset(&sc, 0, sizeof sc);
    if ((r = audit_key(cfg, &key)) == 0)
        r = vault_audit_verify(paths, (size_t)n + 1, key, &sc, err, sizeof err);
    else
        snprintf(err, sizeof err, "cannot verify without the key");
    if (r == 0)
        printf("audit log OK: %llu records, chain intact up to record %llu, anchored at "
               "record %llu\n", (unsigned long long)sc.records,
               (unsigned long long)sc.last_seq, (unsigned long long)sc.anchor_seq);
    else
        fprintf(stderr, "tracevault: audit-verify: %s\n", err);
    if (key)
        sodium_free(key);
    free(paths);
    return r == 0 ? 0 : 1;
}

static void on_hup(int sig)
{
    (void)sig;
    sem_post(&hup_sem);
}

static void *hup_main(void *arg)
{
    (void)arg;
    for (;;) {
        while (sem_wait(&hup_sem) < 0)
            ;
        if (hup_stop)
            break;
        char err[512];
        struct tv_config *cfg = NULL;
        if (tv_config_load(conf_path, &cfg, err, sizeof err) < 0) {
            log_error("vault: reload failed, keeping the old policy: %s", err);
            continue;
        }
        vfs_reload(the_fs, cfg);
    }
    return NULL;
}

/*
 * Each file the kernel knows costs the vault an O_PATH descriptor (one more
 * while it is open), and the kernel, not the vault, decides when to forget
 * it: a vault holding many thousands of traces needs many thousands of
 * descriptors.  Raise the soft limit to the hard one and, when allowed
 * (CAP_SYS_RESOURCE), both to fs.nr_open, as libfuse's passthrough_hp does.
 */
static void raise_nofile(void)
{
    struct rlimit rl;
    unsigned long nr_open = 0;
    FILE *f;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if ((f = fopen("/proc/sys/fs/nr_open", "re")) != NULL) {
        if (fscanf(f, "%lu", &nr_open) != 1)
            nr_open = 0;
        fclose(f);
    }
    if (nr_open > rl.rlim_max) {
        struct rlimit want = { (rlim_t)nr_open, (rlim_t)nr_open };
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 65536)
        log_warn("vault: open-file limit is %lu: a vault with more files than that in use "
                 "fails with EMFILE (raise LimitNOFILE=)", (unsigned long)rl.rlim_cur);
}

static int run_mount(struct tv_config *cfg, const char *backing, const char *mnt, int fg,
                     int debug, int writeback)
{
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct fuse_session *se = NULL;
    struct keys *keys = NULL;
    struct fuse_loop_config *lc = NULL;
    pthread_t hup_thread;
    int rc = 1, hup_started = 0;

    raise_nofile();
    if (fuse_opt_add_arg(&args, "tracevault") != 0 ||
        fuse_opt_add_arg(&args, "-oallow_other,fsname=tracevault,subtype=tracevault") != 0 ||
        (debug && fuse_opt_add_arg(&args, "-d") != 0))
        goto out;
    if (open_audit(cfg) != 0)
        goto out;
    keys = keys_new(cfg->keyd.socket, cfg->keyd.client_timeout_ms);
    if (!keys)
        goto out;
    int threads = cfg->vault.threads;
    the_fs = vfs_new(cfg, keys, backing, writeback);
    cfg = NULL;                       /* owned by the vfs now */
    if (!the_fs)
        goto out;
    if (entry_timeout >= 0)
        vfs_set_entry_timeout(the_fs, entry_timeout);
    se = fuse_session_new(&args, vfs_ops(), sizeof(struct fuse_lowlevel_ops), the_fs);
    if (!se)
        goto out;
    if (fuse_set_signal_handlers(se) != 0)
        goto out;
    if (fuse_session_mount(se, mnt) != 0) {
        log_error("vault: cannot mount on \"%s\"", mnt);
        goto out_handlers;
    }
    /* the vault's own /dev/fuse reads and writes on the descriptor libfuse
     * mounted, before the INIT request is read (vault/fuseio.h) */
    static const struct fuse_custom_io io = { .read = fuseio_read, .writev = fuseio_writev };
    fuseio_want_killpriv_v2(true);
    if (fuse_session_custom_io(se, &io, fuse_session_fd(se)) != 0) {
        log_error("vault: cannot take over the FUSE descriptor");
        goto out_unmount;
    }
    vfs_set_session(the_fs, se);
    if (fuse_daemonize(fg) != 0)
        goto out_unmount;
    if (!fg)
        log_init("tracevault", 1, LOG_LVL_INFO);
    /* after daemonizing: threads do not survive fork */
    sem_init(&hup_sem, 0, 0);
    struct sigaction sa = { .sa_handler = on_hup };
    sigemptyset(&sa.sa_mask);
    if (pthread_create(&hup_thread, NULL, hup_main, NULL) != 0)
        goto out_unmount;
    hup_started = 1;
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        goto out_unmount;
    if (vfs_start_threads(the_fs) < 0)
        goto out_unmount;
    log_info("vault: mounted %s on %s", backing, mnt);
    sd_notify(0, "READY=1");          /* Type=notify units: the mount is up */
    lc = fuse_loop_cfg_create();
    if (!lc)
        goto out_unmount;
    fuse_loop_cfg_set_clone_fd(lc, 1);
    /* Keep every worker: spawning threads per burst (each with its own
     * cloned /dev/fuse fd) cost more than the requests themselves.  At
     * least 16 even on a small machine: an audited request (open, create,
     * unlink, ...) holds its worker until its record is durable, and only
     * requests that wait together share a flush (group commit); a waiting
     * worker costs no CPU.  With 4, one reader opening files in parallel
     * got 1,700 opens/s here; with 16, 2,900. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned nthreads = threads > 0 ? (unsigned)threads : (unsigned)(ncpu > 8 ? 2 * ncpu : 16);
    fuse_loop_cfg_set_max_threads(lc, nthreads);
    fuse_loop_cfg_set_idle_threads(lc, nthreads);
    rc = fuse_session_loop_mt(se, lc) < 0 ? 1 : 0;
    log_info("vault: unmounting %s", mnt);
    sd_notify(0, "STOPPING=1");
    vfs_wipe_keys(the_fs);
out_unmount:
    fuse_session_unmount(se);
out_handlers:
    fuse_remove_signal_handlers(se);
out:
    if (lc)
        fuse_loop_cfg_destroy(lc);
    if (se)
        fuse_session_destroy(se);
    tv_config_free(cfg);
    /* stop every thread that reaches the vfs before freeing it */
    if (hup_started) {
        signal(SIGHUP, SIG_IGN);
        hup_stop = 1;
        sem_post(&hup_sem);
        pthread_join(hup_thread, NULL);
    }
    if (the_fs)
        vfs_stop_threads(the_fs);
    keys_free(keys);                  /* joins the keyd event subscriber */
    vfs_free(the_fs);
    the_fs = NULL;
    vault_audit_close();
    fuse_opt_free_args(&args);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "foreground", no_argument, NULL, 'f' },
        { "debug", no_argument, NULL, 'd' },
        { "writeback", no_argument, NULL, 'W' },
        { "entry-timeout", required_argument, NULL, 'E' },
        { "rewrap", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *tool = NULL;
    int fg = 0, debug = 0, writeback = 0, rewrap = 0, opt;
    char err[512];

    if (argc > 1 && (strcmp(argv[1], "fsck") == 0 || strcmp(argv[1], "rewrap") == 0 ||
                     strcmp(argv[1], "audit-verify") == 0)) {
        tool = argv[1];
        argv++;
        argc--;
    }
    while ((opt = getopt_long(argc, argv, "c:fdhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 'f': fg = 1; break;
        case 'd': debug = 1; fg = 1; break;
        case 'W': writeback = 1; break;
        case 'R': rewrap = 1; break;
        case 'E': {
            char *end;
            entry_timeout = strtod(optarg, &end);
            if (*end || entry_timeout < 0 || entry_timeout > 3600) {
                fprintf(stderr, "tracevault: --entry-timeout \"%s\": not 0..3600 seconds\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("tracevault (tracevault) %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    log_init("tracevault", 0, LOG_LVL_INFO);
    if (sodium_init() < 0)
        log_fatal("vault: libsodium failed to initialise");
    tv_harden_process();
    struct tv_config *cfg = NULL;
    if (tv_config_load(conf_path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "tracevault: %s\n", err);
        return 1;
    }
    /* Every keyd connection of this process checks that the peer is keyd. */
    keyd_client_expect_user(cfg->keyd.keyd_user);
    int nargs = argc - optind;
    if (tool) {
        int rc;
        if (strcmp(tool, "fsck") == 0) {
            if (nargs > 1) {
                usage(stderr);
                tv_config_free(cfg);
                return 2;
            }
            /* --rewrap: bring every header up to date (version 2, newest
             * KEK), then check */
            rc = rewrap ? vault_rewrap(cfg, nargs ? argv[optind] : NULL) : 0;
            if (rc == 0)
                rc = vault_fsck(cfg, nargs ? argv[optind] : NULL);
        } else if (strcmp(tool, "audit-verify") == 0) {
            rc = run_audit_verify(cfg, argv + optind, nargs);
        } else {
            if (nargs != 1) {
                usage(stderr);
                tv_config_free(cfg);
                return 2;
            }
            rc = vault_rewrap(cfg, argv[optind]);
        }
        tv_config_free(cfg);
        return rc;
    }
    if (nargs != 0 && nargs != 2) {
        usage(stderr);
        tv_config_free(cfg);
        return 2;
    }
    const char *backing = nargs ? argv[optind] : cfg->vault.backing;
    const char *mnt = nargs ? argv[optind + 1] : cfg->vault.mountpoint;
    char *b = strdup(backing), *m = strdup(mnt);
    if (!b || !m)
        return 1;
    int rc = run_mount(cfg, b, m, fg, debug, writeback);
    free(b);
    free(m);
    return rc;
}
