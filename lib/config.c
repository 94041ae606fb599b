/*
 * config.c - load and validate the TraceVault INI file (see config.h).
 *
 * Keys are described by one table per section kind (key name, type, offset
 * into the struct, bounds).  inih calls handle_kv() once per key; we count
 * lines in our own reader so that every error can name FILE:LINE even though
 * Debian's inih is built without INI_HANDLER_LINENO.  The first error stops
 * the parse and is kept in the parse state.
 */
#include "config.h"
#include "lib/config.h"
#include "lib/util.h"

#include <errno.h>
#include <ctype.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum key_type { K_STR, K_PATH, K_USERS, K_INT, K_SIZE, K_EVALUATORS, K_CHOICE };

struct key_def {
    const char *name;
    enum key_type type;
    size_t off;
    long min, max;          /* for K_INT; for K_SIZE, in MiB */
    const char *choices;    /* for K_CHOICE: "a|b|c" */
};

#define KD(sect, field) offsetof(struct tv_config, sect.field)
#define KP(field) offsetof(struct tv_project, field)

static const struct key_def keyd_keys[] = {
    { "socket", K_PATH, KD(keyd, socket), 0, 0, NULL },
    { "keystore", K_PATH, KD(keyd, keystore), 0, 0, NULL },
    { "master_key", K_PATH, KD(keyd, master_key), 0, 0, NULL },
    { "audit_log", K_PATH, KD(keyd, audit_log), 0, 0, NULL },
    { "keyd_user", K_STR, KD(keyd, keyd_user), 0, 0, NULL },
    { "vault_users", K_USERS, KD(keyd, vault_users), 0, 0, NULL },
    { "agent_users", K_USERS, KD(keyd, agent_users), 0, 0, NULL },
    { "admin_users", K_USERS, KD(keyd, admin_users), 0, 0, NULL },
    { "ingest_users", K_USERS, KD(keyd, ingest_users), 0, 0, NULL },
    { "ingest_denied_interval", K_INT, KD(keyd, ingest_denied_interval), 0, 3600, NULL },
    { "client_timeout_ms", K_INT, KD(keyd, client_timeout_ms), 10, 600000, NULL },
    { "max_clients", K_INT, KD(keyd, max_clients), 1, 65536, NULL },
    { NULL, 0, 0, 0, 0, NULL }
};

static const struct key_def vault_keys[] = {
    { "backing", K_PATH, KD(vault, backing), 0, 0, NULL },
    { "mountpoint", K_PATH, KD(vault, mountpoint), 0, 0, NULL },
    { "audit_log", K_PATH, KD(vault, audit_log), 0, 0, NULL },
    { "dek_cache_seconds", K_INT, KD(vault, dek_cache_seconds), 0, 86400, NULL },
    { "threads", K_INT, KD(vault, threads), 0, 1024, NULL },
    { "reserve_bytes", K_SIZE, KD(vault, reserve_bytes), 0, 1L << 30, NULL },
    { "fd_limit", K_INT, KD(vault, fd_limit), 0, 1 << 24, NULL },
    { "audit_denied_interval", K_INT, KD(vault, audit_denied_interval), 0, 3600, NULL },
    { NULL, 0, 0, 0, 0, NULL }
};

static const struct key_def agent_keys[] = {
    { "state_dir", K_PATH, KD(agent, state_dir), 0, 0, NULL },
    { "upstream", K_STR, KD(agent, upstream), 0, 0, NULL },
    { "ca_file", K_STR, KD(agent, ca_file), 0, 0, NULL },
    { "pinned_pubkey", K_STR, KD(agent, pinned_pubkey), 0, 0, NULL },
    { "metrics_file", K_STR, KD(agent, metrics_file), 0, 0, NULL },
    { "price_table", K_STR, KD(agent, price_table), 0, 0, NULL },
    { "pseudonym_keys", K_CHOICE, KD(agent, pseudonym_keys), 0, 0, "keyd|local" },
    { "batch_max_records", K_INT, KD(agent, batch_max_records), 1, 100000, NULL },
    { "batch_max_bytes", K_INT, KD(agent, batch_max_bytes), 1024, 64 << 20, NULL },
    { "batch_linger_ms", K_INT, KD(agent, batch_linger_ms), 0, 600000, NULL },
    { "queue_max_mb", K_INT, KD(agent, queue_max_mb), 1, 1 << 20, NULL },
    { "max_document_bytes", K_INT, KD(agent, max_document_bytes), 1024, 1 << 30, NULL },
    { NULL, 0, 0, 0, 0, NULL }
};

