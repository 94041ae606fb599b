/*
 * test_agent_record.c - the allowlisted record: deterministic record_ids,
 * keyed hashes, exactly the documented fields, skipped records, the
 * ClickHouse row and DDL, and the canary test: a unique canary in every
 * content field of every accepted format appears in no encoded record.
 */
#define _GNU_SOURCE
#include "config.h"
#include "agent/evaluate.h"
#include "agent/parse.h"
#include "agent/price.h"
#include "agent/record.h"
#include "lib/config.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* docs/METADATA.md, in order. */
static const char *const allowlist[] = {
    "record_id", "file_id", "project", "format", "position", "event_index", "bytes",
    "skip_reason", "observed_ms", "event_hash", "parent_hash", "trace_id", "span_id",
    "parent_span_id", "session_hash", "user_hash", "key_version", "start_time_ns",
    "end_time_ns", "duration_ms", "operation", "model", "provider", "status", "error_type",
    "finish_reason", "input_tokens", "output_tokens", "total_tokens", "cost_usd",
    "cost_source", "input_bytes", "output_bytes", "latency_ok", "slo_ms", "pii_email",
    "pii_phone", "pii_card", "pii_ssn", "pii_ip", "pii_api_key", "pii_total", "json_valid",
    "refusal", "output_chars", "length_ok", "assert_names", "assert_passed",
};
#define N_ALLOW (sizeof(allowlist) / sizeof(allowlist[0]))

static unsigned char key[RECORD_KEY_LEN];
static const char *names[] = { "has_refund", NULL };

static int allowed(const char *k)
{
    for (size_t i = 0; i < N_ALLOW; i++)
        if (!strcmp(allowlist[i], k))
            return 1;
    return 0;
}

static struct record_ctx ctx_for(uint64_t pos)
{
    struct record_ctx c;
    memset(&c, 0, sizeof(c));
    c.project = "checkout";
    c.file_id = "00112233445566778899aabbccddeeff";
    c.position = pos;
    c.bytes = 100;
    c.observed_ms = 1;
    c.pseudonym_key = key;
    c.key_version = "abcd1234";
    c.assert_names = names;
    return c;
}

/* Parse DOC, evaluate and encode every event; returns the concatenated
 * msgpack bytes and their JSON renderings in *JSON (malloc'd). */
static msgpack_sbuffer encode_all(const char *doc, struct evaluator *ev, char **json, size_t *n_rec)
{
    struct parse_limits lim;
    struct parse_result pr;
    msgpack_sbuffer all;
    size_t jl = 0;
    char *js = calloc(1, 1);

    msgpack_sbuffer_init(&all);
    parse_limits_default(&lim);
    *n_rec = 0;
    if (parse_document(doc, strlen(doc), &lim, &pr) != 0)
        return all;
    struct record_ctx c = ctx_for(0);
    for (size_t i = 0; i < (pr.skip ? 1 : pr.n); i++) {
        msgpack_sbuffer one;
        struct eval_result res;
        char id[RECORD_ID_HEX];
        msgpack_sbuffer_init(&one);
        if (pr.skip)
            record_encode_skipped(&c, pr.skip, &one, id);
        else {
            evaluator_run(ev, &pr.ev[i], &res);
            record_encode_event(&c, (uint32_t)i, &pr.ev[i], &res, &one, id, NULL);
        }
        msgpack_sbuffer_write(&all, one.data, one.size);
        json_t *j = record_to_json(one.data, one.size);
        char *s = j ? json_dumps(j, JSON_COMPACT) : strdup("(undecodable)");
        js = realloc(js, jl + strlen(s) + 2);
        memcpy(js + jl, s, strlen(s));
        jl += strlen(s);
        js[jl++] = '\n';
        js[jl] = '\0';
        free(s);
        json_decref(j);
        msgpack_sbuffer_destroy(&one);
        (*n_rec)++;
    }
    parse_result_release(&pr);
    *json = js;
    return all;
}

