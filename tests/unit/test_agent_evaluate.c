/*
 * test_agent_evaluate.c - every evaluator on known answers: Luhn, each PII
 * detector (hits and near misses), SLO edges, token and cost arithmetic,
 * price table lookup and override, refusal, JSON output, length, assertions.
 */
#include "config.h"
#include "agent/evaluate.h"
#include "agent/price.h"
#include "lib/config.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static uint32_t pii(const char *text, enum pii_kind k)
{
    uint32_t c[PII_KINDS] = { 0 };
    eval_pii_scan(text, strlen(text), c);
    return c[k];
}

static uint32_t pii_total(const char *text)
{
    uint32_t c[PII_KINDS] = { 0 }, t = 0;
    eval_pii_scan(text, strlen(text), c);
    for (int i = 0; i < PII_KINDS; i++)
        t += c[i];
    return t;
}

static void test_luhn(void)
{
    ok(eval_luhn("4111111111111111", 16), "Luhn: Visa test number valid");
    ok(!eval_luhn("4111111111111112", 16), "Luhn: last digit changed is invalid");
    ok(eval_luhn("79927398713", 11), "Luhn: textbook example valid");
    ok(!eval_luhn("79927398710", 11), "Luhn: textbook example with wrong check digit");
    ok(eval_luhn("378282246310005", 15), "Luhn: Amex test number valid");
    ok(!eval_luhn("41111x1111111111", 16), "Luhn: non-digit is invalid");
}

static void test_pii(void)
{
    is_int(pii("mail jane.doe@example.com now", PII_EMAIL), 1, "email");
    is_int(pii("a@b.co, x.y+z@sub.example.org", PII_EMAIL), 2, "two emails");
    is_int(pii("not an email: foo@bar", PII_EMAIL), 0, "no TLD: not an email");
    is_int(pii("user@localhost.1", PII_EMAIL), 0, "numeric TLD: not an email");
    is_int(pii("call 415-555-0134 today", PII_PHONE), 1, "phone with dashes");
    is_int(pii("call +1 (415) 555-0134", PII_PHONE), 1, "international phone");
    is_int(pii("order 8812345678 shipped", PII_PHONE), 0, "bare 10-digit number is not a phone");
    is_int(pii("card 4111 1111 1111 1111", PII_CARD), 1, "card with spaces, Luhn valid");
    is_int(pii("card 4111-1111-1111-1111", PII_CARD), 1, "card with dashes");
    is_int(pii("card 4111111111111111.", PII_CARD), 1, "card without separators");
    is_int(pii("card 4111 1111 1111 1112", PII_CARD), 0, "Luhn invalid: not a card");
    is_int(pii_total("card 4111 1111 1111 1112"), 0, "Luhn invalid 16 digits: nothing at all");
    is_int(pii("ts 1763790000123 ms", PII_CARD), 0, "epoch milliseconds are not cards");
    is_int(pii("ssn 123-45-6789", PII_SSN), 1, "SSN");
    is_int(pii("ssn 000-45-6789", PII_SSN), 0, "SSN area 000 invalid");
    is_int(pii("ssn 666-45-6789", PII_SSN), 0, "SSN area 666 invalid");
    is_int(pii("ssn 123-00-6789", PII_SSN), 0, "SSN group 00 invalid");
    is_int(pii("id 123-456-789", PII_SSN), 0, "wrong grouping is not an SSN");
    is_int(pii("from 10.0.0.1 and 192.168.1.254", PII_IP), 2, "IPv4 addresses");
    is_int(pii("version 999.1.1.1", PII_IP), 0, "octet > 255 is not an IP");
    is_int(pii("version 1.2.3", PII_IP), 0, "three parts is a version");
    is_int(pii("host 2001:db8::1 up", PII_IP), 1, "IPv6 address");
    is_int(pii("at 10:00:00 UTC", PII_IP), 0, "a time is not an IPv6 address");
    is_int(pii("key sk-abcdefghijklmnopqrstuvwxyz0123 leaked", PII_API_KEY), 1, "sk- key");
    is_int(pii("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx", PII_API_KEY), 1, "sk-proj- key");
    is_int(pii("aws AKIAIOSFODNN7EXAMPLE", PII_API_KEY), 1, "AWS access key id");
    is_int(pii("aws AKIAIOSFODNN7EXAMPL", PII_API_KEY), 0, "AKIA with 15 chars is not a key");
    is_int(pii("gh ghp_0123456789abcdefghijABCDEFGHIJ012345", PII_API_KEY), 1, "GitHub token");
    is_int(pii("task-abcdefghijklmnopqrstuvwxyz012", PII_API_KEY), 0, "sk- inside a word is not a key");
    is_int(pii("nothing personal here, 42 apples", PII_EMAIL) + pii_total("nothing personal here, 42 apples"),
           0, "plain text: no PII");
}

