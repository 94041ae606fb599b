/*
 * config.h - the one TraceVault configuration file (DESIGN §2).
 *
 * INI, parsed with inih.  Every binary loads the whole file, so a typo is
 * caught by whichever command runs first.  Invariants after a successful
 * tv_config_load():
 *   - every key in the file is known and well formed (otherwise the load fails
 *     with "FILE:LINE: [section] key: reason");
 *   - user lists are resolved to uids/gids (unknown users or groups are errors);
 *   - every unset key holds its documented default (docs/CONFIG.md).
 * The struct is plain data owned by the caller; free it with tv_config_free().
 * Reloading (SIGHUP) means loading a new struct and swapping pointers.
 */
#ifndef TV_CONFIG_H
#define TV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TV_DEFAULT_CONFIG "/etc/tracevault/tracevault.conf"
#define TV_PROJECT_NAME_MAX 63
/* Defaults of the vault's limits (docs/CONFIG.md "Limits"). */
#define TV_DEFAULT_MAX_FILE_BYTES ((int64_t)1 << 30)      /* 1 GiB per file */
#define TV_DEFAULT_QUOTA_BYTES ((int64_t)64 << 30)        /* 64 GiB per project */
#define TV_DEFAULT_RESERVE_BYTES ((int64_t)256 << 20)     /* 256 MiB left free */

/* A resolved "alice, @apps, 1001" list. */
struct tv_userlist {
    size_t n;
    struct tv_principal {
        bool is_group;
        uint32_t id;          /* uid or gid */
    } *e;
};

/* Evaluator bits for tv_project.evaluators. */
enum tv_evaluator {
    TV_EVAL_LATENCY     = 1u << 0,
    TV_EVAL_TOKENS      = 1u << 1,   /* token usage */
    TV_EVAL_COST        = 1u << 2,   /* cost from the price table */
    TV_EVAL_ERRORS      = 1u << 3,
    TV_EVAL_PII         = 1u << 4,
    TV_EVAL_JSON_OUTPUT = 1u << 5,
    TV_EVAL_REFUSAL     = 1u << 6,
    TV_EVAL_LENGTH      = 1u << 7,
    TV_EVAL_ASSERTIONS  = 1u << 8,   /* the project's assert.NAME regexes */
    TV_EVAL_ALL         = (1u << 9) - 1,
};

/* "assert.NAME = PCRE2 pattern" in a project section: the output must match. */
struct tv_assertion {
    char *name;
    char *pattern;
};

struct tv_project {
    char *name;                    /* from [project.NAME] */
    struct tv_userlist writers;
    struct tv_userlist readers;
    struct tv_userlist maintainers;  /* may list, stat, unlink, rmdir; never read
                                        content (retention); default root */
    int retention_days;            /* 0 = keep forever; default 30 */
    unsigned evaluators;           /* TV_EVAL_* bits; default TV_EVAL_ALL */
    int latency_slo_ms;            /* default 2000 */
    int max_output_chars;          /* length evaluator limit; default 20000 */
    int64_t max_file_bytes;        /* plaintext bytes per file, 0 = no limit (EFBIG) */
    int64_t quota_bytes;           /* plaintext bytes per project, 0 = no limit (EDQUOT) */
    struct tv_assertion *assertions;
    size_t n_assertions;
};

