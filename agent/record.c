/*
 * record.c - the one allowlist of shipped fields and its encoders (record.h).
 *
 * Layout: the FIELDS table; a small value holder (struct rvals) that the two
 * builders fill; emit() which packs exactly the table's fields that are set;
 * then msgpack -> JSON conversion and the ClickHouse DDL, both driven by the
 * same table.
 */
#include "config.h"
#include "agent/record.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rtype { RT_STR, RT_U64, RT_I64, RT_F64, RT_BOOL, RT_STRS, RT_BOOLS };

enum rf {
    RF_RECORD_ID, RF_FILE_ID, RF_PROJECT, RF_FORMAT, RF_POSITION, RF_INDEX, RF_BYTES,
    RF_SKIP_REASON, RF_OBSERVED_MS,
    RF_EVENT_HASH, RF_PARENT_HASH, RF_TRACE_ID, RF_SPAN_ID, RF_PARENT_SPAN_ID,
    RF_SESSION_HASH, RF_USER_HASH, RF_KEY_VERSION,
    RF_START_NS, RF_END_NS, RF_DURATION_MS,
    RF_OPERATION, RF_MODEL, RF_PROVIDER, RF_STATUS, RF_ERROR_TYPE, RF_FINISH_REASON,
    RF_INPUT_TOKENS, RF_OUTPUT_TOKENS, RF_TOTAL_TOKENS, RF_COST_USD, RF_COST_SOURCE,
    RF_INPUT_BYTES, RF_OUTPUT_BYTES,
    RF_LATENCY_OK, RF_SLO_MS,
    RF_PII_EMAIL, RF_PII_PHONE, RF_PII_CARD, RF_PII_SSN, RF_PII_IP, RF_PII_API_KEY, RF_PII_TOTAL,
    RF_JSON_VALID, RF_REFUSAL, RF_OUTPUT_CHARS, RF_LENGTH_OK,
    RF_ASSERT_NAMES, RF_ASSERT_PASSED,
    RF_COUNT
};