static void test_small_evaluators(void)
{
    ok(eval_refusal("I can't help with that.", 23), "refusal: can't help");
    ok(eval_refusal("I can\xe2\x80\x99t help with that", 25), "refusal: typographic apostrophe");
    ok(eval_refusal("As an AI, I cannot cancel plans.", 32), "refusal: as an AI");
    ok(!eval_refusal("Sure, here is your refund.", 26), "no refusal");
    ok(eval_json_valid("{\"a\": 1}", 8), "JSON object is valid");
    ok(eval_json_valid("  [1, 2] ", 9), "JSON array with spaces is valid");
    ok(!eval_json_valid("{\"a\": ", 6), "truncated JSON is not");
    ok(!eval_json_valid("hello", 5), "prose is not JSON");
    is_int(eval_utf8_chars("h\xc3\xa9llo", 6), 5, "characters, not bytes");
}

static struct agent_event ev_with(double duration, int64_t in, int64_t out, const char *model)
{
    struct agent_event e;
    memset(&e, 0, sizeof(e));
    e.format = EV_HONEYHIVE;
    e.has_duration = duration >= 0;
    e.duration_ms = duration;
    e.input_tokens = in;
    e.output_tokens = out;
    e.total_tokens = -1;
    e.reported_cost = -1;
    snprintf(e.model, sizeof(e.model), "%s", model);
    return e;
}

static int near(double a, double b)
{
    return a - b < 1e-12 && b - a < 1e-12;
}

