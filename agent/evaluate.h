/*
 * evaluate.h - the per-project evaluators.  They read an event's content in
 * memory and yield numbers and booleans only (struct eval_result): no string
 * derived from content ever comes out of here.
 *
 * Evaluators (enabled by the project's `evaluators` bits, lib/config.h):
 *   latency      duration_ms <= latency_slo_ms
 *   tokens       input/output/total tokens (total = in + out when not reported)
 *   cost         reported cost, else tokens x price table
 *   errors       status and error type (from the parser)
 *   pii          counts per kind: email, phone, card (Luhn), ssn, ip, api_key
 *   json_output  the output parses as JSON
 *   refusal      the output contains a refusal phrase
 *   length       output length in characters <= max_output_chars
 *   assertions   each assert.NAME regex (PCRE2, JIT) matches the output
 */
#ifndef TV_AGENT_EVALUATE_H
#define TV_AGENT_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/parse.h"

struct tv_project;
struct price_table;

enum pii_kind { PII_EMAIL = 0, PII_PHONE, PII_CARD, PII_SSN, PII_IP, PII_API_KEY, PII_KINDS };

/* "email", "phone", "card", "ssn", "ip", "api_key". */
const char *pii_kind_name(enum pii_kind k);

#define EVAL_MAX_ASSERTIONS 32

enum cost_source { COST_NONE = 0, COST_REPORTED, COST_PRICE_TABLE };

/* -1 in a tri-state field means "evaluator off or not applicable". */
struct eval_result {
    unsigned evaluators;            /* the TV_EVAL_* bits that ran */
    int latency_ok;
    int slo_ms;
    int64_t input_tokens, output_tokens, total_tokens;   /* -1 unknown */
    double cost_usd;                /* -1 unknown */
    enum cost_source cost_source;
    int pii_scanned;
    uint32_t pii[PII_KINDS];
    int json_valid;
    int refusal;
    int64_t output_chars;           /* -1 when length is off */
    int length_ok;
    unsigned n_assertions;
    uint8_t assert_passed[EVAL_MAX_ASSERTIONS];
};

struct evaluator;

/* Compile PROJECT's evaluators (PCRE2 with JIT for assertions).  PRICES is
 * borrowed and must outlive the evaluator.  Returns 0 and *OUT, or -EINVAL
 * with ERR naming the project, the assertion and the PCRE2 reason. */
int evaluator_new(const struct tv_project *project, const struct price_table *prices,
                  struct evaluator **out, char *err, size_t errlen);
void evaluator_free(struct evaluator *ev);

/* Run every enabled evaluator on E into RES.  Returns 0 (never fails on
 * content: a runaway regex counts as "not passed"). */
int evaluator_run(struct evaluator *ev, const struct agent_event *e, struct eval_result *res);

/* Building blocks, exposed for the unit tests. */
int eval_luhn(const char *digits, size_t n);            /* 1 if the Luhn sum is valid */
void eval_pii_scan(const char *text, size_t len, uint32_t counts[PII_KINDS]);
int eval_refusal(const char *text, size_t len);
int eval_json_valid(const char *text, size_t len);
int64_t eval_utf8_chars(const char *text, size_t len);

#endif
