/*
 * main.c - tracevault-keyd: `init` creates the master key, an empty keystore
 * and the first audit record; without a command it serves in the
 * foreground.  Start-up order: harden the process, load the configuration
 * and the master key, lock the keystore, load it, reconcile it with the
 * audit log (repair a crash between keystore save and log flush, refuse a
 * restored older keystore or a broken log), bind, tell systemd, serve.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "keyd/keystore.h"
#include "keyd/ops.h"
#include "keyd/records.h"
#include "keyd/seal.h"
#include "keyd/server.h"
#include "lib/audit.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

#define PROG "tracevault-keyd"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [-c CONF] [-v] [init]\n"
            "  init        create the master key (0400), an empty keystore and the audit log;\n"
            "              refuses to overwrite any of them\n"
            "  (no command) run the key daemon in the foreground (sd_notify under systemd)\n"
            "  -c CONF     configuration file (default " TV_DEFAULT_CONFIG ")\n"
            "  -v          debug logging\n"
            "  --help, --version\n");
}

/* Create the parent directory of PATH with MODE if missing. */
static int parent_dir(const char *path, mode_t mode)
{
    char *d = strdup(path);
    int r = 0;
    if (!d)
        return -ENOMEM;
    char *slash = strrchr(d, '/');
    if (slash && slash != d) {
        *slash = '\0';
        r = tv_mkdir_p(d, mode);
    }
    free(d);
    return r;
}

/* Exclusive lock on KEYSTORE.lock: one keyd (or init) per keystore. */
static int lock_keystore(const char *ks)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s.lock", ks);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, PROG ": lock %s: %s\n", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, PROG ": keystore %s: in use by another tracevault-keyd\n", ks);
        close(fd);
        return -1;
    }
    return fd;     /* held until exit */
}

