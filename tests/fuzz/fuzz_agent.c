/*
 * fuzz_agent.c - libFuzzer over the agent's handling of untrusted trace
 * bytes: parse_document (every shape and limit), every evaluator (PII
 * scanners, JSON, refusal, regex assertions), the record encoder and its
 * JSON/ClickHouse decoders.  Invariants checked beyond "no crash": a record
 * decodes back to a JSON object, and a skipped document yields no events.
 */
#include "config.h"
#include "agent/evaluate.h"
#include "agent/parse.h"
#include "agent/price.h"
#include "agent/record.h"
#include "lib/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct evaluator *ev;
static struct parse_limits lim;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static struct tv_assertion as[2] = { { "refund", "(?i)refund(ed)?" }, { "json", "^\\s*[\\[{]" } };
    static struct tv_project p;
    struct price_table *pt;
    char err[256];

    (void)argc; (void)argv;
    p.name = "fuzz";
    p.evaluators = TV_EVAL_ALL;
    p.latency_slo_ms = 2000;
    p.max_output_chars = 100;
    p.assertions = as;
    p.n_assertions = 2;
    if (price_table_load(NULL, &pt, err, sizeof(err)) != 0 ||
        evaluator_new(&p, pt, &ev, err, sizeof(err)) != 0)
        abort();
    parse_limits_default(&lim);
    lim.max_document_bytes = 65536;
    lim.max_string_bytes = 8192;
    lim.max_events = 64;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[RECORD_KEY_LEN] = { 1 };
    static const char *names[] = { "refund", "json", NULL };
    struct parse_result r;
    struct record_ctx ctx;
    char id[RECORD_ID_HEX];

    if (parse_document((const char *)data, size, &lim, &r) != 0)
        return 0;
    if (r.skip != SKIP_NONE && r.n != 0)
        abort();
    memset(&ctx, 0, sizeof(ctx));
    ctx.project = "fuzz";
    ctx.file_id = "00112233445566778899aabbccddeeff";
    ctx.bytes = size;
    ctx.pseudonym_key = key;
    ctx.key_version = "fuzz";
    ctx.assert_names = names;
    for (size_t i = 0; i < r.n; i++) {
        struct eval_result res;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        evaluator_run(ev, &r.ev[i], &res);
        if (record_encode_event(&ctx, (uint32_t)i, &r.ev[i], &res, &sb, id, NULL) != 0)
            abort();
        json_t *j = record_to_json(sb.data, sb.size), *row = record_to_row(sb.data, sb.size);
        if (!j || !row)
            abort();
        json_decref(j);
        json_decref(row);
        msgpack_sbuffer_destroy(&sb);
    }
    parse_result_release(&r);
    return 0;
}