static const struct key_def ingest_keys[] = {
    { "listen", K_STR, KD(ingest, listen), 0, 0, NULL },
    { "tls_cert", K_PATH, KD(ingest, tls_cert), 0, 0, NULL },
    { "tls_key", K_PATH, KD(ingest, tls_key), 0, 0, NULL },
    { "mount", K_PATH, KD(ingest, mount), 0, 0, NULL },
    { "metrics_file", K_STR, KD(ingest, metrics_file), 0, 0, NULL },
    { "max_request_bytes", K_SIZE, KD(ingest, max_request_bytes), 1, 1024, NULL },
    { "max_decoded_bytes", K_SIZE, KD(ingest, max_decoded_bytes), 1, 1024, NULL },
    { "max_inflight_bytes", K_SIZE, KD(ingest, max_inflight_bytes), 1, 64 << 10, NULL },
    { "max_connections", K_INT, KD(ingest, max_connections), 1, 65536, NULL },
    { "max_requests", K_INT, KD(ingest, max_requests), 1, 65536, NULL },
    { "idle_timeout_s", K_INT, KD(ingest, idle_timeout_s), 1, 3600, NULL },
    { "request_timeout_s", K_INT, KD(ingest, request_timeout_s), 1, 3600, NULL },
    { "keyd_clients", K_INT, KD(ingest, keyd_clients), 1, 256, NULL },
    { NULL, 0, 0, 0, 0, NULL }
};

static const struct key_def retention_keys[] = {
    { "lock_file", K_PATH, KD(retention, lock_file), 0, 0, NULL },
    { NULL, 0, 0, 0, 0, NULL }
};

static const struct key_def project_keys[] = {
    { "writers", K_USERS, KP(writers), 0, 0, NULL },
    { "readers", K_USERS, KP(readers), 0, 0, NULL },
    { "maintainers", K_USERS, KP(maintainers), 0, 0, NULL },
    { "retention_days", K_INT, KP(retention_days), 0, 36500, NULL },
    { "evaluators", K_EVALUATORS, KP(evaluators), 0, 0, NULL },
    { "latency_slo_ms", K_INT, KP(latency_slo_ms), 1, 86400000, NULL },
    { "max_output_chars", K_INT, KP(max_output_chars), 1, INT_MAX, NULL },
    { "max_file_bytes", K_SIZE, KP(max_file_bytes), 0, 1L << 30, NULL },
    { "quota_bytes", K_SIZE, KP(quota_bytes), 0, 1L << 30, NULL },
    { NULL, 0, 0, 0, 0, NULL }
};

static const struct { const char *name; unsigned bit; } evaluator_names[] = {
    { "latency", TV_EVAL_LATENCY }, { "tokens", TV_EVAL_TOKENS },
    { "cost", TV_EVAL_COST }, { "errors", TV_EVAL_ERRORS },
    { "pii", TV_EVAL_PII }, { "json_output", TV_EVAL_JSON_OUTPUT },
    { "refusal", TV_EVAL_REFUSAL }, { "length", TV_EVAL_LENGTH },
    { "assertions", TV_EVAL_ASSERTIONS }, { "all", TV_EVAL_ALL },
};

/* Names already seen in a section, to reject duplicate keys. */
struct seen {
    char *section, *key;
};

struct parse_state {
    struct tv_config *cfg;
    const char *path;
    FILE *fp;
    int line;
    char *err;
    size_t errlen;
    int failed;
    struct seen *seen;
    size_t n_seen;
};

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fputs("tracevault: out of memory\n", stderr);
        abort();
    }
    return d;
}

