/*
 * keyd_client_int.h - what keyd_client.c (connection, round trip, the
 * request skeleton, subscriptions) gives keyd_client_ops.c (one small
 * function per operation).  Private to the client library.
 */
#ifndef TV_KEYD_CLIENT_INT_H
#define TV_KEYD_CLIENT_INT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "keyd/keyd_client.h"

/* A decoded reply: the frame body (wiped at release) and its msgpack view. */
struct reply {
    void *body;
    size_t len;
    msgpack_unpacked up;
    const msgpack_object *map;
};

/* The request skeleton (keyd_client.c, "the request skeleton"). */
struct call {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

/* Results are copied out of reply R by such a callback; it returns 0 or a
 * negative errno (with kc_set_err). */
typedef int (*unpack_fn)(struct keyd_client *c, const struct reply *r, void *arg);

void kc_call_start(struct call *k, enum keyd_op op, const char *project, unsigned extra);
int kc_call_finish(struct keyd_client *c, struct call *k, int idempotent, unpack_fn unpack,
                   void *arg);
void kc_pack_uint(msgpack_packer *pk, const char *key, uint64_t v);
void kc_pack_bin(msgpack_packer *pk, const char *key, const void *p, size_t n);
int kc_valid_project(struct keyd_client *c, const char *project);
int kc_valid_count(struct keyd_client *c, enum keyd_op op, unsigned n);
/* Fetch bin KEY of exactly WANT bytes from a reply into OUT. */
int kc_copy_bin(struct keyd_client *c, const struct reply *r, const char *key, size_t want,
                void *out);
int kc_get_u32(struct keyd_client *c, const struct reply *r, const char *key, uint32_t *out);
/* The client's error message (keyd_client_error), printf-style. */
void kc_set_err(struct keyd_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
