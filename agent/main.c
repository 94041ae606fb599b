/*
 * main.c - tracevault-agent: wires discovery, ingest, the queue and delivery.
 *
 *   tracevault-agent -c CONF            follow the mount (default)
 *   tracevault-agent -c CONF --once     ship everything pending, then exit
 *   tracevault-agent dump FILE          print a file:// batch as JSON lines
 *   tracevault-agent -c CONF hash PROJECT event|session|user ID...
 *                                       the keyed hashes the agent ships for IDs
 *
 * One loop: poll the inotify descriptor with a timeout that is the next due
 * time (batch linger, retry, deferred file, metrics), read events, do a
 * bounded amount of reading, ship what is due.  (Only parse + evaluate +
 * encode of a group of documents is shared with a worker thread: encode.c.)  SIGTERM/SIGINT
 * set a flag; the loop finishes the batch in flight, commits and exits.
 */
#include "config.h"
#include "agent/ingest.h"
#include "agent/keys.h"
#include "agent/metrics.h"
#include "agent/price.h"
#include "agent/queue.h"
#include "agent/record.h"
#include "agent/ship.h"
#include "agent/upstream.h"
#include "agent/watch.h"
#include "keyd/keyd_client.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORK_BUDGET 2000            /* documents/lines per loop turn */
#define METRICS_PERIOD_MS 1000
#define METRICS_MIN_GAP_MS 200        /* sooner when a counter changed */

static volatile sig_atomic_t stop_requested, hup_seen;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGHUP is what operators and log rotators send daemons; its default action
 * would end the agent with a status systemd does not restart.  The agent
 * does not reload its configuration (projects and evaluators are built at
 * start), so it says so and carries on. */
static void on_hup(int sig)
{
    (void)sig;
    hup_seen = 1;
}

/* Called from the main loops: say once per signal that nothing is reloaded. */
static void note_hup(void)
{
    if (hup_seen) {
        hup_seen = 0;
        log_info("SIGHUP: the configuration is not reloaded; restart the agent to apply changes");
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tracevault-agent [-c CONF] [--once] [-v]\n"
            "       tracevault-agent dump FILE\n"
            "       tracevault-agent [-c CONF] hash PROJECT event|session|user ID...\n"
            "  -c, --config CONF  configuration file (default " TV_DEFAULT_CONFIG ")\n"
            "      --once         process everything not yet shipped, deliver it, exit 0\n"
            "                     only when all of it is acknowledged\n"
            "  -v, --verbose      debug logging\n"
            "  -h, --help         this text\n"
            "  -V, --version      print the version\n");
}

struct agent {
    struct tv_config *cfg;
    struct price_table *prices;
    struct queue *q;
    struct keys *keys;
    struct upstream *up;
    struct ingest *in;
    struct shipper *ship;
    struct watch *w;
    struct metrics m;
    uint64_t next_metrics, last_metrics, metrics_sig;
};

/* A cheap fingerprint of the counters: when it changes, the file is
 * rewritten sooner than the regular period, so readers see an event within
 * a fraction of a second. */
static uint64_t metrics_sig(const struct metrics *m)
{
    uint64_t sig = m->traces_seen + m->records_queued * 3 + m->records_shipped * 5 +
                   m->records_dead_lettered * 7 + m->retries * 11 + m->rescans * 13 +
                   (uint64_t)m->reading_paused * 17 + m->shredded_projects * 23;
    for (int i = 0; i < SKIP_REASON_COUNT; i++)
        sig += m->skipped[i] * (uint64_t)(19 + i);
    return sig;
}

static void write_metrics(struct agent *a, int force)
{
    uint64_t now = tv_now_ms(), sig = metrics_sig(&a->m);
    int r;

    if (!force && now < a->next_metrics &&
        (sig == a->metrics_sig || now < a->last_metrics + METRICS_MIN_GAP_MS))
        return;
    a->next_metrics = now + METRICS_PERIOD_MS;
    a->last_metrics = now;
    a->metrics_sig = sig;
    a->m.queue_depth = queue_depth(a->q);
    a->m.queue_bytes = queue_bytes(a->q);
    if ((r = metrics_write(&a->m, a->cfg->agent.metrics_file)) != 0)
        log_warn("metrics file %s: %s", a->cfg->agent.metrics_file, strerror(-r));
}

/* `hash`: what the agent ships for identifiers IDS of PROJECT (event and
 * parent ids share the "event" domain), one hash a line, so an operator can
 * find a user's records upstream (an erasure request) without the agent ever
 * shipping the id itself.  Needs the project's pseudonym key, like the agent. */