static void test_evaluator(void)
{
    struct tv_project p;
    struct tv_assertion as[2] = { { "mentions_refund", "(?i)refund" }, { "no_digits", "^\\D*$" } };
    struct price_table *pt;
    struct evaluator *ev;
    struct eval_result r;
    char err[256];

    memset(&p, 0, sizeof(p));
    p.name = "t";
    p.evaluators = TV_EVAL_ALL;
    p.latency_slo_ms = 2000;
    p.max_output_chars = 10;
    p.assertions = as;
    p.n_assertions = 2;
    is_int(price_table_load(NULL, &pt, err, sizeof(err)), 0, "built-in price table loads");
    is_int(evaluator_new(&p, pt, &ev, err, sizeof(err)), 0, "evaluator compiles");

    struct agent_event e = ev_with(2000, 1000, 500, "gpt-4o");
    evaluator_run(ev, &e, &r);
    is_int(r.latency_ok, 1, "SLO edge: duration == SLO is within");
    ok(near(r.cost_usd, 0.0075), "cost: 1000 in x 2.50 + 500 out x 10.00 per M = 0.0075");
    is_int(r.cost_source, COST_PRICE_TABLE, "cost from the price table");
    is_int(r.total_tokens, 1500, "total = input + output");
    e = ev_with(2000.001, 1000, 500, "gpt-4o-2024-08-06");
    evaluator_run(ev, &e, &r);
    is_int(r.latency_ok, 0, "SLO edge: 1 us over is a breach");
    ok(near(r.cost_usd, 0.0075), "dated snapshot prices as its family");
    e = ev_with(10, 1000000, 1000000, "gpt-4o-mini-2024-07-18");
    evaluator_run(ev, &e, &r);
    ok(near(r.cost_usd, 0.75), "longest prefix: gpt-4o-mini, not gpt-4o (0.15 + 0.60)");
    e = ev_with(10, 100, 100, "openai/gpt-4o");
    evaluator_run(ev, &e, &r);
    ok(near(r.cost_usd, 0.00125), "provider/ prefix dropped");
    e = ev_with(-1, 100, 100, "my-own-model");
    evaluator_run(ev, &e, &r);
    is_int(r.latency_ok, -1, "no duration: latency not applicable");
    ok(r.cost_usd < 0, "unknown model: no cost");
    e.reported_cost = 0.5;
    evaluator_run(ev, &e, &r);
    ok(near(r.cost_usd, 0.5) && r.cost_source == COST_REPORTED, "reported cost wins");

    e = ev_with(1, -1, -1, "");
    e.output.p = strdup("refund issued");
    e.output.len = strlen(e.output.p);
    evaluator_run(ev, &e, &r);
    is_int(r.n_assertions, 2, "two assertions ran");
    is_int(r.assert_passed[0], 1, "assertion matches");
    is_int(r.assert_passed[1], 1, "anchored assertion matches");
    is_int(r.output_chars, 13, "output length");
    is_int(r.length_ok, 0, "13 chars > max 10");
    is_int(r.json_valid, 0, "prose output is not JSON");
    is_int(r.refusal, 0, "not a refusal");
    is_int(r.total_tokens, -1, "no tokens reported");
    free(e.output.p);
    e.output.p = strdup("{\"n\": 1}");
    e.output.len = strlen(e.output.p);
    evaluator_run(ev, &e, &r);
    is_int(r.assert_passed[0], 0, "assertion fails");
    is_int(r.assert_passed[1], 0, "digit present: anchored assertion fails");
    is_int(r.json_valid, 1, "JSON output");
    is_int(r.length_ok, 1, "8 chars within 10");
    e.input.p = strdup("mail me: a@example.com, 123-45-6789");
    e.input.len = strlen(e.input.p);
    evaluator_run(ev, &e, &r);
    is_int(r.pii[PII_EMAIL], 1, "PII counted in inputs: email");
    is_int(r.pii[PII_SSN], 1, "PII counted in inputs: ssn");
    evaluator_free(ev);

    p.evaluators = TV_EVAL_LATENCY;
    is_int(evaluator_new(&p, pt, &ev, err, sizeof(err)), 0, "latency-only evaluator");
    evaluator_run(ev, &e, &r);
    ok(r.pii_scanned == 0 && r.json_valid == -1 && r.output_chars == -1 && r.n_assertions == 0 &&
       r.cost_usd < 0, "disabled evaluators yield nothing");
    evaluator_free(ev);
    free(e.output.p);
    free(e.input.p);

    struct tv_assertion bad = { "broken", "(unclosed" };
    p.assertions = &bad;
    p.n_assertions = 1;
    p.evaluators = TV_EVAL_ALL;
    is_int(evaluator_new(&p, pt, &ev, err, sizeof(err)), -22, "bad regex is refused");
    ok(strstr(err, "assert.broken") != NULL, "error names the assertion: %s", err);
    price_table_free(pt);

    /* Override file. */
    char path[] = "/tmp/tv-prices-XXXXXX";
    int fd = mkstemp(path);
    const char *js = "{\"house-model\": {\"input\": 1.0, \"output\": 2.0}}";
    ok(fd >= 0 && write(fd, js, strlen(js)) == (ssize_t)strlen(js), "write override table");
    close(fd);
    double pin = 0, pout = 0;
    is_int(price_table_load(path, &pt, err, sizeof(err)), 0, "override table loads");
    ok(price_lookup(pt, "house-model", &pin, &pout) == 0 && pin == 1.0 && pout == 2.0, "override prices");
    ok(price_lookup(pt, "gpt-4o", &pin, &pout) != 0, "override replaces the built-in table");
    price_table_free(pt);
    fd = open(path, O_WRONLY | O_TRUNC);
    ok(fd >= 0 && write(fd, "{\"m\": {\"input\": -1, \"output\": 1}}", 33) == 33, "write bad table");
    close(fd);
    ok(price_table_load(path, &pt, err, sizeof(err)) != 0 && strstr(err, path), "negative price refused: %s", err);
    unlink(path);
}

int main(void)
{
    plan(82);
    test_luhn();
    test_pii();
    test_small_evaluators();
    test_evaluator();
    return done();
}