static const char *hh_canary =
    "{\"event_id\": \"ev-1\", \"session_id\": \"CANARY_HH_SESSION_91\", \"parent_id\": \"p-1\","
    " \"project\": \"CANARY_HH_PROJECT_FIELD_02\", \"source\": \"CANARY_HH_SOURCE_03\","
    " \"event_type\": \"model\", \"event_name\": \"CANARY_HH_EVENT_NAME_04\","
    " \"start_time\": 1763790000123, \"duration\": 50,"
    " \"error\": \"TimeoutError: CANARY_HH_ERROR_MESSAGE_05\","
    " \"config\": {\"provider\": \"openai\", \"model\": \"gpt-4o\", \"temperature\": 0.1,"
    "   \"template\": [{\"role\": \"system\", \"content\": \"CANARY_HH_TEMPLATE_06\"}],"
    "   \"system_prompt\": \"CANARY_HH_CONFIG_PROMPT_07\"},"
    " \"inputs\": {\"chat_history\": [{\"role\": \"user\", \"content\": \"CANARY_HH_INPUT_08 refund\"}],"
    "   \"CANARY_HH_INPUT_KEY_09\": \"x\"},"
    " \"outputs\": {\"content\": \"CANARY_HH_OUTPUT_10 refund\", \"extra\": \"CANARY_HH_OUTPUT_EXTRA_11\"},"
    " \"metadata\": {\"note\": \"CANARY_HH_METADATA_12\", \"user_id\": \"CANARY_HH_META_USER_13\"},"
    " \"metrics\": {\"prompt_tokens\": 5, \"completion_tokens\": 6, \"custom\": \"CANARY_HH_METRICS_14\"},"
    " \"feedback\": {\"comment\": \"CANARY_HH_FEEDBACK_15\"},"
    " \"user_properties\": {\"user_id\": \"CANARY_HH_USER_16\", \"email\": \"CANARY_HH_EMAIL_17@example.com\"}}";

static const char *otlp_canary =
    "{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"service.name\","
    "   \"value\": {\"stringValue\": \"CANARY_OT_SERVICE_21\"}}]},"
    " \"scopeSpans\": [{\"scope\": {\"name\": \"CANARY_OT_SCOPE_22\"}, \"spans\": [{"
    "  \"traceId\": \"5b8efff798038103d269b633813fc60c\", \"spanId\": \"eee19b7ec3c1b174\","
    "  \"name\": \"CANARY_OT_SPAN_NAME_23\", \"startTimeUnixNano\": \"1\", \"endTimeUnixNano\": \"2\","
    "  \"attributes\": ["
    "   {\"key\": \"gen_ai.operation.name\", \"value\": {\"stringValue\": \"chat\"}},"
    "   {\"key\": \"gen_ai.request.model\", \"value\": {\"stringValue\": \"gpt-4o\"}},"
    "   {\"key\": \"gen_ai.conversation.id\", \"value\": {\"stringValue\": \"CANARY_OT_CONV_24\"}},"
    "   {\"key\": \"user.id\", \"value\": {\"stringValue\": \"CANARY_OT_USER_25\"}},"
    "   {\"key\": \"gen_ai.input.messages\", \"value\": {\"stringValue\": \"[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"CANARY_OT_INPUT_26\\\"}]}]\"}},"
    "   {\"key\": \"gen_ai.output.messages\", \"value\": {\"stringValue\": \"[{\\\"role\\\":\\\"assistant\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"CANARY_OT_OUTPUT_27\\\"}]}]\"}},"
    "   {\"key\": \"gen_ai.system_instructions\", \"value\": {\"stringValue\": \"CANARY_OT_SYSTEM_28\"}},"
    "   {\"key\": \"app.custom\", \"value\": {\"stringValue\": \"CANARY_OT_CUSTOM_29\"}},"
    "   {\"key\": \"CANARY_OT_ATTR_KEY_30\", \"value\": {\"intValue\": \"3\"}}],"
    "  \"events\": [{\"name\": \"exception\", \"attributes\": ["
    "   {\"key\": \"exception.type\", \"value\": {\"stringValue\": \"ValueError\"}},"
    "   {\"key\": \"exception.message\", \"value\": {\"stringValue\": \"CANARY_OT_EXC_MSG_31\"}}]}],"
    "  \"status\": {\"code\": 2, \"message\": \"CANARY_OT_STATUS_MSG_32\"}}]}]}]}";

