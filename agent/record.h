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
 * Identifiers that can carry user data (event, parent, session and user ids,
 * OTel session.id / user.id / gen_ai.conversation.id, association
 * properties) leave only as keyed BLAKE2b hashes under the project's
 * pseudonym key (from keyd); an event id and a parent id hash in the same
 * domain, so parent_hash of a child equals event_hash of its parent.  OTLP
 * trace and span ids (random by the OTel spec) leave as they are.
 *
 * Every other string taken from a trace (operation, model, provider, error
 * type, finish reason) is checked twice before it is packed: a strict shape
 * for its field (record_check) and the PII detectors.  A failing string is
 * dropped whole, never cut to fit, and counted in struct record_drops.  record_id is a hash of the file ID,
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

/* The strings from traces that are checked before shipping. */
enum checked_field { CF_OPERATION = 0, CF_MODEL, CF_PROVIDER, CF_ERROR_TYPE, CF_FINISH_REASON,
                     CF_COUNT };
enum drop_reason { DROP_SHAPE = 0, DROP_PII, DROP_REASONS };

/* Fields dropped while encoding, by field and reason (added to metrics). */
struct record_drops {
    uint32_t n[CF_COUNT][DROP_REASONS];
};

/* "operation", "model", ... and "shape", "pii" (metric labels). */
const char *record_checked_field_name(enum checked_field f);
const char *record_drop_reason_name(enum drop_reason r);

/* 1 if S may ship as field F; else 0 with *WHY saying which check failed.
 * Shapes: operation [A-Za-z0-9_.-], at most 32 bytes; model [A-Za-z0-9._:/-]
 * and provider [A-Za-z0-9._-], at most 64, starting with a letter or digit;
 * finish reason [A-Za-z0-9_], at most 32; error type a code-like identifier
 * (lower_snake, UPPER_SNAKE, CamelCase or 3-digit status, optionally after
 * dotted lowercase module names), at most 64.  Then no PII detector may
 * match. */
int record_check(enum checked_field f, const char *s, enum drop_reason *why);

/* record_id of event INDEX at CTX's position into OUT. */
void record_id(const struct record_ctx *ctx, uint32_t index, char out[RECORD_ID_HEX]);

/* Append the msgpack record for event E (index INDEX) with results RES to SB;
 * its id goes to ID; fields that failed record_check are added to DROPS
 * (NULL: not counted).  Returns 0 or -ENOMEM. */
int record_encode_event(const struct record_ctx *ctx, uint32_t index, const struct agent_event *e,
                        const struct eval_result *res, msgpack_sbuffer *sb, char id[RECORD_ID_HEX],
                        struct record_drops *drops);

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

/* Keyed hash: hex of BLAKE2b-128(KEY, DOMAIN || NUL || S).  Domains:
 * RECORD_HASH_EVENT (event and parent ids), "session", "user". */
#define RECORD_HASH_EVENT "event"
void record_keyed_hash(const unsigned char key[RECORD_KEY_LEN], const char *domain, const char *s,
                       char out[33]);

#endif
