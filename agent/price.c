/*
 * price.c - the price table (see price.h).  The built-in entries are list
 * prices in USD per million tokens as published by the providers; deployments
 * with negotiated prices override them with [agent] price_table.
 */
#include "config.h"
#include "agent/price.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct price_entry {
    char *model;
    double in, out;
};

struct price_table {
    struct price_entry *e;
    size_t n;
};

static const struct { const char *model; double in, out; } builtin[] = {
    { "gpt-4o", 2.50, 10.00 },
    { "gpt-4o-mini", 0.15, 0.60 },
    { "gpt-4.1", 2.00, 8.00 },
    { "gpt-4.1-mini", 0.40, 1.60 },
    { "gpt-4.1-nano", 0.10, 0.40 },
    { "gpt-4-turbo", 10.00, 30.00 },
    { "gpt-3.5-turbo", 0.50, 1.50 },
    { "o1", 15.00, 60.00 },
    { "o3", 2.00, 8.00 },
    { "o3-mini", 1.10, 4.40 },
    { "o4-mini", 1.10, 4.40 },
    { "claude-opus-4", 15.00, 75.00 },
    { "claude-opus-4-1", 15.00, 75.00 },
    { "claude-sonnet-4", 3.00, 15.00 },
    { "claude-sonnet-4-5", 3.00, 15.00 },
    { "claude-haiku-4-5", 1.00, 5.00 },
    { "claude-3-7-sonnet", 3.00, 15.00 },
    { "claude-3-5-sonnet", 3.00, 15.00 },
    { "claude-3-5-haiku", 0.80, 4.00 },
    { "claude-3-haiku", 0.25, 1.25 },
    { "gemini-2.5-pro", 1.25, 10.00 },
    { "gemini-2.5-flash", 0.30, 2.50 },
    { "gemini-2.0-flash", 0.10, 0.40 },
    { "gemini-1.5-pro", 1.25, 5.00 },
    { "gemini-1.5-flash", 0.075, 0.30 },
    { "mistral-large", 2.00, 6.00 },
    { "mistral-small", 0.20, 0.60 },
};

static int add(struct price_table *t, const char *model, double in, double out)
{
    struct price_entry *ne = realloc(t->e, (t->n + 1) * sizeof(*ne));
    if (!ne)
        return -ENOMEM;
    t->e = ne;
    if (!(t->e[t->n].model = strdup(model)))
        return -ENOMEM;
    t->e[t->n].in = in;
    t->e[t->n].out = out;
    t->n++;
    return 0;
}

int price_table_load(const char *path, struct price_table **out, char *err, size_t errlen)
{
    struct price_table *t = calloc(1, sizeof(*t));
    json_error_t jerr;
    json_t *doc = NULL, *v;
    const char *k;
    int r = 0;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    if (!path || !*path) {
        for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]) && r == 0; i++)
            r = add(t, builtin[i].model, builtin[i].in, builtin[i].out);
        goto out;
    }
    doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        snprintf(err, errlen, "price table %s: line %d: %s", path, jerr.line, jerr.text);
        r = -EINVAL;
        goto out;
    }
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "price table %s: not a JSON object", path);
        r = -EINVAL;
        goto out;
    }
    json_object_foreach(doc, k, v) {
        json_t *in = json_object_get(v, "input"), *o = json_object_get(v, "output");
        if (!json_is_number(in) || !json_is_number(o) || json_number_value(in) < 0 ||
            json_number_value(o) < 0) {
            snprintf(err, errlen, "price table %s: model \"%.64s\": needs non-negative "
                     "numbers \"input\" and \"output\"", path, k);
            r = -EINVAL;
            goto out;
        }
        if ((r = add(t, k, json_number_value(in), json_number_value(o))) != 0)
            goto out;
    }
out:
    json_decref(doc);
    if (r != 0) {
        if (r == -ENOMEM)
            snprintf(err, errlen, "price table: out of memory");
        price_table_free(t);
        return r;
    }
    *out = t;
    return 0;
}

void price_table_free(struct price_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].model);
    free(t->e);
    free(t);
}

int price_lookup(const struct price_table *t, const char *model, double *in_per_m,
                 double *out_per_m)
{
    const struct price_entry *best = NULL;
    size_t best_len = 0;
    const char *slash;

    if (!t || !model || !*model)
        return -ENOENT;
    if ((slash = strrchr(model, '/')) != NULL)
        model = slash + 1;
    for (size_t i = 0; i < t->n; i++) {
        size_t n = strlen(t->e[i].model);
        if (strncmp(model, t->e[i].model, n) != 0)
            continue;
        char next = model[n];
        if ((next == '\0' || next == '-' || next == '@' || next == ':') && n > best_len) {
            best = &t->e[i];
            best_len = n;
        }
    }
    if (!best)
        return -ENOENT;
    *in_per_m = best->in;
    *out_per_m = best->out;
    return 0;
}
