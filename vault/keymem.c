/*
 * keymem.c - slab allocator of guarded 32-byte key slots (see keymem.h).
 * Slabs are never returned to the system: their number is bounded by the
 * peak of simultaneously loaded DEKs.
 */
#include "config.h"
#include "vault/keymem.h"

#include <pthread.h>
#include <stddef.h>
#include <sodium.h>

struct slot {
    struct slot *next;              /* only while free; wiped on alloc */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *free_list;
static unsigned in_use;

unsigned char *keymem_alloc(void)
{
    struct slot *s;
    pthread_mutex_lock(&lock);
    if (!free_list) {
        unsigned char *slab = sodium_malloc(KEYMEM_SLOT * KEYMEM_SLAB);
        if (!slab) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        for (unsigned i = 0; i < KEYMEM_SLAB; i++) {
            struct slot *n = (struct slot *)(void *)(slab + i * KEYMEM_SLOT);
            n->next = free_list;
            free_list = n;
        }
    }
    s = free_list;
    free_list = s->next;
    in_use++;
    pthread_mutex_unlock(&lock);
    sodium_memzero(s, KEYMEM_SLOT);
    return (unsigned char *)s;
}

void keymem_free(unsigned char *p)
{
    if (!p)
        return;
    sodium_memzero(p, KEYMEM_SLOT);
    struct slot *s = (struct slot *)(void *)p;
    pthread_mutex_lock(&lock);
    s->next = free_list;
    free_list = s;
    in_use--;
    pthread_mutex_unlock(&lock);
}

unsigned keymem_in_use(void)
{
    pthread_mutex_lock(&lock);
    unsigned n = in_use;
    pthread_mutex_unlock(&lock);
    return n;
}
