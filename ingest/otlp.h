/*
 * otlp.h - OTLP/HTTP trace bodies: protobuf ExportTraceServiceRequest to the
 * OTLP JSON the agent reads (the OpenTelemetry JSON mapping: ids as lowercase
 * hex, 64-bit integers as decimal strings, enums as integers), checks of JSON
 * requests, and the answers (ExportTraceServiceResponse, google.rpc.Status)
 * in either encoding.
 *
 * Untrusted bytes meet three bounds here, all checked before the work they
 * protect: message nesting (a wire scan before protobuf-c, whose decoder
 * recurses), decoder memory (an allocator with a budget), and the size of
 * the JSON produced.  A span that cannot be converted faithfully (ids of the
 * wrong length or all zero, strings that are not UTF-8) is left out and
 * counted as rejected, so the answer's partial_success says how many.
 */
#ifndef TV_INGEST_OTLP_H
#define TV_INGEST_OTLP_H

#include <stddef.h>
#include <stdint.h>

#define OTLP_MAX_DEPTH 32       /* nested messages (AnyValue in lists in ...) */
#define OTLP_JSON_MAX_DEPTH 48  /* JSON nesting; the agent refuses beyond 64 */
#define OTLP_MAX_SPANS 10000    /* per request: the agent's events per document */

struct otlp_result {
    char *json;                 /* the document to store (malloc'd, owned by
                                   the caller), NULL when no span was accepted */
    size_t json_len;
    size_t spans;               /* spans accepted */
    size_t rejected;            /* spans left out */
    char why[200];              /* the reason for the first rejection, or for
                                   the failure; never contains content */
};

/* Free what RES owns and zero it; NULL is fine. */
void otlp_result_release(struct otlp_result *res);

/*
 * Decode the protobuf ExportTraceServiceRequest PB/LEN and convert it to OTLP
 * JSON of at most MAX_OUT bytes.  Returns 0 (res filled; res->json is NULL if
 * every span was rejected), -EBADMSG for bytes that are not such a request,
 * -ELOOP for nesting past OTLP_MAX_DEPTH, -E2BIG for more than OTLP_MAX_SPANS
 * spans or a decoding that would need more memory than its budget, -EFBIG for
 * JSON larger than MAX_OUT, -ENOMEM.  res->why says which.
 */
int otlp_pb_to_json(const uint8_t *pb, size_t len, size_t max_out, struct otlp_result *res);

/*
 * Check a JSON ExportTraceServiceRequest TEXT/LEN (already depth-checked or
 * not: this checks too): well-formed UTF-8 JSON whose top level is an object
 * with a "resourceSpans" array.  Counts the spans into res->spans; the body is
 * stored as received, so res->json stays NULL.  Returns 0, -EBADMSG, -ELOOP,
 * -E2BIG (too many spans), -ENOMEM; res->why says which.
 */
int otlp_json_check(const char *text, size_t len, struct otlp_result *res);

/* The success answer, with partial_success when REJECTED > 0 (MSG then says
 * why).  Protobuf: *OUT is a malloc'd buffer of *LEN bytes (possibly 0 bytes:
 * an empty message; *OUT is then still non-NULL).  Returns 0 or -ENOMEM. */
int otlp_pb_response(size_t rejected, const char *msg, uint8_t **out, size_t *len);
int otlp_json_response(size_t rejected, const char *msg, char **out, size_t *len);

/* An error answer: google.rpc.Status {code, message} (CODE is a gRPC code:
 * 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE, 16
 * UNAUTHENTICATED).  Returns 0 or -ENOMEM. */
int otlp_pb_status(int code, const char *msg, uint8_t **out, size_t *len);
int otlp_json_status(int code, const char *msg, char **out, size_t *len);

#endif
