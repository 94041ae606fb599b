/*
 * main.c - tracevault-ingest: the SDK endpoint (DESIGN §9, docs/INGEST.md).
 *
 *   tracevault-ingest -c CONF     serve [ingest] listen (or systemd's sockets)
 *
 * Wires the parts: configuration, listeners (refusing plain HTTP on anything
 * but loopback and unix sockets), keyd clients for key checks, the HTTP
 * server; then the main thread waits for signals and writes the metrics
 * file every few seconds.  SIGTERM/SIGINT stop the server (requests in
 * flight finish their store first: the daemons are stopped, not abandoned).
 */
#include "config.h"
#include "ingest/auth.h"
#include "ingest/imetrics.h"
#include "ingest/listen.h"
#include "ingest/server.h"
#include "ingest/store.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define METRICS_PERIOD_S 5

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tracevault-ingest [-c CONF] [-v]\n"
            "  -c, --config CONF  configuration file (default " TV_DEFAULT_CONFIG ")\n"
            "  -v, --verbose      debug logging\n"
            "  -h, --help         this text\n"
            "  -V, --version      print the version\n");
}

/* Temp files of stores cut short (a gateway killed mid-request): none can
 * belong to a live request once it is older than the request deadline. */
static void sweep(const struct tv_config *cfg)
{
    int n = 0;
    for (size_t i = 0; i < cfg->n_projects; i++)
        n += store_sweep(cfg->ingest.mount, cfg->projects[i].name,
                         2 * cfg->ingest.request_timeout_s);
    if (n)
        log_info("removed %d temp file(s) left by interrupted stores", n);
}

static void write_metrics(const char *path)
{
    static int warned;
    int r;

    if (!path[0])
        return;
    if ((r = im_write(path)) != 0 && !warned) {
        warned = 1;
        log_warn("metrics file %s: %s (not retried in the log)", path, strerror(-r));
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf = TV_DEFAULT_CONFIG;
    struct tv_config *cfg = NULL;
    struct listener *ls = NULL;
    struct auth *auth = NULL;
    struct server *srv = NULL;
    char *cert = NULL, *key = NULL, err[512];
    size_t n_ls = 0, len;
    int c, verbose = 0, rc = 1, r;

    while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("tracevault-ingest (tracevault) %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    log_init("tracevault-ingest", 0, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    /* Request bodies (trace content) pass through this process's memory. */
    tv_harden_process();
    if (sodium_init() < 0) {
        fprintf(stderr, "tracevault-ingest: libsodium did not initialise\n");
        return 1;
    }
    if (tv_config_load(conf, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracevault-ingest: %s\n", err);
        return 1;
    }
    keyd_client_expect_user(cfg->keyd.keyd_user);
    if (!cfg->ingest.tls_cert[0] != !cfg->ingest.tls_key[0]) {
        log_error("%s: [ingest] tls_cert and tls_key go together: set both or neither", cfg->path);
        goto out;
    }
    if (cfg->ingest.tls_cert[0]) {
        if ((r = tv_read_file(cfg->ingest.tls_cert, 1 << 20, &cert, &len)) != 0) {
            log_error("tls_cert %s: %s", cfg->ingest.tls_cert, strerror(-r));
            goto out;
        }
        if ((r = tv_read_file(cfg->ingest.tls_key, 1 << 20, &key, &len)) != 0) {
            log_error("tls_key %s: %s", cfg->ingest.tls_key, strerror(-r));
            goto out;
        }
    }
    if (listen_systemd(&ls, &n_ls, err, sizeof(err)) != 0 ||
        (n_ls == 0 && listen_open(cfg->ingest.listen, &ls, &n_ls, err, sizeof(err)) != 0)) {
        log_error("%s", err);
        goto out;
    }
    /* Bearer keys and trace content must not cross a network in clear. */
    for (size_t i = 0; i < n_ls; i++)
        if (!ls[i].is_unix && !ls[i].loopback && !cert) {
            log_error("listen %s: not a loopback address, and [ingest] tls_cert/tls_key are "
                      "not set: refusing to serve plain HTTP on a network", ls[i].name);
            goto out;
        }
    if (!(auth = auth_new(cfg->keyd.socket, cfg->keyd.client_timeout_ms, cfg->ingest.keyd_clients))) {
        log_error("out of memory");
        goto out;
    }
    struct server_conf sc = {
        .mount = cfg->ingest.mount,
        .max_request_bytes = (size_t)cfg->ingest.max_request_bytes,
        .max_decoded_bytes = (size_t)cfg->ingest.max_decoded_bytes,
        .max_inflight_bytes = (size_t)cfg->ingest.max_inflight_bytes,
        .max_connections = (unsigned)cfg->ingest.max_connections,
        .max_requests = (unsigned)cfg->ingest.max_requests,
        .idle_timeout_s = (unsigned)cfg->ingest.idle_timeout_s,
        .request_timeout_s = (unsigned)cfg->ingest.request_timeout_s,
        .tls_cert_pem = cert,
        .tls_key_pem = key,
        .auth = auth,
    };
    if (cfg->ingest.metrics_file[0]) {
        char *dir = strdup(cfg->ingest.metrics_file);
        if (dir)
            tv_mkdir_p(dirname(dir), 0755);
        free(dir);
    }
    /* Signals are taken by this thread only (sigtimedwait below); the
     * server's threads inherit the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (server_start(&sc, ls, n_ls, &srv, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    for (size_t i = 0; i < n_ls; i++)
        log_info("listening on %s%s", ls[i].name, !ls[i].is_unix && cert ? " (TLS)" : "");
    sd_notify(0, "READY=1");
    write_metrics(cfg->ingest.metrics_file);
    sweep(cfg);
    uint64_t last_sweep = tv_now_ms();
    for (;;) {
        struct timespec ts = { METRICS_PERIOD_S, 0 };
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            log_info("SIGHUP: the configuration is not reloaded; restart to apply changes");
        write_metrics(cfg->ingest.metrics_file);
        if (tv_now_ms() - last_sweep >= (uint64_t)cfg->ingest.request_timeout_s * 1000) {
            sweep(cfg);
            last_sweep = tv_now_ms();
        }
    }
    log_info("stopping");
    sd_notify(0, "STOPPING=1");
    server_stop(srv);
    srv = NULL;
    write_metrics(cfg->ingest.metrics_file);
    rc = 0;
out:
    server_stop(srv);
    auth_free(auth);
    listen_close(ls, n_ls);
    free(cert);
    if (key)
        explicit_bzero(key, strlen(key));   /* the TLS private key */
    free(key);
    tv_config_free(cfg);
    return rc;
}
