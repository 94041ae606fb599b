/*
 * gbuf.h - growable byte buffers in guarded memory, for everything in keyd
 * that may hold a DEK or a key: connection input and output, replies held
 * for the group commit, the reply being packed (docs/KEYD.md "Hardening").
 *
 * The storage is sodium_malloc'd (guard pages, mlock'ed so it is never
 * swapped, excluded from core dumps); growing allocates a new area, copies
 * and frees the old one with sodium_free, which wipes it, so no copy is
 * left behind the way realloc leaves one.  Bytes are consumed from OFF;
 * consumed bytes are wiped.  A zeroed struct gbuf is empty and valid.
 */
#ifndef TV_KEYD_GBUF_H
#define TV_KEYD_GBUF_H

#include <stddef.h>

struct gbuf {
    unsigned char *p;
    size_t off, len, cap;         /* unconsumed bytes are p[off..len) */
};

/* Room for N more bytes at p + len (consumed space is reused first).
 * Returns 0 or -ENOMEM. */
int gbuf_reserve(struct gbuf *b, size_t n);
/* Append N bytes; 0 or -ENOMEM. */
int gbuf_put(struct gbuf *b, const void *data, size_t n);
/* Consume and wipe N bytes at p + off. */
void gbuf_consume(struct gbuf *b, size_t n);
/* Keep only the first LEN bytes, wiping the rest. */
void gbuf_truncate(struct gbuf *b, size_t len);
/* Wipe everything and make it empty (the storage is kept). */
void gbuf_clear(struct gbuf *b);
/* Wipe and release; the buffer is empty afterwards. */
void gbuf_free(struct gbuf *b);
/* A msgpack_packer write callback appending to the struct gbuf DATA. */
int gbuf_msgpack_write(void *data, const char *buf, size_t len);

#endif
