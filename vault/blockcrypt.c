/*
 * blockcrypt.c - header codec, size arithmetic and block sealing for the
 * vault's file format (see blockcrypt.h and docs/FORMAT.md).
 */
#include "config.h"
#include "vault/blockcrypt.h"

#include <errno.h>
#include <string.h>
#include <sodium.h>

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void bc_header_encode(const struct bc_header *h, unsigned char out[BC_HDR])
{
    memset(out, 0, BC_HDR);
    memcpy(out, BC_MAGIC, 4);
    out[4] = h->version & 0xff;
    out[5] = h->version >> 8;
    /* bytes 6-7: flags, zero */
    memcpy(out + 8, h->file_id, BC_FILE_ID);
    put_le32(out + 24, h->kek_version);
    memcpy(out + 28, h->wrapped, BC_WRAPPED);
    if (h->version >= BC_VERSION) {
        put_le32(out + 100, h->owner);
        /* bytes 104-111 reserved, zero */
        memcpy(out + 112, h->mac, BC_HMAC);
    }
}

int bc_header_parse(const unsigned char *buf, size_t len, struct bc_header *h)
{
    if (!buf || len < BC_HDR)
        return -EBADMSG;
    if (memcmp(buf, BC_MAGIC, 4) != 0)
        return -EBADMSG;
    unsigned version = buf[4] | buf[5] << 8;
    if ((version != BC_VERSION && version != BC_VERSION_LEGACY) || buf[6] != 0 || buf[7] != 0)
        return -EBADMSG;
    size_t zero_from = version == BC_VERSION_LEGACY ? 100 : 104, zero_to = version == BC_VERSION_LEGACY ? BC_HDR : 112;
    for (size_t k = zero_from; k < zero_to; k++)
        if (buf[k] != 0)
            return -EBADMSG;
    h->version = (uint16_t)version;
    memcpy(h->file_id, buf + 8, BC_FILE_ID);
    h->kek_version = get_le32(buf + 24);
    if (h->kek_version == 0)
        return -EBADMSG;
    memcpy(h->wrapped, buf + 28, BC_WRAPPED);
    h->owner = version == BC_VERSION_LEGACY ? 0 : get_le32(buf + 100);
    if (version == BC_VERSION_LEGACY)
        memset(h->mac, 0, BC_HMAC);
    else
        memcpy(h->mac, buf + 112, BC_HMAC);
    return 0;
}

void bc_header_mac(const struct bc_header *h, const char *project,
                   const unsigned char dek[BC_DEK], unsigned char mac[BC_HMAC])
{
    unsigned char key[crypto_generichash_KEYBYTES], b[4 + 2 + 2 + BC_FILE_ID + 4];
    crypto_generichash_state st;
    crypto_kdf_derive_from_key(key, sizeof key, 1, "tvhdrmac", dek);
    memcpy(b, BC_MAGIC, 4);
    b[4] = h->version & 0xff;
    b[5] = h->version >> 8;
    b[6] = b[7] = 0;
    memcpy(b + 8, h->file_id, BC_FILE_ID);
    put_le32(b + 8 + BC_FILE_ID, h->owner);
    crypto_generichash_init(&st, key, sizeof key, BC_HMAC);
    crypto_generichash_update(&st, b, sizeof b);
    crypto_generichash_update(&st, (const unsigned char *)project, strlen(project));
    crypto_generichash_final(&st, mac, BC_HMAC);
    sodium_memzero(key, sizeof key);
}

int bc_header_verify(const struct bc_header *h, const char *project,
                     const unsigned char dek[BC_DEK])
{
    unsigned char mac[BC_HMAC];
    if (h->version == BC_VERSION_LEGACY)
        return 0;
    bc_header_mac(h, project, dek, mac);
    return sodium_memcmp(mac, h->mac, BC_HMAC) == 0 ? 0 : -EBADMSG;
}

uint64_t bc_nblocks(off_t size)
{
    if (size <= 0)
        return 1;
    return ((uint64_t)size + BC_BLOCK - 1) / BC_BLOCK;
}

off_t bc_backing_size(off_t size)
{
    uint64_t nb = bc_nblocks(size);
    off_t last = size - (off_t)(nb - 1) * BC_BLOCK;
    if (size <= 0)
        last = 0;
    return (off_t)BC_HDR + (off_t)(nb - 1) * BC_CBLOCK + last + BC_OVERHEAD;
}

int bc_plain_size(off_t csize, off_t *size)
{
    if (csize < (off_t)(BC_HDR + BC_OVERHEAD))
        return -EBADMSG;
    off_t p = csize - BC_HDR;
    uint64_t nb = ((uint64_t)p + BC_CBLOCK - 1) / BC_CBLOCK;
    off_t last = p - (off_t)(nb - 1) * BC_CBLOCK;
    if (last < (off_t)BC_OVERHEAD)
        return -EBADMSG;
    /* a non-empty file never ends in an empty block: the block before it
     * would then be full and itself the last one */
    if (nb > 1 && last == (off_t)BC_OVERHEAD)
        return -EBADMSG;
    off_t s = (off_t)(nb - 1) * BC_BLOCK + (last - BC_OVERHEAD);
    if (s > BC_MAX_SIZE)
        return -EFBIG;
    *size = s;
    return 0;
}

size_t bc_block_len(off_t size, uint64_t i)
{
    if (size <= 0)
        return 0;
    off_t start = (off_t)i * BC_BLOCK;
    if (start >= size)
        return 0;
    off_t n = size - start;
    return n > (off_t)BC_BLOCK ? BC_BLOCK : (size_t)n;
}

size_t bc_aad(unsigned char *aad, const char *project, const unsigned char file_id[BC_FILE_ID],
              uint64_t i, int is_last)
{
    size_t plen = strlen(project);
    if (plen > 255)
        plen = 255;
    size_t n = 0;
    memcpy(aad, "TVB1", 4);
    n += 4;
    memcpy(aad + n, file_id, BC_FILE_ID);
    n += BC_FILE_ID;
    for (int k = 0; k < 8; k++)
        aad[n++] = (unsigned char)(i >> (8 * k));
    aad[n++] = is_last ? 1 : 0;
    aad[n++] = (unsigned char)plen;
    memcpy(aad + n, project, plen);
    return n + plen;
}

int bc_seal(unsigned char *out, const unsigned char *plain, size_t len,
            const unsigned char nonce[BC_NONCE], const unsigned char dek[BC_DEK],
            const char *project, const unsigned char file_id[BC_FILE_ID],
            uint64_t i, int is_last)
{
    unsigned char aad[BC_AAD_MAX];
    unsigned long long clen;

    if (len > BC_BLOCK)
        return -EINVAL;
    size_t alen = bc_aad(aad, project, file_id, i, is_last);
    memmove(out, nonce, BC_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + BC_NONCE, &clen, plain, len, aad, alen,
                                               NULL, out, dek);
    return 0;
}

int bc_open(unsigned char *plain, const unsigned char *cblock, size_t clen,
            const unsigned char dek[BC_DEK], const char *project,
            const unsigned char file_id[BC_FILE_ID], uint64_t i, int is_last)
{
    unsigned char aad[BC_AAD_MAX];
    unsigned long long plen;

    if (clen < BC_OVERHEAD || clen > BC_CBLOCK)
        return -EBADMSG;
    size_t alen = bc_aad(aad, project, file_id, i, is_last);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, cblock + BC_NONCE,
                                                   clen - BC_NONCE, aad, alen, cblock, dek) != 0)
        return -EBADMSG;
    return 0;
}
