/*
 * keyd_ksopen.c - open a keystore offline with keyd's own code, as an
 * attacker holding a copy would (keyd-shred.sh).
 *
 *   keyd_ksopen KEYSTORE MASTER_KEY      load KEYSTORE (and KEYSTORE.seal) with
 *                                        the master key file; print "opens gen=G"
 *                                        and "NAME STATE,STATE..." per project, exit
 *                                        0; or the reason on stderr, exit 1
 *   keyd_ksopen --slots SEAL MASTER_KEY  print how many slots of a .seal file hold
 *                                        a sealing key that opens under the master key
 */
#include "config.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "keyd/keystore.h"
#include "keyd/seal.h"
#include "keyd/sealkey.h"

int main(int argc, char **argv)
{
    unsigned char *master = NULL;
    const char *from;
    char err[600];

    if (sodium_init() < 0 || argc != 3 + (argc > 1 && !strcmp(argv[1], "--slots")))
        return 2;
    if (seal_master_load(argv[argc - 1], &master, &from, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (!strcmp(argv[1], "--slots")) {
        unsigned char *wrap = sodium_malloc(SEAL_KEY_LEN);
        unsigned char *keys[SK_SLOTS] = { sodium_malloc(SEAL_KEY_LEN),
                                          sodium_malloc(SEAL_KEY_LEN) };
        int found[SK_SLOTS];
        seal_derive(master, SEAL_SUB_SEALKEY, wrap);
        printf("%d\n", sk_read(argv[2], wrap, keys, found));
        return 0;
    }
    struct keystore *ks;
    if (ks_load(argv[1], master, &ks, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("opens gen=%" PRIu64 "\n", ks_gen(ks));
    for (size_t i = 0; i < ks_count(ks); i++) {
        const struct ks_project *p = ks_at(ks, i);
        printf("%s ", ks_name(p));
        for (uint32_t v = 1; v <= ks_nversions(p); v++)
            printf("%s%s", v > 1 ? "," : "", keyd_state_name(ks_state(p, v)));
        printf("\n");
    }
    ks_free(ks);
    return 0;
}