static void fail(struct parse_state *ps, const char *section, const char *key,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(struct parse_state *ps, const char *section, const char *key,
                 const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    if (ps->failed)
        return;
    ps->failed = 1;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (key)
        snprintf(ps->err, ps->errlen, "%s:%d: [%s] %s: %s", ps->path, ps->line, section, key, reason);
    else
        snprintf(ps->err, ps->errlen, "%s:%d: [%s]: %s", ps->path, ps->line, section, reason);
}

bool tv_project_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TV_PROJECT_NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return false;
    }
    return true;
}

void tv_userlist_release(struct tv_userlist *list)
{
    if (!list)
        return;
    free(list->e);
    list->e = NULL;
    list->n = 0;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

int tv_userlist_parse(const char *text, struct tv_userlist *list, char *err, size_t errlen)
{
    struct tv_userlist nl = { 0, NULL };
    char *copy = xstrdup(text), *save = NULL, *tok;
    int rc = 0;

    for (tok = tv_list_next(copy, &save); tok; tok = tv_list_next(NULL, &save)) {
        struct tv_principal p = { false, 0 };
        if (*tok == '@') {
            p.is_group = true;
            if (all_digits(tok + 1)) {
                p.id = (uint32_t)strtoul(tok + 1, NULL, 10);
            } else {
                struct group *gr = getgrnam(tok + 1);
                if (!gr) {
                    snprintf(err, errlen, "no such group \"%s\"", tok + 1);
                    rc = -1;
                    break;
                }
                p.id = gr->gr_gid;
            }
        } else if (all_digits(tok)) {
            p.id = (uint32_t)strtoul(tok, NULL, 10);
        } else {
            struct passwd *pw = getpwnam(tok);
            if (!pw) {
                snprintf(err, errlen, "no such user \"%s\"", tok);
                rc = -1;
                break;
            }
            p.id = pw->pw_uid;
        }
        struct tv_principal *ne = realloc(nl.e, (nl.n + 1) * sizeof(*ne));
        if (!ne) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        nl.e = ne;
        nl.e[nl.n++] = p;
    }
    free(copy);
    if (rc != 0) {
        free(nl.e);
        return rc;
    }
    tv_userlist_release(list);
    *list = nl;
    return 0;
}

bool tv_userlist_match(const struct tv_userlist *list, uid_t uid, gid_t gid,
                       const gid_t *groups, int ngroups)
{
    bool want_groups = false;

    for (size_t i = 0; i < list->n; i++) {
        if (!list->e[i].is_group && list->e[i].id == uid)
            return true;
        if (list->e[i].is_group) {
            if (list->e[i].id == gid)
                return true;
            want_groups = true;
        }
    }
    if (!want_groups)
        return false;

    gid_t stackbuf[64], *gl = NULL;
    int ng = 0;
    if (groups && ngroups >= 0) {
        gl = (gid_t *)groups;
        ng = ngroups;
    } else {
        /* No supplementary list from the caller: ask the user database. */
        char pwbuf[4096];
        struct passwd pw, *res = NULL;
        if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 || !res)
            return false;
        ng = 64;
        gl = stackbuf;
        if (getgrouplist(pw.pw_name, pw.pw_gid, gl, &ng) < 0)
            ng = 64;    /* truncated: the first 64 groups still count */
    }
    for (size_t i = 0; i < list->n; i++) {
        if (!list->e[i].is_group)
            continue;
        for (int j = 0; j < ng; j++)
            if (gl[j] == list->e[i].id)
                return true;
    }
    return false;
}

static int parse_int(const char *v, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || x < min || x > max)
        return -1;
    *out = (int)x;
    return 0;
}

/* "1048576", "512k", "64M", "4G", "1T" (powers of 1024), at most MAX_MIB MiB. */
static int parse_size(const char *v, long max_mib, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    int shift = 0;
    if (errno || end == v || x < 0)
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end != '\0' || (x >> (63 - shift)) != 0)
        return -1;
    int64_t bytes = (int64_t)x << shift;
    if (bytes > ((int64_t)max_mib << 20))
        return -1;
    *out = bytes;
    return 0;
}

