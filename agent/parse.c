/*
 * parse.c - trace documents to events (see parse.h).
 *
 * Layout: a byte pre-scan that enforces the limits jansson cannot (binary,
 * UTF-8, depth, string length) and tells truncation from garbage; then
 * jansson; then one extractor per accepted shape (HoneyHive, OTLP).  The
 * extractors copy only metadata that passes a strict character-set check into
 * the fixed fields; everything else a document says is content and goes into
 * the content buffers, which never leave the process.
 */
#include "config.h"
#include "agent/parse.h"
#include "agent/jload.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const skip_names[SKIP_REASON_COUNT] = {
    [SKIP_NONE] = "none",
    [SKIP_EMPTY] = "empty",
    [SKIP_OVERSIZED] = "oversized",
    [SKIP_BINARY] = "binary",
    [SKIP_INVALID_UTF8] = "invalid_utf8",
    [SKIP_TOO_DEEP] = "too_deep",
    [SKIP_STRING_TOO_LONG] = "string_too_long",
    [SKIP_TRUNCATED] = "truncated",
    [SKIP_MALFORMED] = "malformed",
    [SKIP_UNRECOGNIZED] = "unrecognized",
    [SKIP_TOO_MANY_EVENTS] = "too_many_events",
};

const char *skip_reason_name(enum skip_reason r)
{
    return (unsigned)r < SKIP_REASON_COUNT ? skip_names[r] : "unknown";
}

void parse_limits_default(struct parse_limits *lim)
{
    lim->max_document_bytes = 16u << 20;
    lim->max_depth = 64;
    lim->max_string_bytes = 1u << 20;
    lim->max_events = 10000;
}

/* ---- pre-scan ----------------------------------------------------------- */


/* One pass over the raw bytes.  Returns a skip reason or SKIP_NONE. */
static enum skip_reason prescan(const unsigned char *p, size_t n, const struct parse_limits *lim)
{
    unsigned depth = 0;
    int in_str = 0, esc = 0, any = 0;
    size_t str_start = 0;

    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == 0)
            return SKIP_BINARY;
        if (c >= 0x80) {
            size_t k = tv_utf8_seq(p + i, n - i);
            if (k == 0)
                return SKIP_INVALID_UTF8;
            i += k;
            any = 1;
            continue;
        }
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"') {
                in_str = 0;
                if (i - str_start > lim->max_string_bytes)
                    return SKIP_STRING_TOO_LONG;
            }
        } else if (c == '"') {
            in_str = 1;
            str_start = i;
            any = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > lim->max_depth)
                return SKIP_TOO_DEEP;
            any = 1;
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            any = 1;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            any = 1;
        }
        i++;
    }
    if (!any)
        return SKIP_EMPTY;
    if (in_str && n - str_start > lim->max_string_bytes)
        return SKIP_STRING_TOO_LONG;
    return SKIP_NONE;
}

/* ---- helpers ------------------------------------------------------------ */

static int tbuf_add(struct tbuf *b, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    size_t need = b->len + n + 2;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    if (b->len > 0)
        b->p[b->len++] = '\n';
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Every string inside V (depth-first) appended to B. */
static int gather(struct tbuf *b, json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    int r = 0;

    if (!v)
        return 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return tbuf_add(b, json_string_value(v), json_string_length(v));
    case JSON_OBJECT:
        json_object_foreach(v, k, x)
            if ((r = gather(b, x)) != 0)
                return r;
        return 0;
    case JSON_ARRAY:
        json_array_foreach(v, i, x)
            if ((r = gather(b, x)) != 0)
                return r;
        return 0;
    default:
        return 0;
    }
}

/* Metadata as written, for record_check() to judge whole: a string longer
 * than the field becomes EV_OVERLONG (never cut, so never shipped cut). */
static void copy_raw(char *dst, size_t cap, const char *s)
{
    size_t n;

    dst[0] = '\0';
    if (!s || !(n = strlen(s)))
        return;
    if (n > cap) {
        strcpy(dst, EV_OVERLONG);
        return;
    }
    memcpy(dst, s, n + 1);
}

static void copy_word(char *dst, size_t cap, json_t *v)
{
    copy_raw(dst, cap, json_is_string(v) ? json_string_value(v) : NULL);
}

