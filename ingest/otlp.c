/*
 * otlp.c - OTLP trace requests and answers (otlp.h).
 *
 * Layout: the nesting scan over the protobuf wire format (driven by the
 * generated descriptors, so it knows which fields are sub-messages); the
 * budgeted allocator handed to protobuf-c; a small JSON writer into a buffer
 * capped at the output limit (no intermediate tree: memory is the output);
 * the converter, one function per message; the JSON request check; answers.
 */
#include "config.h"
#include "ingest/otlp.h"
#include "lib/util.h"
#include "ingest/body.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_collector.pb-c.h"
#include "rpc_status.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event SpanEvent;
typedef Opentelemetry__Proto__Trace__V1__Span__Link SpanLink;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;

static void why(struct otlp_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct otlp_result *res, const char *fmt, ...)
{
    va_list ap;

    if (res->why[0])
        return;               /* keep the first reason */
    va_start(ap, fmt);
    vsnprintf(res->why, sizeof(res->why), fmt, ap);
    va_end(ap);
}

void otlp_result_release(struct otlp_result *res)
{
    if (!res)
        return;
    free(res->json);
    memset(res, 0, sizeof(*res));
}

/* ---- nesting scan ------------------------------------------------------- */

static int varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*i >= len)
            return -EBADMSG;
        uint8_t b = p[(*i)++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -EBADMSG;
}

/* Walk one message's fields; recurse (at most OTLP_MAX_DEPTH deep) into the
 * length-delimited fields that D declares as messages.  Counts spans. */
static int pb_scan(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d,
                   int depth, size_t *spans)
{
    size_t i = 0;
    uint64_t key, n;
    int r;

    if (depth > OTLP_MAX_DEPTH)
        return -ELOOP;
    if (d == &opentelemetry__proto__trace__v1__span__descriptor && ++*spans > OTLP_MAX_SPANS)
        return -E2BIG;
    while (i < len) {
        if ((r = varint(p, len, &i, &key)) != 0)
            return r;
        switch (key & 7) {
        case 0:
            if ((r = varint(p, len, &i, &n)) != 0)
                return r;
            break;
        case 1:
            if (len - i < 8)
                return -EBADMSG;
            i += 8;
            break;
        case 5:
            if (len - i < 4)
                return -EBADMSG;
            i += 4;
            break;
        case 2: {
            if ((r = varint(p, len, &i, &n)) != 0)
                return r;
            if (n > len - i)
                return -EBADMSG;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                (r = pb_scan(p + i, (size_t)n, f->descriptor, depth + 1, spans)) != 0)
                return r;
            i += (size_t)n;
            break;
        }
        default:                  /* groups (3, 4) and 6, 7: not in OTLP */
            return -EBADMSG;
        }
    }
    return 0;
}

/* ---- budgeted allocator ---------------------------------------------------- */

struct budget {
    size_t left;
};

static void *budget_alloc(void *data, size_t size)
{
    struct budget *b = data;
    if (size > b->left)
        return NULL;          /* protobuf-c then fails the unpack cleanly */
    b->left -= size;
    return malloc(size);
}

static void budget_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

/* ---- JSON writer --------------------------------------------------------- */

struct jb {
    char *buf;
    size_t len, cap, max;
    int err;                  /* -EFBIG or -ENOMEM: sticky */
    int bad;                  /* the current span has a string that is not UTF-8 */
};