static int parse_evaluators(const char *v, unsigned *out, char *bad, size_t badlen)
{
    unsigned bits = 0;
    char *copy = xstrdup(v), *save = NULL, *tok;
    int rc = 0;

    for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        size_t i;
        for (i = 0; i < sizeof(evaluator_names) / sizeof(evaluator_names[0]); i++)
            if (strcmp(tok, evaluator_names[i].name) == 0)
                break;
        if (i == sizeof(evaluator_names) / sizeof(evaluator_names[0])) {
            snprintf(bad, badlen, "%s", tok);
            rc = -1;
            break;
        }
        bits |= evaluator_names[i].bit;
    }
    free(copy);
    if (rc == 0)
        *out = bits;
    return rc;
}

/* Store VALUE into the field described by KD inside BASE. */
static void set_key(struct parse_state *ps, const char *section, const struct key_def *kd,
                    void *base, const char *value)
{
    char *field = (char *)base + kd->off;
    char why[256];

    switch (kd->type) {
    case K_STR:
    case K_PATH: {
        if (kd->type == K_PATH && value[0] != '/') {
            fail(ps, section, kd->name, "\"%s\" is not an absolute path", value);
            return;
        }
        char **s = (char **)field;
        free(*s);
        *s = xstrdup(value);
        break;
    }
    case K_USERS:
        if (tv_userlist_parse(value, (struct tv_userlist *)field, why, sizeof(why)) != 0)
            fail(ps, section, kd->name, "%s", why);
        break;
    case K_INT:
        if (parse_int(value, kd->min, kd->max, (int *)field) != 0)
            fail(ps, section, kd->name, "\"%s\" is not an integer in [%ld, %ld]",
                 value, kd->min, kd->max);
        break;
    case K_SIZE:
        if (parse_size(value, kd->max, (int64_t *)field) != 0)
            fail(ps, section, kd->name, "\"%s\" is not a size (bytes, or with k, M, G, T) "
                 "of at most %ld GiB", value, kd->max >> 10);
        break;
    case K_CHOICE: {
        size_t vl = strlen(value);
        const char *c = kd->choices;
        while (c && *c) {
            const char *bar = strchr(c, '|');
            size_t cl = bar ? (size_t)(bar - c) : strlen(c);
            if (cl == vl && strncmp(c, value, vl) == 0) {
                char **sp = (char **)field;
                free(*sp);
                *sp = xstrdup(value);
                return;
            }
            c = bar ? bar + 1 : NULL;
        }
        fail(ps, section, kd->name, "\"%s\" is not one of %s", value, kd->choices);
        break;
    }
    case K_EVALUATORS:
        if (parse_evaluators(value, (unsigned *)field, why, sizeof(why)) != 0)
            fail(ps, section, kd->name, "unknown evaluator \"%s\"", why);
        break;
    }
}

static struct tv_project *project_get(struct tv_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_projects; i++)
        if (strcmp(cfg->projects[i].name, name) == 0)
            return &cfg->projects[i];
    struct tv_project *np = realloc(cfg->projects, (cfg->n_projects + 1) * sizeof(*np));
    if (!np)
        return NULL;
    cfg->projects = np;
    struct tv_project *p = &np[cfg->n_projects++];
    memset(p, 0, sizeof(*p));
    p->name = xstrdup(name);
    p->retention_days = 30;
    p->evaluators = TV_EVAL_ALL;
    p->latency_slo_ms = 2000;
    p->max_output_chars = 20000;
    p->max_file_bytes = -1;
    p->quota_bytes = -1;
    p->maintainers.e = calloc(1, sizeof(struct tv_principal));   /* root */
    if (!p->maintainers.e)
        abort();
    p->maintainers.n = 1;
    return p;
}

static int already_seen(struct parse_state *ps, const char *section, const char *key)
{
    for (size_t i = 0; i < ps->n_seen; i++)
        if (strcmp(ps->seen[i].section, section) == 0 && strcmp(ps->seen[i].key, key) == 0)
            return 1;
    struct seen *ns = realloc(ps->seen, (ps->n_seen + 1) * sizeof(*ns));
    if (!ns)
        return 0;
    ps->seen = ns;
    ns[ps->n_seen].section = xstrdup(section);
    ns[ps->n_seen].key = xstrdup(key);
    ps->n_seen++;
    return 0;
}

