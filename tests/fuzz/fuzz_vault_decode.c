/*
 * fuzz_vault_decode.c - libFuzzer target for the vault's decoders of
 * untrusted backing-store bytes: the file header parser, the size
 * arithmetic, the block opener (over every block the input holds, as a
 * whole backing file) and the name decoder.  The seeds in
 * tests/fuzz/corpus/vault_decode are files and a name valid under the
 * all-zero key and project "fuzz" used here, so fuzzing starts from inputs
 * that authenticate.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sodium.h>

#include "vault/blockcrypt.h"
#include "vault/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char dek[BC_DEK];
    static struct names_keys nk;
    static int init;
    static const unsigned char iv[NAMES_IV];
    if (!init) {
        if (sodium_init() < 0)
            return 0;
        names_derive(&nk, dek);
        init = 1;
    }
    struct bc_header h;
    off_t psize;
    if (bc_header_parse(data, size, &h) == 0 && bc_plain_size((off_t)size, &psize) == 0) {
        uint64_t nb = bc_nblocks(psize);
        unsigned char plain[BC_BLOCK];
        for (uint64_t i = 0; i < nb; i++) {
            size_t len = bc_block_len(psize, i) + BC_OVERHEAD;
            off_t off = bc_block_offset(i);
            if ((size_t)off + len > size)
                __builtin_trap();      /* size arithmetic must keep us in bounds */
            if (bc_open(plain, data + off, len, dek, "fuzz", h.file_id, i, i == nb - 1) != 0)
                break;
        }
    }
    /* names: the input as an encoded (backing) name */
    char enc[NAMES_ENC_MAX], out[NAMES_PLAIN_MAX + 1];
    size_t n = size < NAMES_ENC_MAX - 1 ? size : NAMES_ENC_MAX - 1;
    memcpy(enc, data, n);
    enc[n] = '\0';
    names_decrypt(&nk, iv, enc, out);
    return 0;
}