/* THE allowlist.  cap: longest string (bytes) or array length. */
static const struct rfield {
    const char *name;
    enum rtype type;
    unsigned cap;
    const char *ch_type;
} FIELDS[RF_COUNT] = {
    [RF_RECORD_ID] = { "record_id", RT_STR, 32, "String" },
    [RF_FILE_ID] = { "file_id", RT_STR, 32, "String" },
    [RF_PROJECT] = { "project", RT_STR, 63, "String" },
    [RF_FORMAT] = { "format", RT_STR, 16, "String" },
    [RF_POSITION] = { "position", RT_U64, 0, "UInt64" },
    [RF_INDEX] = { "event_index", RT_U64, 0, "UInt32" },
    [RF_BYTES] = { "bytes", RT_U64, 0, "UInt64" },
    [RF_SKIP_REASON] = { "skip_reason", RT_STR, 24, "String" },
    [RF_OBSERVED_MS] = { "observed_ms", RT_U64, 0, "UInt64" },
    [RF_EVENT_HASH] = { "event_hash", RT_STR, 32, "String" },
    [RF_PARENT_HASH] = { "parent_hash", RT_STR, 32, "String" },
    [RF_TRACE_ID] = { "trace_id", RT_STR, 32, "String" },
    [RF_SPAN_ID] = { "span_id", RT_STR, 16, "String" },
    [RF_PARENT_SPAN_ID] = { "parent_span_id", RT_STR, 16, "String" },
    [RF_SESSION_HASH] = { "session_hash", RT_STR, 32, "String" },
    [RF_USER_HASH] = { "user_hash", RT_STR, 32, "String" },
    [RF_KEY_VERSION] = { "key_version", RT_STR, 16, "String" },
    [RF_START_NS] = { "start_time_ns", RT_I64, 0, "Int64" },
    [RF_END_NS] = { "end_time_ns", RT_I64, 0, "Int64" },
    [RF_DURATION_MS] = { "duration_ms", RT_F64, 0, "Float64" },
    [RF_OPERATION] = { "operation", RT_STR, 32, "String" },
    [RF_MODEL] = { "model", RT_STR, 64, "String" },
    [RF_PROVIDER] = { "provider", RT_STR, 64, "String" },
    [RF_STATUS] = { "status", RT_STR, 8, "String" },
    [RF_ERROR_TYPE] = { "error_type", RT_STR, 64, "String" },
    [RF_FINISH_REASON] = { "finish_reason", RT_STR, 32, "String" },
    [RF_INPUT_TOKENS] = { "input_tokens", RT_I64, 0, "Int64" },
    [RF_OUTPUT_TOKENS] = { "output_tokens", RT_I64, 0, "Int64" },
    [RF_TOTAL_TOKENS] = { "total_tokens", RT_I64, 0, "Int64" },
    [RF_COST_USD] = { "cost_usd", RT_F64, 0, "Float64" },
    [RF_COST_SOURCE] = { "cost_source", RT_STR, 16, "String" },
    [RF_INPUT_BYTES] = { "input_bytes", RT_U64, 0, "UInt64" },
    [RF_OUTPUT_BYTES] = { "output_bytes", RT_U64, 0, "UInt64" },
    [RF_LATENCY_OK] = { "latency_ok", RT_BOOL, 0, "Int8" },
    [RF_SLO_MS] = { "slo_ms", RT_U64, 0, "UInt32" },
    [RF_PII_EMAIL] = { "pii_email", RT_U64, 0, "UInt32" },
    [RF_PII_PHONE] = { "pii_phone", RT_U64, 0, "UInt32" },
    [RF_PII_CARD] = { "pii_card", RT_U64, 0, "UInt32" },
    [RF_PII_SSN] = { "pii_ssn", RT_U64, 0, "UInt32" },
    [RF_PII_IP] = { "pii_ip", RT_U64, 0, "UInt32" },
    [RF_PII_API_KEY] = { "pii_api_key", RT_U64, 0, "UInt32" },
    [RF_PII_TOTAL] = { "pii_total", RT_U64, 0, "UInt32" },
    [RF_JSON_VALID] = { "json_valid", RT_BOOL, 0, "Int8" },
    [RF_REFUSAL] = { "refusal", RT_BOOL, 0, "Int8" },
    [RF_OUTPUT_CHARS] = { "output_chars", RT_U64, 0, "UInt64" },
    [RF_LENGTH_OK] = { "length_ok", RT_BOOL, 0, "Int8" },
    [RF_ASSERT_NAMES] = { "assert_names", RT_STRS, EVAL_MAX_ASSERTIONS, "Array(String)" },
    [RF_ASSERT_PASSED] = { "assert_passed", RT_BOOLS, EVAL_MAX_ASSERTIONS, "Array(UInt8)" },
};

#define ASSERT_NAME_CAP 64

struct rvals {
    uint8_t set[RF_COUNT];
    const char *s[RF_COUNT];
    uint64_t u[RF_COUNT];
    int64_t i[RF_COUNT];
    double f[RF_COUNT];
    const char *const *strs;
    const uint8_t *bools;
    unsigned n_arr;
};

static void put_s(struct rvals *v, enum rf f, const char *s)
{
    if (s && *s) {
        v->set[f] = 1;
        v->s[f] = s;
    }
}
static void put_u(struct rvals *v, enum rf f, uint64_t x) { v->set[f] = 1; v->u[f] = x; }
static void put_i(struct rvals *v, enum rf f, int64_t x) { v->set[f] = 1; v->i[f] = x; }
static void put_f(struct rvals *v, enum rf f, double x) { v->set[f] = 1; v->f[f] = x; }
static void put_b(struct rvals *v, enum rf f, int tri)
{
    if (tri >= 0) {
        v->set[f] = 1;
        v->u[f] = tri != 0;
    }
}