static const char *oi_canary =
    "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{"
    "  \"traceId\": \"0af7651916cd43dd8448eb211c80319c\", \"spanId\": \"b7ad6b7169203332\","
    "  \"name\": \"CANARY_OI_NAME_41\", \"startTimeUnixNano\": \"1\", \"endTimeUnixNano\": \"2\","
    "  \"attributes\": ["
    "   {\"key\": \"openinference.span.kind\", \"value\": {\"stringValue\": \"LLM\"}},"
    "   {\"key\": \"llm.model_name\", \"value\": {\"stringValue\": \"gpt-4o-mini\"}},"
    "   {\"key\": \"session.id\", \"value\": {\"stringValue\": \"CANARY_OI_SESSION_42\"}},"
    "   {\"key\": \"user.id\", \"value\": {\"stringValue\": \"CANARY_OI_USER_43\"}},"
    "   {\"key\": \"input.value\", \"value\": {\"stringValue\": \"CANARY_OI_INPUT_44\"}},"
    "   {\"key\": \"output.value\", \"value\": {\"stringValue\": \"CANARY_OI_OUTPUT_45\"}},"
    "   {\"key\": \"llm.input_messages.0.message.content\", \"value\": {\"stringValue\": \"CANARY_OI_MSG_46\"}},"
    "   {\"key\": \"llm.output_messages.0.message.content\", \"value\": {\"stringValue\": \"CANARY_OI_OUTMSG_47\"}},"
    "   {\"key\": \"llm.prompt_template.template\", \"value\": {\"stringValue\": \"CANARY_OI_TEMPLATE_48\"}},"
    "   {\"key\": \"retrieval.documents.0.document.content\", \"value\": {\"stringValue\": \"CANARY_OI_DOC_49\"}},"
    "   {\"key\": \"metadata\", \"value\": {\"stringValue\": \"{\\\"k\\\": \\\"CANARY_OI_META_50\\\"}\"}}],"
    "  \"status\": {\"code\": 1}}]}]}]}";