static int cmd_hash(const char *conf, char **args, int n)
{
    struct tv_config *cfg = NULL;
    struct keys *keys = NULL;
    const unsigned char *key;
    const char *version, *domain;
    char err[512], h[33];
    int rc = 1, r;

    if (n < 3 || (strcmp(args[1], "event") && strcmp(args[1], "session") && strcmp(args[1], "user"))) {
        usage(stderr);
        return 2;
    }
    domain = !strcmp(args[1], "event") ? RECORD_HASH_EVENT : args[1];
    tv_harden_process();
    if (tv_config_load(conf, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracevault-agent: %s\n", err);
        return 1;
    }
    keyd_client_expect_user(cfg->keyd.keyd_user);
    size_t pi;
    for (pi = 0; pi < cfg->n_projects && strcmp(cfg->projects[pi].name, args[0]) != 0; pi++)
        ;
    if (pi == cfg->n_projects) {
        /* Never make a development key for a mistyped name. */
        fprintf(stderr, "tracevault-agent: hash: project \"%s\": no [project.%s] section in %s\n",
                args[0], args[0], conf);
        goto out;
    }
    if (keys_new(cfg, &keys) != 0) {
        fprintf(stderr, "tracevault-agent: out of memory\n");
        goto out;
    }
    if ((r = keys_pseudonym(keys, args[0], &key, &version)) != 0) {
        fprintf(stderr, "tracevault-agent: hash: %s\n", keys_error(keys));
        goto out;
    }
    for (int i = 2; i < n; i++) {
        record_keyed_hash(key, domain, args[i], h);
        printf("%s\n", h);
    }
    rc = 0;
out:
    keys_free(keys);
    tv_config_free(cfg);
    return rc;
}

/* keyd said PROJECT was shredded (keys.c has wiped its pseudonym key): its
 * queued records go unsent, and nothing of it is read or shipped again
 * until a restart (keys_pseudonym and keys_apikey refuse it). */
static void on_shred(void *arg, const char *project)
{
    struct agent *a = arg;
    uint64_t n = 0;
    shipper_forget(a->ship, project);
    int r = queue_drop_project(a->q, project, &n);

    a->m.shredded_projects++;
    a->m.records_shredded += n;
    if (r != 0)
        log_error("project \"%s\" was shredded: its pseudonym key is wiped, but its queued "
                  "records could not be deleted: %s", project, strerror(-r));
    else
        log_warn("project \"%s\" was shredded: its pseudonym key is wiped, %llu queued records "
                 "deleted unsent, nothing of it is shipped again", project, (unsigned long long)n);
    write_metrics(a, 1);
}

static void agent_release(struct agent *a)
{
    watch_free(a->w);
    shipper_free(a->ship);
    ingest_free(a->in);
    upstream_free(a->up);
    keys_free(a->keys);
    queue_close(a->q);
    price_table_free(a->prices);
    tv_config_free(a->cfg);
}

static int run_once(struct agent *a, const char *root)
{
    uint64_t next;
    int r;

    watch_scan(root, a->in, 0);
    while (!stop_requested) {
        note_hup();
        keys_events(a->keys, on_shred, a);
        r = ingest_work(a->in, WORK_BUDGET, &next);
        if (r < 0)
            return 1;
        if (r == 0 && next == 0 && !ingest_paused(a->in))
            break;
        /* Deliveries fly on their own thread while the next documents are
         * read; the loop waits for one only when reading cannot go on. */
        if ((r = shipper_run(a->ship, 1, &next)) < 0)
            return 1;
        if (r == 0 && ingest_paused(a->in)) {
            uint64_t now = tv_now_ms();
            if (shipper_busy(a->ship))
                shipper_wait(a->ship, 1000);
            else if (next > now)
                poll(NULL, 0, (int)(next - now));
        } else if (r == 0 && next) {
            uint64_t now = tv_now_ms();
            if (next > now)
                poll(NULL, 0, (int)(next - now > 200 ? 200 : next - now));
        }
        write_metrics(a, 0);
    }
    while (!stop_requested && (queue_depth(a->q) > 0 || shipper_busy(a->ship))) {
        keys_events(a->keys, on_shred, a);
        if ((r = shipper_run(a->ship, 1, &next)) < 0)
            return 1;
        if (shipper_busy(a->ship)) {
            shipper_wait(a->ship, 1000);
        } else if (r == 0 && next) {
            uint64_t now = tv_now_ms();
            if (next > now)
                poll(NULL, 0, (int)(next - now));
        }
        write_metrics(a, 0);
    }
    if (shipper_finish(a->ship) < 0)
        return 1;
    write_metrics(a, 1);
    if (queue_depth(a->q) > 0) {
        log_error("stopped with %llu records not yet acknowledged",
                  (unsigned long long)queue_depth(a->q));
        return 1;
    }
    if (shipper_dead(a->ship) > 0) {
        log_error("%llu records were rejected by the upstream (dead-letter table)",
                  (unsigned long long)shipper_dead(a->ship));
        return 1;
    }
    return 0;
}

static int run_follow(struct agent *a, const char *root)
{
    uint64_t next_in = 0, next_ship = 0, next_scan = 0;
    int r, busy = 0;

    if ((r = watch_new(root, a->in, &a->m, &a->w)) != 0)
        return 1;
    a->m.rescans++;
    watch_scan(root, a->in, 1);
    log_info("following %s", root);
    while (!stop_requested) {
        note_hup();
        uint64_t now = tv_now_ms(), due = a->next_metrics > now ? a->next_metrics : now;
        int timeout;
        if (busy)
            due = now;
        if (next_in && next_in < due)
            due = next_in;
        if (next_ship && next_ship < due)
            due = next_ship;
        if (next_scan && next_scan < due)
            due = next_scan;
        if (metrics_sig(&a->m) != a->metrics_sig && a->last_metrics + METRICS_MIN_GAP_MS < due)
            due = a->last_metrics + METRICS_MIN_GAP_MS;
        timeout = due > now ? (int)(due - now) : 0;
        keys_events(a->keys, on_shred, a);
        /* keyd's events wake the loop: a SHRED is acted on at once. */
        /* ... and so does a delivery that landed. */
        struct pollfd pfd[3] = { { .fd = watch_fd(a->w), .events = POLLIN },
                                 { .fd = keys_events_fd(a->keys), .events = POLLIN },
                                 { .fd = shipper_fd(a->ship), .events = POLLIN } };
        if (poll(pfd, 3, timeout) < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return 1;
        }
        if (stop_requested)
            break;
        keys_events(a->keys, on_shred, a);
        watch_drain(a->w);
        next_scan = watch_maintain(a->w);
        if ((r = ingest_work(a->in, WORK_BUDGET, &next_in)) < 0)
            return 1;
        busy = r == 1;
        if ((r = shipper_run(a->ship, 0, &next_ship)) < 0)
            return 1;
        write_metrics(a, 0);
    }
    if (shipper_finish(a->ship) < 0)
        return 1;
    log_info("stopping: %llu records queued for the next start",
             (unsigned long long)queue_depth(a->q));
    write_metrics(a, 1);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "once", no_argument, NULL, 'o' },
        { "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
    };
    const char *conf = TV_DEFAULT_CONFIG;
    struct agent a;
    char err[512];
    int c, once = 0, verbose = 0, rc = 1, r;

    memset(&a, 0, sizeof(a));
    while ((c = getopt_long(argc, argv, "+c:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case 'o': once = 1; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("tracevault-agent (tracevault) %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    log_init("tracevault-agent", 0, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    if (optind < argc) {
        if (!strcmp(argv[optind], "dump") && optind + 2 == argc && !once) {
            if (upstream_dump(argv[optind + 1], err, sizeof(err)) != 0) {
                fprintf(stderr, "tracevault-agent: dump: %s\n", err);
                return 1;
            }
            return 0;
        }
        if (!strcmp(argv[optind], "hash") && !once)
            return cmd_hash(conf, argv + optind + 1, argc - optind - 1);
        usage(stderr);
        return 2;
    }
    /* Trace content passes through this process's memory. */
    tv_harden_process();
    /* Every batch churns through buffers of a few hundred KiB (sqlite's
     * copies of queued chunks, the batch, its body).  Served by mmap or
     * from a heap trimmed after each free, every one of their pages faults
     * in afresh each batch: that was a sixth of the agent's CPU time.  Kept
     * in the heap they are reused; the cost is up to 16 MiB held free. */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    if (tv_config_load(conf, &a.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracevault-agent: %s\n", err);
        return 1;
    }
    /* Every keyd connection of this process (pseudonym keys, API keys, the
     * SHRED subscription) checks first that the peer is keyd: an impostor on
     * the socket must not learn which projects exist, nor be believed. */
    keyd_client_expect_user(a.cfg->keyd.keyd_user);
    const char *root = a.cfg->vault.mountpoint;
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_error("root %s: %s", root, stat(root, &st) != 0 ? strerror(errno) : "not a directory");
        goto out;
    }
    if ((r = tv_mkdir_p(a.cfg->agent.state_dir, 0700)) != 0) {
        log_error("state directory %s: %s", a.cfg->agent.state_dir, strerror(-r));
        goto out;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (price_table_load(a.cfg->agent.price_table, &a.prices, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (queue_open(a.cfg->agent.state_dir, &a.q) != 0)
        goto out;
    queue_set_chunk(a.q, (size_t)a.cfg->agent.batch_max_records, (size_t)a.cfg->agent.batch_max_bytes);
    if (keys_new(a.cfg, &a.keys) != 0) {
        log_error("out of memory");
        goto out;
    }
    if (upstream_new(a.cfg, a.keys, &a.up, err, sizeof(err)) != 0 ||
        ingest_new(a.cfg, root, a.q, a.keys, a.prices, &a.m, &a.in, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (shipper_new(a.cfg, a.q, a.up, &a.m, &a.ship) != 0)
        goto out;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = once ? run_once(&a, root) : run_follow(&a, root);
out:
    agent_release(&a);
    return rc;
}
