/*
 * test_vault_blockcrypt.c - the vault file format: size arithmetic at every
 * block boundary, block sealing/opening and its AAD binding, and header
 * parsing against hostile headers.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "tests/unit/tap.h"
#include "vault/blockcrypt.h"

static unsigned char dek[BC_DEK], fid[BC_FILE_ID], nonce[BC_NONCE];

static void test_sizes(void)
{
    static const struct { off_t plain, backing; uint64_t nb; } t[] = {
        { 0, 128 + 40, 1 },
        { 1, 128 + 41, 1 },
        { 4095, 128 + 4135, 1 },
        { 4096, 128 + 4136, 1 },
        { 4097, 128 + 4136 + 41, 2 },
        { 8191, 128 + 4136 + 4135, 2 },
        { 8192, 128 + 2 * 4136, 2 },
        { 8193, 128 + 2 * 4136 + 41, 3 },
        { 1 << 20, 128 + 256 * 4136, 256 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        off_t back = -1;
        is_int(bc_backing_size(t[i].plain), t[i].backing, "backing size of %lld",
               (long long)t[i].plain);
        is_int(bc_nblocks(t[i].plain), t[i].nb, "blocks of %lld", (long long)t[i].plain);
        ok(bc_plain_size(t[i].backing, &back) == 0 && back == t[i].plain,
           "plain size of backing %lld is %lld", (long long)t[i].backing, (long long)t[i].plain);
    }
    /* every backing size in [0, 3 blocks] either maps back exactly or is rejected */
    int bad = 0;
    for (off_t c = 0; c < 128 + 3 * 4136 + 50; c++) {
        off_t p;
        if (bc_plain_size(c, &p) == 0 && bc_backing_size(p) != c)
            bad++;
    }
    is_int(bad, 0, "plain/backing sizes are inverse for every valid backing size");
    off_t p;
    is_int(bc_plain_size(0, &p), -EBADMSG, "empty backing file rejected");
    is_int(bc_plain_size(128, &p), -EBADMSG, "header-only file rejected (emptied to its header)");
    is_int(bc_plain_size(128 + 39, &p), -EBADMSG, "block shorter than its overhead rejected");
    is_int(bc_plain_size(128 + 4136 + 40, &p), -EBADMSG, "trailing empty block after a full one rejected");
    is_int(bc_plain_size(128 + 4136 + 10, &p), -EBADMSG, "10-byte trailing fragment rejected");
    is_int(bc_block_len(4097, 0), 4096, "block 0 of 4097 is full");
    is_int(bc_block_len(4097, 1), 1, "block 1 of 4097 holds one byte");
    is_int(bc_block_len(4097, 2), 0, "block 2 of 4097 is empty");
    is_int(bc_block_len(0, 0), 0, "block 0 of an empty file is empty");
    is_int(bc_block_offset(2), 128 + 2 * 4136, "offset of block 2");
}

static void test_blocks(void)
{
    unsigned char plain[BC_BLOCK], out[BC_CBLOCK], back[BC_BLOCK];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (unsigned char)(i * 7);
    static const size_t lens[] = { 0, 1, 4095, 4096 };
    for (size_t k = 0; k < 4; k++) {
        size_t n = lens[k];
        is_int(bc_seal(out, plain, n, nonce, dek, "proj", fid, 3, 0), 0, "seal %zu bytes", n);
        ok(bc_open(back, out, n + BC_OVERHEAD, dek, "proj", fid, 3, 0) == 0 &&
           memcmp(back, plain, n) == 0, "open %zu bytes round-trips", n);
    }
    bc_seal(out, plain, 100, nonce, dek, "proj", fid, 5, 1);
    size_t cl = 100 + BC_OVERHEAD;
    is_int(bc_open(back, out, cl, dek, "proj", fid, 5, 1), 0, "last block opens as last");
    is_int(bc_open(back, out, cl, dek, "proj", fid, 5, 0), -EBADMSG, "last block refused as non-last");
    is_int(bc_open(back, out, cl, dek, "proj", fid, 4, 1), -EBADMSG, "block refused at another number");
    is_int(bc_open(back, out, cl, dek, "proj2", fid, 5, 1), -EBADMSG, "block refused in another project");
    unsigned char fid2[BC_FILE_ID];
    memcpy(fid2, fid, sizeof fid2);
    fid2[0] ^= 1;
    is_int(bc_open(back, out, cl, dek, "proj", fid2, 5, 1), -EBADMSG, "block refused in another file");
    unsigned char dek2[BC_DEK];
    memcpy(dek2, dek, sizeof dek2);
    dek2[31] ^= 0x80;
    is_int(bc_open(back, out, cl, dek2, "proj", fid, 5, 1), -EBADMSG, "block refused under another key");
    int flipped_ok = 0;
    for (size_t i = 0; i < cl; i++) {
        out[i] ^= 0x01;
        if (bc_open(back, out, cl, dek, "proj", fid, 5, 1) == 0)
            flipped_ok++;
        out[i] ^= 0x01;
    }
    is_int(flipped_ok, 0, "every single-bit flip of every byte is detected");
    is_int(bc_open(back, out, cl - 1, dek, "proj", fid, 5, 1), -EBADMSG, "a shortened block is refused");
    is_int(bc_open(back, out, 39, dek, "proj", fid, 5, 1), -EBADMSG, "39-byte block is refused");
    is_int(bc_open(back, out, BC_CBLOCK + 1, dek, "proj", fid, 5, 1), -EBADMSG, "oversized block refused");
    is_int(bc_seal(out, plain, BC_BLOCK + 1, nonce, dek, "proj", fid, 0, 1), -EINVAL, "sealing 4097 bytes refused");
    unsigned char o2[BC_CBLOCK];
    unsigned char n2[BC_NONCE];
    randombytes_buf(n2, sizeof n2);
    bc_seal(o2, plain, 100, n2, dek, "proj", fid, 5, 1);
    ok(memcmp(o2 + BC_NONCE, out + BC_NONCE, 100) != 0, "another nonce gives another ciphertext");
}