static void jb_raw(struct jb *j, const char *s, size_t n)
{
    if (j->err)
        return;
    if (n > j->max - j->len) {
        j->err = -EFBIG;
        return;
    }
    if (j->len + n > j->cap) {
        size_t ncap = j->cap ? j->cap : 65536;
        while (ncap < j->len + n)
            ncap *= 2;
        if (ncap > j->max)
            ncap = j->max;
        char *nb = realloc(j->buf, ncap);
        if (!nb) {
            j->err = -ENOMEM;
            return;
        }
        j->buf = nb;
        j->cap = ncap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

static void jb_lit(struct jb *j, const char *s)
{
    jb_raw(j, s, strlen(s));
}

static void jb_fmt(struct jb *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_fmt(struct jb *j, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        jb_raw(j, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}


/* A JSON string; invalid UTF-8 marks the span bad (written as "" meanwhile). */
static void jb_str(struct jb *j, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), i = 0, run = 0;

    jb_raw(j, "\"", 1);
    while (i < n) {
        unsigned char c = p[i];
        size_t l = tv_utf8_seq(p + i, n - i);
        if (l == 0) {
            j->bad = 1;
            break;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i += l;
            run += l;
            continue;
        }
        jb_raw(j, (const char *)p + i - run, run);
        run = 0;
        switch (c) {
        case '"': jb_lit(j, "\\\""); break;
        case '\\': jb_lit(j, "\\\\"); break;
        case '\n': jb_lit(j, "\\n"); break;
        case '\r': jb_lit(j, "\\r"); break;
        case '\t': jb_lit(j, "\\t"); break;
        default: jb_fmt(j, "\\u%04x", c); break;
        }
        i++;
    }
    if (!j->bad)
        jb_raw(j, (const char *)p + i - run, run);
    jb_raw(j, "\"", 1);
}

static void jb_key(struct jb *j, const char *k)
{
    jb_raw(j, "\"", 1);
    jb_lit(j, k);
    jb_raw(j, "\":", 2);
}

static void jb_hex(struct jb *j, const ProtobufCBinaryData *b)
{
    static const char hx[] = "0123456789abcdef";
    char tmp[2 * 32];
    jb_raw(j, "\"", 1);
    for (size_t i = 0; i < b->len; i += 32) {
        size_t k = b->len - i < 32 ? b->len - i : 32;
        for (size_t x = 0; x < k; x++) {
            tmp[2 * x] = hx[b->data[i + x] >> 4];
            tmp[2 * x + 1] = hx[b->data[i + x] & 15];
        }
        jb_raw(j, tmp, 2 * k);
    }
    jb_raw(j, "\"", 1);
}

static void jb_b64(struct jb *j, const ProtobufCBinaryData *b)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    size_t i;

    jb_raw(j, "\"", 1);
    for (i = 0; i + 3 <= b->len; i += 3) {
        uint32_t v = (uint32_t)b->data[i] << 16 | (uint32_t)b->data[i + 1] << 8 | b->data[i + 2];
        q[0] = tab[v >> 18]; q[1] = tab[(v >> 12) & 63]; q[2] = tab[(v >> 6) & 63]; q[3] = tab[v & 63];
        jb_raw(j, q, 4);
    }
    if (b->len - i == 1) {
        uint32_t v = (uint32_t)b->data[i] << 16;
        q[0] = tab[v >> 18]; q[1] = tab[(v >> 12) & 63]; q[2] = '='; q[3] = '=';
        jb_raw(j, q, 4);
    } else if (b->len - i == 2) {
        uint32_t v = (uint32_t)b->data[i] << 16 | (uint32_t)b->data[i + 1] << 8;
        q[0] = tab[v >> 18]; q[1] = tab[(v >> 12) & 63]; q[2] = tab[(v >> 6) & 63]; q[3] = '=';
        jb_raw(j, q, 4);
    }
    jb_raw(j, "\"", 1);
}

/* ---- conversion ------------------------------------------------------------ */

static void conv_attrs(struct jb *j, size_t n, KeyValue **kv, int depth);

static void conv_value(struct jb *j, const AnyValue *v, int depth)
{
    jb_raw(j, "{", 1);
    if (!v || depth > OTLP_MAX_DEPTH) {       /* the scan bounds depth already */
        jb_raw(j, "}", 1);
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        jb_key(j, "stringValue");
        jb_str(j, v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        jb_key(j, "boolValue");
        jb_lit(j, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        jb_key(j, "intValue");
        jb_fmt(j, "\"%" PRId64 "\"", v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        jb_key(j, "doubleValue");
        /* The proto3 JSON mapping spells the non-finite values as strings. */
        if (isnan(v->double_value))
            jb_lit(j, "\"NaN\"");
        else if (isinf(v->double_value))
            jb_lit(j, v->double_value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else
            jb_fmt(j, "%.17g", v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        jb_key(j, "arrayValue");
        jb_lit(j, "{\"values\":[");
        if (v->array_value)
            for (size_t i = 0; i < v->array_value->n_values; i++) {
                if (i)
                    jb_raw(j, ",", 1);
                conv_value(j, v->array_value->values[i], depth + 1);
            }
        jb_lit(j, "]}");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        jb_key(j, "kvlistValue");
        jb_lit(j, "{\"values\":");
        if (v->kvlist_value)
            conv_attrs(j, v->kvlist_value->n_values, v->kvlist_value->values, depth + 1);
        else
            jb_lit(j, "[]");
        jb_lit(j, "}");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        jb_key(j, "bytesValue");
        jb_b64(j, &v->bytes_value);
        break;
    default:
        break;                /* an empty AnyValue stays {} */
    }
    jb_raw(j, "}", 1);
}

static void conv_attrs(struct jb *j, size_t n, KeyValue **kv, int depth)
{
    jb_raw(j, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            jb_raw(j, ",", 1);
        jb_lit(j, "{\"key\":");
        jb_str(j, kv[i]->key);
        jb_lit(j, ",\"value\":");
        conv_value(j, kv[i]->value, depth + 1);
        jb_raw(j, "}", 1);
    }
    jb_raw(j, "]", 1);
}

static int id_ok(const ProtobufCBinaryData *b, size_t want, int may_be_empty)
{
    if (b->len == 0)
        return may_be_empty;
    if (b->len != want)
        return 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i])
            return 1;
    return 0;
}

/* One span; returns 0 if written, -1 if it must be rejected (REASON set). */
static int conv_span(struct jb *j, const Span *s, const char **reason)
{
    if (!id_ok(&s->trace_id, 16, 0)) {
        *reason = "traceId is not 16 bytes, or is all zero";
        return -1;
    }
    if (!id_ok(&s->span_id, 8, 0)) {
        *reason = "spanId is not 8 bytes, or is all zero";
        return -1;
    }
    if (!id_ok(&s->parent_span_id, 8, 1)) {
        *reason = "parentSpanId is not 8 bytes";
        return -1;
    }
    jb_lit(j, "{\"traceId\":");
    jb_hex(j, &s->trace_id);
    jb_lit(j, ",\"spanId\":");
    jb_hex(j, &s->span_id);
    if (s->trace_state && s->trace_state[0]) {
        jb_lit(j, ",\"traceState\":");
        jb_str(j, s->trace_state);
    }
    if (s->parent_span_id.len) {
        jb_lit(j, ",\"parentSpanId\":");
        jb_hex(j, &s->parent_span_id);
    }
    if (s->flags)
        jb_fmt(j, ",\"flags\":%" PRIu32, s->flags);
    jb_lit(j, ",\"name\":");
    jb_str(j, s->name);
    jb_fmt(j, ",\"kind\":%d", (int)s->kind);
    jb_fmt(j, ",\"startTimeUnixNano\":\"%" PRIu64 "\"", s->start_time_unix_nano);
    jb_fmt(j, ",\"endTimeUnixNano\":\"%" PRIu64 "\"", s->end_time_unix_nano);
    jb_lit(j, ",\"attributes\":");
    conv_attrs(j, s->n_attributes, s->attributes, 0);
    if (s->dropped_attributes_count)
        jb_fmt(j, ",\"droppedAttributesCount\":%" PRIu32, s->dropped_attributes_count);
    if (s->n_events) {
        jb_lit(j, ",\"events\":[");
        for (size_t i = 0; i < s->n_events; i++) {
            const SpanEvent *e = s->events[i];
            if (i)
                jb_raw(j, ",", 1);
            jb_fmt(j, "{\"timeUnixNano\":\"%" PRIu64 "\",\"name\":", e->time_unix_nano);
            jb_str(j, e->name);
            jb_lit(j, ",\"attributes\":");
            conv_attrs(j, e->n_attributes, e->attributes, 0);
            if (e->dropped_attributes_count)
                jb_fmt(j, ",\"droppedAttributesCount\":%" PRIu32, e->dropped_attributes_count);
            jb_raw(j, "}", 1);
        }
        jb_raw(j, "]", 1);
    }
    if (s->dropped_events_count)
        jb_fmt(j, ",\"droppedEventsCount\":%" PRIu32, s->dropped_events_count);
    if (s->n_links) {
        jb_lit(j, ",\"links\":[");
        for (size_t i = 0; i < s->n_links; i++) {
            const SpanLink *l = s->links[i];
            if (i)
                jb_raw(j, ",", 1);
            jb_lit(j, "{\"traceId\":");
            jb_hex(j, &l->trace_id);
            jb_lit(j, ",\"spanId\":");
            jb_hex(j, &l->span_id);
            if (l->trace_state && l->trace_state[0]) {
                jb_lit(j, ",\"traceState\":");
                jb_str(j, l->trace_state);
            }
            jb_lit(j, ",\"attributes\":");
            conv_attrs(j, l->n_attributes, l->attributes, 0);
            if (l->flags)
                jb_fmt(j, ",\"flags\":%" PRIu32, l->flags);
            jb_raw(j, "}", 1);
        }
        jb_raw(j, "]", 1);
    }
    if (s->dropped_links_count)
        jb_fmt(j, ",\"droppedLinksCount\":%" PRIu32, s->dropped_links_count);
    if (s->status) {
        jb_lit(j, ",\"status\":{");
        jb_fmt(j, "\"code\":%d", (int)s->status->code);
        if (s->status->message && s->status->message[0]) {
            jb_lit(j, ",\"message\":");
            jb_str(j, s->status->message);
        }
        jb_raw(j, "}", 1);
    }
    jb_raw(j, "}", 1);
    if (j->bad) {
        *reason = "a string is not valid UTF-8";
        return -1;
    }
    return 0;
}

static void conv_scope_head(struct jb *j, const Scope *sc)
{
    jb_lit(j, "\"scope\":{\"name\":");
    jb_str(j, sc ? sc->name : "");
    if (sc && sc->version && sc->version[0]) {
        jb_lit(j, ",\"version\":");
        jb_str(j, sc->version);
    }
    if (sc && sc->n_attributes) {
        jb_lit(j, ",\"attributes\":");
        conv_attrs(j, sc->n_attributes, sc->attributes, 0);
    }
    jb_lit(j, "},");
}

/* Spans in RS, for counting what a rejected resource or scope held. */
static size_t count_spans(const ResourceSpans *rs, const ScopeSpans *only)
{
    size_t n = 0;
    if (only)
        return only->n_spans;
    for (size_t i = 0; i < rs->n_scope_spans; i++)
        n += rs->scope_spans[i]->n_spans;
    return n;
}

static void convert(struct jb *j, const Request *req, struct otlp_result *res)
{
    const char *reason;
    int first_rs = 1;

    jb_lit(j, "{\"resourceSpans\":[");
    for (size_t a = 0; a < req->n_resource_spans; a++) {
        const ResourceSpans *rs = req->resource_spans[a];
        size_t mark_rs = j->len;
        if (!first_rs)
            jb_raw(j, ",", 1);
        jb_lit(j, "{\"resource\":{\"attributes\":");
        if (rs->resource) {
            conv_attrs(j, rs->resource->n_attributes, rs->resource->attributes, 0);
            if (rs->resource->dropped_attributes_count)
                jb_fmt(j, ",\"droppedAttributesCount\":%" PRIu32,
                       rs->resource->dropped_attributes_count);
        } else {
            jb_lit(j, "[]");
        }
        jb_lit(j, "},");
        if (rs->schema_url && rs->schema_url[0]) {
            jb_lit(j, "\"schemaUrl\":");
            jb_str(j, rs->schema_url);
            jb_raw(j, ",", 1);
        }
        if (j->bad) {            /* the resource itself cannot be written */
            size_t n = count_spans(rs, NULL);
            res->rejected += n;
            why(res, "%zu span(s) rejected: a resource attribute is not valid UTF-8", n);
            j->len = mark_rs;
            j->bad = 0;
            continue;
        }
        first_rs = 0;
        jb_lit(j, "\"scopeSpans\":[");
        int first_ss = 1;
        for (size_t b = 0; b < rs->n_scope_spans; b++) {
            const ScopeSpans *ss = rs->scope_spans[b];
            size_t mark_ss = j->len;
            if (!first_ss)
                jb_raw(j, ",", 1);
            jb_raw(j, "{", 1);
            conv_scope_head(j, ss->scope);
            if (ss->schema_url && ss->schema_url[0]) {
                jb_lit(j, "\"schemaUrl\":");
                jb_str(j, ss->schema_url);
                jb_raw(j, ",", 1);
            }
            if (j->bad) {
                res->rejected += ss->n_spans;
                why(res, "%zu span(s) rejected: a scope field is not valid UTF-8", ss->n_spans);
                j->len = mark_ss;
                j->bad = 0;
                continue;
            }
            first_ss = 0;
            jb_lit(j, "\"spans\":[");
            int first_sp = 1;
            for (size_t c = 0; c < ss->n_spans; c++) {
                size_t mark = j->len;
                if (!first_sp)
                    jb_raw(j, ",", 1);
                if (conv_span(j, ss->spans[c], &reason) != 0) {
                    res->rejected++;
                    why(res, "span %zu of scope %zu of resource %zu rejected: %s", c, b, a, reason);
                    j->len = mark;
                    j->bad = 0;
                    continue;
                }
                first_sp = 0;
                res->spans++;
            }
            jb_lit(j, "]}");
        }
        jb_lit(j, "]}");
    }
    jb_lit(j, "]}\n");
}

int otlp_pb_to_json(const uint8_t *pb, size_t len, size_t max_out, struct otlp_result *res)
{
    size_t spans = 0;
    int r;

    memset(res, 0, sizeof(*res));
    r = pb_scan(pb, len, &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
                0, &spans);
    if (r == -ELOOP) {
        why(res, "messages nested deeper than %d levels", OTLP_MAX_DEPTH);
        return r;
    }
    if (r == -E2BIG) {
        why(res, "more than %d spans in one request", OTLP_MAX_SPANS);
        return r;
    }
    if (r != 0) {
        why(res, "not a protobuf ExportTraceServiceRequest (truncated or malformed)");
        return r;
    }
    /* The decoded form of small messages is larger than their wire form
     * (a 2-byte span becomes a struct of ~200 bytes); allow 8 times the
     * input plus a floor, and refuse what needs more. */
    struct budget bud = { .left = len * 8 + (1u << 20) };
    ProtobufCAllocator alloc = { budget_alloc, budget_free, &bud };
    Request *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        &alloc, len, pb);
    if (!req) {
        if (bud.left < 4096) {
            why(res, "the request expands to more memory than its budget");
            return -E2BIG;
        }
        why(res, "not a protobuf ExportTraceServiceRequest (truncated or malformed)");
        return -EBADMSG;
    }
    /* One allocation in the usual case: OTLP JSON runs 1.1 to 1.6 times the
     * protobuf (hex ids, key names); regrowing a large buffer costs a copy
     * and fresh page faults each time. */
    struct jb j = { .max = max_out };
    j.cap = len * 2 + 65536 < max_out ? len * 2 + 65536 : max_out;
    if (!(j.buf = malloc(j.cap))) {
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, &alloc);
        why(res, "out of memory");
        return -ENOMEM;
    }
    convert(&j, req, res);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, &alloc);
    if (j.err) {
        free(j.buf);
        size_t rej = res->rejected;
        memset(res, 0, sizeof(*res));
        res->rejected = rej;
        if (j.err == -EFBIG)
            why(res, "the request converts to more than %zu bytes of JSON", max_out);
        else
            why(res, "out of memory");
        return j.err;
    }
    if (res->spans == 0) {
        free(j.buf);
        return 0;
    }
    res->json = j.buf;
    res->json_len = j.len;
    return 0;
}

/* ---- JSON requests ------------------------------------------------------------ */

int otlp_json_check(const char *text, size_t len, struct otlp_result *res)
{
    json_error_t jerr;
    json_t *doc, *rs, *ss, *sp;
    size_t i, k, m;
    int r = 0;

    memset(res, 0, sizeof(*res));
    if (body_json_depth_ok(text, len, OTLP_JSON_MAX_DEPTH) != 0) {
        why(res, "JSON nested deeper than %d levels", OTLP_JSON_MAX_DEPTH);
        return -ELOOP;
    }
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        /* jerr.text describes the syntax, never quotes the input. */
        why(res, "malformed JSON at byte %d: %s", jerr.position, jerr.text);
        return -EBADMSG;
    }
    if (!json_is_object(doc) || !json_is_array(json_object_get(doc, "resourceSpans"))) {
        why(res, "not an ExportTraceServiceRequest: no \"resourceSpans\" array at the top");
        r = -EBADMSG;
        goto out;
    }
    json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs) {
        json_array_foreach(json_object_get(rs, "scopeSpans"), k, ss) {
            json_array_foreach(json_object_get(ss, "spans"), m, sp) {
                if (!json_is_object(sp)) {
                    why(res, "a span is not an object");
                    r = -EBADMSG;
                    goto out;
                }
                if (++res->spans > OTLP_MAX_SPANS) {
                    why(res, "more than %d spans in one request", OTLP_MAX_SPANS);
                    r = -E2BIG;
                    goto out;
                }
            }
        }
    }
out:
    json_decref(doc);
    return r;
}

