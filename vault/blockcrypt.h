/*
 * blockcrypt.h - the on-disk format of one encrypted file (docs/FORMAT.md):
 * a fixed 128-byte header followed by one or more sealed blocks.
 *
 *   header:  "TVF1" | u16 version | u16 flags=0 | file_id[16] | u32 kek_version
 *            | wrapped_dek[72] | then                                (128 bytes)
 *            version 2: u32 owner | 8 zero bytes | header MAC[16]
 *            version 1: 28 zero bytes (read, written by fsck --rewrap only)
 *   In version 2 keyd wrapped the DEK for the file ID (the wrap's AAD binds
 *   project, KEK version and file ID), and the header MAC, keyed from the
 *   DEK, binds magic, version, flags, file ID, owner and project: a header
 *   copied onto another file (another owner) is refused for writing.
 *   block i: nonce[24] | ciphertext[n] | tag[16]   with 0 <= n <= 4096
 *
 * Invariants every valid file keeps (and every reader checks):
 *   - there is at least one block; every block but the last holds exactly
 *     4096 plaintext bytes; the last holds 0..4096 bytes (an empty file is one
 *     empty block);
 *   - each block is XChaCha20-Poly1305 sealed under the file's DEK with
 *     AAD = "TVB1" | file_id | u64 block number | u8 is_last | u8 len | project,
 *     so flipping, swapping, moving a block within or between files or
 *     projects, dropping trailing blocks (the new last block says it is not
 *     last) or emptying the file to its header (no blocks) all fail to open.
 * The plaintext size follows from the backing size alone (no decryption).
 * All functions are pure (no I/O); they return 0 or a negative errno.
 */
#ifndef TV_VAULT_BLOCKCRYPT_H
#define TV_VAULT_BLOCKCRYPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BC_BLOCK 4096u                 /* plaintext bytes per block */
#define BC_NONCE 24u
#define BC_TAG 16u
#define BC_OVERHEAD (BC_NONCE + BC_TAG) /* 40 */
#define BC_CBLOCK (BC_BLOCK + BC_OVERHEAD) /* 4136: a full sealed block */
#define BC_HDR 128u                    /* header bytes */
#define BC_FILE_ID 16u
#define BC_DEK 32u
#define BC_WRAPPED 72u
#define BC_MAGIC "TVF1"
#define BC_VERSION 2u                  /* written for new files */
#define BC_VERSION_LEGACY 1u           /* still read; DEK wrapped for no one file */
#define BC_HMAC 16u
#define BC_MAX_SIZE ((off_t)1 << 50)   /* largest plaintext size we accept */

struct bc_header {
    uint16_t version;                  /* BC_VERSION or BC_VERSION_LEGACY */
    unsigned char file_id[BC_FILE_ID];
    uint32_t kek_version;
    unsigned char wrapped[BC_WRAPPED];
    uint32_t owner;                    /* version 2: the uid the file was made for */
    unsigned char mac[BC_HMAC];        /* version 2: bc_header_mac */
};

/* Serialise H into OUT (BC_HDR bytes). */
void bc_header_encode(const struct bc_header *h, unsigned char out[BC_HDR]);

/* Parse LEN bytes at BUF.  -EBADMSG for a short buffer, wrong magic, unknown
 * version or flags, or non-zero reserved bytes.  A version-2 header's MAC
 * is only checked by bc_header_verify (it needs the DEK). */
int bc_header_parse(const unsigned char *buf, size_t len, struct bc_header *h);

/* The MAC of version-2 header H of PROJECT under DEK into MAC (keyed with a
 * subkey of the DEK; covers magic, version, flags, file ID, owner and
 * project, not the wrapped DEK and its KEK version, which a rewrap changes
 * without the DEK ever leaving keyd). */
void bc_header_mac(const struct bc_header *h, const char *project,
                   const unsigned char dek[BC_DEK], unsigned char mac[BC_HMAC]);

/* 0 if version-2 header H authenticates under DEK for PROJECT, -EBADMSG if
 * not (a version-1 header: 0, it has no MAC). */
int bc_header_verify(const struct bc_header *h, const char *project,
                     const unsigned char dek[BC_DEK]);

/* Number of blocks a file of plaintext SIZE has (at least 1). */
uint64_t bc_nblocks(off_t size);

/* Backing (ciphertext) size of a file of plaintext SIZE, header included. */
off_t bc_backing_size(off_t size);

/* Plaintext size of a backing file of CSIZE bytes into *SIZE; -EBADMSG when
 * CSIZE cannot be a valid file (shorter than header + one empty block, or a
 * last block shorter than its overhead). */
int bc_plain_size(off_t csize, off_t *size);

/* Byte offset of block I in the backing file. */
static inline off_t bc_block_offset(uint64_t i)
{
    return (off_t)BC_HDR + (off_t)i * BC_CBLOCK;
}

/* Plaintext length of block I in a file of SIZE bytes (0..4096). */
size_t bc_block_len(off_t size, uint64_t i);

/* The AAD of block I; returns its length.  AAD must hold BC_AAD_MAX bytes. */
#define BC_AAD_MAX (4 + BC_FILE_ID + 8 + 1 + 1 + 255)
size_t bc_aad(unsigned char *aad, const char *project, const unsigned char file_id[BC_FILE_ID],
              uint64_t i, int is_last);

/* Seal LEN (<= 4096) plaintext bytes of block I into OUT (LEN + 40 bytes)
 * with the given 24-byte NONCE (callers take it from randombytes). */
int bc_seal(unsigned char *out, const unsigned char *plain, size_t len,
            const unsigned char nonce[BC_NONCE], const unsigned char dek[BC_DEK],
            const char *project, const unsigned char file_id[BC_FILE_ID],
            uint64_t i, int is_last);

/* Open CLEN (40..4136) bytes of block I into PLAIN (CLEN - 40 bytes).
 * -EBADMSG if authentication fails or CLEN is impossible. */
int bc_open(unsigned char *plain, const unsigned char *cblock, size_t clen,
            const unsigned char dek[BC_DEK], const char *project,
            const unsigned char file_id[BC_FILE_ID], uint64_t i, int is_last);

#endif
