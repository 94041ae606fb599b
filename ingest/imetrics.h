/*
 * imetrics.h - the gateway's counters, written as a Prometheus textfile in
 * the agent's style (agent/metrics.c; node_exporter's textfile collector
 * reads it).  Counts and sizes only: no project content, no key, no path.
 * All updates are lock-free atomics; any thread may call them.
 */
#ifndef TV_INGEST_IMETRICS_H
#define TV_INGEST_IMETRICS_H

#include <stddef.h>
#include <stdint.h>

enum im_reason {
    IM_UNAUTHORIZED = 0,   /* 401 */
    IM_TOO_LARGE,          /* 413: body, inflated body or converted JSON */
    IM_MALFORMED,          /* 400 */
    IM_TOO_DEEP,           /* 400: nesting */
    IM_UNSUPPORTED,        /* 415 / 404 / 405 */
    IM_OVERLOADED,         /* 429: requests or bytes in flight */
    IM_KEYD_UNAVAILABLE,   /* 503 */
    IM_STORE_FULL,         /* 429/503: ENOSPC, EDQUOT, EFBIG */
    IM_STORE_FAILED,       /* 503: the vault is gone or failing */
    IM_TIMEOUT,            /* the body did not arrive in time */
    IM_REASON_COUNT
};

void im_request(int status, double seconds);
void im_reject(enum im_reason r);
void im_stored(size_t spans, size_t events, size_t rejected_spans, size_t bytes);
void im_received(size_t bytes);
/* A request whose content was already stored (a retry): answered 200. */
void im_duplicate(void);
void im_inflight(long requests_delta, long bytes_delta);

/* Write every counter to PATH atomically (temp file, rename).  0 or -errno. */
int im_write(const char *path);

#endif