/* ---- answers ------------------------------------------------------------------ */

int otlp_pb_response(size_t rejected, const char *msg, uint8_t **out, size_t *len)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;

    if (rejected) {
        ps.rejected_spans = (int64_t)rejected;
        ps.error_message = (char *)(msg ? msg : "");
        resp.partial_success = &ps;
    }
    *len = opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(&resp);
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return -ENOMEM;
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&resp, *out);
    return 0;
}

static int dump(json_t *o, char **out, size_t *len)
{
    if (!o)
        return -ENOMEM;
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!*out)
        return -ENOMEM;
    *len = strlen(*out);
    return 0;
}

int otlp_json_response(size_t rejected, const char *msg, char **out, size_t *len)
{
    if (!rejected)
        return dump(json_object(), out, len);
    char n[24];
    snprintf(n, sizeof(n), "%zu", rejected);
    return dump(json_pack("{s:{s:s,s:s}}", "partialSuccess", "rejectedSpans", n,
                          "errorMessage", msg ? msg : ""), out, len);
}

int otlp_pb_status(int code, const char *msg, uint8_t **out, size_t *len)
{
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;

    st.code = code;
    st.message = (char *)(msg ? msg : "");
    *len = google__rpc__status__get_packed_size(&st);
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return -ENOMEM;
    google__rpc__status__pack(&st, *out);
    return 0;
}

int otlp_json_status(int code, const char *msg, char **out, size_t *len)
{
    return dump(json_pack("{s:i,s:s}", "code", code, "message", msg ? msg : ""), out, len);
}