static void pack_str(msgpack_packer *pk, const char *s, size_t cap)
{
    size_t n = strlen(s);
    if (n > cap) {
        n = cap;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;                            /* never cut a UTF-8 sequence */
    }
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Pack the set fields of V, in table order, as one map. */
static int emit(const struct rvals *v, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    unsigned n = 0;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    for (int f = 0; f < RF_COUNT; f++)
        n += v->set[f];
    if (msgpack_pack_map(&pk, n) != 0)
        return -ENOMEM;
    for (int f = 0; f < RF_COUNT; f++) {
        const struct rfield *d = &FIELDS[f];
        if (!v->set[f])
            continue;
        pack_str(&pk, d->name, 64);
        switch (d->type) {
        case RT_STR: pack_str(&pk, v->s[f], d->cap); break;
        case RT_U64: msgpack_pack_uint64(&pk, v->u[f]); break;
        case RT_I64: msgpack_pack_int64(&pk, v->i[f]); break;
        case RT_F64: msgpack_pack_double(&pk, v->f[f]); break;
        case RT_BOOL:
            if (v->u[f]) msgpack_pack_true(&pk); else msgpack_pack_false(&pk);
            break;
        case RT_STRS: {
            unsigned k = v->n_arr < d->cap ? v->n_arr : d->cap;
            msgpack_pack_array(&pk, k);
            for (unsigned j = 0; j < k; j++)
                pack_str(&pk, v->strs[j], ASSERT_NAME_CAP);
            break;
        }
        case RT_BOOLS: {
            unsigned k = v->n_arr < d->cap ? v->n_arr : d->cap;
            msgpack_pack_array(&pk, k);
            for (unsigned j = 0; j < k; j++)
                if (v->bools[j]) msgpack_pack_true(&pk); else msgpack_pack_false(&pk);
            break;
        }
        }
    }
    return 0;
}

/* ---- the checks every string from a trace passes ------------------------- */

static const char *const checked_names[CF_COUNT] = {
    [CF_OPERATION] = "operation", [CF_MODEL] = "model", [CF_PROVIDER] = "provider",
    [CF_ERROR_TYPE] = "error_type", [CF_FINISH_REASON] = "finish_reason",
};

const char *record_checked_field_name(enum checked_field f)
{
    return (unsigned)f < CF_COUNT ? checked_names[f] : "unknown";
}

const char *record_drop_reason_name(enum drop_reason r)
{
    return r == DROP_SHAPE ? "shape" : r == DROP_PII ? "pii" : "unknown";
}

static int all_in(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c < 0x80 && isalnum(c)) && !strchr(extra, c))
            return 0;
    }
    return 1;
}

/* One segment of an error type: lower_snake, UPPER_SNAKE (optionally with a
 * leading "_", as OTel's "_OTHER"), CamelCase without "_", or a 3-digit
 * status.  Mixed forms ("Patient_HIV_positive_Error") are sentences written
 * as identifiers and are refused. */
static int code_segment(const char *s, size_t n, int last)
{
    int lower = 1, upper = 1, camel, digits = 1;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c < 0x80 && (isalnum(c) || c == '_')))
            return 0;
        if (!(islower(c) || isdigit(c) || c == '_') || (i == 0 && !islower(c)))
            lower = 0;
        if (!(isupper(c) || isdigit(c) || c == '_') || (i == 0 && isdigit(c)))
            upper = 0;
        if (!isdigit(c))
            digits = 0;
    }
    camel = isupper((unsigned char)s[0]) && all_in(s, n, "");
    if (!last)
        return lower;                   /* module path: lowercase only */
    return lower || upper || camel || (digits && n == 3);
}

static int error_type_shape(const char *s, size_t n)
{
    const char *seg = s, *dot;

    while ((dot = memchr(seg, '.', n - (size_t)(seg - s)))) {
        if (!code_segment(seg, (size_t)(dot - seg), 0))
            return 0;
        seg = dot + 1;
    }
    return code_segment(seg, n - (size_t)(seg - s), 1);
}

