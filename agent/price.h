/*
 * price.h - model prices for the cost evaluator.
 *
 * A built-in table (agent/price.c, USD per million tokens) that a JSON file
 * named by [agent] price_table replaces:
 *     { "gpt-4o": {"input": 2.50, "output": 10.00}, ... }
 * Lookup: exact model name, else the longest table entry that is a prefix of
 * the model followed by '-', '@' or ':' (dated snapshots such as
 * gpt-4o-2024-08-06 price as gpt-4o), after dropping a "provider/" prefix.
 */
#ifndef TV_AGENT_PRICE_H
#define TV_AGENT_PRICE_H

#include <stddef.h>

struct price_table;

/* Load PATH (NULL or "" = the built-in table).  Returns 0 and *OUT, or a
 * negative errno with ERR naming the file and the reason. */
int price_table_load(const char *path, struct price_table **out, char *err, size_t errlen);
void price_table_free(struct price_table *t);

/* Prices for MODEL in USD per million tokens; 0 if found, -ENOENT if not. */
int price_lookup(const struct price_table *t, const char *model, double *in_per_m,
                 double *out_per_m);

#endif