static const struct key_def *find_key(const struct key_def *tab, const char *name)
{
    for (; tab->name; tab++)
        if (strcmp(tab->name, name) == 0)
            return tab;
    return NULL;
}

static int handle_kv(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *ps = user;
    struct tv_config *cfg = ps->cfg;
    const struct key_def *tab = NULL;
    void *base = cfg;

    if (ps->failed)
        return 0;
    if (!name) {            /* inih reports a new section with name == NULL only with INI_CALL_HANDLER_ON_NEW_SECTION */
        return 1;
    }
    if (already_seen(ps, section, name)) {
        fail(ps, section, name, "duplicate key");
        return 0;
    }
    if (strcmp(section, "keyd") == 0)
        tab = keyd_keys;
    else if (strcmp(section, "vault") == 0)
        tab = vault_keys;
    else if (strcmp(section, "agent") == 0)
        tab = agent_keys;
    else if (strcmp(section, "retention") == 0)
        tab = retention_keys;
    else if (strcmp(section, "ingest") == 0)
        tab = ingest_keys;
    else if (strncmp(section, "project.", 8) == 0) {
        const char *pname = section + 8;
        if (!tv_project_name_valid(pname)) {
            fail(ps, section, NULL, "invalid project name \"%s\" (letters, digits, '.', '_', '-'; at most %d)",
                 pname, TV_PROJECT_NAME_MAX);
            return 0;
        }
        struct tv_project *p = project_get(cfg, pname);
        if (!p) {
            fail(ps, section, name, "out of memory");
            return 0;
        }
        if (strncmp(name, "assert.", 7) == 0) {
            if (!name[7] || !value[0]) {
                fail(ps, section, name, "an assertion needs a name and a pattern");
                return 0;
            }
            struct tv_assertion *na = realloc(p->assertions, (p->n_assertions + 1) * sizeof(*na));
            if (!na) {
                fail(ps, section, name, "out of memory");
                return 0;
            }
            p->assertions = na;
            na[p->n_assertions].name = xstrdup(name + 7);
            na[p->n_assertions].pattern = xstrdup(value);
            p->n_assertions++;
            return 1;
        }
        tab = project_keys;
        base = p;
    } else {
        fail(ps, section, name, "unknown section");
        return 0;
    }
    const struct key_def *kd = find_key(tab, name);
    if (!kd) {
        fail(ps, section, name, "unknown key");
        return 0;
    }
    set_key(ps, section, kd, base, value);
    return !ps->failed;
}

/* inih reader that counts lines so errors can name them. */
static char *counting_reader(char *str, int num, void *stream)
{
    struct parse_state *ps = stream;
    char *r = fgets(str, num, ps->fp);
    if (r)
        ps->line++;
    return r;
}

static void set_default(char **field, const char *value)
{
    if (!*field)
        *field = xstrdup(value);
}