static int cmd_init(const struct tv_config *cfg)
{
    struct stat st;
    struct keystore *ks = NULL;
    struct audit *a = NULL;
    unsigned char *master = NULL, *akey = NULL;
    const char *from;
    char err[512], line[AUDIT_LINE_MAX], body[AUDIT_LINE_MAX];
    int r, rc = 1, lockfd = -1;

    if (stat(cfg->keyd.master_key, &st) == 0) {
        fprintf(stderr, PROG ": master key %s: exists; refusing to overwrite it\n",
                cfg->keyd.master_key);
        return 1;
    }
    if (stat(cfg->keyd.keystore, &st) == 0) {
        fprintf(stderr, PROG ": keystore %s: exists; refusing to overwrite it\n",
                cfg->keyd.keystore);
        return 1;
    }
    if (stat(cfg->keyd.audit_log, &st) == 0 && st.st_size > 0) {
        fprintf(stderr, PROG ": audit log %s: exists and is not empty; refusing to start a "
                "new chain in it\n", cfg->keyd.audit_log);
        return 1;
    }
    if ((r = parent_dir(cfg->keyd.master_key, 0700)) != 0 ||
        (r = parent_dir(cfg->keyd.keystore, 0700)) != 0 ||
        (r = parent_dir(cfg->keyd.audit_log, 0750)) != 0) {
        fprintf(stderr, PROG ": cannot create a directory for the key files: %s\n",
                strerror(-r));
        return 1;
    }
    if ((lockfd = lock_keystore(cfg->keyd.keystore)) < 0)
        return 1;
    if ((r = seal_master_create(cfg->keyd.master_key)) != 0) {
        fprintf(stderr, PROG ": master key %s: %s\n", cfg->keyd.master_key, strerror(-r));
        goto out;
    }
    /* Load it back the way the daemon will (checks mode and size). */
    unsetenv("CREDENTIALS_DIRECTORY");
    if (seal_master_load(cfg->keyd.master_key, &master, &from, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    akey = sodium_malloc(AUDIT_MAC_LEN);
    if (!akey || seal_derive(master, SEAL_SUB_AUDIT, akey) != 0 ||
        ks_new(cfg->keyd.keystore, master, &ks) != 0) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    struct audit_opts ao = { .fmt = &keyd_audit_format };
    if ((r = audit_open(cfg->keyd.audit_log, akey, &ao, NULL, &a, err, sizeof(err))) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    struct keyd_rec rec = { .gen = ks_gen(ks), .uid = getuid(), .pid = getpid(), .op = "INIT",
                            .result = "ok" };
    uint64_t seq;
    unsigned char mac[AUDIT_MAC_LEN];
    if ((r = keyd_rec_body(body, sizeof(body), &rec) < 0 ? -EINVAL : 0) == 0 &&
        (r = audit_add(a, body, line)) == 0) {
        audit_head(a, &seq, mac);
        r = ks_set_head(ks, seq, mac, line);
    }
    if (r != 0) {
        fprintf(stderr, PROG ": audit log %s: cannot format the first record\n",
                cfg->keyd.audit_log);
        goto out;
    }
    if ((r = ks_save(ks)) != 0) {
        fprintf(stderr, PROG ": keystore %s: %s\n", cfg->keyd.keystore, strerror(-r));
        goto out;
    }
    if ((r = audit_flush(a)) != 0) {
        fprintf(stderr, PROG ": audit log %s: %s\n", cfg->keyd.audit_log, strerror(-r));
        goto out;
    }
    printf(PROG ": created master key %s, keystore %s (and its .seal), audit log %s\n",
           cfg->keyd.master_key, cfg->keyd.keystore, cfg->keyd.audit_log);
    rc = 0;
out:
    audit_close(a);
    ks_free(ks);
    if (akey)
        sodium_free(akey);
    if (master)
        sodium_free(master);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}

/* Generations seen while the log is verified at start-up. */
struct gen_scan {
    uint64_t max_gen;
};

static int scan_gen(const char *line, size_t len, uint64_t seq, void *arg)
{
    struct gen_scan *g = arg;
    uint64_t gen;
    (void)seq;
    if (keyd_rec_gen(line, len, &gen) != 0)
        return -EBADMSG;
    if (gen > g->max_gen)
        g->max_gen = gen;
    return 0;
}

/*
 * Check the audit log against its anchor and the keystore, and open it for
 * appending.  lib/audit refuses a broken chain and a log that ends before
 * its anchor (a cut tail, also after kill -9).  On top of that the log must
 * hold the keystore's chain head (the record of the last key change), or
 * stop exactly one record short of it with that record pending in the
 * keystore (crash between the keystore save and the log flush: the record
 * is appended now), unless the head is in a rotated file; and no record
 * may carry a later keystore generation than the keystore's (an older
 * keystore was restored: shredded keys would come back).  A log without an anchor is adopted only from a keystore of a
 * version that did not anchor its log.
 */
static int reconcile(struct keyd_state *st, char *err, size_t errlen)
{
    struct keystore *ks = st->ks;
    struct gen_scan g = { 0 };
    struct audit_scan sc;
    struct audit_opts ao = { .fmt = &keyd_audit_format, .cont = ops_audit_cont, .cont_arg = st,
                             .adopt = !ks_anchored(ks) };
    char verr[600];
    uint64_t head_seq;
    const char *pending;
    int r;

    memset(&sc, 0, sizeof(sc));
    ks_head(ks, &head_seq, sc.want_mac, &pending);
    sc.want_seq = head_seq;
    sc.on_record = scan_gen;
    sc.arg = &g;
    if ((r = audit_open(st->audit_path, st->audit_key, &ao, &sc, &st->audit, verr,
                        sizeof(verr))) != 0) {
        snprintf(err, errlen, "%s; refusing to start (fail closed)", verr);
        return r == -EBADMSG ? -EBADMSG : r;
    }
    if (head_seq == sc.last_seq + 1 && pending && audit_append_line(st->audit, pending) == 0) {
        uint64_t seq, pgen;
        unsigned char mac[AUDIT_MAC_LEN];
        audit_head(st->audit, &seq, mac);
        log_warn("audit log %s: restored record %" PRIu64 " from the keystore (keyd stopped "
                 "between saving the keystore and the log)", st->audit_path, seq);
        sc.want_found = sodium_memcmp(mac, sc.want_mac, AUDIT_MAC_LEN) == 0;
        sc.last_seq = seq;
        if (keyd_rec_gen(pending, strlen(pending), &pgen) == 0 && pgen > g.max_gen)
            g.max_gen = pgen;
    }
    /* A head before the file's first record is in a rotated file: the anchor
     * and the continuation record vouch for the chain up to here. */
    if (head_seq > 0 && !sc.want_found && !(sc.first_seq && head_seq < sc.first_seq)) {
        snprintf(err, errlen, "audit log %s: does not hold the keystore's chain head (record "
                 "%" PRIu64 "; the log ends at %" PRIu64 "): log truncated or replaced; "
                 "refusing to start", st->audit_path, head_seq, sc.last_seq);
        return -EBADMSG;
    }
    if (g.max_gen > ks_gen(ks)) {
        snprintf(err, errlen, "keystore %s: generation %" PRIu64 " is older than the audit log "
                 "(which records generation %" PRIu64 "): a restored old keystore could bring "
                 "back retired or shredded keys; refusing to start", ks_path(ks), ks_gen(ks),
                 g.max_gen);
        return -ESTALE;
    }
    /* From now on this keystore says "my log has an anchor". */
    if (!ks_anchored(ks) && (r = ks_save(ks)) != 0) {
        snprintf(err, errlen, "keystore %s: cannot save: %s", ks_path(ks), strerror(-r));
        return r;
    }
    return 0;
}

static int serve(const char *conf_path, struct tv_config *cfg)
{
    /* Paths are copied: a SIGHUP reload replaces (and frees) CFG. */
    struct keyd_state st = { .cfg = cfg, .audit_path = strdup(cfg->keyd.audit_log) };
    struct keyd_server *srv = NULL;
    unsigned char *master = NULL;
    const char *from;
    char err[768];
    int r, rc = 1, lockfd = -1;

    if (!st.audit_path)
        goto out;
    if ((r = tv_harden_process()) != 0)
        log_warn("cannot disable core dumps / ptrace: %s", strerror(-r));
    if ((lockfd = lock_keystore(cfg->keyd.keystore)) < 0)
        goto out;
    if (seal_master_load(cfg->keyd.master_key, &master, &from, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (ops_init(&st, master) != 0 ||
        ks_load(cfg->keyd.keystore, master, &st.ks, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (reconcile(&st, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    /* A re-seal killed before it overwrote the old sealing key, or a v1
     * keystore: finish before serving. */
    if ((r = ks_settle(st.ks)) != 0) {
        log_error("keystore %s: cannot finish sealing: %s", ks_path(st.ks), strerror(-r));
        goto out;
    }
    if (server_new(&st, conf_path, &srv, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    log_info("serving %s (keystore %s generation %" PRIu64 ", %zu projects, master key %s)",
             cfg->keyd.socket, cfg->keyd.keystore, ks_gen(st.ks), ks_count(st.ks), from);
    sd_notify(0, "READY=1");
    r = server_run(srv);
    sd_notify(0, "STOPPING=1");
    /* Failed INGEST_AUTHs still held get their summary record now. */
    ops_tick(&st, UINT64_MAX);
    /* Record the chain head so truncation across the restart is caught. */
    if (audit_flush(st.audit) == 0) {
        uint64_t seq;
        unsigned char mac[AUDIT_MAC_LEN];
        audit_head(st.audit, &seq, mac);
        if (ks_set_head(st.ks, seq, mac, NULL) != 0 || ks_save(st.ks) != 0)
            log_warn("keystore %s: cannot record the audit chain head at exit", ks_path(st.ks));
    }
    log_info("stopped after %" PRIu64 " requests (%" PRIu64 " denied; ingest keys: %" PRIu64
             " verified, %" PRIu64 " refused)", st.requests, st.denied, st.ingest_ok,
             st.ingest_failed);
    rc = r == 0 ? 0 : 1;
out:
    server_free(srv);
    audit_close(st.audit);
    ks_free(st.ks);
    /* st.cfg may have been replaced by a SIGHUP reload. */
    if (st.cfg != cfg)
        tv_config_free((struct tv_config *)st.cfg);
    else
        tv_config_free(cfg);
    ops_release(&st);
    free((char *)st.audit_path);
    if (master)
        sodium_free(master);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf = TV_DEFAULT_CONFIG;
    struct tv_config *cfg = NULL;
    char err[512];
    int opt, verbose = 0;

    while ((opt = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " (tracevault) " PACKAGE_VERSION "\n"); return 0;
        default: usage(stderr); return 2;
        }
    }
    int init = 0;
    if (optind < argc) {
        if (strcmp(argv[optind], "init") != 0 || optind + 1 != argc) {
            fprintf(stderr, PROG ": unknown command or extra argument \"%s\"\n", argv[optind]);
            usage(stderr);
            return 2;
        }
        init = 1;
    }
    log_init(PROG, 0, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    if (sodium_init() < 0) {
        fprintf(stderr, PROG ": libsodium failed to initialise\n");
        return 1;
    }
    if (tv_config_load(conf, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    if (init) {
        int rc = cmd_init(cfg);
        tv_config_free(cfg);
        return rc;
    }
    return serve(conf, cfg);
}