struct tv_config {
    char *path;                    /* the file loaded */
    struct {
        char *socket, *keystore, *master_key, *audit_log;
        char *keyd_user;           /* who keyd runs as: clients refuse any other peer
                                      (root excepted); default tracevault-keyd */
        struct tv_userlist vault_users, agent_users, admin_users;
        struct tv_userlist ingest_users;  /* may verify ingest keys (INGEST_AUTH) */
        int ingest_denied_interval;  /* seconds over which failed INGEST_AUTH calls are
                                        summed into one audit record; 0 = one record
                                        each; default 60 */
        int client_timeout_ms;     /* per-request I/O timeout; default 5000 */
        int max_clients;           /* concurrent connections; default 256 */
    } keyd;
    struct {
        char *backing, *mountpoint, *audit_log;
        int dek_cache_seconds;     /* how long a DEK of a closed file stays cached; default 30 */
        int threads;               /* FUSE worker threads, 0 = libfuse default */
        int64_t reserve_bytes;     /* growth that would leave less free on the backing
                                      filesystem fails with ENOSPC; 0 = none */
        int fd_limit;              /* descriptors of unused vnodes kept open; 0 = half
                                      the open-file limit */
        int audit_denied_interval; /* seconds over which one uid's denials are summed into
                                      one audit record; 0 = one record each; default 60 */
    } vault;
    struct {
        char *state_dir, *upstream, *ca_file, *pinned_pubkey;
        char *metrics_file;        /* Prometheus text, default STATE_DIR/metrics.prom */
        char *price_table;         /* "" = the built-in table */
        char *pseudonym_keys;      /* "keyd" (default) or "local": a key file in
                                      state_dir, for development without keyd */
        int batch_max_records;     /* default 500 */
        int batch_max_bytes;       /* default 1 MiB */
        int batch_linger_ms;       /* default 1000 */
        int queue_max_mb;          /* disk cap of the durable queue; default 1024 */
        int max_document_bytes;    /* larger traces are skipped; default 16 MiB */
    } agent;
    struct {
        char *listen;              /* comma list of HOST:PORT, [V6]:PORT, unix:/PATH;
                                      default 127.0.0.1:4318 (docs/INGEST.md) */
        char *tls_cert, *tls_key;  /* PEM files; both or neither; required for any
                                      listen address that is not loopback */
        char *mount;               /* the vault's mount; default [vault] mountpoint */
        char *metrics_file;        /* Prometheus text; default
                                      /var/lib/tracevault/ingest/metrics.prom */
        int64_t max_request_bytes; /* body as sent (413 beyond); default 4 MiB */
        int64_t max_decoded_bytes; /* body after gzip, and the stored file; default 16 MiB */
        int64_t max_inflight_bytes;/* bodies held at once (429 beyond); default 256 MiB */
        int max_connections;       /* default 128 */
        int max_requests;          /* requests being read or stored at once (429 beyond);
                                      default 64 */
        int idle_timeout_s;        /* a connection silent this long is closed; default 15 */
        int request_timeout_s;     /* a body not complete after this is dropped; default 60 */
        int keyd_clients;          /* parallel connections to keyd; default 4 */
    } ingest;
    struct {
        char *lock_file;           /* flock for one run at a time */
    } retention;
    struct tv_project *projects;
    size_t n_projects;
};

/*
 * Load and validate PATH.  On success returns 0 and *out owns a new config.
 * On failure returns -1, *out is NULL and err holds one line naming the file,
 * line, section, key and reason.
 */
int tv_config_load(const char *path, struct tv_config **out, char *err, size_t errlen);

/* Free a config and everything it owns; NULL is fine. */
void tv_config_free(struct tv_config *cfg);

/* The project named NAME, or NULL. */
const struct tv_project *tv_config_project(const struct tv_config *cfg, const char *name);

/* True if NAME is a valid project name: [A-Za-z0-9][A-Za-z0-9._-]{0,62}, not "."/"..". */
bool tv_project_name_valid(const char *name);

/*
 * True if the principal (uid, primary gid, supplementary groups) is on LIST.
 * Groups may be NULL with ngroups < 0: membership is then looked up with
 * getgrouplist() for uid's passwd entry.
 */
bool tv_userlist_match(const struct tv_userlist *list, uid_t uid, gid_t gid,
                       const gid_t *groups, int ngroups);

/* Parse "alice, @apps, 1001" into LIST (replacing its contents).  Returns 0, or
 * -1 with err naming the unknown user or group. */
int tv_userlist_parse(const char *text, struct tv_userlist *list, char *err, size_t errlen);
void tv_userlist_release(struct tv_userlist *list);

#endif