/* Lowercase hex id of exactly NHEX digits (OTLP/JSON ids are hex). */
static void copy_hex(char *dst, size_t nhex, json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;

    dst[0] = '\0';
    if (!s || strlen(s) != nhex)
        return;
    for (size_t i = 0; i < nhex; i++) {
        if (!isxdigit((unsigned char)s[i])) {
            dst[0] = '\0';
            return;
        }
        dst[i] = (char)tolower((unsigned char)s[i]);
    }
    dst[nhex] = '\0';
}

static void copy_person(char *dst, json_t *v)
{
    char tmp[32];
    const char *s = NULL;
    size_t n;

    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v)) {
        snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
        s = tmp;
    }
    if (!s || dst[0])
        return;                             /* first source wins */
    n = strlen(s);
    if (n > EV_PERSON_ID_MAX)
        n = EV_PERSON_ID_MAX;               /* still hashed: the cap only bounds memory */
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* A number from a JSON number or a decimal string (OTLP int64 as string). */
static int json_num(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return isfinite(*out) ? 0 : -1;
    }
    if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        if (!*s)
            return -1;
        double d = strtod(s, &end);
        if (*end || !isfinite(d))
            return -1;
        *out = d;
        return 0;
    }
    return -1;
}

static int json_i64(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (!*s || *end || errno)
            return -1;
        *out = x;
        return 0;
    }
    double d;
    if (json_num(v, &d) == 0 && d >= -9e18 && d <= 9e18) {
        *out = (int64_t)d;
        return 0;
    }
    return -1;
}

static void set_tokens(int64_t *dst, json_t *v)
{
    int64_t x;
    if (*dst < 0 && v && json_i64(v, &x) == 0 && x >= 0)
        *dst = x;
}

/* True if WORD looks like an exception class: ends in Error, Exception,
 * Timeout or Warning ("RateLimitError", "asyncio.TimeoutError"). */
static int class_like(const char *w, size_t n)
{
    static const char *const ends[] = { "Error", "Exception", "Timeout", "Warning" };
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        size_t k = strlen(ends[i]);
        if (n >= k && memcmp(w + n - k, ends[i], k) == 0)
            return 1;
    }
    return 0;
}

/* An error type from an error string: the class name before ':' when it
 * looks like one ("RateLimitError: ..."), else "error".  The message is
 * content and is never kept. */
static void error_type_from_string(char *dst, const char *s)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);

    if (n > 0 && n <= EV_WORD_MAX && class_like(s, n)) {
        memcpy(dst, s, n);
        dst[n] = '\0';
    } else {
        strcpy(dst, "error");
    }
}

/* An error type given as a field (error.type, exception.type, {"type": ..}):
 * as written (record_check judges it), "error" when absent. */
static void error_type_field(char *dst, const char *s)
{
    copy_raw(dst, EV_WORD_MAX, s);
    if (!dst[0])
        strcpy(dst, "error");
}

static void event_init(struct agent_event *e, enum ev_format f)
{
    memset(e, 0, sizeof(*e));
    e->format = f;
    e->input_tokens = e->output_tokens = e->total_tokens = -1;
    e->reported_cost = -1;
}

static void event_release(struct agent_event *e)
{
    free(e->input.p);
    free(e->output.p);
    free(e->other.p);
}

static int result_push(struct parse_result *r, size_t *cap, const struct parse_limits *lim,
                       struct agent_event **slot)
{
    if (r->n >= lim->max_events)
        return -E2BIG;
    if (r->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct agent_event *ne = realloc(r->ev, nc * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        r->ev = ne;
        *cap = nc;
    }
    *slot = &r->ev[r->n++];
    return 0;
}

/* Epoch milliseconds (integer, real or decimal string) to nanoseconds;
 * returns 1 when V held a plausible time. */
static int ms_to_ns(json_t *v, int64_t *ns)
{
    double d;

    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0 || x >= 9000000000000LL)   /* ms before 2255: fits in int64 ns */
            return 0;
        *ns = (int64_t)x * 1000000;
        return 1;
    }
    if (json_num(v, &d) != 0 || d < 0 || d >= 9e12)
        return 0;
    *ns = (int64_t)llround(d * 1e6);
    return 1;
}

/* ---- HoneyHive ---------------------------------------------------------- */

static int is_honeyhive(json_t *o)
{
    return json_is_object(o) &&
           (json_object_get(o, "event_type") || json_object_get(o, "event_name") ||
            json_object_get(o, "event_id"));
}

