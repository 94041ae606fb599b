/*
 * gbuf.c - see gbuf.h.
 */
#include "config.h"
#include "keyd/gbuf.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

int gbuf_reserve(struct gbuf *b, size_t n)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n <= b->cap)
        return 0;
    if (b->off > 0) {                   /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        sodium_memzero(b->p + b->len - b->off, b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + n <= b->cap)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    unsigned char *p = sodium_malloc(cap);
    if (!p)
        return -ENOMEM;
    if (b->p) {
        memcpy(p, b->p, b->len);
        sodium_free(b->p);
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int gbuf_put(struct gbuf *b, const void *data, size_t n)
{
    if (gbuf_reserve(b, n) != 0)
        return -ENOMEM;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

void gbuf_consume(struct gbuf *b, size_t n)
{
    sodium_memzero(b->p + b->off, n);
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

void gbuf_truncate(struct gbuf *b, size_t len)
{
    if (b->len > len) {
        sodium_memzero(b->p + len, b->len - len);
        b->len = len;
    }
}

void gbuf_clear(struct gbuf *b)
{
    if (b->p)
        sodium_memzero(b->p, b->len);
    b->off = b->len = 0;
}

void gbuf_free(struct gbuf *b)
{
    if (b->p)
        sodium_free(b->p);
    memset(b, 0, sizeof(*b));
}

int gbuf_msgpack_write(void *data, const char *buf, size_t len)
{
    return gbuf_put(data, buf, len);
}
