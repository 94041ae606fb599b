/*
 * names.c - SIV-style deterministic name encryption (see names.h).
 */
#include "config.h"
#include "vault/names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

static const char KDF_CTX[crypto_kdf_CONTEXTBYTES] = { 'T', 'V', 'n', 'a', 'm', 'e', 's', '1' };

void names_derive(struct names_keys *keys, const unsigned char name_key[NAMES_KEY])
{
    crypto_kdf_derive_from_key(keys->mac, sizeof keys->mac, 1, KDF_CTX, name_key);
    crypto_kdf_derive_from_key(keys->enc, sizeof keys->enc, 2, KDF_CTX, name_key);
}

int names_b64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
    size_t need = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (need > outlen)
        return -EINVAL;
    sodium_bin2base64(out, outlen, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return (int)strlen(out);
}

int names_b64_decode(const char *in, unsigned char *out, size_t outlen)
{
    size_t got;
    const char *end;
    if (sodium_base642bin(out, outlen, in, strlen(in), NULL, &got, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || *end != '\0')
        return -EINVAL;
    return (int)got;
}

static void siv_tag(const struct names_keys *keys, const unsigned char iv[NAMES_IV],
                    const unsigned char *name, size_t len, unsigned char tag[NAMES_TAG])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, keys->mac, sizeof keys->mac, NAMES_TAG);
    crypto_generichash_update(&st, iv, NAMES_IV);
    crypto_generichash_update(&st, name, len);
    crypto_generichash_final(&st, tag, NAMES_TAG);
}

static void siv_xor(const struct names_keys *keys, const unsigned char tag[NAMES_TAG],
                    unsigned char *out, const unsigned char *in, size_t len)
{
    unsigned char nonce[crypto_stream_xchacha20_NONCEBYTES] = { 0 };
    memcpy(nonce, tag, NAMES_TAG);
    crypto_stream_xchacha20_xor(out, in, len, nonce, keys->enc);
}

int names_encrypt(const struct names_keys *keys, const unsigned char iv[NAMES_IV],
                  const char *name, char enc[NAMES_ENC_MAX])
{
    unsigned char buf[NAMES_TAG + NAMES_PLAIN_MAX];
    size_t len = strlen(name);

    if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return -EINVAL;
    if (len > NAMES_PLAIN_MAX)
        return -ENAMETOOLONG;
    siv_tag(keys, iv, (const unsigned char *)name, len, buf);
    siv_xor(keys, buf, buf + NAMES_TAG, (const unsigned char *)name, len);
    return names_b64_encode(buf, NAMES_TAG + len, enc, NAMES_ENC_MAX) < 0 ? -EINVAL : 0;
}

int names_decrypt(const struct names_keys *keys, const unsigned char iv[NAMES_IV],
                  const char *enc, char name[NAMES_PLAIN_MAX + 1])
{
    unsigned char buf[NAMES_TAG + NAMES_PLAIN_MAX + 1], tag[NAMES_TAG];
    int n = names_b64_decode(enc, buf, sizeof buf);

    if (n <= (int)NAMES_TAG || n > (int)(NAMES_TAG + NAMES_PLAIN_MAX))
        return -EBADMSG;
    size_t len = (size_t)n - NAMES_TAG;
    siv_xor(keys, buf, (unsigned char *)name, buf + NAMES_TAG, len);
    name[len] = '\0';
    siv_tag(keys, iv, (const unsigned char *)name, len, tag);
    if (sodium_memcmp(tag, buf, NAMES_TAG) != 0 || memchr(name, '\0', len) ||
        memchr(name, '/', len) || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        sodium_memzero(name, len);
        name[0] = '\0';
        return -EBADMSG;
    }
    return 0;
}

int names_backing(const char *enc, char out[NAMES_ENC_MAX])
{
    size_t len = strlen(enc);
    if (len <= NAMES_SHORT_MAX) {
        memcpy(out, enc, len + 1);
        return 0;
    }
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)enc, len, NULL, 0);
    out[0] = NAMES_LONG_PREFIX;
    names_b64_encode(h, sizeof h, out + 1, NAMES_ENC_MAX - 1);
    return 1;
}

int names_is_long(const char *backing)
{
    return backing[0] == NAMES_LONG_PREFIX;
}

void names_side(const char *backing, char out[NAMES_ENC_MAX])
{
    /* backing names are at most NAMES_SHORT_MAX, so this always fits */
    snprintf(out, NAMES_ENC_MAX, ".%s%s", backing, NAMES_SIDE_SUFFIX);
}