static int honeyhive_event(json_t *o, struct agent_event *e)
{
    json_t *cfg = json_object_get(o, "config");
    json_t *md = json_object_get(o, "metadata");
    json_t *mt = json_object_get(o, "metrics");
    json_t *in = json_object_get(o, "inputs");
    json_t *out = json_object_get(o, "outputs");
    json_t *up = json_object_get(o, "user_properties");
    json_t *err = json_object_get(o, "error");
    json_t *v;
    double d;
    int r;

    event_init(e, EV_HONEYHIVE);
    copy_person(e->event_id, json_object_get(o, "event_id"));
    copy_person(e->parent_id, json_object_get(o, "parent_id"));
    copy_word(e->operation, EV_WORD_MAX, json_object_get(o, "event_type"));
    copy_word(e->model, EV_WORD_MAX, json_object_get(cfg, "model"));
    if (!e->model[0])
        copy_word(e->model, EV_WORD_MAX, json_object_get(md, "model"));
    copy_word(e->provider, EV_WORD_MAX, json_object_get(cfg, "provider"));
    if (!e->provider[0])
        copy_word(e->provider, EV_WORD_MAX, json_object_get(md, "provider"));
    v = json_object_get(o, "finish_reason");
    if (!v)
        v = json_object_get(md, "finish_reason");
    if (!v)
        v = json_object_get(out, "finish_reason");
    copy_word(e->finish_reason, EV_WORD_MAX, v);

    e->has_start = ms_to_ns(json_object_get(o, "start_time"), &e->start_ns);
    e->has_end = ms_to_ns(json_object_get(o, "end_time"), &e->end_ns);
    if (json_num(json_object_get(o, "duration"), &d) == 0 && d >= 0 && d < 1e12) {
        e->has_duration = 1;
        e->duration_ms = d;
    } else if (e->has_start && e->has_end && e->end_ns >= e->start_ns) {
        e->has_duration = 1;
        e->duration_ms = (double)(e->end_ns - e->start_ns) / 1e6;
    }

    /* Error: null/false/"" means none; a string carries a class name and a
     * message (content); an object may name its type. */
    if (err && !json_is_null(err) && !json_is_false(err) &&
        !(json_is_string(err) && json_string_length(err) == 0)) {
        e->status = EV_STATUS_ERROR;
        if (json_is_string(err))
            error_type_from_string(e->error_type, json_string_value(err));
        else if (json_is_object(err)) {
            json_t *t = json_object_get(err, "type");
            if (!t)
                t = json_object_get(err, "name");
            error_type_field(e->error_type, json_string_value(t));
            if ((r = gather(&e->other, err)) != 0)
                return r;
        } else
            strcpy(e->error_type, "error");
    } else if (json_is_object(o) && json_object_get(o, "error")) {
        e->status = EV_STATUS_OK;
    }

    if (json_is_object(mt)) {
        set_tokens(&e->input_tokens, json_object_get(mt, "prompt_tokens"));
        set_tokens(&e->input_tokens, json_object_get(mt, "input_tokens"));
        set_tokens(&e->output_tokens, json_object_get(mt, "completion_tokens"));
        set_tokens(&e->output_tokens, json_object_get(mt, "output_tokens"));
        set_tokens(&e->total_tokens, json_object_get(mt, "total_tokens"));
        if (json_num(json_object_get(mt, "cost"), &d) == 0 && d >= 0)
            e->reported_cost = d;
    }

    copy_person(e->session_id, json_object_get(o, "session_id"));
    copy_person(e->user_id, json_object_get(up, "user_id"));
    copy_person(e->user_id, json_object_get(md, "user_id"));
    copy_person(e->user_id, json_object_get(o, "user_id"));

    if ((r = gather(&e->input, in)) != 0)
        return r;
    v = json_object_get(out, "content");
    if (json_is_string(v))
        r = tbuf_add(&e->output, json_string_value(v), json_string_length(v));
    else
        r = gather(&e->output, out);
    if (r != 0)
        return r;
    /* Everything else that may hold text is content too (PII counts). */
    if ((r = gather(&e->other, md)) != 0 || (r = gather(&e->other, up)) != 0 ||
        (r = gather(&e->other, json_object_get(o, "feedback"))) != 0 ||
        (r = gather(&e->other, json_object_get(cfg, "template"))) != 0)
        return r;
    return 0;
}