static void apply_defaults(struct tv_config *cfg)
{
    set_default(&cfg->keyd.socket, "/run/tracevault/keyd.sock");
    set_default(&cfg->keyd.keystore, "/var/lib/tracevault/keys");
    set_default(&cfg->keyd.master_key, "/etc/tracevault/master.key");
    set_default(&cfg->keyd.audit_log, "/var/log/tracevault/keyd-audit.log");
    set_default(&cfg->keyd.keyd_user, "tracevault-keyd");
    if (cfg->keyd.client_timeout_ms == 0)
        cfg->keyd.client_timeout_ms = 5000;
    if (cfg->keyd.max_clients == 0)
        cfg->keyd.max_clients = 256;
    set_default(&cfg->vault.backing, "/var/lib/tracevault/data");
    set_default(&cfg->vault.mountpoint, "/srv/traces");
    set_default(&cfg->vault.audit_log, "/var/log/tracevault/vault-audit.log");
    if (cfg->vault.dek_cache_seconds < 0)
        cfg->vault.dek_cache_seconds = 30;
    if (cfg->vault.reserve_bytes < 0)
        cfg->vault.reserve_bytes = TV_DEFAULT_RESERVE_BYTES;
    for (size_t i = 0; i < cfg->n_projects; i++) {
        struct tv_project *p = &cfg->projects[i];
        if (p->max_file_bytes < 0)
            p->max_file_bytes = TV_DEFAULT_MAX_FILE_BYTES;
        if (p->quota_bytes < 0)
            p->quota_bytes = TV_DEFAULT_QUOTA_BYTES;
    }
    if (cfg->vault.audit_denied_interval < 0)
        cfg->vault.audit_denied_interval = 60;
    if (cfg->keyd.ingest_denied_interval < 0)
        cfg->keyd.ingest_denied_interval = 60;
    set_default(&cfg->agent.state_dir, "/var/lib/tracevault/agent");
    set_default(&cfg->agent.upstream, "file:///var/lib/tracevault/outbox");
    set_default(&cfg->agent.ca_file, "");
    set_default(&cfg->agent.pinned_pubkey, "");
    set_default(&cfg->agent.price_table, "");
    set_default(&cfg->agent.pseudonym_keys, "keyd");
    if (!cfg->agent.metrics_file || !cfg->agent.metrics_file[0]) {
        free(cfg->agent.metrics_file);
        size_t n = strlen(cfg->agent.state_dir) + sizeof("/metrics.prom");
        cfg->agent.metrics_file = malloc(n);
        if (!cfg->agent.metrics_file)
            abort();
        snprintf(cfg->agent.metrics_file, n, "%s/metrics.prom", cfg->agent.state_dir);
    }
    if (cfg->agent.batch_max_records == 0)
        cfg->agent.batch_max_records = 500;
    if (cfg->agent.batch_max_bytes == 0)
        cfg->agent.batch_max_bytes = 1 << 20;
    if (cfg->agent.batch_linger_ms < 0)
        cfg->agent.batch_linger_ms = 1000;
    if (cfg->agent.queue_max_mb == 0)
        cfg->agent.queue_max_mb = 1024;
    if (cfg->agent.max_document_bytes == 0)
        cfg->agent.max_document_bytes = 16 << 20;
    /* The lock guards the backing store, so by default it sits beside it:
     * it then exists wherever a configuration puts the vault's state (a
     * fixed /run/tracevault did not for a configuration of its own), and
     * two vaults on one host never share it. */
    if (!cfg->retention.lock_file || !cfg->retention.lock_file[0]) {
        const char *b = cfg->vault.backing, *slash = NULL;
        size_t bl = strlen(b);
        while (bl > 1 && b[bl - 1] == '/')     /* "/x/data/" is "/x/data" */
            bl--;
        for (size_t i = 0; i < bl; i++)
            if (b[i] == '/')
                slash = b + i;
        size_t dl = slash ? (size_t)(slash - b) : 1;
        size_t n = dl + sizeof("/retention.lock");
        free(cfg->retention.lock_file);
        cfg->retention.lock_file = malloc(n);
        if (!cfg->retention.lock_file)
            abort();
        if (!slash)                   /* a relative "data": its directory is "." */
            snprintf(cfg->retention.lock_file, n, "./retention.lock");
        else if (dl == 0)             /* "/data": the root directory */
            snprintf(cfg->retention.lock_file, n, "/retention.lock");
        else
            snprintf(cfg->retention.lock_file, n, "%.*s/retention.lock", (int)dl, b);
    }
    set_default(&cfg->ingest.listen, "127.0.0.1:4318");
    set_default(&cfg->ingest.tls_cert, "");
    set_default(&cfg->ingest.tls_key, "");
    set_default(&cfg->ingest.mount, cfg->vault.mountpoint);
    set_default(&cfg->ingest.metrics_file, "/var/lib/tracevault/ingest/metrics.prom");
    if (cfg->ingest.max_request_bytes == 0)
        cfg->ingest.max_request_bytes = 4 << 20;
    if (cfg->ingest.max_decoded_bytes == 0)
        cfg->ingest.max_decoded_bytes = 16 << 20;
    if (cfg->ingest.max_inflight_bytes == 0)
        cfg->ingest.max_inflight_bytes = 256 << 20;
    if (cfg->ingest.max_connections == 0)
        cfg->ingest.max_connections = 128;
    if (cfg->ingest.max_requests == 0)
        cfg->ingest.max_requests = 64;
    if (cfg->ingest.idle_timeout_s == 0)
        cfg->ingest.idle_timeout_s = 15;
    if (cfg->ingest.request_timeout_s == 0)
        cfg->ingest.request_timeout_s = 60;
    if (cfg->ingest.keyd_clients == 0)
        cfg->ingest.keyd_clients = 4;
}