static void test_header(void)
{
    struct bc_header h, g;
    unsigned char buf[BC_HDR], dek[BC_DEK], mac[BC_HMAC];
    memset(&h, 0, sizeof h);
    randombytes_buf(h.file_id, sizeof h.file_id);
    randombytes_buf(h.wrapped, sizeof h.wrapped);
    randombytes_buf(dek, sizeof dek);
    h.version = BC_VERSION;
    h.kek_version = 7;
    h.owner = 1234;
    bc_header_mac(&h, "proj", dek, h.mac);
    bc_header_encode(&h, buf);
    ok(memcmp(buf, "TVF1", 4) == 0 && buf[4] == 2, "a version-2 header starts with the magic");
    ok(bc_header_parse(buf, sizeof buf, &g) == 0 && g.version == 2 && g.kek_version == 7 &&
       g.owner == 1234 && memcmp(g.file_id, h.file_id, 16) == 0 &&
       memcmp(g.wrapped, h.wrapped, 72) == 0 && memcmp(g.mac, h.mac, BC_HMAC) == 0,
       "header round-trips");
    is_int(bc_header_verify(&g, "proj", dek), 0, "its MAC verifies under its DEK");
    g.kek_version = 8;
    g.wrapped[0] ^= 1;
    is_int(bc_header_verify(&g, "proj", dek), 0, "... also after a rewrap (new wrapped DEK, version)");
    g = h;
    g.owner = 1235;
    is_int(bc_header_verify(&g, "proj", dek), -EBADMSG, "... not for another owner");
    g = h;
    g.file_id[3] ^= 1;
    is_int(bc_header_verify(&g, "proj", dek), -EBADMSG, "... not for another file ID");
    is_int(bc_header_verify(&h, "proj2", dek), -EBADMSG, "... not in another project");
    dek[0] ^= 1;
    is_int(bc_header_verify(&h, "proj", dek), -EBADMSG, "... not under another DEK");
    bc_header_mac(&h, "proj", dek, mac);
    is_int(bc_header_parse(buf, BC_HDR - 1, &g), -EBADMSG, "short header rejected");
    is_int(bc_header_parse(NULL, 0, &g), -EBADMSG, "no header rejected");
    unsigned char bad[BC_HDR];
    static const struct { size_t off; unsigned char x; const char *what; } m[] = {
        { 0, 'X', "magic" }, { 4, 3, "format version" }, { 5, 1, "format version high byte" },
        { 6, 1, "flags" }, { 7, 0x80, "flags high byte" }, { 104, 1, "first reserved byte" },
        { 111, 0xff, "last reserved byte" },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        memcpy(bad, buf, sizeof bad);
        bad[m[i].off] = m[i].x;
        is_int(bc_header_parse(bad, sizeof bad, &g), -EBADMSG, "hostile header: %s", m[i].what);
    }
    memcpy(bad, buf, sizeof bad);
    memset(bad + 24, 0, 4);
    is_int(bc_header_parse(bad, sizeof bad, &g), -EBADMSG, "KEK version 0 rejected");
    memset(bad, 0, sizeof bad);
    is_int(bc_header_parse(bad, sizeof bad, &g), -EBADMSG, "all-zero header rejected");
    /* version 1: read, no owner, no MAC; its reserved tail must be zero */
    h.version = BC_VERSION_LEGACY;
    bc_header_encode(&h, buf);
    ok(bc_header_parse(buf, sizeof buf, &g) == 0 && g.version == 1 && g.owner == 0 &&
       bc_header_verify(&g, "proj", dek) == 0, "a version-1 header parses (nothing to verify)");
    memcpy(bad, buf, sizeof bad);
    bad[127] = 1;
    is_int(bc_header_parse(bad, sizeof bad, &g), -EBADMSG, "version 1: a non-zero tail rejected");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(dek, sizeof dek);
    randombytes_buf(fid, sizeof fid);
    randombytes_buf(nonce, sizeof nonce);
    test_sizes();
    test_blocks();
    test_header();
    return done();
}
