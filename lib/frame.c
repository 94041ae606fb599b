/*
 * frame.c - see frame.h.  The validator is a table-free walk of the msgpack
 * encoding (spec: msgpack/msgpack spec.md) with an explicit stack of
 * "elements still to read" per open container, so depth costs no recursion.
 */
#include "config.h"
#include "lib/frame.h"
#include "lib/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void frame_put_header(uint8_t hdr[FRAME_HDR], size_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

/* The body length a header declares. */
static size_t get_header(const uint8_t hdr[FRAME_HDR])
{
    return ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
}

int frame_write(int fd, const void *body, size_t len)
{
    uint8_t small[FRAME_HDR + 512];

    if (len > UINT32_MAX)
        return -EMSGSIZE;
    frame_put_header(small, len);
    /* Small frames go out in one send so the peer sees header and body together. */
    if (len <= sizeof(small) - FRAME_HDR) {
        if (len)
            memcpy(small + FRAME_HDR, body, len);
        return tv_write_full(fd, small, FRAME_HDR + len, -1);
    }
    int r = tv_write_full(fd, small, FRAME_HDR, -1);
    if (r == 0)
        r = tv_write_full(fd, body, len, -1);
    return r;
}

int frame_read(int fd, size_t cap, int timeout_ms, void **body, size_t *len)
{
    uint8_t hdr[FRAME_HDR];
    size_t n;
    int r;

    *body = NULL;
    if ((r = tv_read_full(fd, hdr, FRAME_HDR, -1, timeout_ms)) != 0)
        return r == -ENODATA ? -ECONNRESET : r;
    n = get_header(hdr);
    if (n > cap)
        return -EMSGSIZE;
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return -ENOMEM;
    if ((r = tv_read_full(fd, b, n, -1, timeout_ms)) != 0) {
        free(b);
        return r == -ENODATA ? -ECONNRESET : r;
    }
    *body = b;
    *len = n;
    return 0;
}

int frame_peek(const uint8_t *buf, size_t have, size_t cap, size_t *body_len)
{
    if (have < FRAME_HDR)
        return 0;
    size_t n = get_header(buf);
    if (n > cap)
        return -EMSGSIZE;
    *body_len = n;
    return have - FRAME_HDR >= n ? 1 : 0;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int mp_validate(const void *buf, size_t len, unsigned max_depth, size_t max_objects)
{
    const uint8_t *p = buf, *end = p + len;
    uint64_t stack[64];
    unsigned depth = 0;
    uint64_t pending = 1;       /* objects still owed, across all open containers */
    size_t objects = 0;

    if (max_depth > 64)
        max_depth = 64;
    if (len == 0)
        return -EBADMSG;
    while (pending > 0) {
        if (p >= end || ++objects > max_objects)
            return -EBADMSG;
        uint8_t t = *p++;
        size_t avail = (size_t)(end - p);
        uint64_t skip = 0, children = 0;
        unsigned hdr = 0;

        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            /* fixint, nil, bool */
        } else if (t >= 0x80 && t <= 0x8f) {
            children = 2u * (t & 0x0f);
        } else if (t >= 0x90 && t <= 0x9f) {
            children = t & 0x0f;
        } else if (t >= 0xa0 && t <= 0xbf) {
            skip = t & 0x1f;
        } else {
            switch (t) {
            case 0xc4: case 0xd9: hdr = 1; break;                  /* bin8, str8 */
            case 0xc5: case 0xda: hdr = 2; break;                  /* bin16, str16 */
            case 0xc6: case 0xdb: hdr = 4; break;                  /* bin32, str32 */
            case 0xc7: hdr = 1; skip = 1; break;                   /* ext8 (+type) */
            case 0xc8: hdr = 2; skip = 1; break;
            case 0xc9: hdr = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                            /* fixext: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: hdr = 2; break;                  /* array16, map16 */
            case 0xdd: case 0xdf: hdr = 4; break;                  /* array32, map32 */
            default: return -EBADMSG;                              /* 0xc1 */
            }
            if (hdr) {
                if (avail < hdr)
                    return -EBADMSG;
                uint64_t n = be(p, hdr);
                p += hdr;
                avail -= hdr;
                if (t == 0xdc || t == 0xdd)
                    children = n;
                else if (t == 0xde || t == 0xdf)
                    children = 2 * n;
                else
                    skip += n;
            }
        }
        if (skip > avail)
            return -EBADMSG;
        p += skip;
        pending--;
        if (depth > 0)
            stack[depth - 1]--;
        if (children > 0) {
            /* Every owed element needs at least one byte. */
            if (pending + children > (uint64_t)(end - p))
                return -EBADMSG;
            if (depth >= max_depth)
                return -EBADMSG;
            stack[depth++] = children;
            pending += children;
        }
        while (depth > 0 && stack[depth - 1] == 0)
            depth--;
    }
    return p == end ? 0 : -EBADMSG;
}

int mp_decode(const void *buf, size_t len, unsigned max_depth, size_t max_objects,
              msgpack_unpacked *out)
{
    size_t off = 0;

    if (mp_validate(buf, len, max_depth, max_objects) != 0)
        return -EBADMSG;
    if (msgpack_unpack_next(out, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        return -EBADMSG;
    return 0;
}

const msgpack_object *mp_map_get(const msgpack_object *obj, const char *key)
{
    size_t kl = strlen(key);

    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &obj->via.map.ptr[i].val;
    }
    return NULL;
}

int mp_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len)
{
    const msgpack_object *o = mp_map_get(map, key);
    if (!o)
        return -ENOENT;
    if (o->type != MSGPACK_OBJECT_STR)
        return -EBADMSG;
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int mp_get_bin(const msgpack_object *map, const char *key, const void **p, size_t *len)
{
    const msgpack_object *o = mp_map_get(map, key);
    if (!o)
        return -ENOENT;
    if (o->type != MSGPACK_OBJECT_BIN)
        return -EBADMSG;
    *p = o->via.bin.ptr;
    *len = o->via.bin.size;
    return 0;
}

int mp_get_uint(const msgpack_object *map, const char *key, uint64_t *v)
{
    const msgpack_object *o = mp_map_get(map, key);
    if (!o)
        return -ENOENT;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -EBADMSG;
    *v = o->via.u64;
    return 0;
}

int mp_get_bool(const msgpack_object *map, const char *key, int *v)
{
    const msgpack_object *o = mp_map_get(map, key);
    if (!o)
        return -ENOENT;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return -EBADMSG;
    *v = o->via.boolean;
    return 0;
}

int mp_strdup(const msgpack_object *o, char **out)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, '\0', o->via.str.size))
        return -EBADMSG;
    char *s = malloc(o->via.str.size + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return 0;
}

int mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0)
        return -ENOMEM;
    return 0;
}