/* ---- OTLP/JSON ------------------------------------------------------------ */

/* The scalar inside an AnyValue: {"stringValue": ...} etc.; arrays give their
 * first element (finish reasons). */
static json_t *any_value(json_t *v)
{
    json_t *x;
    if (!json_is_object(v))
        return NULL;
    if ((x = json_object_get(v, "stringValue")) || (x = json_object_get(v, "intValue")) ||
        (x = json_object_get(v, "doubleValue")) || (x = json_object_get(v, "boolValue")))
        return x;
    x = json_object_get(json_object_get(v, "arrayValue"), "values");
    if (json_is_array(x) && json_array_size(x) > 0)
        return any_value(json_array_get(x, 0));
    return NULL;
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- message lists ------------------------------------------------------- */

/* The text a message list holds, and nothing else: the "content" (or
 * "text") of text parts and of messages, whatever the shape -
 *   OTel GenAI now:  [{"role":..,"parts":[{"type":"text","content":..},
 *                     {"type":"tool_call",..}],"finish_reason":..}]
 *   system instructions: [{"type":"text","content":..}]
 *   older events:    [{"role":..,"content":..}], {"message":{"content":..}}
 * Roles, types, names, ids, finish reasons and tool calls are not text the
 * model wrote or was given: counting them made output_chars, length_ok and
 * json_valid wrong.  The first finish_reason met goes to *FINISH (if empty). */
static int message_text(struct tbuf *b, json_t *v, char *finish, int depth)
{
    const char *k;
    json_t *x;
    size_t i;
    int r;

    if (depth > 16)
        return 0;
    if (json_is_string(v))
        return tbuf_add(b, json_string_value(v), json_string_length(v));
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            if ((r = message_text(b, x, finish, depth + 1)) != 0)
                return r;
        return 0;
    }
    if (!json_is_object(v))
        return 0;
    x = json_object_get(v, "type");
    if (json_is_string(x) && strcmp(json_string_value(x), "text") != 0)
        return 0;                           /* tool_call, tool_call_response, blob, ... */
    if (finish && !finish[0] && json_is_string(json_object_get(v, "finish_reason")))
        copy_raw(finish, EV_WORD_MAX, json_string_value(json_object_get(v, "finish_reason")));
    json_object_foreach(v, k, x) {
        if (strcmp(k, "content") && strcmp(k, "text") && strcmp(k, "parts") && strcmp(k, "message"))
            continue;
        if ((r = message_text(b, x, finish, depth + 1)) != 0)
            return r;
    }
    return 0;
}

/* A JSON-encoded message list (gen_ai.input/output.messages, the older
 * gen_ai.prompt / gen_ai.completion event attributes): its text; the raw
 * string when it is not JSON. */
static int add_messages(struct tbuf *b, const char *s, size_t n, char *finish)
{
    json_error_t jerr;
    json_t *doc = json_loadb(s, n, 0, &jerr);
    int r;

    if (!doc || !(json_is_array(doc) || json_is_object(doc))) {
        json_decref(doc);
        return tbuf_add(b, s, n);
    }
    r = message_text(b, doc, finish, 0);
    json_decref(doc);
    return r;
}

/* ---- OTLP spans ------------------------------------------------------------ */

/* What a span says that is decided only once all its attributes are read. */
struct span_acc {
    int oi;                         /* OpenInference markers seen */
    char op_request[EV_WORD_MAX + 1];   /* OpenLLMetry llm.request.type */
    char op_traceloop[EV_WORD_MAX + 1]; /* traceloop.span.kind */
    /* Whole bodies, used only when no message text was found (each text is
     * counted once: an email in the prompt is one PII occurrence). */
    struct tbuf in_value, out_value;    /* OpenInference input.value / output.value */
    struct tbuf ent_in, ent_out;        /* traceloop.entity.input / .output */
};

/* Keys that only OpenInference writes (OpenLLMetry writes other llm.* keys:
 * llm.request.type, llm.usage.*, llm.is_streaming, ...). */