int record_check(enum checked_field f, const char *s, enum drop_reason *why)
{
    size_t n = strlen(s);
    uint32_t pii[PII_KINDS] = { 0 };
    int shape;

    switch (f) {
    case CF_OPERATION:
        shape = n <= 32 && all_in(s, n, "_.-");
        break;
    case CF_MODEL:
        shape = n <= 64 && isalnum((unsigned char)s[0]) && all_in(s, n, "._:/-");
        break;
    case CF_PROVIDER:
        shape = n <= 64 && isalnum((unsigned char)s[0]) && all_in(s, n, "._-");
        break;
    case CF_FINISH_REASON:
        shape = n <= 32 && all_in(s, n, "_");
        break;
    case CF_ERROR_TYPE:
        shape = n <= 64 && error_type_shape(s, n);
        break;
    default:
        shape = 0;
    }
    if (!shape || n == 0) {
        *why = DROP_SHAPE;
        return 0;
    }
    eval_pii_scan(s, n, pii);
    for (int k = 0; k < PII_KINDS; k++)
        if (pii[k]) {
            *why = DROP_PII;
            return 0;
        }
    return 1;
}

/* Put S as field RF if it passes record_check as CF; else count the drop. */
static void put_checked(struct rvals *v, enum rf rf, enum checked_field cf, const char *s,
                        struct record_drops *drops)
{
    enum drop_reason why;

    if (!s[0])
        return;
    if (record_check(cf, s, &why))
        put_s(v, rf, s);
    else if (drops)
        drops->n[cf][why]++;
}

void record_keyed_hash(const unsigned char key[RECORD_KEY_LEN], const char *domain, const char *s,
                       char out[33])
{
    crypto_generichash_state st;
    unsigned char h[16];

    crypto_generichash_init(&st, key, RECORD_KEY_LEN, sizeof(h));
    crypto_generichash_update(&st, (const unsigned char *)domain, strlen(domain) + 1);
    crypto_generichash_update(&st, (const unsigned char *)s, strlen(s));
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, 33, h, sizeof(h));
    sodium_memzero(&st, sizeof(st));
}

void record_id(const struct record_ctx *ctx, uint32_t index, char out[RECORD_ID_HEX])
{
    crypto_generichash_state st;
    unsigned char h[16], le[8];

    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const unsigned char *)"tracevault-record-v1", 21);
    crypto_generichash_update(&st, (const unsigned char *)ctx->file_id, strlen(ctx->file_id));
    for (int k = 0; k < 4; k++)
        le[k] = (unsigned char)(ctx->generation >> (8 * k));
    crypto_generichash_update(&st, le, 4);
    for (int k = 0; k < 8; k++)
        le[k] = (unsigned char)(ctx->position >> (8 * k));
    crypto_generichash_update(&st, le, 8);
    for (int k = 0; k < 4; k++)
        le[k] = (unsigned char)(index >> (8 * k));
    crypto_generichash_update(&st, le, 4);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, RECORD_ID_HEX, h, sizeof(h));
}

static void put_common(struct rvals *v, const struct record_ctx *ctx, uint32_t index,
                       char id[RECORD_ID_HEX])
{
    record_id(ctx, index, id);
    put_s(v, RF_RECORD_ID, id);
    put_s(v, RF_FILE_ID, ctx->file_id);
    put_s(v, RF_PROJECT, ctx->project);
    put_u(v, RF_POSITION, ctx->position);
    put_u(v, RF_INDEX, index);
    put_u(v, RF_BYTES, ctx->bytes);
    put_u(v, RF_OBSERVED_MS, ctx->observed_ms);
}

int record_encode_skipped(const struct record_ctx *ctx, enum skip_reason reason,
                          msgpack_sbuffer *sb, char id[RECORD_ID_HEX])
{
    struct rvals v;

    memset(&v, 0, sizeof(v));
    put_common(&v, ctx, 0, id);
    put_s(&v, RF_FORMAT, "skipped");
    put_s(&v, RF_SKIP_REASON, skip_reason_name(reason));
    return emit(&v, sb);
}

