/*
 * jload.c - one JSON text into a jansson tree, reading bytes directly
 * (jload.h has the contract: the same result as jansson's json_loadb).
 *
 * Recursive descent over [p, end).  Errors carry one bit, whether the text
 * ended early; jansson's rule for that is: the input ran out at a token
 * boundary or inside a string (not inside an escape, a number or a word).
 * Strings are scanned to their closing quote before they are decoded, as
 * jansson's lexer does, so a truncated string with a bad escape later is
 * still "truncated".
 */
#include "config.h"
#include "agent/jload.h"
#include "lib/util.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048               /* jansson's JSON_PARSER_MAX_DEPTH */

struct rd {
    const unsigned char *p, *end;
    int trunc;                       /* the error was the end of the text */
    unsigned depth;
    char *sbuf;                      /* decoded strings */
    size_t scap;
};

static json_t *value(struct rd *r);

static void ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static json_t *fail(struct rd *r, int trunc)
{
    r->trunc = trunc;
    return NULL;
}

static int hex4(const unsigned char *s, int32_t *out)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, int32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string whose opening quote is at r->p: decoded into r->sbuf (NUL
 * terminated), *LEN its length.  0, or -1 with r->trunc set. */
static int string(struct rd *r, size_t *len)
{
    const unsigned char *s = ++r->p, *q = s;
    int escapes = 0;

    /* Pass 1: find the closing quote; escapes well formed, no control
     * characters, valid UTF-8. */
    for (;;) {
        if (q >= r->end)
            return fail(r, 1), -1;
        unsigned char c = *q;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(r, 0), -1;
        if (c == '\\') {
            escapes = 1;
            if (q + 1 >= r->end)
                return fail(r, 0), -1;          /* jansson: "invalid escape" */
            unsigned char e = q[1];
            if (e == 'u') {
                int32_t v;
                if (r->end - (q + 2) < 4 || hex4(q + 2, &v) != 0)
                    return fail(r, 0), -1;
                q += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                q += 2;
            } else {
                return fail(r, 0), -1;
            }
            continue;
        }
        if (c >= 0x80) {
            size_t k = tv_utf8_seq(q, (size_t)(r->end - q));
            if (k == 0)
                return fail(r, 0), -1;
            q += k;
            continue;
        }
        q++;
    }
    size_t n = (size_t)(q - s);
    if (n + 1 > r->scap) {
        size_t nc = r->scap ? r->scap : 256;
        while (nc < n + 1)
            nc *= 2;
        char *nb = realloc(r->sbuf, nc);
        if (!nb)
            return fail(r, 0), -1;
        r->sbuf = nb;
        r->scap = nc;
    }
    r->p = q + 1;
    if (!escapes) {
        memcpy(r->sbuf, s, n);
        r->sbuf[n] = '\0';
        *len = n;
        return 0;
    }
    /* Pass 2: decode (the output is never longer than the input). */
    char *o = r->sbuf;
    for (const unsigned char *t = s; t < q;) {
        if (*t != '\\') {
            *o++ = (char)*t++;
            continue;
        }
        unsigned char e = t[1];
        t += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: {                               /* 'u' */
            int32_t v, v2;
            hex4(t, &v);
            t += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (t + 6 <= q && t[0] == '\\' && t[1] == 'u' && hex4(t + 2, &v2) == 0 &&
                    v2 >= 0xDC00 && v2 <= 0xDFFF) {
                    v = ((v - 0xD800) << 10) + (v2 - 0xDC00) + 0x10000;
                    t += 6;
                } else {
                    return fail(r, 0), -1;      /* a lone high surrogate */
                }
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                return fail(r, 0), -1;          /* a lone low surrogate */
            }
            if (v == 0)
                return fail(r, 0), -1;          /* \u0000: not without JSON_ALLOW_NUL */
            o += put_utf8(o, v);
        }
        }
    }
    *o = '\0';
    *len = (size_t)(o - r->sbuf);
    return 0;
}

static locale_t c_locale;
static pthread_once_t c_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* The parser met something other than what it expected.  jansson's lexer
 * reads the whole next token first, and a string that runs to the end of
 * the text makes that a premature end; anything else is a plain error. */
static void unexpected(struct rd *r)
{
    size_t len;

    if (r->p >= r->end) {
        r->trunc = 1;
        return;
    }
    if (*r->p == '"' && string(r, &len) != 0)
        return;                        /* r->trunc from the string's scan */
    r->trunc = 0;
}