static int openinference_key(const char *key)
{
    static const char *const prefixes[] = {
        "openinference.", "llm.model_name", "llm.input_messages.", "llm.output_messages.",
        "llm.token_count.", "llm.invocation_parameters", "llm.cost.", "llm.provider",
        "llm.system", "llm.finish_reason", "llm.prompt_template.", "embedding.",
        "input.value", "output.value", "input.mime_type", "output.mime_type",
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (starts(key, prefixes[i]))
            return 1;
    return 0;
}

/* "gen_ai.completion.3.content" -> 1 for SUFFIX ".content" (N any number). */
static int indexed(const char *key, const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix);
    const char *p;

    if (strncmp(key, prefix, n) != 0 || key[n] < '0' || key[n] > '9')
        return 0;
    for (p = key + n; *p >= '0' && *p <= '9'; p++)
        ;
    return !strcmp(p, suffix);
}

/* OpenInference message text: llm.{input,output}_messages.N.message.content
 * and .message.contents.M.message_content.text. */
static int oi_message_text(const char *key, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *rest;

    if (strncmp(key, prefix, n) != 0)
        return 0;
    rest = strchr(key + n, '.');
    return rest && (!strcmp(rest, ".message.content") ||
                    (starts(rest, ".message.contents.") && strstr(rest, ".message_content.text")));
}