static void test_canary(struct evaluator *ev)
{
    const char *docs[] = { hh_canary, otlp_canary, oi_canary,
                           "{\"event_type\": \"CANARY_BAD_51\", \"inputs\": [CANARY_BAD_52" };
    const char *what[] = { "HoneyHive", "OTLP gen_ai", "OpenInference", "malformed (skipped)" };

    for (size_t d = 0; d < 4; d++) {
        size_t n;
        char *json = NULL;
        msgpack_sbuffer sb = encode_all(docs[d], ev, &json, &n);
        ok(n >= 1 && strstr(docs[d], "CANARY_") != NULL, "%s: canary document yields %zu records", what[d], n);
        ok(sb.size > 0 && memmem(sb.data, sb.size, "CANARY", 6) == NULL,
           "%s: no canary in the msgpack record bytes", what[d]);
        ok(json && strstr(json, "CANARY") == NULL && strstr(json, "canary") == NULL,
           "%s: no canary in the JSON rendering", what[d]);
        if (d == 0) {
            ok(strstr(json, "\"session_hash\":\"") && strstr(json, "\"user_hash\":\""),
               "HoneyHive: session and user leave as hashes");
            ok(strstr(json, "\"error_type\":\"TimeoutError\""), "HoneyHive: error class kept, message dropped");
            ok(strstr(json, "\"assert_passed\":[true]"), "HoneyHive: assertion evaluated on content");
            ok(strstr(json, "\"pii_email\":1"), "HoneyHive: email counted, not shipped");
        }
        if (d == 1)
            ok(strstr(json, "\"error_type\":\"ValueError\"") && strstr(json, "\"session_hash\""),
               "OTLP: exception type kept, conversation hashed");
        if (d == 3)
            ok(strstr(json, "\"skip_reason\":\"malformed\""), "malformed canary document: skipped record");
        printf("# %s", json ? json : "");
        free(json);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_fields(struct evaluator *ev)
{
    size_t n;
    char *json = NULL;
    msgpack_sbuffer sb = encode_all(hh_canary, ev, &json, &n);
    json_t *j = json_loads(json, JSON_DISABLE_EOF_CHECK, NULL);
    const char *k;
    json_t *v;
    int only = j != NULL;

    json_object_foreach(j, k, v)
        if (!allowed(k)) {
            printf("# field not on the allowlist: %s\n", k);
            only = 0;
        }
    ok(only, "every field of an event record is on the documented allowlist");
    is_int(json_object_size(j), 42, "this event record has 42 fields (no end time, no finish reason)");
    json_decref(j);
    free(json);
    msgpack_sbuffer_destroy(&sb);

    struct record_ctx c = ctx_for(7);
    char id[RECORD_ID_HEX];
    msgpack_sbuffer_init(&sb);
    record_encode_skipped(&c, SKIP_BINARY, &sb, id);
    j = record_to_json(sb.data, sb.size);
    is_int(json_object_size(j), 9, "a skipped record has exactly 9 fields");
    ok(json_object_get(j, "skip_reason") && !strcmp(json_string_value(json_object_get(j, "skip_reason")), "binary"),
       "skip reason");
    is_int(json_integer_value(json_object_get(j, "bytes")), 100, "byte count");
    ok(!json_object_get(j, "model") && !json_object_get(j, "session_hash"), "nothing else");
    json_t *row = record_to_row(sb.data, sb.size);
    is_int(json_object_size(row), N_ALLOW, "ClickHouse row has every column");
    is_int(json_integer_value(json_object_get(row, "input_tokens")), -1, "absent number is -1");
    is_int(json_integer_value(json_object_get(row, "latency_ok")), -1, "absent boolean is -1");
    json_decref(row);
    json_decref(j);
    msgpack_sbuffer_destroy(&sb);

    char *ddl = record_clickhouse_ddl("tv.records");
    ok(ddl && strstr(ddl, "CREATE TABLE IF NOT EXISTS tv.records (record_id String,") &&
       strstr(ddl, "ENGINE = ReplacingMergeTree() ORDER BY record_id"), "ClickHouse DDL");
    free(ddl);
}

/* The hostile document of issue 8: an SSN as event id, an email as model, a
 * diagnosis as error type.  None of the three values may leave; the two
 * metadata strings are counted as dropped, the id leaves only hashed. */
static void test_hostile(struct evaluator *ev)
{
    const char *doc = "{\"event_id\":\"555-12-3456\",\"config\":{\"model\":\"jane.doe@example.com\"},"
                      "\"error\":{\"type\":\"Patient_HIV_positive_Error\"}}";
    const char *values[] = { "555-12-3456", "555", "3456", "jane", "example", "Patient", "HIV" };
    struct parse_limits lim;
    struct parse_result pr;
    struct eval_result res;
    struct record_drops dr;
    msgpack_sbuffer sb;
    char id[RECORD_ID_HEX], h[33];
    int leaked = 0;

    parse_limits_default(&lim);
    msgpack_sbuffer_init(&sb);
    memset(&dr, 0, sizeof(dr));
    struct record_ctx c = ctx_for(0);
    if (parse_document(doc, strlen(doc), &lim, &pr) == 0 && pr.n == 1) {
        evaluator_run(ev, &pr.ev[0], &res);
        record_encode_event(&c, 0, &pr.ev[0], &res, &sb, id, &dr);
    }
    json_t *j = record_to_json(sb.data, sb.size);
    char *js = j ? json_dumps(j, JSON_COMPACT) : strdup("");
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        if (memmem(sb.data, sb.size, values[i], strlen(values[i])) || strstr(js, values[i])) {
            printf("# leaked: %s\n", values[i]);
            leaked++;
        }
    ok(j && leaked == 0, "hostile document: none of its values leaves (%s)", js);
    record_keyed_hash(key, RECORD_HASH_EVENT, "555-12-3456", h);
    ok(json_string_value(json_object_get(j, "event_hash")) &&
       !strcmp(json_string_value(json_object_get(j, "event_hash")), h),
       "the event id leaves only as its keyed hash");
    ok(!json_object_get(j, "model") && !json_object_get(j, "error_type") &&
       json_object_get(j, "status") && !strcmp(json_string_value(json_object_get(j, "status")), "error"),
       "model and error type dropped whole, the status still says error");
    ok(dr.n[CF_MODEL][DROP_SHAPE] == 1 && dr.n[CF_ERROR_TYPE][DROP_SHAPE] == 1,
       "both drops are counted by field and reason");
    free(js);
    json_decref(j);
    parse_result_release(&pr);
    msgpack_sbuffer_destroy(&sb);
}

/* HoneyHive: a session event's id is the session id and its children's
 * parent id: the hashes still join, and no raw id leaves. */
static void test_session_join(struct evaluator *ev)
{
    const char *doc = "[{\"event_id\":\"sess-RAW-1\",\"session_id\":\"sess-RAW-1\",\"event_type\":\"session\"},"
                      "{\"event_id\":\"child-RAW-2\",\"parent_id\":\"sess-RAW-1\",\"session_id\":\"sess-RAW-1\","
                      "\"event_type\":\"model\"}]";
    size_t n;
    char *json = NULL;
    msgpack_sbuffer sb = encode_all(doc, ev, &json, &n);
    char *nl = json ? strchr(json, '\n') : NULL;
    json_t *a = json ? json_loads(json, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    json_t *b = nl ? json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    const char *eh = json_string_value(json_object_get(a, "event_hash"));
    const char *ph = json_string_value(json_object_get(b, "parent_hash"));

    ok(n == 2 && json && !strstr(json, "RAW") && !memmem(sb.data, sb.size, "RAW", 3),
       "no raw event, parent or session id leaves");
    ok(eh && ph && !strcmp(eh, ph), "the child's parent_hash is its parent's event_hash");
    json_decref(a);
    json_decref(b);
    free(json);
    msgpack_sbuffer_destroy(&sb);
}

static void test_shapes(void)
{
    static const struct { enum checked_field f; const char *s; int ok; enum drop_reason why; } cases[] = {
        { CF_MODEL, "gpt-4o", 1, 0 },
        { CF_MODEL, "claude-3-5-sonnet-20241022", 1, 0 },
        { CF_MODEL, "models/gemini-1.5-pro:latest", 1, 0 },
        { CF_MODEL, "jane.doe@example.com", 0, DROP_SHAPE },
        { CF_MODEL, "gpt 4", 0, DROP_SHAPE },
        { CF_MODEL, "gpt-4o\nIGNORE", 0, DROP_SHAPE },
        { CF_MODEL, EV_OVERLONG, 0, DROP_SHAPE },
        { CF_MODEL, "m-1234567890123456789012345678901234567890123456789012345678901234", 0, DROP_SHAPE },
        { CF_MODEL, "555-12-3456", 0, DROP_PII },
        { CF_MODEL, "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", 0, DROP_PII },
        { CF_PROVIDER, "openai", 1, 0 },
        { CF_PROVIDER, "aws.bedrock", 1, 0 },
        { CF_PROVIDER, "192.168.10.20", 0, DROP_PII },
        { CF_PROVIDER, "open/ai", 0, DROP_SHAPE },
        { CF_OPERATION, "chat", 1, 0 },
        { CF_OPERATION, "execute_tool", 1, 0 },
        { CF_OPERATION, "model <b>", 0, DROP_SHAPE },
        { CF_FINISH_REASON, "stop", 1, 0 },
        { CF_FINISH_REASON, "tool_calls", 1, 0 },
        { CF_FINISH_REASON, "stop!", 0, DROP_SHAPE },
        { CF_ERROR_TYPE, "RateLimitError", 1, 0 },
        { CF_ERROR_TYPE, "openai.APIConnectionError", 1, 0 },
        { CF_ERROR_TYPE, "java.net.UnknownHostException", 1, 0 },
        { CF_ERROR_TYPE, "context_length_exceeded", 1, 0 },
        { CF_ERROR_TYPE, "_OTHER", 1, 0 },
        { CF_ERROR_TYPE, "500", 1, 0 },
        { CF_ERROR_TYPE, "error", 1, 0 },
        { CF_ERROR_TYPE, "Patient_HIV_positive_Error", 0, DROP_SHAPE },
        { CF_ERROR_TYPE, "Jane.DoeError", 0, DROP_SHAPE },
        { CF_ERROR_TYPE, "user said hi", 0, DROP_SHAPE },
        { CF_ERROR_TYPE, "5551234567", 0, DROP_SHAPE },
    };
    int bad = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum drop_reason why = DROP_REASONS;
        int got = record_check(cases[i].f, cases[i].s, &why);
        if (got != cases[i].ok || (!got && why != cases[i].why)) {
            printf("# %s \"%s\": got %d/%s, want %d/%s\n", record_checked_field_name(cases[i].f),
                   cases[i].s, got, got ? "-" : record_drop_reason_name(why), cases[i].ok,
                   cases[i].ok ? "-" : record_drop_reason_name(cases[i].why));
            bad++;
        }
    }
    is_int(bad, 0, "record_check: %zu shapes and PII cases", sizeof(cases) / sizeof(cases[0]));
}

static void test_ids(void)
{
    char a[RECORD_ID_HEX], b[RECORD_ID_HEX], h1[33], h2[33], h3[33];
    struct record_ctx c = ctx_for(10);

    record_id(&c, 0, a);
    record_id(&c, 0, b);
    is_str(a, b, "record_id is deterministic");
    is_int(strlen(a), 32, "record_id is 32 hex digits");
    record_id(&c, 1, b);
    ok(strcmp(a, b) != 0, "event index changes the id");
    c.position = 11;
    record_id(&c, 0, b);
    ok(strcmp(a, b) != 0, "position changes the id");
    c.position = 10;
    c.generation = 1;
    record_id(&c, 0, b);
    ok(strcmp(a, b) != 0, "generation changes the id");
    c.generation = 0;
    c.file_id = "ffffffffffffffffffffffffffffffff";
    record_id(&c, 0, b);
    ok(strcmp(a, b) != 0, "file id changes the id");

    record_keyed_hash(key, "session", "s-1", h1);
    record_keyed_hash(key, "session", "s-1", h2);
    is_str(h1, h2, "keyed hash is stable");
    record_keyed_hash(key, "user", "s-1", h3);
    ok(strcmp(h1, h3) != 0, "session and user hashes are domain-separated");
    unsigned char other[RECORD_KEY_LEN];
    memset(other, 7, sizeof(other));
    record_keyed_hash(other, "session", "s-1", h3);
    ok(strcmp(h1, h3) != 0, "another project's key gives another hash");
}

int main(void)
{
    struct tv_project p;
    struct tv_assertion as = { "has_refund", "refund" };
    struct price_table *pt;
    struct evaluator *ev;
    char err[256];

    memset(key, 0x42, sizeof(key));
    memset(&p, 0, sizeof(p));
    p.name = "checkout";
    p.evaluators = TV_EVAL_ALL;
    p.latency_slo_ms = 2000;
    p.max_output_chars = 20000;
    p.assertions = &as;
    p.n_assertions = 1;
    if (price_table_load(NULL, &pt, err, sizeof(err)) != 0 ||
        evaluator_new(&p, pt, &ev, err, sizeof(err)) != 0) {
        printf("Bail out! %s\n", err);
        return 1;
    }
    plan(44);
    test_canary(ev);
    test_fields(ev);
    test_hostile(ev);
    test_session_join(ev);
    test_shapes();
    test_ids();
    evaluator_free(ev);
    price_table_free(pt);
    return done();
}
