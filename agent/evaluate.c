/*
 * evaluate.c - evaluators on event content (see evaluate.h).
 *
 * The PII detectors are hand-written scanners rather than regexes: one pass
 * over the text, each candidate checked at word boundaries, so hostile input
 * cannot make them slow.  Only the custom assertions use PCRE2, with JIT and
 * a match limit so a pathological pattern cannot stall the agent either.
 */
#include "config.h"
#include "agent/evaluate.h"
#include "agent/price.h"
#include "lib/config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct evaluator {
    unsigned bits;
    int slo_ms, max_chars;
    const struct price_table *prices;
    unsigned n_asserts;
    pcre2_code *re[EVAL_MAX_ASSERTIONS];
    pcre2_match_data *md;
    pcre2_match_context *mctx;
};

static const char *const pii_names[PII_KINDS] = {
    "email", "phone", "card", "ssn", "ip", "api_key"
};

const char *pii_kind_name(enum pii_kind k)
{
    return (unsigned)k < PII_KINDS ? pii_names[k] : "unknown";
}

int evaluator_new(const struct tv_project *p, const struct price_table *prices,
                  struct evaluator **out, char *err, size_t errlen)
{
    struct evaluator *ev = calloc(1, sizeof(*ev));
    int r = 0;

    *out = NULL;
    if (!ev)
        return -ENOMEM;
    ev->bits = p ? p->evaluators : TV_EVAL_ALL;
    ev->slo_ms = p ? p->latency_slo_ms : 2000;
    ev->max_chars = p ? p->max_output_chars : 20000;
    ev->prices = prices;
    if (p && p->n_assertions > EVAL_MAX_ASSERTIONS) {
        snprintf(err, errlen, "project \"%s\": more than %d assertions", p->name,
                 EVAL_MAX_ASSERTIONS);
        r = -EINVAL;
        goto out;
    }
    for (size_t i = 0; p && i < p->n_assertions; i++) {
        int ecode;
        PCRE2_SIZE eoff;
        ev->re[i] = pcre2_compile((PCRE2_SPTR)p->assertions[i].pattern, PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF, &ecode, &eoff, NULL);
        if (!ev->re[i]) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            snprintf(err, errlen, "project \"%s\": assert.%s: %s at offset %zu", p->name,
                     p->assertions[i].name, (char *)msg, (size_t)eoff);
            r = -EINVAL;
            goto out;
        }
        ev->n_asserts++;
        /* JIT when available; the interpreter is the fallback, not an error. */
        (void)pcre2_jit_compile(ev->re[i], PCRE2_JIT_COMPLETE);
    }
    if (ev->n_asserts) {
        ev->md = pcre2_match_data_create(1, NULL);
        ev->mctx = pcre2_match_context_create(NULL);
        if (!ev->md || !ev->mctx) {
            r = -ENOMEM;
            goto out;
        }
        pcre2_set_match_limit(ev->mctx, 1000000);
        pcre2_set_depth_limit(ev->mctx, 10000);
    }
out:
    if (r != 0) {
        evaluator_free(ev);
        return r;
    }
    *out = ev;
    return 0;
}

void evaluator_free(struct evaluator *ev)
{
    if (!ev)
        return;
    for (unsigned i = 0; i < EVAL_MAX_ASSERTIONS; i++)
        pcre2_code_free(ev->re[i]);
    pcre2_match_data_free(ev->md);
    pcre2_match_context_free(ev->mctx);
    free(ev);
}

/* ---- building blocks ---------------------------------------------------- */

int eval_luhn(const char *digits, size_t n)
{
    int sum = 0, dbl = 0;

    if (n == 0)
        return 0;
    for (size_t i = n; i-- > 0;) {
        int d = digits[i] - '0';
        if (d < 0 || d > 9)
            return 0;
        if (dbl) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

int64_t eval_utf8_chars(const char *text, size_t len)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)text[i] & 0xc0) != 0x80)
            n++;
    return n;
}

