/*
 * fuzz_frame.c - libFuzzer target: frame_peek, mp_validate and mp_decode must
 * never crash, leak or allocate beyond what the input justifies on any bytes.
 */
#include "lib/frame.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t body = 0;
    if (frame_peek(data, size, 4096, &body) == 1) {
        data += FRAME_HDR;
        size = body;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (mp_decode(data, size, 16, 4096, &u) == 0) {
        const char *s;
        size_t n;
        uint64_t v;
        (void)mp_get_str(&u.data, "op", &s, &n);
        (void)mp_get_uint(&u.data, "n", &v);
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}
