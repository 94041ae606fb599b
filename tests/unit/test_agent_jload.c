/*
 * test_agent_jload.c - jload against jansson, differentially: for every
 * input, the same tree (json_equal) or both fail, and "truncated" exactly
 * when jansson says json_error_premature_end_of_input.  Inputs: the sample
 * and canary traces of tests/data/agent, every prefix of each (truncation
 * at every byte), every single-byte substitution of a small document by
 * each structural character, and hand-written cases for numbers, strings,
 * escapes, surrogates, literals, nesting and whitespace.
 */
#include "config.h"
#include "agent/jload.h"
#include "tests/unit/tap.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long checked, differ;
static char first_diff[200];

/* 1 if jload and jansson agree on BUF[0..LEN). */
static int same(const char *buf, size_t len)
{
    json_error_t err;
    int trunc = -1;
    json_t *a = jload(buf, len, &trunc);
    json_t *b = json_loadb(buf, len, JSON_DECODE_ANY, &err);
    int ok = 0;

    if (a && b)
        ok = json_equal(a, b);
    else if (!a && !b)
        ok = trunc == (json_error_code(&err) == json_error_premature_end_of_input);
    json_decref(a);
    json_decref(b);
    checked++;
    if (!ok && differ++ == 0)
        snprintf(first_diff, sizeof(first_diff), "%.*s (jload %s, jansson %s)", (int)(len < 120 ? len : 120),
                 buf, a ? "ok" : (trunc ? "truncated" : "error"), b ? "ok" : err.text);
    return ok;
}

static void all_prefixes(const char *buf, size_t len)
{
    for (size_t k = 0; k <= len; k++)
        same(buf, k);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
        fclose(f);
        return b;
    }
    free(b);
    fclose(f);
    return NULL;
}

int main(void)
{
    static const char *const cases[] = {
        "", " ", "\n\t\r ", "0", "-0", "1", "-1", "01", "-01", "1.", "1.0", ".5", "1e", "1e+",
        "1e5", "1E-5", "1.5e300", "1e309", "-1e309", "1e-400", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "-", "+1", "0x1",
        "123456789012345678901234567890", "1.7976931348623157e308", "2.2250738585072014e-308",
        "true", "false", "null", "tru", "True", "nul", "truex", "true1", "[true1]", "\"\"",
        "\"a", "\"a\\", "\"a\\u12", "\"a\\u12g4\"", "\"\\u0000\"", "\"a\\u0041\"", "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\ud83dx\"", "\"\\x\"", "\"\\/\\b\\f\\n\\r\\t\"",
        "\"tab\there\"", "\"nl\nhere\"", "\"\x7f\"", "\"\xc3\xa9\"", "\"\xc3\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\xc3\xa9", "[\xc3", "[]", "[ ]", "[1,]", "[,1]", "[1 2]", "[1,2",
        "[1,2,", "[[[]]]", "{}", "{ }", "{\"a\":1}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{\"a\"",
        "{\"a\":", "{\"a\":1", "{\"a\":1,", "{1:2}", "{\"a\":1,\"a\":2}", "{\"\":0}",
        "{\"k\\u0000\":1}", "[1] [2]", "1 2", "\"a\" x", "{\"a\":[{\"b\":null}]} ", "[-]", "[-0.0e-0]",
        "[1e01]", "[00]", "[1.e1]", "#", "[#]", "{\"a\":#}", "\"\\", "[\"\\u", "[\"\\uD800\\uDC00\"]",
        "{\"a\":1}}", "]", "}", ":", ",",
    };
    const char *dirs[] = { "tests/data/agent", NULL };
    char path[1024];
    size_t n_files = 0;

    plan(5);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same(cases[i], strlen(cases[i]));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        all_prefixes(cases[i], strlen(cases[i]));
    ok(differ == 0, "%ld hand-written cases and their prefixes agree%s%s", checked,
       differ ? ": first difference " : "", differ ? first_diff : "");

    /* Real traces, whole and cut at every byte (as a truncated file). */
    long before = checked;
    const char *srcdir = getenv("srcdir");
    for (int d = 0; dirs[d]; d++) {
        char dpath[400];
        snprintf(dpath, sizeof(dpath), "%s/%s", srcdir ? srcdir : ".", dirs[d]);
        DIR *dir = opendir(dpath);
        struct dirent *de;
        while (dir && (de = readdir(dir)) != NULL) {
            size_t len;
            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", dpath, de->d_name);
            char *b = slurp(path, &len);
            if (!b)
                continue;
            n_files++;
            if (len <= 20000)
                all_prefixes(b, len);
            else
                same(b, len);
            /* and each line, for the JSONL ones */
            for (char *l = b, *e; l < b + len; l = e + 1) {
                e = memchr(l, '\n', (size_t)(b + len - l));
                if (!e)
                    e = b + len;
                same(l, (size_t)(e - l));
            }
            free(b);
        }
        if (dir)
            closedir(dir);
    }
    ok(n_files >= 5, "%zu files of tests/data/agent read", n_files);
    ok(differ == 0, "%ld cuts of real traces agree%s%s", checked - before,
       differ ? ": first difference " : "", differ ? first_diff : "");

    /* Every byte of a small document replaced by each structural character. */
    static const char doc[] = "{\"a\":[1,-2.5e3,\"x\\u00e9\\n\",true,null,{\"b\":false}],\"c\":\"\"}";
    static const char subst[] = "{}[]:,\"\\ -0123456789.eE+tfnul\x01\xc3";
    before = checked;
    char m[sizeof(doc)];
    for (size_t i = 0; i < sizeof(doc) - 1; i++)
        for (size_t j = 0; j < sizeof(subst) - 1; j++) {
            memcpy(m, doc, sizeof(doc));
            m[i] = subst[j];
            same(m, sizeof(doc) - 1);
            same(m, i + 1);
        }
    ok(differ == 0, "%ld single-byte substitutions agree%s%s", checked - before,
       differ ? ": first difference " : "", differ ? first_diff : "");

    /* Nesting around jansson's limit of 2048. */
    before = checked;
    for (size_t depth = 2046; depth <= 2050; depth++) {
        char *b = malloc(2 * depth + 1);
        memset(b, '[', depth);
        memset(b + depth, ']', depth);
        same(b, 2 * depth);
        same(b, depth);
        free(b);
    }
    ok(differ == 0, "nesting at the depth limit agrees%s%s", differ ? ": " : "", differ ? first_diff : "");
    return done();
}
