/*
 * test_agent_parse.c - every accepted shape and the shared samples parse to
 * the expected events; hostile documents become the right skip reason.
 */
#include "config.h"
#include "agent/parse.h"
#include "lib/util.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

static struct parse_limits lim;

static char *sample(const char *name, size_t *len)
{
    char path[1024];
    char *buf = NULL;
    const char *src = getenv("top_srcdir");
    snprintf(path, sizeof(path), "%s/tests/data/agent/%s", src ? src : ".", name);
    if (tv_read_file(path, 1 << 20, &buf, len) != 0) {
        printf("# cannot read %s\n", path);
        exit(1);
    }
    return buf;
}

static enum skip_reason skip_of(const char *doc, size_t len)
{
    struct parse_result r;
    enum skip_reason s;
    if (parse_document(doc, len, &lim, &r) != 0)
        return SKIP_REASON_COUNT;
    s = r.skip;
    parse_result_release(&r);
    return s;
}

static enum skip_reason skip_str(const char *doc)
{
    return skip_of(doc, strlen(doc));
}

static void test_honeyhive_model_event(void)
{
    size_t len;
    char *doc = sample("honeyhive-model-event.json", &len);
    struct parse_result r;

    is_int(parse_document(doc, len, &lim, &r), 0, "honeyhive event parses");
    is_int(r.skip, SKIP_NONE, "honeyhive event: not skipped");
    is_int(r.n, 1, "honeyhive event: one event");
    struct agent_event *e = &r.ev[0];
    is_int(e->format, EV_HONEYHIVE, "format honeyhive");
    is_str(e->event_id, "6f1c2b9e-3f4a-4c1d-9a51-2f0c6d1e8a77", "event_id");
    is_str(e->parent_id, "a3e5c7f1-2b4d-4e6f-8a9b-0c1d2e3f4a5b", "parent_id");
    is_str(e->operation, "model", "operation from event_type");
    is_str(e->model, "gpt-4o-2024-08-06", "model from config");
    is_str(e->provider, "openai", "provider from config");
    is_int(e->input_tokens, 64, "prompt tokens");
    is_int(e->output_tokens, 31, "completion tokens");
    is_int(e->total_tokens, 95, "total tokens");
    ok(e->reported_cost > 0.000469 && e->reported_cost < 0.000471, "reported cost");
    is_int(e->start_ns, 1763790000123000000LL, "start time in ns, exact");
    is_int(e->end_ns, 1763790001468000000LL, "end time");
    ok(e->has_duration && e->duration_ms == 1345.0, "duration");
    is_int(e->status, EV_STATUS_OK, "error null: status ok");
    is_str(e->session_id, "0b7d4a58-9d1e-4f0e-8a3b-5c2e1d9f6a10", "session id kept for hashing");
    is_str(e->user_id, "u-55120", "user id from user_properties");
    ok(e->input.p && strstr(e->input.p, "jane.doe@example.com"), "inputs are content");
    ok(e->output.p && !strcmp(e->output.p, "I'm sorry about order 88123. I've opened a trace with "
                                 "the carrier and will email you within 24 hours."),
       "outputs.content is the output text");
    ok(e->other.p && strstr(e->other.p, "fast but vague"), "feedback is content (other)");
    parse_result_release(&r);
    free(doc);
}

static void test_honeyhive_session(void)
{
    size_t len;
    char *doc = sample("honeyhive-session.json", &len);
    struct parse_result r;

    is_int(parse_document(doc, len, &lim, &r), 0, "session array parses");
    is_int(r.n, 5, "five events in the array");
    is_str(r.ev[0].operation, "session", "first is the session");
    is_str(r.ev[2].model, "claude-sonnet-4-5", "model of m-1");
    is_int(r.ev[2].input_tokens, 812, "tokens of m-1");
    is_int(r.ev[4].status, EV_STATUS_ERROR, "m-2 is an error");
    is_str(r.ev[4].error_type, "RateLimitError", "error type is the class name only");
    is_int(r.ev[1].status, EV_STATUS_UNSET, "no error key: status unset");
    parse_result_release(&r);
    free(doc);
}

