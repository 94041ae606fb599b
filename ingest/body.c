/*
 * body.c - gzip inflation with a cap and the JSON depth scan (body.h).
 */
#include "config.h"
#include "ingest/body.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

int body_gunzip(const void *in, size_t len, size_t max, unsigned char **out, size_t *outlen)
{
    z_stream zs;
    unsigned char *buf = NULL;
    size_t cap = 0, used = 0;
    int zr, r = 0;

    *out = NULL;
    *outlen = 0;
    memset(&zs, 0, sizeof(zs));
    /* 16 + MAX_WBITS: gzip framing only (no raw or zlib streams). */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -ENOMEM;
    zs.next_in = (unsigned char *)in;
    zs.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
    for (;;) {
        if (used == cap) {
            if (cap >= max + 1) {
                r = -EFBIG;
                goto out;
            }
            /* Grow geometrically but never past MAX + 1: the extra byte
             * tells "exactly MAX" from "more than MAX". */
            size_t ncap = cap ? cap * 2 : (len * 4 > 65536 ? len * 4 : 65536);
            if (ncap > max + 1)
                ncap = max + 1;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                r = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        zs.next_out = buf + used;
        zs.avail_out = (uInt)(cap - used > UINT32_MAX ? UINT32_MAX : cap - used);
        size_t before = zs.avail_out;
        zr = inflate(&zs, Z_NO_FLUSH);
        used += before - zs.avail_out;
        if (used > max) {
            r = -EFBIG;
            goto out;
        }
        if (zr == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            /* Another gzip member follows (gzip allows concatenation). */
            if (inflateReset(&zs) != Z_OK) {
                r = -EBADMSG;
                goto out;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0) {
            r = -EBADMSG;             /* truncated */
            goto out;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            r = zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
            goto out;
        }
    }
out:
    inflateEnd(&zs);
    if (r != 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *outlen = used;
    return 0;
}

int body_json_depth_ok(const char *text, size_t len, int max_depth)
{
    int depth = 0, in_str = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;                  /* skip the escaped byte */
            else if (c == '"')
                in_str = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '[':
        case '{':
            if (++depth > max_depth)
                return -ELOOP;
            break;
        case ']':
        case '}':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return 0;
}

int body_type_is(const char *ct, const char *type)
{
    size_t n = strlen(type);

    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, type, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}