int eval_json_valid(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *doc;

    while (len > 0 && isspace((unsigned char)*text)) {
        text++;
        len--;
    }
    if (len == 0)
        return 0;
    doc = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (!doc)
        return 0;
    json_decref(doc);
    return 1;
}

static const char *const refusal_phrases[] = {
    "i can't help with", "i cannot help with", "i can't assist", "i cannot assist",
    "i'm unable to", "i am unable to", "i won't be able to", "i will not be able to",
    "i can't provide", "i cannot provide", "i'm not able to", "i am not able to",
    "i must decline", "as an ai", "i'm sorry, but i can't", "i'm sorry, but i cannot",
    "i can't do that", "i cannot do that", "i can't comply", "i cannot comply",
};

int eval_refusal(const char *text, size_t len)
{
    char *low = malloc(len + 1);
    size_t n = 0;
    int hit = 0;

    if (!low)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        /* U+2019 (right single quote) counts as an apostrophe. */
        if (c == 0xe2 && i + 2 < len && (unsigned char)text[i + 1] == 0x80 &&
            (unsigned char)text[i + 2] == 0x99) {
            low[n++] = '\'';
            i += 2;
            continue;
        }
        low[n++] = (char)tolower(c);
    }
    low[n] = '\0';
    for (size_t k = 0; k < sizeof(refusal_phrases) / sizeof(refusal_phrases[0]) && !hit; k++)
        hit = strstr(low, refusal_phrases[k]) != NULL;
    free(low);
    return hit;
}

static int is_word(unsigned char c)
{
    return isalnum(c) || c == '_';
}

/* A valid US SSN in the form ddd-dd-dddd (not area 000/666/9xx, group 00, serial 0000). */
static int ssn_valid(const char *s, size_t n)
{
    if (n != 11 || s[3] != '-' || s[6] != '-')
        return 0;
    for (size_t i = 0; i < 11; i++)
        if (i != 3 && i != 6 && !isdigit((unsigned char)s[i]))
            return 0;
    if (!strncmp(s, "000", 3) || !strncmp(s, "666", 3) || s[0] == '9')
        return 0;
    if (!strncmp(s + 4, "00", 2) || !strncmp(s + 7, "0000", 4))
        return 0;
    return 1;
}

static int ipv4_valid(const char *s, size_t n)
{
    char buf[16];
    struct in_addr a;
    if (n < 7 || n > 15)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)buf[i]) && buf[i] != '.')
            return 0;
    return inet_pton(AF_INET, buf, &a) == 1;
}

/* Classify the digit run s[0..n): ip, card, ssn or phone (or nothing). */
static void classify_number(const char *s, size_t n, uint32_t counts[PII_KINDS])
{
    char digits[32];
    size_t nd = 0;
    int seps = 0, dots = 0, plus = s[0] == '+', other_sep = 0;

    if (ipv4_valid(s, n)) {
        counts[PII_IP]++;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i])) {
            if (nd < sizeof(digits))
                digits[nd] = s[i];
            nd++;
        } else {
            seps++;
            if (s[i] == '.')
                dots++;
            else if (s[i] != ' ' && s[i] != '-')
                other_sep = 1;
        }
    }
    if (ssn_valid(s, n)) {
        counts[PII_SSN]++;
        return;
    }
    /* Card numbers start with 2-6 (Mastercard, Amex, Visa, Discover...): bare
     * 13-digit epoch-millisecond timestamps (1...) are not cards. */
    if (nd >= 13 && nd <= 19 && !dots && !other_sep && !plus && digits[0] >= '2' &&
        digits[0] <= '6' && eval_luhn(digits, nd)) {
        counts[PII_CARD]++;
        return;
    }
    if (nd >= 10 && nd <= 15 && (seps > 0 || plus) && dots != 1)
        counts[PII_PHONE]++;
}

static size_t span_of(const char *t, size_t i, size_t len, const char *set, int alnum)
{
    size_t j = i;
    while (j < len && ((alnum && isalnum((unsigned char)t[j])) || strchr(set, t[j])) && t[j])
        j++;
    return j - i;
}

