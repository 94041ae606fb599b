/*
 * test_vault_keymem.c - the guarded DEK slot allocator: slots are zeroed,
 * distinct, wiped on free, reused, and safe under concurrent use.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <sodium.h>

#include "tests/unit/tap.h"
#include "vault/keymem.h"

static void *hammer(void *arg)
{
    long bad = 0;
    unsigned char *s[64];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 64; i++) {
            s[i] = keymem_alloc();
            if (!s[i] || !sodium_is_zero(s[i], KEYMEM_SLOT))
                bad++;
            else
                memset(s[i], (int)(intptr_t)arg, KEYMEM_SLOT);
        }
        for (int i = 0; i < 64; i++) {
            if (s[i] && s[i][0] != (unsigned char)(intptr_t)arg)
                bad++;            /* another thread wrote into our slot */
            keymem_free(s[i]);
        }
    }
    return (void *)bad;
}

int main(void)
{
    unsigned char *a, *b, *all[KEYMEM_SLAB + 10];
    if (sodium_init() < 0)
        return 1;
    a = keymem_alloc();
    b = keymem_alloc();
    ok(a && b && a != b, "two distinct slots");
    ok(sodium_is_zero(a, KEYMEM_SLOT), "a new slot is zeroed");
    ok(b < a ? a - b >= (long)KEYMEM_SLOT : b - a >= (long)KEYMEM_SLOT, "slots do not overlap");
    memset(a, 0xAB, KEYMEM_SLOT);
    keymem_free(a);
    /* The free list keeps a pointer in the slot's first bytes; the rest must
     * be zero.  The pointer bytes are an address, which may well contain an
     * 0xAB byte (it did, once in a few dozen runs): only a whole key-pattern
     * word there would mean the wipe missed them. */
    unsigned char pattern[sizeof(void *)];
    memset(pattern, 0xAB, sizeof pattern);
    ok(memcmp(a, pattern, sizeof pattern) != 0 &&
       sodium_is_zero(a + sizeof(void *), KEYMEM_SLOT - sizeof(void *)),
       "a freed slot is wiped");
    unsigned char *c = keymem_alloc();
    ok(c == a, "a freed slot is reused");
    is_int(keymem_in_use(), 2, "two slots in use");
    keymem_free(b);
    keymem_free(c);
    keymem_free(NULL);
    int fails = 0;
    for (unsigned i = 0; i < KEYMEM_SLAB + 10; i++)
        if (!(all[i] = keymem_alloc()))
            fails++;
    is_int(fails, 0, "more than one slab's worth of slots");
    for (unsigned i = 0; i < KEYMEM_SLAB + 10; i++)
        keymem_free(all[i]);
    is_int(keymem_in_use(), 0, "all returned");
    pthread_t t[4];
    long bad = 0;
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, (void *)(i + 1));
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    is_int(bad, 0, "4 threads x 12800 alloc/free: every slot zeroed and private");
    is_int(keymem_in_use(), 0, "nothing leaked");
    return done();
}