int record_encode_event(const struct record_ctx *ctx, uint32_t index, const struct agent_event *e,
                        const struct eval_result *res, msgpack_sbuffer *sb, char id[RECORD_ID_HEX],
                        struct record_drops *drops)
{
    static const char *const formats[] = { "", "honeyhive", "otlp", "openinference" };
    static const char *const statuses[] = { "unset", "ok", "error" };
    static const char *const cost_sources[] = { "", "reported", "price_table" };
    char sess[33], user[33], evh[33], parh[33];
    struct rvals v;
    uint32_t total = 0;

    memset(&v, 0, sizeof(v));
    put_common(&v, ctx, index, id);
    put_s(&v, RF_FORMAT, formats[e->format <= EV_OPENINFERENCE ? e->format : 0]);
    put_s(&v, RF_TRACE_ID, e->trace_id);
    put_s(&v, RF_SPAN_ID, e->span_id);
    put_s(&v, RF_PARENT_SPAN_ID, e->parent_span_id);
    if (ctx->pseudonym_key) {
        if (e->event_id[0]) {
            record_keyed_hash(ctx->pseudonym_key, RECORD_HASH_EVENT, e->event_id, evh);
            put_s(&v, RF_EVENT_HASH, evh);
        }
        if (e->parent_id[0]) {
            record_keyed_hash(ctx->pseudonym_key, RECORD_HASH_EVENT, e->parent_id, parh);
            put_s(&v, RF_PARENT_HASH, parh);
        }
        if (e->session_id[0]) {
            record_keyed_hash(ctx->pseudonym_key, "session", e->session_id, sess);
            put_s(&v, RF_SESSION_HASH, sess);
        }
        if (e->user_id[0]) {
            record_keyed_hash(ctx->pseudonym_key, "user", e->user_id, user);
            put_s(&v, RF_USER_HASH, user);
        }
        put_s(&v, RF_KEY_VERSION, ctx->key_version);
    }
    if (e->has_start)
        put_i(&v, RF_START_NS, e->start_ns);
    if (e->has_end)
        put_i(&v, RF_END_NS, e->end_ns);
    if (e->has_duration)
        put_f(&v, RF_DURATION_MS, e->duration_ms);
    put_checked(&v, RF_OPERATION, CF_OPERATION, e->operation, drops);
    put_checked(&v, RF_MODEL, CF_MODEL, e->model, drops);
    put_checked(&v, RF_PROVIDER, CF_PROVIDER, e->provider, drops);
    put_s(&v, RF_STATUS, statuses[e->status <= EV_STATUS_ERROR ? e->status : 0]);
    put_checked(&v, RF_ERROR_TYPE, CF_ERROR_TYPE, e->error_type, drops);
    put_checked(&v, RF_FINISH_REASON, CF_FINISH_REASON, e->finish_reason, drops);
    if (res->input_tokens >= 0)
        put_i(&v, RF_INPUT_TOKENS, res->input_tokens);
    if (res->output_tokens >= 0)
        put_i(&v, RF_OUTPUT_TOKENS, res->output_tokens);
    if (res->total_tokens >= 0)
        put_i(&v, RF_TOTAL_TOKENS, res->total_tokens);
    if (res->cost_usd >= 0) {
        put_f(&v, RF_COST_USD, res->cost_usd);
        put_s(&v, RF_COST_SOURCE, cost_sources[res->cost_source <= COST_PRICE_TABLE ? res->cost_source : 0]);
    }
    put_u(&v, RF_INPUT_BYTES, e->input.len);
    put_u(&v, RF_OUTPUT_BYTES, e->output.len);
    put_b(&v, RF_LATENCY_OK, res->latency_ok);
    if (res->latency_ok >= 0)
        put_u(&v, RF_SLO_MS, (uint64_t)res->slo_ms);
    if (res->pii_scanned) {
        static const enum rf pf[PII_KINDS] = { RF_PII_EMAIL, RF_PII_PHONE, RF_PII_CARD,
                                               RF_PII_SSN, RF_PII_IP, RF_PII_API_KEY };
        for (int k = 0; k < PII_KINDS; k++) {
            put_u(&v, pf[k], res->pii[k]);
            total += res->pii[k];
        }
        put_u(&v, RF_PII_TOTAL, total);
    }
    put_b(&v, RF_JSON_VALID, res->json_valid);
    put_b(&v, RF_REFUSAL, res->refusal);
    if (res->output_chars >= 0)
        put_u(&v, RF_OUTPUT_CHARS, (uint64_t)res->output_chars);
    put_b(&v, RF_LENGTH_OK, res->length_ok);
    if (res->n_assertions > 0 && ctx->assert_names) {
        v.set[RF_ASSERT_NAMES] = v.set[RF_ASSERT_PASSED] = 1;
        v.strs = ctx->assert_names;
        v.bools = res->assert_passed;
        v.n_arr = res->n_assertions;
    }
    return emit(&v, sb);
}