static json_t *number(struct rd *r)
{
    const unsigned char *s = r->p, *q = s;
    int real = 0;
    char tmp[64], *big = NULL, *txt = tmp, *e;

    if (q < r->end && *q == '-')
        q++;
    if (q < r->end && *q == '0') {
        q++;
        if (q < r->end && *q >= '0' && *q <= '9')
            return fail(r, 0);
    } else if (q < r->end && *q >= '1' && *q <= '9') {
        while (q < r->end && *q >= '0' && *q <= '9')
            q++;
    } else {
        return fail(r, 0);
    }
    if (q < r->end && *q == '.') {
        real = 1;
        q++;
        if (q >= r->end || !(*q >= '0' && *q <= '9'))
            return fail(r, 0);
        while (q < r->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < r->end && (*q == 'e' || *q == 'E')) {
        real = 1;
        q++;
        if (q < r->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= r->end || !(*q >= '0' && *q <= '9'))
            return fail(r, 0);
        while (q < r->end && *q >= '0' && *q <= '9')
            q++;
    }
    size_t n = (size_t)(q - s);
    if (n >= sizeof(tmp) && !(txt = big = malloc(n + 1)))
        return fail(r, 0);
    memcpy(txt, s, n);
    txt[n] = '\0';
    r->p = q;
    json_t *v = NULL;
    errno = 0;
    if (!real) {
        long long x = strtoll(txt, &e, 10);
        if (errno != ERANGE)
            v = json_integer(x);
    } else {
        /* strtod in the C locale whatever the process's, as jansson does */
        pthread_once(&c_once, c_locale_init);
        double d = c_locale ? strtod_l(txt, &e, c_locale) : strtod(txt, &e);
        if (!((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE))
            v = json_real(d);
    }
    free(big);
    return v ? v : fail(r, 0);
}

static json_t *word(struct rd *r)
{
    const unsigned char *q = r->p;
    while (q < r->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    size_t n = (size_t)(q - r->p);
    const char *w = (const char *)r->p;
    r->p = q;
    if (n == 4 && !memcmp(w, "true", 4))
        return json_true();
    if (n == 5 && !memcmp(w, "false", 5))
        return json_false();
    if (n == 4 && !memcmp(w, "null", 4))
        return json_null();
    return fail(r, 0);
}

/* After a member of a container that CLOSE ends: 1 when a comma leads to
 * another member, 0 when CLOSE ended the container (both consumed), -1 with
 * r->trunc set when anything else comes. */
static int after_member(struct rd *r, unsigned char close)
{
    ws(r);
    if (r->p < r->end && *r->p == ',') {
        r->p++;
        ws(r);
        return 1;
    }
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    unexpected(r);
    return -1;
}

static json_t *object(struct rd *r)
{
    json_t *o = json_object();
    size_t klen;

    if (!o)
        return fail(r, 0);
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        if (r->p >= r->end || *r->p != '"') {
            unexpected(r);             /* jansson: "string or '}' expected" */
            goto bad;
        }
        if (string(r, &klen) != 0)
            goto bad;
        /* the key is in r->sbuf until the value's strings overwrite it */
        char kbuf[128], *key = klen < sizeof(kbuf) ? kbuf : malloc(klen + 1);
        if (!key)
            goto bad;
        memcpy(key, r->sbuf, klen + 1);
        ws(r);
        if (r->p >= r->end || *r->p != ':') {
            if (key != kbuf)
                free(key);
            unexpected(r);
            goto bad;
        }
        r->p++;
        json_t *v = value(r);
        if (v && json_object_setn_new_nocheck(o, key, klen, v) != 0) {
            v = NULL;                  /* out of memory (the value is released) */
            r->trunc = 0;
        }
        if (key != kbuf)
            free(key);
        if (!v)
            goto bad;                  /* r->trunc says why */
        int more = after_member(r, '}');
        if (more == 0)
            return o;
        if (more < 0)
            goto bad;
    }
bad:
    json_decref(o);
    return NULL;
}

static json_t *array(struct rd *r)
{
    json_t *a = json_array();

    if (!a)
        return fail(r, 0);
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        json_t *v = value(r);
        if (!v)
            goto bad;                  /* r->trunc says why */
        if (json_array_append_new(a, v) != 0) {
            r->trunc = 0;              /* out of memory */
            goto bad;
        }
        int more = after_member(r, ']');
        if (more == 0)
            return a;
        if (more < 0)
            goto bad;
    }
bad:
    json_decref(a);
    return NULL;
}

/* A value after optional whitespace. */
static json_t *value(struct rd *r)
{
    size_t len;

    ws(r);
    if (r->p >= r->end)
        return fail(r, 1);
    switch (*r->p) {
    case '{':
    case '[': {
        if (++r->depth > MAX_DEPTH)
            return fail(r, 0);
        json_t *v = *r->p == '{' ? object(r) : array(r);
        r->depth--;
        return v;
    }
    case '"':
        if (string(r, &len) != 0)
            return NULL;
        return json_stringn_nocheck(r->sbuf, len) ?: fail(r, 0);
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return number(r);
    default:
        if ((*r->p >= 'a' && *r->p <= 'z') || (*r->p >= 'A' && *r->p <= 'Z'))
            return word(r);
        return fail(r, 0);
    }
}

json_t *jload(const char *buf, size_t len, int *truncated)
{
    struct rd r = { .p = (const unsigned char *)buf, .end = (const unsigned char *)buf + len };
    json_t *v = value(&r);

    if (v) {
        ws(&r);
        if (r.p < r.end) {             /* jansson: "end of file expected" */
            json_decref(v);
            v = NULL;
            unexpected(&r);
        }
    }
    free(r.sbuf);
    *truncated = v ? 0 : r.trunc;
    return v;
}
