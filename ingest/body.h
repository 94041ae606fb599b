/*
 * body.h - checks and transforms on a request body before it is decoded:
 * gzip inflation with a cap on the inflated size, and a nesting-depth scan
 * of JSON run before any parser sees it (a parser that recurses must never
 * meet 10^5 levels).  No allocation is unbounded: every output is capped by
 * the caller's limit.
 */
#ifndef TV_INGEST_BODY_H
#define TV_INGEST_BODY_H

#include <stddef.h>

/* Inflate gzip (RFC 1952) IN/LEN into a malloc'd buffer of at most MAX bytes
 * (*OUT, *OUTLEN; the caller frees it).  Concatenated members are accepted.
 * Returns 0, -EFBIG when the inflated data would exceed MAX (a gzip bomb
 * stops there: no more than MAX bytes are ever produced), -EBADMSG for data
 * that is not gzip or is truncated, -ENOMEM. */
int body_gunzip(const void *in, size_t len, size_t max, unsigned char **out, size_t *outlen);

/* Scan JSON text for its deepest nesting of arrays and objects (strings and
 * their escapes are skipped).  Returns 0 if the depth never exceeds
 * MAX_DEPTH, -ELOOP if it does (at the first byte past the limit: the scan is
 * linear and uses no memory).  Malformed text is left to the parser. */
int body_json_depth_ok(const char *text, size_t len, int max_depth);

/* 1 if the media type CT (a Content-Type value, parameters allowed) is TYPE,
 * case-insensitively; 0 otherwise.  NULL CT is never a match. */
int body_type_is(const char *ct, const char *type);

#endif
