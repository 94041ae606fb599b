/*
 * keyctl.c - tracevault-keyctl: the administrator's command line for keyd
 * (DESIGN §3).  Each command is one call of the client library; keyd does
 * the authorization (admin_users) and the auditing.
 *
 * Exit status: 0 success, 1 failure (keyd's message on stderr), 2 usage.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyd/keyd_client.h"
#include "keyd/proto.h"
#include "lib/config.h"

#define PROG "tracevault-keyctl"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [-c CONF] COMMAND [ARGS]\n"
            "commands:\n"
            "  create P          create project P's key (version 1)\n"
            "  rotate P          add a new key version used for new files\n"
            "  retire P N        destroy P's key versions below N (they stop unwrapping)\n"
            "  list              projects, key versions and states (no key bytes)\n"
            "  shred P --yes     destroy every key of P: its data becomes unrecoverable\n"
            "  apikey-set P      store P's upstream API key, read from stdin\n"
            "  audit-verify      verify keyd's audit chain; exit 1 on any break\n"
            "  rekey-master      re-seal the keystore under a fresh sealing key and destroy\n"
            "                    the old one (SHRED and RETIRE do it too)\n"
            "  ingest-key-create P   make an ingest key for P and print it (once) on stdout\n"
            "  ingest-key-list P     P's ingest keys: ID, created, revoked (never the key)\n"
            "  ingest-key-revoke P ID  the key stops working at once\n"
            "options: -c CONF (default " TV_DEFAULT_CONFIG "), --help, --version\n");
}

static int fail(struct keyd_client *c, const char *what, const char *project, int r)
{
    const char *m = keyd_client_error(c);
    if (project)
        fprintf(stderr, PROG ": %s project \"%s\": %s\n", what, project,
                m && *m ? m : strerror(-r));
    else
        fprintf(stderr, PROG ": %s: %s\n", what, m && *m ? m : strerror(-r));
    return 1;
}

static int cmd_list(struct keyd_client *c)
{
    struct keyd_project_info *l;
    size_t n;
    int r = keyd_list(c, &l, &n);
    if (r != 0)
        return fail(c, "list", NULL, r);
    for (size_t i = 0; i < n; i++) {
        printf("%s current=%" PRIu32 " apikey=%s%s versions=", l[i].name, l[i].current,
               l[i].has_apikey ? "yes" : "no", l[i].shredded ? " shredded" : "");
        for (uint32_t j = 0; j < l[i].n_versions; j++)
            printf("%s%" PRIu32 ":%s", j ? "," : "", l[i].versions[j].version,
                   keyd_state_name(l[i].versions[j].state));
        printf("\n");
    }
    keyd_list_free(l, n);
    return 0;
}

/* Read the API key from stdin: at most KEYD_APIKEY_MAX bytes, one trailing
 * newline (and CR) dropped, into guarded memory. */
static int cmd_apikey_set(struct keyd_client *c, const char *project)
{
    char *buf = sodium_malloc(KEYD_APIKEY_MAX + 3);
    size_t n = 0;
    int rc = 1;

    if (!buf)
        return 1;
    while (n < KEYD_APIKEY_MAX + 2) {
        ssize_t got = read(STDIN_FILENO, buf + n, KEYD_APIKEY_MAX + 2 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, PROG ": apikey-set: stdin: %s\n", strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (n == 0 || n > KEYD_APIKEY_MAX || strlen(buf) != n || memchr(buf, '\n', n)) {
        fprintf(stderr, PROG ": apikey-set project \"%s\": the key on stdin must be one line "
                "of 1..%d bytes\n", project, KEYD_APIKEY_MAX);
        goto out;
    }
    int r = keyd_apikey_set(c, project, buf);
    if (r != 0) {
        fail(c, "apikey-set", project, r);
        goto out;
    }
    printf("project %s: API key stored\n", project);
    rc = 0;
out:
    sodium_free(buf);
    return rc;
}

/* The new key is the whole of stdout, so scripts can take it with $(...);
 * keyd keeps no copy, so it is shown this once. */
static int cmd_ingest_key_create(struct keyd_client *c, const char *project)
{
    char *key = NULL, id[KEYD_INGEST_ID_LEN + 1];
    int r = keyd_ingest_key_create(c, project, &key, id);
    if (r != 0)
        return fail(c, "ingest-key-create", project, r);
    printf("%s\n", key);
    sodium_memzero(key, strlen(key));
    sodium_free(key);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG ": ingest-key-create project \"%s\": cannot write the key to "
                "stdout: %s (revoke key %s: it was made but not shown)\n", project,
                strerror(errno), id);
        return 1;
    }
    return 0;
}

static void fmt_time(uint64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%llu", (unsigned long long)t);
}