/* ---- decoding ----------------------------------------------------------- */

static json_t *obj_to_json(const msgpack_object *o, int depth)
{
    json_t *j;

    if (depth > 4)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer(o->via.u64 > INT64_MAX ? INT64_MAX : (json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        j = json_array();
        for (uint32_t i = 0; j && i < o->via.array.size; i++) {
            json_t *x = obj_to_json(&o->via.array.ptr[i], depth + 1);
            if (!x || json_array_append_new(j, x) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    case MSGPACK_OBJECT_MAP:
        j = json_object();
        for (uint32_t i = 0; j && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            char key[65];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof(key)) {
                json_decref(j);
                return NULL;
            }
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            json_t *x = obj_to_json(&kv->val, depth + 1);
            if (!x || json_object_set_new(j, key, x) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    default:
        return NULL;
    }
}

json_t *record_object_to_json(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_MAP ? obj_to_json(o, 0) : NULL;
}

json_t *record_to_json(const char *buf, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    json_t *j = NULL;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP)
        j = obj_to_json(&u.data, 0);
    msgpack_unpacked_destroy(&u);
    return j;
}

json_t *record_to_row(const char *buf, size_t len)
{
    json_t *j = record_to_json(buf, len), *row;

    if (!j)
        return NULL;
    row = json_object();
    for (int f = 0; row && f < RF_COUNT; f++) {
        const struct rfield *d = &FIELDS[f];
        json_t *x = json_object_get(j, d->name), *y;
        switch (d->type) {
        case RT_STR: y = json_is_string(x) ? json_incref(x) : json_string(""); break;
        case RT_U64: y = json_is_integer(x) ? json_incref(x) : json_integer(0); break;
        case RT_I64: y = json_is_integer(x) ? json_incref(x) : json_integer(-1); break;
        case RT_F64: y = json_is_number(x) ? json_real(json_number_value(x)) : json_real(-1); break;
        case RT_BOOL: y = json_integer(json_is_boolean(x) ? json_is_true(x) : -1); break;
        case RT_STRS: y = json_is_array(x) ? json_incref(x) : json_array(); break;
        case RT_BOOLS: {
            size_t i;
            json_t *b;
            y = json_array();
            json_array_foreach(x, i, b)
                json_array_append_new(y, json_integer(json_is_true(b)));
            break;
        }
        default: y = json_null();
        }
        json_object_set_new(row, d->name, y);
    }
    json_decref(j);
    return row;
}

char *record_clickhouse_ddl(const char *table)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);

    if (!s)
        return NULL;
    len += (size_t)snprintf(s + len, cap - len, "CREATE TABLE IF NOT EXISTS %s (", table);
    for (int f = 0; f < RF_COUNT; f++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s %s", f ? ", " : "", FIELDS[f].name,
                                FIELDS[f].ch_type);
    snprintf(s + len, cap - len, ") ENGINE = ReplacingMergeTree() ORDER BY record_id");
    return s;
}
