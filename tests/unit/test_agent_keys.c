/*
 * test_agent_keys.c - the pseudonym key cache (agent/keys.c): the lifetime
 * rule of keys.h and SHRED.
 *
 * The bug this guards against: the cache grew one array of entries with
 * realloc while documents already prepared for encoding pointed at the old
 * entries' version strings, so a backlog spread over many projects shipped
 * bytes of freed memory as key_version.  Here pointers taken for the first
 * project must still read the same bytes after 300 more projects load their
 * keys (run under ASan or valgrind, a use after free is reported at once;
 * without them the byte comparison fails when the old memory was reused).
 * Keys come from pseudonym_keys = local (files in a temp state dir), the same
 * code path after the key bytes are read.
 */
#include "config.h"
#include "agent/keys.h"
#include "keyd/keyd_client.h"
#include "lib/config.h"
#include "lib/log.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPROJ 300

int main(void)
{
    char dir[] = "/tmp/tv-keys-XXXXXX", name[32], cmd[64];
    unsigned char key0[KEYD_PSEUDONYM_KEY_LEN], zero[KEYD_PSEUDONYM_KEY_LEN];
    const unsigned char *k0, *k, *k1;
    const char *v0, *v, *v1;
    char ver0[24];
    struct tv_config cfg;
    struct keys *keys;
    int bad = 0, r;

    plan(12);
    log_init("test_agent_keys", 0, LOG_LVL_ERROR);   /* 300 "local key" warnings */
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.agent.state_dir = dir;
    cfg.agent.pseudonym_keys = "local";
    cfg.keyd.socket = "/nonexistent/keyd.sock";
    cfg.keyd.client_timeout_ms = 100;
    is_int(keys_new(&cfg, &keys), 0, "keys_new");

    is_int(keys_pseudonym(keys, "p0", &k0, &v0), 0, "first project's key loads");
    memcpy(key0, k0, sizeof(key0));
    snprintf(ver0, sizeof(ver0), "%s", v0);
    ok(!strncmp(ver0, "local-", 6) && strlen(ver0) == 14, "its version is a fingerprint (%s)", ver0);

    /* Many projects load for the first time while p0's pointers are held,
     * as a backlog over several projects does while documents are prepared. */
    for (int i = 1; i <= NPROJ; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        if (keys_pseudonym(keys, name, &k, &v) != 0 || strncmp(v, "local-", 6) != 0)
            bad++;
    }
    is_int(bad, 0, "%d more projects load their keys", NPROJ);
    ok(!memcmp(k0, key0, sizeof(key0)), "p0's key pointer still reads its key");
    is_str(v0, ver0, "p0's version pointer still reads its version");
    is_int(keys_pseudonym(keys, "p0", &k, &v), 0, "p0 again");
    ok(k == k0 && v == v0, "the same addresses are handed out again");

    /* SHRED: wiped in place, refused from now on, others untouched. */
    keys_pseudonym(keys, "p1", &k1, &v1);
    is_int(keys_shred(keys, "p0"), 1, "shred wipes a loaded key");
    memset(zero, 0, sizeof(zero));
    ok(!memcmp(k0, zero, sizeof(zero)) && keys_shredded(keys, "p0"),
       "p0's key bytes are zero at the old address");
    r = keys_pseudonym(keys, "p0", &k, &v);
    ok(r == -EKEYREVOKED && keys_shredded(keys, "p0") && !keys_shredded(keys, "p1"),
       "a shredded project's key is refused (%d)", r);
    char *api = (char *)"x";
    r = keys_apikey(keys, "p0", &api);
    ok(r == -EKEYREVOKED && api == NULL, "and its API key is refused without asking keyd");

    keys_free(keys);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return done();
}
