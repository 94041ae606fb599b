/*
 * test_ingest_otlp.c - the gateway's body handling: protobuf to OTLP JSON
 * (the JSON mapping's spellings, rejected spans, nesting and span limits,
 * truncation), the JSON and events checks, gzip's cap, the depth scan.
 */
#include "config.h"
#include "ingest/body.h"
#include "ingest/events.h"
#include "ingest/otlp.h"
#include "tests/unit/tap.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otlp_collector.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span Span;

/* A request of N spans; span I gets NAMES[I] (NULL: "ok"). */
static uint8_t *request(size_t n, const char **names, const uint8_t *tid, size_t tid_len, size_t *len)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Span sp[8], *spp[8];
    Opentelemetry__Proto__Common__V1__KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, *kvp = &kv;
    Opentelemetry__Proto__Common__V1__AnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    static const uint8_t sid[8] = { 0xab, 1, 2, 3, 4, 5, 6, 7 };

    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av.int_value = -42;
    kv.key = "gen_ai.usage.input_tokens";
    kv.value = &av;
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&sp[i]);
        sp[i].trace_id.data = (uint8_t *)tid;
        sp[i].trace_id.len = tid_len;
        sp[i].span_id.data = (uint8_t *)sid;
        sp[i].span_id.len = 8;
        sp[i].name = (char *)(names && names[i] ? names[i] : "ok");
        sp[i].start_time_unix_nano = 1763790000123456789ULL;
        sp[i].n_attributes = 1;
        sp[i].attributes = &kvp;
        spp[i] = &sp[i];
    }
    ss.n_spans = n;
    ss.spans = spp;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    uint8_t *buf = malloc(*len);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
    return buf;
}