int tv_config_load(const char *path, struct tv_config **out, char *err, size_t errlen)
{
    struct parse_state ps;
    struct tv_config *cfg;
    int rc;

    *out = NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    cfg->path = xstrdup(path);
    /* Sentinels: "unset" for keys whose valid range includes 0. */
    cfg->vault.dek_cache_seconds = -1;
    cfg->vault.reserve_bytes = -1;
    cfg->vault.audit_denied_interval = -1;
    cfg->keyd.ingest_denied_interval = -1;
    cfg->agent.batch_linger_ms = -1;
    /* admin_users defaults to root; the other lists default to nobody (deny). */
    cfg->keyd.admin_users.e = calloc(1, sizeof(struct tv_principal));
    if (!cfg->keyd.admin_users.e)
        abort();
    cfg->keyd.admin_users.n = 1;

    memset(&ps, 0, sizeof(ps));
    ps.cfg = cfg;
    ps.path = path;
    ps.err = err;
    ps.errlen = errlen;
    ps.fp = fopen(path, "re");
    if (!ps.fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        tv_config_free(cfg);
        return -1;
    }
    rc = ini_parse_stream(counting_reader, &ps, handle_kv, &ps);
    fclose(ps.fp);
    for (size_t i = 0; i < ps.n_seen; i++) {
        free(ps.seen[i].section);
        free(ps.seen[i].key);
    }
    free(ps.seen);
    if (!ps.failed && rc > 0)
        snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
    if (ps.failed || rc != 0) {
        tv_config_free(cfg);
        return -1;
    }
    apply_defaults(cfg);
    if (strlen(cfg->keyd.socket) >= 108) {
        snprintf(err, errlen, "%s: [keyd] socket: path longer than 107 bytes", path);
        tv_config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

const struct tv_project *tv_config_project(const struct tv_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_projects; i++)
        if (strcmp(cfg->projects[i].name, name) == 0)
            return &cfg->projects[i];
    return NULL;
}

void tv_config_free(struct tv_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->keyd.socket);
    free(cfg->keyd.keystore);
    free(cfg->keyd.master_key);
    free(cfg->keyd.audit_log);
    free(cfg->keyd.keyd_user);
    tv_userlist_release(&cfg->keyd.vault_users);
    tv_userlist_release(&cfg->keyd.agent_users);
    tv_userlist_release(&cfg->keyd.admin_users);
    tv_userlist_release(&cfg->keyd.ingest_users);
    free(cfg->vault.backing);
    free(cfg->vault.mountpoint);
    free(cfg->vault.audit_log);
    free(cfg->agent.state_dir);
    free(cfg->agent.upstream);
    free(cfg->agent.ca_file);
    free(cfg->agent.pinned_pubkey);
    free(cfg->agent.metrics_file);
    free(cfg->agent.price_table);
    free(cfg->agent.pseudonym_keys);
    free(cfg->retention.lock_file);
    free(cfg->ingest.listen);
    free(cfg->ingest.tls_cert);
    free(cfg->ingest.tls_key);
    free(cfg->ingest.mount);
    free(cfg->ingest.metrics_file);
    for (size_t i = 0; i < cfg->n_projects; i++) {
        struct tv_project *p = &cfg->projects[i];
        free(p->name);
        tv_userlist_release(&p->writers);
        tv_userlist_release(&p->readers);
        tv_userlist_release(&p->maintainers);
        for (size_t j = 0; j < p->n_assertions; j++) {
            free(p->assertions[j].name);
            free(p->assertions[j].pattern);
        }
        free(p->assertions);
    }
    free(cfg->projects);
    free(cfg);
}
