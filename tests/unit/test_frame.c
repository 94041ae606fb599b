/*
 * test_frame.c - the frame codec and msgpack validator against hostile input.
 */
#include "config.h"
#include "lib/frame.h"
#include "tests/unit/tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int validate(const char *hex)
{
    unsigned char buf[256];
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &buf[i]);
    return mp_validate(buf, n, 8, 1000);
}

int main(void)
{
    int sv[2];
    void *body;
    size_t len = 0;

    plan(27);

    /* Well-formed objects. */
    is_int(validate("c0"), 0, "nil");
    is_int(validate("81a26f70a3676574"), 0, "{op: get}");
    is_int(validate("93010203"), 0, "[1,2,3]");
    is_int(validate("c40401020304"), 0, "bin8 of 4");
    is_int(validate("dc000100"), 0, "array16 of one 0");
    is_int(validate("90"), 0, "empty fixarray");

    /* Hostile headers: counts and lengths beyond the bytes present. */
    is_int(validate("ddffffffff"), -EBADMSG, "array32 of 2^32-1 with no elements");
    is_int(validate("dfffffffff"), -EBADMSG, "map32 of 2^32-1 with no pairs");
    is_int(validate("dc0003c0c0"), -EBADMSG, "array16 of 3 with 2 elements");
    is_int(validate("c6ffffffff00"), -EBADMSG, "bin32 longer than the buffer");
    is_int(validate("dbffffffff"), -EBADMSG, "str32 longer than the buffer");
    is_int(validate("c9ffffffff01"), -EBADMSG, "ext32 longer than the buffer");
    is_int(validate("a5616263"), -EBADMSG, "truncated fixstr");
    is_int(validate("cd00"), -EBADMSG, "truncated uint16");
    is_int(validate("c1"), -EBADMSG, "never-used byte 0xc1");
    is_int(validate("c0c0"), -EBADMSG, "trailing bytes after one object");
    is_int(validate(""), -EBADMSG, "empty input");
    is_int(validate("919191919191919191c0"), -EBADMSG, "nesting deeper than the limit");
    is_int(validate("9191919191919191c0"), 0, "nesting at the limit");
    is_int(mp_validate("\x9f\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0", 16, 8, 10),
           -EBADMSG, "more objects than the object cap");

    /* Frames over a socket pair. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 1;
    is_int(frame_write(sv[0], "\x81\xa2op\xa3get", 8), 0, "write a frame");
    is_int(frame_read(sv[1], 1024, 1000, &body, &len), 0, "read it back");
    ok(len == 8 && memcmp(body, "\x81\xa2op\xa3get", 8) == 0, "same bytes");
    free(body);
    /* A declared length over the cap is refused before allocation. */
    ssize_t w = write(sv[0], "\x7f\xff\xff\xff", 4);
    (void)w;
    is_int(frame_read(sv[1], 1024, 1000, &body, &len), -EMSGSIZE, "oversized frame refused");
    /* A header with no body times out rather than hanging. */
    w = write(sv[0], "\x00\x00\x00\x10", 4);
    is_int(frame_read(sv[1], 1024, 100, &body, &len), -ETIMEDOUT, "missing body times out");
    close(sv[0]);
    is_int(frame_read(sv[1], 1024, 100, &body, &len), -ECONNRESET, "EOF is a reset");
    close(sv[1]);

    unsigned char hdr[6] = { 0, 0, 0, 2, 0x90, 0x90 };
    size_t bl = 0;
    is_int(frame_peek(hdr, 6, 16, &bl), 1, "peek finds a complete frame");
    return done();
}