/* Length-delimited field F holding P/N, appended to a new buffer. */
static uint8_t *ld(unsigned f, const uint8_t *p, size_t n, size_t *len)
{
    uint8_t *b = malloc(n + 12), *q = b;
    size_t v = n;
    *q++ = (uint8_t)(f << 3 | 2);
    do {
        *q++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    memcpy(q, p, n);
    *len = (size_t)(q - b) + n;
    return b;
}

/* One span whose attribute value nests LEVELS array values. */
static uint8_t *deep_request(int levels, size_t *len)
{
    size_t n;
    uint8_t *v = ld(1, (const uint8_t *)"x", 1, &n), *w;
    for (int i = 0; i < levels; i++) {
        w = ld(1, v, n, &n);          /* ArrayValue.values */
        free(v);
        v = ld(5, w, n, &n);          /* AnyValue.array_value */
        free(w);
    }
    w = ld(2, v, n, &n);              /* KeyValue.value */
    free(v);
    v = ld(9, w, n, &n);              /* Span.attributes */
    free(w);
    w = ld(2, v, n, &n);              /* ScopeSpans.spans */
    free(v);
    v = ld(2, w, n, &n);              /* ResourceSpans.scope_spans */
    free(w);
    w = ld(1, v, n, len);             /* Request.resource_spans */
    free(v);
    return w;
}

int main(void)
{
    static const uint8_t tid[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                     0, 0, 0, 0, 0, 0, 0, 0x10 };
    static const uint8_t zero[16];
    struct otlp_result res;
    json_error_t jerr;
    size_t len;
    uint8_t *pb;
    int r;

    plan(19);
    pb = request(2, NULL, tid, 16, &len);
    r = otlp_pb_to_json(pb, len, 1 << 20, &res);
    is_int(r, 0, "a valid request converts");
    ok(res.spans == 2 && res.rejected == 0, "two spans accepted, none rejected");
    json_t *doc = res.json ? json_loadb(res.json, res.json_len, 0, &jerr) : NULL;
    json_t *sp = json_array_get(json_object_get(json_array_get(json_object_get(
        json_array_get(json_object_get(doc, "resourceSpans"), 0), "scopeSpans"), 0), "spans"), 0);
    ok(sp && !strcmp(json_string_value(json_object_get(sp, "traceId")), "0123456789abcdef0000000000000010"),
       "traceId is lowercase hex");
    ok(sp && !strcmp(json_string_value(json_object_get(sp, "spanId")), "ab01020304050607"), "spanId is hex");
    ok(sp && !strcmp(json_string_value(json_object_get(sp, "startTimeUnixNano")), "1763790000123456789"),
       "fixed64 times are decimal strings");
    json_t *iv = json_object_get(json_object_get(json_array_get(json_object_get(sp, "attributes"), 0),
                                                 "value"), "intValue");
    ok(iv && !strcmp(json_string_value(iv), "-42"), "int64 attribute values are decimal strings");
    ok(json_integer_value(json_object_get(sp, "kind")) == 0 && json_is_integer(json_object_get(sp, "kind")),
       "enums are integers");
    json_decref(doc);
    otlp_result_release(&res);
    free(pb);

    const char *names[3] = { "fine", "bad \xff\xfe", "also fine" };
    pb = request(3, names, tid, 16, &len);
    r = otlp_pb_to_json(pb, len, 1 << 20, &res);
    ok(r == 0 && res.spans == 2 && res.rejected == 1, "a span with invalid UTF-8 is rejected, the rest kept");
    ok(strstr(res.why, "span 1") && strstr(res.why, "UTF-8"), "the reason names the span and the cause");
    doc = res.json ? json_loadb(res.json, res.json_len, 0, &jerr) : NULL;
    ok(doc != NULL, "the JSON is still valid");
    json_decref(doc);
    otlp_result_release(&res);
    free(pb);

    pb = request(1, NULL, zero, 16, &len);
    r = otlp_pb_to_json(pb, len, 1 << 20, &res);
    ok(r == 0 && res.spans == 0 && res.rejected == 1 && !res.json, "an all-zero traceId: rejected, nothing to store");
    otlp_result_release(&res);
    free(pb);

    pb = request(2, NULL, tid, 16, &len);
    is_int(otlp_pb_to_json(pb, len - 3, 1 << 20, &res), -EBADMSG, "a truncated request is EBADMSG");
    otlp_result_release(&res);
    is_int(otlp_pb_to_json(pb, len, 64, &res), -EFBIG, "JSON past the output cap is EFBIG");
    otlp_result_release(&res);
    free(pb);

    /* 40 nested array values (80 message levels): past OTLP_MAX_DEPTH. */
    size_t n = 0;
    uint8_t *req = deep_request(40, &n);
    is_int(otlp_pb_to_json(req, n, 1 << 20, &res), -ELOOP, "80 levels of nesting: ELOOP before decoding");
    otlp_result_release(&res);
    free(req);

    is_int(body_json_depth_ok("[[[\"[[[[[[\"]]]", 14, 3), 0, "brackets inside strings do not count");
    is_int(body_json_depth_ok("[[[[]]]]", 8, 3), -ELOOP, "depth 4 past a limit of 3 is ELOOP");

    /* gzip: a 1 MiB run of zeros against a 4 KiB cap. */
    static unsigned char zeros[1 << 20], gz[1 << 16];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = zeros; zs.avail_in = sizeof(zeros); zs.next_out = gz; zs.avail_out = sizeof(gz);
    deflate(&zs, Z_FINISH);
    size_t gzl = sizeof(gz) - zs.avail_out;
    deflateEnd(&zs);
    unsigned char *out;
    size_t ol;
    is_int(body_gunzip(gz, gzl, 4096, &out, &ol), -EFBIG, "a gzip bomb stops at the cap (EFBIG)");
    ok(body_gunzip(gz, gzl, 1 << 20, &out, &ol) == 0 && ol == sizeof(zeros), "exactly at the cap inflates");
    free(out);

    size_t ne;
    char why[200];
    const char *evs = "[{\"event_type\":\"model\"},{\"event_id\":\"x\"}]";
    ok(events_check(evs, strlen(evs), &ne, why, sizeof(why)) == 0 && ne == 2,
       "an array of two HoneyHive events");
    return done();
}
