/*
 * seal.h - the master key and everything sealed under it.
 *
 * Key hierarchy (docs/KEYD.md): the 32-byte master key never seals data
 * directly; crypto_kdf derives one subkey per purpose (keystore file, audit
 * MAC, KEK sealing), so a key compromised in one role says nothing about the
 * others.  A sealed blob is nonce (24) || XChaCha20-Poly1305 ciphertext ||
 * tag (16), authenticated with an AAD that names what the blob is (project,
 * version, state), so a blob moved to another slot fails to open.
 *
 * Buffers that hold keys are sodium_malloc'd by their owners; functions here
 * never keep copies.  All int functions return 0 or a negative errno.
 */
#ifndef TV_KEYD_SEAL_H
#define TV_KEYD_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_NONCE_LEN 24
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (SEAL_NONCE_LEN + SEAL_TAG_LEN)
#define SEAL_AAD_MAX 128

/* crypto_kdf subkey ids under context "tvkeyd01". */
enum seal_subkey {
    SEAL_SUB_KEYSTORE = 1,
    SEAL_SUB_AUDIT = 2,           /* keyd's own audit log */
    SEAL_SUB_KEK = 3,
    SEAL_SUB_VAULT_AUDIT = 4,     /* the vault's audit log (VAULT_AUDIT_KEY) */
    SEAL_SUB_SEALKEY = 5,         /* seals the keystore's sealing key (sealkey.h) */
};

/* What a blob is: selects the AAD prefix. */
enum seal_kind { SEAL_KIND_KEK = 1, SEAL_KIND_DEK, SEAL_KIND_APIKEY, SEAL_KIND_PSEUDONYM,
                 SEAL_KIND_FILE_DEK,      /* a DEK bound to one file ID */
                 SEAL_KIND_INGEST_VKEY }; /* the key of ingest-key verifiers */

/*
 * Load the master key: $CREDENTIALS_DIRECTORY/master.key when that variable
 * is set and the file exists, else PATH.  The file must be a regular file of
 * exactly 32 bytes with no group or other permission bits (-EPERM otherwise,
 * with the reason in ERR; for the systemd credential only "other" bits are
 * refused, since systemd grants access with an ACL in a private directory).  *KEY is sodium_malloc'd (read-only); free it with
 * sodium_free.  *FROM receives the path used (static or PATH).
 */
int seal_master_load(const char *path, unsigned char **key, const char **from,
                     char *err, size_t errlen);

/* Create PATH with 32 random bytes, mode 0400, refusing to overwrite
 * (-EEXIST).  The file and its directory are fsync'd. */
int seal_master_create(const char *path);

/* Derive subkey ID from MASTER (or another 32-byte key: the sealing key)
 * into OUT (SEAL_KEY_LEN bytes). */
int seal_derive(const unsigned char *master, enum seal_subkey id, unsigned char *out);

/* Build the AAD for KIND of PROJECT/VERSION/STATE into AAD (SEAL_AAD_MAX);
 * returns its length.  Fields are length-prefixed, so no two distinct
 * tuples share an AAD. */
size_t seal_aad(unsigned char *aad, enum seal_kind kind, const char *project,
                uint32_t version, uint8_t state);

/* The AAD of a DEK wrapped for one file: kind FILE_DEK, PROJECT, VERSION and
 * the file's ID (KEYD_FILE_ID_LEN bytes).  Returns its length. */
size_t seal_aad_file(unsigned char *aad, const char *project, uint32_t version,
                     const unsigned char *file_id);

/* Seal LEN bytes of PT into OUT (LEN + SEAL_OVERHEAD bytes) under KEY. */
void seal_seal(const unsigned char *key, const unsigned char *aad, size_t aadlen,
               const unsigned char *pt, size_t len, unsigned char *out);

/* Open IN (INLEN >= SEAL_OVERHEAD bytes) into OUT (INLEN - SEAL_OVERHEAD
 * bytes).  -EBADMSG if the key, AAD or any byte is wrong (OUT is wiped). */
int seal_open(const unsigned char *key, const unsigned char *aad, size_t aadlen,
              const unsigned char *in, size_t inlen, unsigned char *out);

#endif
