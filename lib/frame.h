/*
 * frame.h - length-prefixed msgpack frames for local sockets (keyd protocol).
 *
 * A frame is a 4-byte big-endian body length followed by the body, one
 * msgpack object.  Two rules keep a hostile peer from costing memory:
 *   - the length is checked against a hard cap before anything is allocated;
 *   - the body is walked by mp_validate() before msgpack-c sees it: every
 *     container's element count must fit in the bytes that remain (each
 *     element takes at least one byte), nesting and object count are bounded.
 *     msgpack-c 4.0 otherwise reserves count * sizeof(msgpack_object) for a
 *     5-byte "array of 2^32-1" header.
 * All functions return 0 on success or a negative errno value.
 */
#ifndef TV_FRAME_H
#define TV_FRAME_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 4
#define FRAME_MAX_DEFAULT (1u << 20)

/* Encode the header of a frame whose body is LEN (<= UINT32_MAX) bytes into
 * HDR: the one place the length prefix is written (frame_write and keyd's
 * non-blocking server both use it). */
void frame_put_header(uint8_t hdr[FRAME_HDR], size_t len);

/* Write one frame (header + body) to FD, retrying on EINTR and short writes.
 * Uses send(MSG_NOSIGNAL) on sockets so a closed peer is -EPIPE, not SIGPIPE. */
int frame_write(int fd, const void *body, size_t len);

/*
 * Read one frame from blocking FD.  The body (at most CAP bytes) is returned in
 * *body, malloc'd, owned by the caller.  TIMEOUT_MS < 0 waits forever; else
 * each wait for bytes is bounded.  Errors: -EMSGSIZE (declared length > cap;
 * drop the connection), -ECONNRESET (EOF, including a clean close before a
 * header: check *len is untouched), -ETIMEDOUT, -ENOMEM, other -errno.
 */
int frame_read(int fd, size_t cap, int timeout_ms, void **body, size_t *len);

/*
 * For event loops: given HAVE buffered bytes at BUF, return 1 and the body
 * length if a complete frame is there (the body starts at BUF + FRAME_HDR),
 * 0 if more bytes are needed, -EMSGSIZE if the header exceeds CAP.
 */
int frame_peek(const uint8_t *buf, size_t have, size_t cap, size_t *body_len);

/*
 * Check that BUF[0..LEN) is exactly one well-formed msgpack object with
 * nesting at most MAX_DEPTH and at most MAX_OBJECTS objects in total, whose
 * container counts and string/bin lengths are covered by the bytes present.
 * Returns 0 or -EBADMSG.
 */
int mp_validate(const void *buf, size_t len, unsigned max_depth, size_t max_objects);

/* mp_validate() then msgpack_unpack_next() into OUT (caller initialised it with
 * msgpack_unpacked_init and destroys it).  Returns 0 or -EBADMSG. */
int mp_decode(const void *buf, size_t len, unsigned max_depth, size_t max_objects,
              msgpack_unpacked *out);

/* Look up string key KEY in map OBJ; NULL if OBJ is not a map or has no KEY. */
const msgpack_object *mp_map_get(const msgpack_object *obj, const char *key);

/* Typed getters: 0, -ENOENT if absent, -EBADMSG if of the wrong type.
 * Returned pointers point into the unpacked object (valid while it lives). */
int mp_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len);
int mp_get_bin(const msgpack_object *map, const char *key, const void **p, size_t *len);
int mp_get_uint(const msgpack_object *map, const char *key, uint64_t *v);
int mp_get_bool(const msgpack_object *map, const char *key, int *v);

/* Copy a str object into a NUL-terminated malloc'd string; rejects embedded
 * NULs.  Returns 0, -EBADMSG or -ENOMEM. */
int mp_strdup(const msgpack_object *o, char **out);

/* Pack a NUL-terminated string. */
int mp_pack_cstr(msgpack_packer *pk, const char *s);

#endif
