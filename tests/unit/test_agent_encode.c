/*
 * test_agent_encode.c - the two-thread encode stage gives exactly what one
 * thread gives: the same records, byte for byte, in document order, for
 * groups of every size (1 stays inline, larger ones are split by bytes),
 * including skipped documents and multi-event arrays.
 */
#include "config.h"
#include "agent/encode.h"
#include "agent/evaluate.h"
#include "agent/price.h"
#include "lib/config.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 300

static unsigned char key[RECORD_KEY_LEN];

int main(void)
{
    struct tv_project p;
    struct price_table *pt;
    struct evaluator *ev0, *ev1;
    struct parse_limits lim;
    struct encoder *enc;
    static struct enc_doc docs[N];
    static char text[N][256];
    char err[256];

    memset(&p, 0, sizeof(p));
    p.name = "t";
    p.evaluators = TV_EVAL_ALL;
    p.latency_slo_ms = 100;
    p.max_output_chars = 50;
    parse_limits_default(&lim);
    if (price_table_load(NULL, &pt, err, sizeof(err)) != 0 ||
        evaluator_new(&p, pt, &ev0, err, sizeof(err)) != 0 ||
        evaluator_new(&p, pt, &ev1, err, sizeof(err)) != 0 || encoder_new(&lim, &enc) != 0) {
        printf("Bail out! setup\n");
        return 1;
    }
    plan(7);
    for (int i = 0; i < N; i++) {
        if (i % 17 == 0)
            snprintf(text[i], sizeof(text[i]), "{\"event_type\": \"model\", \"inputs\": [%d", i);
        else if (i % 5 == 0)
            snprintf(text[i], sizeof(text[i]), "[{\"event_id\": \"a-%d\", \"event_type\": \"chain\"},"
                     " {\"event_id\": \"b-%d\", \"event_type\": \"tool\", \"duration\": %d}]", i, i, i);
        else
            snprintf(text[i], sizeof(text[i]), "{\"event_id\": \"e-%d\", \"session_id\": \"s-%d\", "
                     "\"event_type\": \"model\", \"duration\": %d, \"config\": {\"model\": \"gpt-4o\"}, "
                     "\"outputs\": {\"content\": \"mail x%d@example.com\"}, "
                     "\"metrics\": {\"prompt_tokens\": %d, \"completion_tokens\": 3}}", i, i % 7, i, i, i);
    }
    /* Reference: one document at a time (always inline). */
    msgpack_sbuffer ref;
    size_t ref_n = 0;
    msgpack_sbuffer_init(&ref);
    for (int i = 0; i < N; i++) {
        struct enc_doc *d = &docs[i];
        memset(d, 0, sizeof(*d));
        d->buf = text[i];
        d->len = strlen(text[i]);
        d->ctx.project = "t";
        d->ctx.file_id = "00112233445566778899aabbccddeeff";
        d->ctx.position = (uint64_t)i * 1000;
        d->ctx.bytes = d->len;
        d->ctx.pseudonym_key = key;
        d->ctx.key_version = "k";
        d->ev[0] = ev0;
        d->ev[1] = ev1;
        encoder_run(enc, d, 1);
        for (size_t k = 0; k < d->count; k++) {
            const char *data;
            const struct enc_rec *r = encoder_rec(enc, d->tid, d->first + k, &data);
            msgpack_sbuffer_write(&ref, data, r->len);
            ref_n++;
        }
    }
    /* 18 skipped (i % 17 == 0), 56 arrays of two, 226 single events. */
    ok(ref_n == 18 + 2 * 56 + 226, "reference run: %zu records", ref_n);
    int sizes[] = { 2, 3, 64, 299, N };
    int all_same = 1, both_threads = 0;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        msgpack_sbuffer got;
        msgpack_sbuffer_init(&got);
        for (int at = 0; at < N; at += sizes[s]) {
            int n = N - at < sizes[s] ? N - at : sizes[s];
            encoder_run(enc, &docs[at], (size_t)n);
            for (int i = at; i < at + n; i++) {
                both_threads |= 1 << docs[i].tid;
                for (size_t k = 0; k < docs[i].count; k++) {
                    const char *data;
                    const struct enc_rec *r = encoder_rec(enc, docs[i].tid, docs[i].first + k, &data);
                    msgpack_sbuffer_write(&got, data, r->len);
                }
            }
        }
        int same = got.size == ref.size && memcmp(got.data, ref.data, ref.size) == 0;
        ok(same, "groups of %d: identical records in document order", sizes[s]);
        all_same &= same;
        msgpack_sbuffer_destroy(&got);
    }
    ok(both_threads == 3, "both threads did work");
    msgpack_sbuffer_destroy(&ref);
    encoder_free(enc);
    evaluator_free(ev0);
    evaluator_free(ev1);
    price_table_free(pt);
    return done();
}