static void test_otlp(void)
{
    size_t len;
    char *doc = sample("otlp-genai.json", &len);
    struct parse_result r;

    is_int(parse_document(doc, len, &lim, &r), 0, "OTLP parses");
    is_int(r.n, 1, "one span");
    struct agent_event *e = &r.ev[0];
    is_int(e->format, EV_OTLP, "format otlp");
    is_str(e->trace_id, "5b8efff798038103d269b633813fc60c", "trace id hex");
    is_str(e->span_id, "eee19b7ec3c1b174", "span id hex");
    is_str(e->parent_span_id, "eee19b7ec3c1b173", "parent span id");
    is_str(e->operation, "chat", "gen_ai.operation.name");
    is_str(e->provider, "openai", "gen_ai.provider.name");
    is_str(e->model, "gpt-4o-2024-08-06", "response model preferred");
    is_int(e->input_tokens, 97, "input tokens (string intValue)");
    is_int(e->output_tokens, 52, "output tokens");
    is_str(e->finish_reason, "stop", "finish reason from array");
    is_str(e->session_id, "conv-7781", "conversation id is a session id (hashed later)");
    ok(e->has_duration && e->duration_ms == 1250.0, "duration from span times");
    is_int(e->status, EV_STATUS_OK, "status ok");
    ok(e->output.p && strstr(e->output.p, "I can't help with that."), "output text from messages");
    ok(e->input.p && strstr(e->input.p, "123-45-6789"), "input text from messages");
    parse_result_release(&r);
    free(doc);
}

static void test_openinference(void)
{
    size_t len;
    char *doc = sample("openinference.json", &len);
    struct parse_result r;

    is_int(parse_document(doc, len, &lim, &r), 0, "OpenInference parses");
    is_int(r.n, 2, "two spans");
    is_int(r.ev[0].format, EV_OPENINFERENCE, "format openinference");
    is_str(r.ev[0].operation, "retriever", "span kind lowercased");
    is_str(r.ev[1].model, "gpt-4o-mini", "llm.model_name");
    is_str(r.ev[1].provider, "openai", "llm.provider");
    is_int(r.ev[1].input_tokens, 412, "llm.token_count.prompt");
    is_int(r.ev[1].output_tokens, 88, "llm.token_count.completion");
    is_int(r.ev[1].status, EV_STATUS_ERROR, "status code 2 is an error");
    is_str(r.ev[1].error_type, "error", "no type given: generic error");
    ok(r.ev[1].output.p && !strcmp(r.ev[1].output.p, "Two years, parts and labour."), "output.value");
    ok(r.ev[0].other.p && strstr(r.ev[0].other.p, "2-year warranty"), "documents are content");
    parse_result_release(&r);
    free(doc);
}

/* One span with ATTRS (a JSON list of OTLP attributes) and EVENTS. */
static int one_span(const char *attrs, const char *events, struct parse_result *r)
{
    char doc[8192];
    snprintf(doc, sizeof(doc),
             "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
             "\"spanId\":\"eee19b7ec3c1b174\",\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\","
             "\"attributes\":%s,\"events\":%s}]}]}]}", attrs, events ? events : "[]");
    return parse_document(doc, strlen(doc), &lim, r) == 0 && r->n == 1 ? 0 : -1;
}
#define SA(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"
#define IA(k, v) "{\"key\":\"" k "\",\"value\":{\"intValue\":\"" v "\"}}"
#define DA(k, v) "{\"key\":\"" k "\",\"value\":{\"doubleValue\":" v "}}"