/* Email whose '@' is at AT: returns the end of the match or 0. */
static size_t email_at(const char *t, size_t at, size_t len)
{
    size_t b = at, e, labels = 0, last_alpha = 0;

    while (b > 0 && (isalnum((unsigned char)t[b - 1]) || strchr("._%+-", t[b - 1])) && t[b - 1])
        b--;
    if (b == at)
        return 0;
    e = at + 1;
    for (;;) {
        size_t l = span_of(t, e, len, "-", 1);
        if (l == 0)
            break;
        labels++;
        last_alpha = 1;
        for (size_t k = e; k < e + l; k++)
            if (!isalpha((unsigned char)t[k]))
                last_alpha = 0;
        last_alpha = last_alpha && l >= 2;
        e += l;
        if (e + 1 < len && t[e] == '.' && isalnum((unsigned char)t[e + 1]))
            e++;
        else
            break;
    }
    return labels >= 2 && last_alpha ? e : 0;
}

/* API-key shapes at T+I (a word boundary): length of the key or 0. */
static size_t api_key_at(const char *t, size_t i, size_t len)
{
    static const struct { const char *prefix; size_t min, max; int upper_only; } shapes[] = {
        { "sk-", 20, 200, 0 }, { "AKIA", 16, 16, 1 }, { "ASIA", 16, 16, 1 },
        { "ghp_", 36, 36, 0 }, { "gho_", 36, 36, 0 }, { "ghs_", 36, 36, 0 },
        { "github_pat_", 22, 255, 0 }, { "xoxb-", 20, 200, 0 }, { "xoxp-", 20, 200, 0 },
    };
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        size_t pl = strlen(shapes[k].prefix);
        if (len - i < pl || memcmp(t + i, shapes[k].prefix, pl) != 0)
            continue;
        size_t j = i + pl;
        while (j < len && (isalnum((unsigned char)t[j]) || t[j] == '_' || t[j] == '-') &&
               (!shapes[k].upper_only || isupper((unsigned char)t[j]) || isdigit((unsigned char)t[j])))
            j++;
        size_t body = j - i - pl;
        if (body >= shapes[k].min && body <= shapes[k].max && (j == len || !is_word((unsigned char)t[j])))
            return j - i;
    }
    return 0;
}

static size_t ipv6_at(const char *t, size_t i, size_t len)
{
    char buf[64];
    struct in6_addr a;
    size_t j = i, colons = 0;

    while (j < len && j - i < 46 && (isxdigit((unsigned char)t[j]) || t[j] == ':' || t[j] == '.')) {
        if (t[j] == ':')
            colons++;
        j++;
    }
    while (j > i && t[j - 1] == '.')
        j--;
    if (colons < 2 || j - i < 3 || j - i >= sizeof(buf) || (j < len && is_word((unsigned char)t[j])))
        return 0;
    memcpy(buf, t + i, j - i);
    buf[j - i] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1 ? j - i : 0;
}

void eval_pii_scan(const char *t, size_t len, uint32_t counts[PII_KINDS])
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)t[i];
        int boundary = i == 0 || !is_word((unsigned char)t[i - 1]);
        size_t m;

        if (c == '@') {
            if ((m = email_at(t, i, len)) != 0) {
                counts[PII_EMAIL]++;
                i = m;
                continue;
            }
            i++;
            continue;
        }
        if (!boundary || (i > 0 && t[i - 1] == '.' )) {
            i++;
            continue;
        }
        if ((isxdigit(c) || c == ':') && (m = ipv6_at(t, i, len)) != 0) {
            counts[PII_IP]++;
            i += m;
            continue;
        }
        if (isalpha(c) && (m = api_key_at(t, i, len)) != 0) {
            counts[PII_API_KEY]++;
            i += m;
            continue;
        }
        if (isdigit(c) || ((c == '+' || c == '(') && i + 1 < len && isdigit((unsigned char)t[i + 1]))) {
            /* A run of digits and single separators. */
            size_t j = i + 1, end = i + 1, nsep = 0;
            while (j < len && j - i < 40) {
                unsigned char d = (unsigned char)t[j];
                if (isdigit(d)) {
                    nsep = 0;
                    end = ++j;
                } else if (strchr(" -.()", d) && d && ++nsep <= 2) {
                    j++;
                } else
                    break;
            }
            if (end < len && (is_word((unsigned char)t[end]) || t[end] == '@')) {
                i = end;          /* part of a word or an email: not a number */
                continue;
            }
            classify_number(t + i, end - i, counts);
            i = end;
            continue;
        }
        i++;
    }
}

