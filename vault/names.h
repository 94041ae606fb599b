/*
 * names.h - deterministic encryption of file and directory names.
 *
 * Each backing directory has a random 16-byte directory IV (metadata file
 * ".tvdir"); a project has a 32-byte name key (a DEK wrapped in the
 * project's ".tvproject").  A name is encrypted SIV-style from libsodium
 * primitives (docs/FORMAT.md):
 *   tag = BLAKE2b-128 keyed with K_mac over (dir_iv | name)
 *   ct  = name XOR XChaCha20(K_enc, nonce = tag | 8 zero bytes)
 *   backing name = base64url-nopad(tag | ct)
 * with K_mac, K_enc derived from the name key by crypto_kdf.  The same name in
 * the same directory always encrypts the same way (so lookups are one
 * openat), equal names in different directories do not, and decryption
 * authenticates the name (a flipped byte is detected).
 * Names whose encoding exceeds NAMES_SHORT_MAX characters are "long": the
 * backing name is "~" + base64url(BLAKE2b-256(encoded)) and the full encoded
 * name is kept in the side file ".<backing name>.name".
 * Backing names never start with '.', which is reserved for metadata.
 */
#ifndef TV_VAULT_NAMES_H
#define TV_VAULT_NAMES_H

#include <stddef.h>

#define NAMES_KEY 32u
#define NAMES_IV 16u
#define NAMES_TAG 16u
#define NAMES_PLAIN_MAX 255u        /* longest plaintext name */
#define NAMES_SHORT_MAX 200u        /* longest backing name stored directly */
#define NAMES_ENC_MAX 400u          /* buffer for an encoded name incl. NUL */
#define NAMES_LONG_PREFIX '~'
#define NAMES_SIDE_SUFFIX ".name"

struct names_keys {
    unsigned char mac[32];
    unsigned char enc[32];
};

/* Derive the two subkeys from a project's name key.  KEYS should live in
 * guarded memory; the caller wipes it. */
void names_derive(struct names_keys *keys, const unsigned char name_key[NAMES_KEY]);

/* Encrypt NAME (1..255 bytes, no '/', not "." or "..") for the directory
 * with IV into ENC (NAMES_ENC_MAX bytes): the full encoded name.  Returns 0
 * or -EINVAL / -ENAMETOOLONG. */
int names_encrypt(const struct names_keys *keys, const unsigned char iv[NAMES_IV],
                  const char *name, char enc[NAMES_ENC_MAX]);

/* Decrypt ENC (a full encoded name) into NAME (NAMES_PLAIN_MAX + 1 bytes).
 * -EBADMSG when it is not one of ours or fails authentication. */
int names_decrypt(const struct names_keys *keys, const unsigned char iv[NAMES_IV],
                  const char *enc, char name[NAMES_PLAIN_MAX + 1]);

/* The backing name for an encoded name into OUT (NAMES_ENC_MAX bytes):
 * ENC itself when short, else the "~hash" form.  Returns 1 if long, 0 if not. */
int names_backing(const char *enc, char out[NAMES_ENC_MAX]);

/* True if BACKING is a long-name backing name ("~..."). */
int names_is_long(const char *backing);

/* The side-file name ".<backing>.name" into OUT (NAMES_ENC_MAX bytes). */
void names_side(const char *backing, char out[NAMES_ENC_MAX]);

/* base64url without padding; return the encoded/decoded length or -EINVAL. */
int names_b64_encode(const unsigned char *in, size_t len, char *out, size_t outlen);
int names_b64_decode(const char *in, unsigned char *out, size_t outlen);

#endif
