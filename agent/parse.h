/*
 * parse.h - turn one trace document (a *.json file or one JSONL line) into
 * events, or into a reason why it was skipped.
 *
 * Accepted shapes (docs/AGENT.md): a HoneyHive-style event object, an array
 * of them, and an OTLP/JSON object with "resourceSpans" (OpenTelemetry GenAI
 * gen_ai.* or OpenInference llm.* attributes), one event per span.
 *
 * Invariants:
 *   - Every byte of input is untrusted.  Size, nesting depth, string length
 *     and the number of events are bounded before or while parsing; anything
 *     outside the limits, not JSON, not UTF-8, binary or empty becomes a
 *     skip reason, never a crash.
 *   - An event holds three kinds of data, kept apart by type: short metadata
 *     fields (model, ...) that record.c ships only if they pass its checks
 *     (record_check: never cut to fit), identifiers that record.c ships only
 *     as keyed hashes, and content (input/output/other text) that only the
 *     evaluators read.  Content lives in malloc'd
 *     buffers owned by the parse_result and freed with it.
 */
#ifndef TV_AGENT_PARSE_H
#define TV_AGENT_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum skip_reason {
    SKIP_NONE = 0,
    SKIP_EMPTY,            /* zero bytes or only white space */
    SKIP_OVERSIZED,        /* more than max_document_bytes */
    SKIP_BINARY,           /* NUL bytes */
    SKIP_INVALID_UTF8,
    SKIP_TOO_DEEP,         /* nesting beyond max_depth */
    SKIP_STRING_TOO_LONG,  /* one string beyond max_string_bytes */
    SKIP_TRUNCATED,        /* JSON ends early */
    SKIP_MALFORMED,        /* not JSON */
    SKIP_UNRECOGNIZED,     /* JSON, but not an accepted trace shape */
    SKIP_TOO_MANY_EVENTS,  /* more than max_events events or spans */
    SKIP_REASON_COUNT
};

/* "empty", "oversized", ... (stable: used in records and metric labels). */
const char *skip_reason_name(enum skip_reason r);

enum ev_format { EV_HONEYHIVE = 1, EV_OTLP, EV_OPENINFERENCE };
enum ev_status { EV_STATUS_UNSET = 0, EV_STATUS_OK, EV_STATUS_ERROR };

/* A growable text buffer for content. */
struct tbuf {
    char *p;               /* NUL-terminated when non-NULL */
    size_t len, cap;
};

#define EV_WORD_MAX 128    /* metadata strings kept raw up to this; longer ones
                              become EV_OVERLONG, which no shape accepts */
#define EV_OVERLONG "\x7f"
#define EV_PERSON_ID_MAX 256

struct agent_event {
    enum ev_format format;
    /* Identifiers that may carry user data: only ever hashed (record.c). */
    char event_id[EV_PERSON_ID_MAX + 1], parent_id[EV_PERSON_ID_MAX + 1];
    char session_id[EV_PERSON_ID_MAX + 1], user_id[EV_PERSON_ID_MAX + 1];
    /* OTLP ids: random by the OTel spec, shipped as they are (lowercase hex) */
    char trace_id[33], span_id[17], parent_span_id[17];
    /* Metadata as the trace wrote it ("" when absent): record_check() decides
     * what ships. */
    char operation[EV_WORD_MAX + 1], model[EV_WORD_MAX + 1], provider[EV_WORD_MAX + 1];
    char finish_reason[EV_WORD_MAX + 1], error_type[EV_WORD_MAX + 1];
    enum ev_status status;
    int has_start, has_end, has_duration;
    int64_t start_ns, end_ns;
    double duration_ms;
    int64_t input_tokens, output_tokens, total_tokens;   /* -1 = not reported */
    double reported_cost;                                 /* -1 = not reported */
    /* content: evaluator input only */
    struct tbuf input, output, other;
};

struct parse_limits {
    size_t max_document_bytes;   /* default 16 MiB */
    unsigned max_depth;          /* default 64 */
    size_t max_string_bytes;     /* default 1 MiB */
    size_t max_events;           /* default 10000 */
};

/* Fill LIM with the defaults above. */
void parse_limits_default(struct parse_limits *lim);

struct parse_result {
    enum skip_reason skip;       /* SKIP_NONE: n events below */
    size_t n;
    struct agent_event *ev;      /* owned; parse_result_release frees */
};

/*
 * Parse LEN bytes at BUF (need not be NUL-terminated).  Returns 0 with OUT
 * filled (either events or a skip reason), or -ENOMEM.  Release OUT with
 * parse_result_release() in both cases.
 */
int parse_document(const char *buf, size_t len, const struct parse_limits *lim,
                   struct parse_result *out);

void parse_result_release(struct parse_result *r);

#endif