/* ---- the evaluators ----------------------------------------------------- */

int evaluator_run(struct evaluator *ev, const struct agent_event *e, struct eval_result *res)
{
    const char *out = e->output.p ? e->output.p : "";
    size_t outlen = e->output.len;
    double pin, pout;

    memset(res, 0, sizeof(*res));
    res->evaluators = ev->bits;
    res->latency_ok = res->json_valid = res->refusal = res->length_ok = -1;
    res->input_tokens = res->output_tokens = res->total_tokens = -1;
    res->cost_usd = -1;
    res->output_chars = -1;
    res->slo_ms = ev->slo_ms;

    if ((ev->bits & TV_EVAL_LATENCY) && e->has_duration)
        res->latency_ok = e->duration_ms <= (double)ev->slo_ms;
    if (ev->bits & (TV_EVAL_TOKENS | TV_EVAL_COST)) {
        res->input_tokens = e->input_tokens;
        res->output_tokens = e->output_tokens;
        res->total_tokens = e->total_tokens;
        if (res->total_tokens < 0 && (e->input_tokens >= 0 || e->output_tokens >= 0))
            res->total_tokens = (e->input_tokens > 0 ? e->input_tokens : 0) +
                                (e->output_tokens > 0 ? e->output_tokens : 0);
    }
    if (ev->bits & TV_EVAL_COST) {
        if (e->reported_cost >= 0) {
            res->cost_usd = e->reported_cost;
            res->cost_source = COST_REPORTED;
        } else if ((e->input_tokens >= 0 || e->output_tokens >= 0) &&
                   price_lookup(ev->prices, e->model, &pin, &pout) == 0) {
            res->cost_usd = ((e->input_tokens > 0 ? (double)e->input_tokens : 0) * pin +
                             (e->output_tokens > 0 ? (double)e->output_tokens : 0) * pout) / 1e6;
            res->cost_source = COST_PRICE_TABLE;
        }
    }
    if (!(ev->bits & TV_EVAL_TOKENS))
        res->input_tokens = res->output_tokens = res->total_tokens = -1;
    if (ev->bits & TV_EVAL_PII) {
        res->pii_scanned = 1;
        if (e->input.p)
            eval_pii_scan(e->input.p, e->input.len, res->pii);
        if (e->output.p)
            eval_pii_scan(e->output.p, e->output.len, res->pii);
        if (e->other.p)
            eval_pii_scan(e->other.p, e->other.len, res->pii);
    }
    if ((ev->bits & TV_EVAL_JSON_OUTPUT) && outlen > 0)
        res->json_valid = eval_json_valid(out, outlen);
    if ((ev->bits & TV_EVAL_REFUSAL) && outlen > 0)
        res->refusal = eval_refusal(out, outlen);
    if (ev->bits & TV_EVAL_LENGTH) {
        res->output_chars = eval_utf8_chars(out, outlen);
        res->length_ok = res->output_chars <= ev->max_chars;
    }
    if (ev->bits & TV_EVAL_ASSERTIONS) {
        res->n_assertions = ev->n_asserts;
        for (unsigned i = 0; i < ev->n_asserts; i++) {
            int rc = pcre2_match(ev->re[i], (PCRE2_SPTR)out, outlen, 0, 0, ev->md, ev->mctx);
            res->assert_passed[i] = rc >= 0;
        }
    }
    return 0;
}