/* Issue 8: evaluators see the completion text only, each text once. */
static void test_conformance_shapes(void)
{
    struct parse_result r;
    const char *msgs =
        "[{\\\"role\\\":\\\"assistant\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"{\\\\\\\"a\\\\\\\":1}\\\"},"
        "{\\\"type\\\":\\\"tool_call\\\",\\\"id\\\":\\\"c1\\\",\\\"name\\\":\\\"f\\\",\\\"arguments\\\":{\\\"x\\\":1}}],"
        "\\\"finish_reason\\\":\\\"tool_call\\\"}]";
    char attrs[4096];

    /* OTel GenAI now: parts, finish reason from the message. */
    snprintf(attrs, sizeof(attrs), "[" SA("gen_ai.operation.name", "chat") ",{\"key\":\"gen_ai.output.messages\","
             "\"value\":{\"stringValue\":\"%s\"}}]", msgs);
    ok(one_span(attrs, NULL, &r) == 0 && r.ev[0].output.p && !strcmp(r.ev[0].output.p, "{\"a\":1}"),
       "gen_ai.output.messages: only the text part");
    is_str(r.n ? r.ev[0].finish_reason : "", "tool_call", "... finish reason from the message");
    parse_result_release(&r);

    /* OpenLLMetry: indexed prompts/completions, JSON content kept whole. */
    ok(one_span("[" SA("llm.request.type", "chat") "," SA("gen_ai.system", "openai") ","
                SA("gen_ai.request.model", "gpt-4o-mini") "," SA("gen_ai.prompt.0.role", "user") ","
                SA("gen_ai.prompt.0.content", "mail jane@example.com") ","
                SA("gen_ai.completion.0.role", "assistant") ","
                SA("gen_ai.completion.0.content", "{\\\"ok\\\":true}") ","
                SA("gen_ai.completion.0.finish_reason", "stop") ","
                IA("llm.usage.total_tokens", "30") ","
                SA("traceloop.association.properties.session_id", "S-1") ","
                SA("traceloop.association.properties.user_id", "U-1") ","
                SA("traceloop.association.properties.tenant", "acme") "]", NULL, &r) == 0,
       "OpenLLMetry span parses");
    if (r.n == 1) {
        struct agent_event *e = &r.ev[0];
        is_int(e->format, EV_OTLP, "OpenLLMetry's llm.* keys do not make it OpenInference");
        is_str(e->operation, "chat", "llm.request.type gives the operation");
        is_str(e->output.p ? e->output.p : "", "{\"ok\":true}", "completion content: the JSON text itself");
        is_str(e->input.p ? e->input.p : "", "mail jane@example.com", "prompt content, no role");
        is_str(e->finish_reason, "stop", "gen_ai.completion.N.finish_reason");
        is_int(e->total_tokens, 30, "llm.usage.total_tokens");
        ok(!strcmp(e->session_id, "S-1") && !strcmp(e->user_id, "U-1"), "association session/user ids");
        ok(e->other.p && strstr(e->other.p, "acme") && !strstr(e->other.p, "S-1"),
           "other association properties are content");
    }
    parse_result_release(&r);

    /* traceloop.span.kind and entity input/output (a workflow span). */
    ok(one_span("[" SA("traceloop.span.kind", "workflow") "," SA("traceloop.entity.input", "in-1") ","
                SA("traceloop.entity.output", "out-1") "]", NULL, &r) == 0 &&
       !strcmp(r.ev[0].operation, "workflow") && r.ev[0].output.p && !strcmp(r.ev[0].output.p, "out-1") &&
       r.ev[0].input.p && !strcmp(r.ev[0].input.p, "in-1"),
       "traceloop.span.kind and traceloop.entity.input/output");
    parse_result_release(&r);

    /* OpenInference: messages win over the whole body, counted once. */
    ok(one_span("[" SA("openinference.span.kind", "LLM") "," SA("input.value", "{body with jane@example.com}") ","
                SA("llm.input_messages.0.message.role", "user") ","
                SA("llm.input_messages.0.message.content", "hi jane@example.com") ","
                SA("output.value", "{the whole response body}") ","
                SA("llm.output_messages.0.message.role", "assistant") ","
                SA("llm.output_messages.0.message.content", "Hello") ","
                SA("llm.finish_reason", "length") "," DA("llm.cost.total", "0.25") "]", NULL, &r) == 0,
       "OpenInference LLM span parses");
    if (r.n == 1) {
        struct agent_event *e = &r.ev[0];
        is_str(e->output.p ? e->output.p : "", "Hello", "output: the message text, not also output.value");
        is_str(e->input.p ? e->input.p : "", "hi jane@example.com", "input: the message, once");
        is_str(e->finish_reason, "length", "llm.finish_reason");
        ok(e->reported_cost == 0.25, "llm.cost.total is the reported cost");
    }
    parse_result_release(&r);
    ok(one_span("[" SA("openinference.span.kind", "EMBEDDING") "," SA("embedding.model_name", "text-embedding-3-small")
                "," SA("output.value", "[0.1]") "]", NULL, &r) == 0 &&
       !strcmp(r.ev[0].model, "text-embedding-3-small") && !strcmp(r.ev[0].operation, "embedding") &&
       r.ev[0].output.p && !strcmp(r.ev[0].output.p, "[0.1]"),
       "embedding.model_name; output.value is the output when there are no messages");
    parse_result_release(&r);

    /* Older gen_ai span events. */
    ok(one_span("[" SA("gen_ai.system", "openai") "]",
                "[{\"name\":\"gen_ai.content.completion\",\"attributes\":[" SA("gen_ai.completion",
                "[{\\\"role\\\":\\\"assistant\\\",\\\"content\\\":\\\"Sure.\\\"}]") "]}]", &r) == 0 &&
       r.ev[0].output.p && !strcmp(r.ev[0].output.p, "Sure."),
       "gen_ai.content.completion event: its text only");
    parse_result_release(&r);
}

static void test_jsonl(void)
{
    size_t len;
    char *doc = sample("stream.jsonl", &len);
    char *line = doc, *nl;
    int n = 0, good = 0;

    while ((nl = memchr(line, '\n', len - (size_t)(line - doc))) != NULL) {
        struct parse_result r;
        if (parse_document(line, (size_t)(nl - line), &lim, &r) == 0 && r.skip == SKIP_NONE && r.n == 1)
            good++;
        parse_result_release(&r);
        n++;
        line = nl + 1;
    }
    is_int(n, 3, "three lines in stream.jsonl");
    is_int(good, 3, "each line is one event");
    free(doc);
}

static void test_hostile(void)
{
    char big[300];
    struct parse_limits small = lim;
    struct parse_result r;

    is_int(skip_str(""), SKIP_EMPTY, "empty");
    is_int(skip_str(" \n\t "), SKIP_EMPTY, "white space only");
    is_int(skip_of("{\"a\":\0}", 7), SKIP_BINARY, "NUL byte is binary");
    is_int(skip_str("{\"event_type\":\"\xff\"}"), SKIP_INVALID_UTF8, "invalid UTF-8");
    is_int(skip_str("{\"event_type\":\"\xc0\xaf\"}"), SKIP_INVALID_UTF8, "overlong UTF-8");
    is_int(skip_str("{\"event_type\":\"\xed\xa0\x80\"}"), SKIP_INVALID_UTF8, "UTF-8 surrogate");
    memset(big, '[', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    is_int(skip_str(big), SKIP_TOO_DEEP, "300 nested arrays");
    is_int(skip_str("{\"event_type\": \"model\", \"inputs\": {\"a\""), SKIP_TRUNCATED, "truncated");
    is_int(skip_str("{\"event_type\": \"model\"]"), SKIP_MALFORMED, "malformed");
    is_int(skip_str("{\"event_type\": \"\\ud800\"}"), SKIP_MALFORMED, "lone surrogate escape");
    is_int(skip_str("{\"event_type\": 123456789012345678901234567890}"), SKIP_MALFORMED, "huge integer");
    is_int(skip_str("42"), SKIP_UNRECOGNIZED, "a number is not a trace");
    is_int(skip_str("[1, 2, 3]"), SKIP_UNRECOGNIZED, "array of non-events");
    is_int(skip_str("{\"hello\": \"world\"}"), SKIP_UNRECOGNIZED, "object of another shape");
    is_int(skip_str("{\"resourceSpans\": []}"), SKIP_UNRECOGNIZED, "OTLP without spans");
    small.max_document_bytes = 10;
    is_int(parse_document("{\"event_type\":\"x\"}", 18, &small, &r), 0, "oversized parses");
    is_int(r.skip, SKIP_OVERSIZED, "oversized");
    parse_result_release(&r);
    small = lim;
    small.max_string_bytes = 8;
    is_int(parse_document("{\"event_type\":\"0123456789\"}", 27, &small, &r), 0, "long string");
    is_int(r.skip, SKIP_STRING_TOO_LONG, "string too long");
    parse_result_release(&r);
    small = lim;
    small.max_events = 2;
    const char *three = "[{\"event_type\":\"a\"},{\"event_type\":\"b\"},{\"event_type\":\"c\"}]";
    is_int(parse_document(three, strlen(three), &small, &r), 0, "many events");
    is_int(r.skip, SKIP_TOO_MANY_EVENTS, "too many events");
    parse_result_release(&r);
    /* Found by fuzz_agent: a far-future millisecond time overflowed int64 ns. */
    const char *far = "{\"event_type\": \"m\", \"start_time\": 17637901000001, \"end_time\": 1e300}";
    is_int(parse_document(far, strlen(far), &lim, &r), 0, "far-future times parse");
    ok(r.n == 1 && !r.ev[0].has_start && !r.ev[0].has_end, "... and are dropped, not overflowed");
    parse_result_release(&r);
}

static void test_metadata_checks(void)
{
    const char *doc = "{\"event_type\": \"model <b>\", \"event_id\": \"id with space\","
                      " \"config\": {\"model\": \"gpt-4o\\nIGNORE\", \"provider\": \"openai\"},"
                      " \"error\": \"user said: secret stuff\"}";
    struct parse_result r;

    is_int(parse_document(doc, strlen(doc), &lim, &r), 0, "odd metadata parses");
    is_int(r.n, 1, "one event");
    /* Kept as written: record_check() drops them whole (test_agent_record). */
    is_str(r.ev[0].operation, "model <b>", "operation kept raw for the record's check");
    is_str(r.ev[0].event_id, "id with space", "ids are kept raw: they leave only hashed");
    is_str(r.ev[0].model, "gpt-4o\nIGNORE", "model kept raw for the record's check");
    is_str(r.ev[0].provider, "openai", "clean provider kept");
    is_str(r.ev[0].error_type, "error", "error text without a class name gives 'error'");
    parse_result_release(&r);
}

int main(void)
{
    parse_limits_default(&lim);
    plan(110);
    test_honeyhive_model_event();
    test_honeyhive_session();
    test_otlp();
    test_openinference();
    test_conformance_shapes();
    test_jsonl();
    test_hostile();
    test_metadata_checks();
    return done();
}