static int otlp_attribute(struct agent_event *e, const char *key, json_t *val, struct span_acc *acc)
{
    json_t *v = any_value(val);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s ? json_string_length(v) : 0;
    double d;

    if (openinference_key(key))
        acc->oi = 1;
    if (!strcmp(key, "gen_ai.operation.name"))
        copy_word(e->operation, EV_WORD_MAX, v);
    else if (!strcmp(key, "openinference.span.kind")) {
        copy_word(e->operation, EV_WORD_MAX, v);
        for (char *p = e->operation; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    } else if (!strcmp(key, "llm.request.type")) {
        copy_word(acc->op_request, EV_WORD_MAX, v);
    } else if (!strcmp(key, "traceloop.span.kind")) {
        copy_word(acc->op_traceloop, EV_WORD_MAX, v);
    } else if (!strcmp(key, "gen_ai.provider.name") || !strcmp(key, "llm.provider")) {
        copy_word(e->provider, EV_WORD_MAX, v);     /* the current names win */
    } else if (!strcmp(key, "gen_ai.system") || !strcmp(key, "llm.system")) {
        if (!e->provider[0])
            copy_word(e->provider, EV_WORD_MAX, v);
    } else if (!strcmp(key, "gen_ai.response.model") || !strcmp(key, "llm.model_name") ||
               !strcmp(key, "embedding.model_name")) {
        copy_word(e->model, EV_WORD_MAX, v);
    } else if (!strcmp(key, "gen_ai.request.model")) {
        if (!e->model[0])
            copy_word(e->model, EV_WORD_MAX, v);
    } else if (!strcmp(key, "gen_ai.usage.input_tokens") || !strcmp(key, "gen_ai.usage.prompt_tokens") ||
               !strcmp(key, "llm.token_count.prompt")) {
        set_tokens(&e->input_tokens, v);
    } else if (!strcmp(key, "gen_ai.usage.output_tokens") ||
               !strcmp(key, "gen_ai.usage.completion_tokens") ||
               !strcmp(key, "llm.token_count.completion")) {
        set_tokens(&e->output_tokens, v);
    } else if (!strcmp(key, "gen_ai.usage.total_tokens") || !strcmp(key, "llm.token_count.total") ||
               !strcmp(key, "llm.usage.total_tokens")) {
        set_tokens(&e->total_tokens, v);
    } else if (!strcmp(key, "llm.cost.total")) {
        /* The producer's own cost wins over the price table (cost_source). */
        if (json_num(v, &d) == 0 && d >= 0)
            e->reported_cost = d;
    } else if (!strcmp(key, "gen_ai.response.finish_reasons") ||
               !strcmp(key, "gen_ai.response.finish_reason") || !strcmp(key, "llm.finish_reason") ||
               indexed(key, "gen_ai.completion.", ".finish_reason")) {
        if (!e->finish_reason[0])
            copy_raw(e->finish_reason, EV_WORD_MAX, s);
    } else if (!strcmp(key, "error.type") || !strcmp(key, "exception.type")) {
        if (s)
            error_type_field(e->error_type, s);
    } else if (!strcmp(key, "gen_ai.conversation.id") || !strcmp(key, "session.id") ||
               !strcmp(key, "traceloop.association.properties.session_id")) {
        copy_person(e->session_id, v);
    } else if (!strcmp(key, "user.id") || !strcmp(key, "enduser.id") ||
               !strcmp(key, "traceloop.association.properties.user_id")) {
        copy_person(e->user_id, v);
    } else if (indexed(key, "gen_ai.completion.", ".role") || indexed(key, "gen_ai.prompt.", ".role") ||
               (starts(key, "llm.") && (strstr(key, ".message.role") || strstr(key, ".message_content.type")))) {
        return 0;                           /* roles and part types: neither text nor metadata */
    } else if (s) {
        /* Content: input, output or other text. */
        if (indexed(key, "gen_ai.completion.", ".content"))
            return tbuf_add(&e->output, s, n);       /* the text itself, JSON or not */
        if (indexed(key, "gen_ai.prompt.", ".content"))
            return tbuf_add(&e->input, s, n);
        if (!strcmp(key, "gen_ai.output.messages") || !strcmp(key, "gen_ai.completion"))
            return add_messages(&e->output, s, n, e->finish_reason);
        if (!strcmp(key, "gen_ai.input.messages") || !strcmp(key, "gen_ai.prompt") ||
            !strcmp(key, "gen_ai.system_instructions"))
            return add_messages(&e->input, s, n, NULL);
        if (oi_message_text(key, "llm.output_messages."))
            return tbuf_add(&e->output, s, n);
        if (oi_message_text(key, "llm.input_messages."))
            return tbuf_add(&e->input, s, n);
        if (!strcmp(key, "output.value"))
            return tbuf_add(&acc->out_value, s, n);
        if (!strcmp(key, "input.value"))
            return tbuf_add(&acc->in_value, s, n);
        if (!strcmp(key, "traceloop.entity.output"))
            return tbuf_add(&acc->ent_out, s, n);
        if (!strcmp(key, "traceloop.entity.input"))
            return tbuf_add(&acc->ent_in, s, n);
        return tbuf_add(&e->other, s, n);
    }
    return 0;
}

/* Move A's text into an empty DST (else forget it). */
static void take_if_empty(struct tbuf *dst, struct tbuf *a)
{
    if (dst->len == 0 && a->len > 0) {
        free(dst->p);
        *dst = *a;
    } else {
        free(a->p);
    }
    memset(a, 0, sizeof(*a));
}

/* Decide what only the whole span tells. */
static void span_finish(struct agent_event *e, struct span_acc *acc)
{
    /* A body is the text only where no message text was found: the real
     * OpenInference instrumentation puts the whole response body in
     * output.value next to llm.output_messages. */
    take_if_empty(&e->output, &acc->out_value);
    take_if_empty(&e->input, &acc->in_value);
    take_if_empty(&e->output, &acc->ent_out);
    take_if_empty(&e->input, &acc->ent_in);
    if (!e->operation[0])
        memcpy(e->operation, acc->op_request[0] ? acc->op_request : acc->op_traceloop,
               EV_WORD_MAX + 1);
    if (acc->oi)
        e->format = EV_OPENINFERENCE;
}

static int otlp_span(json_t *sp, struct agent_event *e)
{
    json_t *attrs = json_object_get(sp, "attributes");
    json_t *st = json_object_get(sp, "status");
    json_t *a, *evs, *x;
    size_t i, j;
    struct span_acc acc;
    int r = 0;
    int64_t t;

    event_init(e, EV_OTLP);
    memset(&acc, 0, sizeof(acc));
    copy_hex(e->trace_id, 32, json_object_get(sp, "traceId"));
    copy_hex(e->span_id, 16, json_object_get(sp, "spanId"));
    copy_hex(e->parent_span_id, 16, json_object_get(sp, "parentSpanId"));
    if (json_i64(json_object_get(sp, "startTimeUnixNano"), &t) == 0 && t >= 0) {
        e->has_start = 1;
        e->start_ns = t;
    }
    if (json_i64(json_object_get(sp, "endTimeUnixNano"), &t) == 0 && t >= 0) {
        e->has_end = 1;
        e->end_ns = t;
    }
    if (e->has_start && e->has_end && e->end_ns >= e->start_ns) {
        e->has_duration = 1;
        e->duration_ms = (double)(e->end_ns - e->start_ns) / 1e6;
    }
    json_array_foreach(attrs, i, a) {
        const char *key = json_string_value(json_object_get(a, "key"));
        if (key && (r = otlp_attribute(e, key, json_object_get(a, "value"), &acc)) != 0)
            goto out;
    }
    /* Span events: exception.type names the error; messages are content. */
    evs = json_object_get(sp, "events");
    json_array_foreach(evs, i, x) {
        json_array_foreach(json_object_get(x, "attributes"), j, a) {
            const char *key = json_string_value(json_object_get(a, "key"));
            if (key && (r = otlp_attribute(e, key, json_object_get(a, "value"), &acc)) != 0)
                goto out;
        }
    }
    json_int_t code = json_integer_value(json_object_get(st, "code"));
    const char *codes = json_string_value(json_object_get(st, "code"));
    if (code == 2 || (codes && !strcmp(codes, "STATUS_CODE_ERROR")))
        e->status = EV_STATUS_ERROR;
    else if (code == 1 || (codes && !strcmp(codes, "STATUS_CODE_OK")))
        e->status = EV_STATUS_OK;
    if (e->status == EV_STATUS_ERROR && !e->error_type[0])
        strcpy(e->error_type, "error");
    x = json_object_get(st, "message");
    if (json_is_string(x))
        r = tbuf_add(&e->other, json_string_value(x), json_string_length(x));
out:
    span_finish(e, &acc);
    return r;
}

static int parse_otlp(json_t *doc, const struct parse_limits *lim, struct parse_result *res)
{
    json_t *rs, *ss, *sp;
    size_t i, j, k, cap = 0;
    int r;

    json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs) {
        json_t *scopes = json_object_get(rs, "scopeSpans");
        if (!scopes)
            scopes = json_object_get(rs, "instrumentationLibrarySpans");
        json_array_foreach(scopes, j, ss) {
            json_array_foreach(json_object_get(ss, "spans"), k, sp) {
                struct agent_event *e;
                if (!json_is_object(sp))
                    continue;
                if ((r = result_push(res, &cap, lim, &e)) != 0)
                    return r;
                if ((r = otlp_span(sp, e)) != 0)
                    return r;
            }
        }
    }
    return 0;
}

