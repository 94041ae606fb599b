/*
 * keymem.h - guarded memory for plaintext DEKs, cheaply.
 *
 * sodium_malloc costs half a dozen system calls (mmap, guard pages, mlock),
 * too much per file open.  keymem hands out 32-byte slots carved from
 * sodium_malloc'd slabs of KEYMEM_SLAB slots: the slabs are locked in RAM,
 * guarded and excluded from core dumps like any sodium_malloc region; a slot
 * is wiped when freed.  Thread-safe.
 */
#ifndef TV_VAULT_KEYMEM_H
#define TV_VAULT_KEYMEM_H

#define KEYMEM_SLOT 32u
#define KEYMEM_SLAB 256u

/* A zeroed 32-byte slot in guarded memory, or NULL on ENOMEM. */
unsigned char *keymem_alloc(void);

/* Wipe and return a slot; NULL is fine. */
void keymem_free(unsigned char *slot);

/* Slots currently handed out (for tests). */
unsigned keymem_in_use(void);

#endif
