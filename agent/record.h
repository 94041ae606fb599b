/*
 * record.h - THE allowlist: the metadata record that leaves the host.
 *
 * Every field the agent may ship is one row of the table in record.c (name,
 * type, cap, ClickHouse column type); the encoder walks that table and
 * nothing else, so a field that is not in it cannot be shipped.  The table is
 * documented field by field in docs/METADATA.md; keep the two in step.
 *
 * Records are encoded as msgpack maps (queue rows, https and file:// bodies)
 * and converted to JSON for `dump` and ClickHouse's JSONEachRow.
 * Session and user identifiers leave only as keyed BLAKE2b hashes under the
 * project's pseudonym key (from keyd).  record_id is a hash of the file ID,
 * the file generation, the byte position and the event index: the same trace
 * always yields the same id, so a receiver can deduplicate.
 */
#ifndef TV_AGENT_RECORD_H
#define TV_AGENT_RECORD_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/evaluate.h"
#include "agent/parse.h"

#define RECORD_ID_HEX 33            /* 32 hex digits + NUL */
#define RECORD_KEY_LEN 32

/* Where a record comes from and how to pseudonymise it. */
struct record_ctx {
    const char *project;
    const char *file_id;            /* 32 hex */
    uint32_t generation;            /* bumped when a file is truncated/rewritten */
    uint64_t position;              /* byte offset of the document or line */
    uint64_t bytes;                 /* its size */
    uint64_t observed_ms;           /* wall clock when the agent read it */
    const unsigned char *pseudonym_key;   /* RECORD_KEY_LEN bytes */
    const char *key_version;        /* short fingerprint of that key */
    const char *const *assert_names;      /* the project's assert.NAME names */
};

/* record_id of event INDEX at CTX's position into OUT. */
void record_id(const struct record_ctx *ctx, uint32_t index, char out[RECORD_ID_HEX]);

/* Append the msgpack record for event E (index INDEX) with results RES to SB;
 * its id goes to ID.  Returns 0 or -ENOMEM. */
int record_encode_event(const struct record_ctx *ctx, uint32_t index, const struct agent_event *e,
                        const struct eval_result *res, msgpack_sbuffer *sb, char id[RECORD_ID_HEX]);

/* Append the msgpack record of a skipped document: file ID, position, reason
 * and byte count only. */
int record_encode_skipped(const struct record_ctx *ctx, enum skip_reason reason,
                          msgpack_sbuffer *sb, char id[RECORD_ID_HEX]);

/* A decoded msgpack record (map) as a JSON object (new reference) or NULL. */
json_t *record_object_to_json(const msgpack_object *o);

/* Decode one msgpack record into a JSON object (new reference) or NULL. */
json_t *record_to_json(const char *buf, size_t len);

/* Like record_to_json but with every allowlisted column present (absent
 * numbers as -1, strings "", booleans as 0/1/-1): ClickHouse rows. */
json_t *record_to_row(const char *buf, size_t len);

/* The ClickHouse DDL for TABLE (db.table) into a malloc'd string. */
char *record_clickhouse_ddl(const char *table);

/* Keyed hash helper (exposed for tests): hex of BLAKE2b-128(KEY, DOMAIN || S). */
void record_keyed_hash(const unsigned char key[RECORD_KEY_LEN], const char *domain, const char *s,
                       char out[33]);

#endif