/* One line per key: "ID created=TIME revoked=TIME|no". */
static int cmd_ingest_key_list(struct keyd_client *c, const char *project)
{
    struct keyd_ingest_key_info *l;
    size_t n;
    char t1[32], t2[32];
    int r = keyd_ingest_key_list(c, project, &l, &n);
    if (r != 0)
        return fail(c, "ingest-key-list", project, r);
    for (size_t i = 0; i < n; i++) {
        fmt_time(l[i].created, t1);
        if (l[i].revoked)
            fmt_time(l[i].revoked, t2);
        printf("%s created=%s revoked=%s\n", l[i].id, t1, l[i].revoked ? t2 : "no");
    }
    free(l);
    return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > UINT32_MAX || *s == '-')
        return -1;
    *out = (uint32_t)v;
    return 0;
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
    struct keyd_client *c = NULL;
    char err[512];
    int opt, rc = 1, r;
    uint32_t v;

    /* "+": stop at the command so "shred P --yes" keeps its own flag. */
    while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " (tracevault) " PACKAGE_VERSION "\n"); return 0;
        default: usage(stderr); return 2;
        }
    }
    int nargs = argc - optind;
    char **a = argv + optind;
    if (nargs < 1) {
        usage(stderr);
        return 2;
    }
    const char *cmd = a[0];
    int want = -1;
    if (!strcmp(cmd, "create") || !strcmp(cmd, "rotate") || !strcmp(cmd, "apikey-set") ||
        !strcmp(cmd, "ingest-key-create") || !strcmp(cmd, "ingest-key-list"))
        want = 2;
    else if (!strcmp(cmd, "retire") || !strcmp(cmd, "shred") || !strcmp(cmd, "ingest-key-revoke"))
        want = 3;
    else if (!strcmp(cmd, "list") || !strcmp(cmd, "audit-verify") ||
             !strcmp(cmd, "rekey-master"))
        want = 1;
    if (want < 0) {
        fprintf(stderr, PROG ": unknown command \"%s\"\n", cmd);
        usage(stderr);
        return 2;
    }
    if (nargs != want && !(want == 3 && !strcmp(cmd, "shred") && nargs == 2)) {
        fprintf(stderr, PROG ": %s: wrong number of arguments\n", cmd);
        usage(stderr);
        return 2;
    }
    if (!strcmp(cmd, "shred") && (nargs != 3 || strcmp(a[2], "--yes") != 0)) {
        fprintf(stderr, PROG ": shred project \"%s\": destroys every key of the project and "
                "makes its data unrecoverable; add --yes to confirm\n", a[1]);
        return 2;
    }
    if (!strcmp(cmd, "retire") && parse_u32(a[2], &v) != 0) {
        fprintf(stderr, PROG ": retire: version \"%s\" is not a number\n", a[2]);
        return 2;
    }
    if (!strcmp(cmd, "ingest-key-revoke") &&
        (strlen(a[2]) != KEYD_INGEST_ID_LEN || strspn(a[2], "0123456789abcdef") != KEYD_INGEST_ID_LEN)) {
        fprintf(stderr, PROG ": ingest-key-revoke: \"%s\" is not a key ID (%d lowercase hex "
                "characters, as ingest-key-list shows)\n", a[2], KEYD_INGEST_ID_LEN);
        return 2;
    }
    if (nargs >= 2 && !tv_project_name_valid(a[1])) {
        fprintf(stderr, PROG ": project \"%s\": invalid name (letters, digits, '.', '_', "
                "'-'; at most 63)\n", a[1]);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    if (tv_config_load(conf, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    keyd_client_expect_user(cfg->keyd.keyd_user);
    c = keyd_client_new(cfg->keyd.socket, cfg->keyd.client_timeout_ms > 0
                                              ? cfg->keyd.client_timeout_ms * 6 : 30000);
    if (!c)
        goto out;
    if (!strcmp(cmd, "create")) {
        if ((r = keyd_create(c, a[1], &v)) != 0)
            fail(c, "create", a[1], r);
        else
            printf("project %s: created, key version %" PRIu32 "\n", a[1], v), rc = 0;
    } else if (!strcmp(cmd, "rotate")) {
        if ((r = keyd_rotate(c, a[1], &v)) != 0)
            fail(c, "rotate", a[1], r);
        else
            printf("project %s: rotated, new key version %" PRIu32 "\n", a[1], v), rc = 0;
    } else if (!strcmp(cmd, "retire")) {
        if ((r = keyd_retire(c, a[1], v)) != 0)
            fail(c, "retire", a[1], r);
        else
            printf("project %s: key versions below %" PRIu32 " retired\n", a[1], v), rc = 0;
    } else if (!strcmp(cmd, "shred")) {
        if ((r = keyd_shred(c, a[1])) != 0)
            fail(c, "shred", a[1], r);
        else
            printf("project %s: shredded (every key version destroyed)\n", a[1]), rc = 0;
    } else if (!strcmp(cmd, "apikey-set")) {
        rc = cmd_apikey_set(c, a[1]);
    } else if (!strcmp(cmd, "list")) {
        rc = cmd_list(c);
    } else if (!strcmp(cmd, "ingest-key-create")) {
        rc = cmd_ingest_key_create(c, a[1]);
    } else if (!strcmp(cmd, "ingest-key-list")) {
        rc = cmd_ingest_key_list(c, a[1]);
    } else if (!strcmp(cmd, "ingest-key-revoke")) {
        if ((r = keyd_ingest_key_revoke(c, a[1], a[2])) != 0)
            fail(c, "ingest-key-revoke", a[1], r);
        else
            printf("project %s: ingest key %s revoked\n", a[1], a[2]), rc = 0;
    } else if (!strcmp(cmd, "rekey-master")) {
        if ((r = keyd_rekey_master(c)) != 0)
            fail(c, "rekey-master", NULL, r);
        else
            printf("keystore re-sealed under a fresh sealing key; the old one is destroyed\n"),
                rc = 0;
    } else {
        uint64_t n = 0;
        if ((r = keyd_audit_verify(c, &n)) != 0)
            fail(c, "audit-verify", NULL, r);
        else
            printf("audit log OK: %" PRIu64 " records, chain intact up to keyd's head\n", n),
                rc = 0;
    }
out:
    keyd_client_free(c);
    tv_config_free(cfg);
    return rc;
}