static int parse_honeyhive(json_t *doc, const struct parse_limits *lim, struct parse_result *res)
{
    size_t i, cap = 0;
    json_t *x;
    int r;

    if (json_is_object(doc)) {
        struct agent_event *e;
        if ((r = result_push(res, &cap, lim, &e)) != 0)
            return r;
        return honeyhive_event(doc, e);
    }
    json_array_foreach(doc, i, x) {
        struct agent_event *e;
        if (!is_honeyhive(x))
            continue;
        if ((r = result_push(res, &cap, lim, &e)) != 0)
            return r;
        if ((r = honeyhive_event(x, e)) != 0)
            return r;
    }
    return 0;
}

int parse_document(const char *buf, size_t len, const struct parse_limits *lim,
                   struct parse_result *out)
{
    json_t *doc = NULL;
    int r = 0;

    memset(out, 0, sizeof(*out));
    if (len > lim->max_document_bytes) {
        out->skip = SKIP_OVERSIZED;
        return 0;
    }
    if ((out->skip = prescan((const unsigned char *)buf, len, lim)) != SKIP_NONE)
        return 0;
    /* jload: jansson's tree, read without jansson's per-byte stream
     * (jload.h; the same result as json_loadb, tested differentially) */
    int truncated;
    doc = jload(buf, len, &truncated);
    if (!doc) {
        out->skip = truncated ? SKIP_TRUNCATED : SKIP_MALFORMED;
        return 0;
    }
    if (json_is_object(doc) && json_is_array(json_object_get(doc, "resourceSpans")))
        r = parse_otlp(doc, lim, out);
    else if (is_honeyhive(doc) || json_is_array(doc))
        r = parse_honeyhive(doc, lim, out);
    if (r == -E2BIG) {
        r = 0;
        parse_result_release(out);
        out->skip = SKIP_TOO_MANY_EVENTS;
    } else if (r == 0 && out->n == 0) {
        out->skip = SKIP_UNRECOGNIZED;
    }
    json_decref(doc);
    return r;
}

void parse_result_release(struct parse_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        event_release(&r->ev[i]);
    free(r->ev);
    r->ev = NULL;
    r->n = 0;
}
