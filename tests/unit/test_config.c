/*
 * test_config.c - the configuration loader: defaults, errors that name the
 * file, line and key, user lists, projects.
 */
#include "config.h"
#include "lib/config.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[] = "/tmp/tv-test-config.XXXXXX";

static int load(const char *text, struct tv_config **cfg, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return tv_config_load(path, cfg, err, errlen);
}

static int err_has(const char *err, const char *needle)
{
    return strstr(err, needle) != NULL && strstr(err, path) != NULL;
}

int main(void)
{
    struct tv_config *cfg;
    char err[512];
    int fd = mkstemp(path);
    close(fd);

    plan(30);

    is_int(load("[keyd]\nsocket = /x/k.sock ; inline comment\n"
                "vault_users = root, @0\n"
                "[project.checkout]\nwriters = root\nreaders = 0\nretention_days = 7\n"
                "evaluators = latency, pii\nassert.has_json = ^\\{\n"
                "[project.search]\nlatency_slo_ms = 500\n", &cfg, err, sizeof(err)), 0,
           "valid config loads");
    is_str(cfg->keyd.socket, "/x/k.sock", "inline comment stripped");
    is_str(cfg->vault.mountpoint, "/srv/traces", "default mountpoint");
    is_str(cfg->agent.pseudonym_keys, "keyd", "pseudonym keys come from keyd by default");
    is_int(cfg->n_projects, 2, "two projects");
    const struct tv_project *p = tv_config_project(cfg, "checkout");
    ok(p && p->retention_days == 7, "retention_days read");
    ok(p && p->evaluators == (TV_EVAL_LATENCY | TV_EVAL_PII), "evaluators read");
    ok(p && p->n_assertions == 1 && strcmp(p->assertions[0].name, "has_json") == 0, "assertion read");
    ok(p && tv_userlist_match(&p->writers, 0, 0, NULL, 0), "root is a writer");
    ok(p && tv_userlist_match(&p->maintainers, 0, 0, NULL, 0), "maintainers default to root");
    ok(p && !tv_userlist_match(&p->writers, 4242, 4242, NULL, 0), "uid 4242 is not");
    ok(tv_userlist_match(&cfg->keyd.vault_users, 4242, 0, NULL, 0), "@0 matches primary gid 0");
    gid_t g[] = { 7, 0 };
    ok(tv_userlist_match(&cfg->keyd.vault_users, 4242, 99, g, 2), "@0 matches a supplementary gid");
    ok(tv_userlist_match(&cfg->keyd.admin_users, 0, 0, NULL, 0), "admin_users defaults to root");
    p = tv_config_project(cfg, "search");
    ok(p && p->latency_slo_ms == 500 && p->retention_days == 30 && p->evaluators == TV_EVAL_ALL,
       "project defaults");
    ok(p && !tv_userlist_match(&p->readers, 0, 0, NULL, 0), "root is not implicitly a reader");
    tv_config_free(cfg);

    is_int(load("[keyd]\nsocket = /a\nsokcet = /b\n", &cfg, err, sizeof(err)), -1, "unknown key fails");
    ok(err_has(err, ":3: [keyd] sokcet: unknown key"), "error names file, line and key: %s", err);
    is_int(load("[vault]\nthreads = many\n", &cfg, err, sizeof(err)), -1, "malformed int fails");
    ok(err_has(err, ":2: [vault] threads:"), "error names the key: %s", err);
    is_int(load("[project.x]\nreaders = no-such-user-tv\n", &cfg, err, sizeof(err)), -1, "unknown user fails");
    ok(err_has(err, "no such user \"no-such-user-tv\""), "error names the user: %s", err);
    is_int(load("[project.../etc]\nreaders = root\n", &cfg, err, sizeof(err)), -1, "bad project name fails");
    is_int(load("[agent]\nstate_dir = relative/dir\n", &cfg, err, sizeof(err)), -1, "relative path fails");
    is_int(load("[project.a]\nevaluators = latency, vibes\n", &cfg, err, sizeof(err)), -1, "unknown evaluator");
    ok(err_has(err, "unknown evaluator \"vibes\""), "error names the evaluator: %s", err);
    is_int(load("[keyd]\nsocket = /a\nsocket = /b\n", &cfg, err, sizeof(err)), -1, "duplicate key fails");
    is_int(load("[agent]\npseudonym_keys = maybe\n", &cfg, err, sizeof(err)), -1, "a choice outside its set fails");
    ok(err_has(err, ":2: [agent] pseudonym_keys: \"maybe\" is not one of keyd|local"), "error lists the choices: %s", err);
    is_int(load("[agent]\npseudonym_keys = local\n", &cfg, err, sizeof(err)), 0, "a valid choice loads");
    tv_config_free(cfg);
    unlink(path);
    return done();
}
