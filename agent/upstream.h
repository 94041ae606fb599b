/*
 * upstream.h - delivering one batch of records to the configured upstream.
 *
 *   https://HOST/PATH                     POST application/msgpack (body below),
 *                                         Authorization: Bearer <project API key>,
 *                                         Idempotency-Key: <batch id>; TLS >= 1.2,
 *                                         peer and host verified, ca_file, pinned_pubkey
 *   clickhouse+http(s)://HOST:PORT/DB.TABLE   CREATE TABLE IF NOT EXISTS (once), then
 *                                         INSERT ... FORMAT JSONEachRow over HTTP
 *   file://DIR                            DIR/<project>/<batch id>.msgpack, written
 *                                         atomically; `tracevault-agent dump` reads it
 *
 * Batch body (https and file): a msgpack map
 *   { "batch_id": str, "project": str, "records": [ record map, ... ] }
 * The agent only dials out; nothing here listens.
 */
#ifndef TV_AGENT_UPSTREAM_H
#define TV_AGENT_UPSTREAM_H

#include <msgpack.h>
#include <stddef.h>

#include "agent/queue.h"

struct tv_config;
struct keys;
struct upstream;

enum up_result {
    UP_OK = 0,        /* acknowledged: remove from the queue */
    UP_RETRY,         /* transient: back off and send the same batch again */
    UP_REJECT,        /* permanent: dead-letter the batch */
};

struct up_outcome {
    enum up_result result;
    int status;                 /* HTTP status, 0 if none */
    long retry_after_ms;        /* from Retry-After, -1 if none */
    char reason[160];           /* for the log: names the upstream and the reason */
};

/* Parse the [agent] upstream URL and prepare the sink.  KEYS is borrowed.
 * Returns 0, or -EINVAL with ERR naming the URL and the reason. */
int upstream_new(const struct tv_config *cfg, struct keys *keys, struct upstream **out,
                 char *err, size_t errlen);
void upstream_free(struct upstream *u);

/* A project's credentials for one delivery, fetched from keyd by the thread
 * that owns the keys (the main loop): the sending thread never touches
 * keyd.  KEY: the project's API key in guarded memory, or NULL. */
struct up_cred {
    char *key;
    int rc;                     /* keys_apikey's result (0: KEY is set) */
    char err[160];              /* why not, for the log */
};
void upstream_cred(struct upstream *u, const char *project, struct up_cred *c);
/* Wipe and free C's key. */
void upstream_cred_free(struct up_cred *c);

/* Deliver B under idempotency key BATCH_ID with credentials C (from
 * upstream_cred for B's project).  May run on another thread than
 * upstream_cred, one delivery at a time.  B's records are
 * buf[off[0]] .. buf[off[n-1] + len[n-1]], contiguous: a batch may be a
 * view into a larger one. */
void upstream_send(struct upstream *u, const struct qbatch *b, const char *batch_id,
                   const struct up_cred *c, struct up_outcome *o);

/* The msgpack batch body into SB (https and file://). */
int upstream_body(const struct qbatch *b, const char *batch_id, msgpack_sbuffer *sb);

/* `tracevault-agent dump FILE`: print a file:// batch as JSON lines to stdout.
 * Returns 0, or a negative errno with ERR naming the file and the reason. */
int upstream_dump(const char *path, char *err, size_t errlen);

/* Internal: the HTTP(S) sinks (upstream_http.c). */
struct http_sink;
int http_sink_new(const struct tv_config *cfg, struct keys *keys, const char *url,
                  struct http_sink **out, char *err, size_t errlen);
void http_sink_free(struct http_sink *h);
void http_sink_send(struct http_sink *h, const struct qbatch *b, const char *batch_id,
                    const struct up_cred *c, struct up_outcome *o);
struct keys *http_sink_keys(struct http_sink *h);

#endif
