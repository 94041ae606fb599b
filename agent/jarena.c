/*
 * jarena.c - per-thread bump arenas for jansson (jarena.h).
 *
 * An arena is a list of 256 KiB chunks filled in order; an allocation larger
 * than a chunk gets a block of its own.  jarena_end rewinds the chunks, keeps
 * the first four for the next document and frees the rest and every large
 * block, so one huge document does not pin its memory.
 */
#include "config.h"
#include "agent/jarena.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#define CHUNK (256u << 10)
#define KEEP_CHUNKS 4

struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char mem[];
};

struct arena {
    struct chunk *first, *cur, *last;  /* chunks, in the order they are filled */
    struct chunk *big;                 /* blocks larger than a chunk */
    int active;
};

static _Thread_local struct arena A;

static int in_list(const struct chunk *c, const void *p)
{
    for (; c; c = c->next)
        if ((const unsigned char *)p >= c->mem && (const unsigned char *)p < c->mem + c->size)
            return 1;
    return 0;
}

static struct chunk *chunk_new(size_t size)
{
    struct chunk *c = malloc(sizeof(*c) + size);
    if (c) {
        c->next = NULL;
        c->size = size;
        c->used = 0;
    }
    return c;
}

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > CHUNK) {
        struct chunk *b = chunk_new(n);
        if (!b)
            return NULL;
        b->next = a->big;
        a->big = b;
        return b->mem;
    }
    while (a->cur && a->cur->used + n > a->cur->size)
        a->cur = a->cur->next;
    if (!a->cur) {
        struct chunk *c = chunk_new(CHUNK);
        if (!c)
            return NULL;
        if (a->last)
            a->last->next = c;
        else
            a->first = c;
        a->last = a->cur = c;
    }
    void *p = a->cur->mem + a->cur->used;
    a->cur->used += n;
    return p;
}

static void *j_malloc(size_t n)
{
    return A.active ? arena_alloc(&A, n) : malloc(n);
}

static void j_free(void *p)
{
    /* arena memory goes back at jarena_end, all at once */
    if (p && !in_list(A.first, p) && !in_list(A.big, p))
        free(p);
}

/* Under AddressSanitizer jansson keeps malloc: an arena would hide its
 * out-of-bounds accesses and use-after-frees from the sanitizer build. */
#if defined(__SANITIZE_ADDRESS__)
#define TV_JARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TV_JARENA_OFF 1
#endif
#endif

void jarena_install(void)
{
#ifndef TV_JARENA_OFF
    json_set_alloc_funcs(j_malloc, j_free);
#endif
}

void jarena_begin(void)
{
    A.active = 1;
}

void jarena_end(void)
{
    int k = 0;

    A.active = 0;
    for (struct chunk *b = A.big, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    A.big = NULL;
    A.last = NULL;
    for (struct chunk *c = A.first, *n; c; c = n) {
        n = c->next;
        if (++k <= KEEP_CHUNKS) {
            c->used = 0;
            A.last = c;
        } else {
            free(c);
        }
    }
    if (A.last)
        A.last->next = NULL;
    A.cur = A.first;
}
