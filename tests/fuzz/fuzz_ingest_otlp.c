/*
 * fuzz_ingest_otlp.c - libFuzzer over the gateway's handling of untrusted
 * OTLP bodies: the protobuf ExportTraceServiceRequest scan, decode and
 * conversion to OTLP JSON, the JSON request check, the HoneyHive events
 * check and gzip inflation.  Invariants beyond "no crash": converted JSON
 * is valid, no deeper than the agent accepts, and holds exactly the spans
 * counted as accepted; inflation never exceeds its cap.
 */
#include "config.h"
#include "ingest/body.h"
#include "ingest/events.h"
#include "ingest/otlp.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_spans(json_t *doc)
{
    json_t *rs, *ss;
    size_t i, k, n = 0;
    json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs)
        json_array_foreach(json_object_get(rs, "scopeSpans"), k, ss)
            n += json_array_size(json_object_get(ss, "spans"));
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct otlp_result res;
    unsigned char *out;
    size_t n, len;
    char why[200];

    if (otlp_pb_to_json(data, size, 1 << 20, &res) == 0 && res.json) {
        json_error_t jerr;
        if (body_json_depth_ok(res.json, res.json_len, 64) != 0)
            abort();
        json_t *doc = json_loadb(res.json, res.json_len, 0, &jerr);
        if (!doc || count_spans(doc) != res.spans)
            abort();
        json_decref(doc);
    }
    otlp_result_release(&res);
    otlp_json_check((const char *)data, size, &res);
    otlp_result_release(&res);
    events_check((const char *)data, size, &n, why, sizeof(why));
    if (body_gunzip(data, size, 4096, &out, &len) == 0) {
        if (len > 4096)
            abort();
        free(out);
    }
    return 0;
}
