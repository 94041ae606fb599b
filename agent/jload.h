/*
 * jload.h - a fast reader of one JSON text into a jansson tree.
 *
 * The agent's hot path parsed every trace with jansson's json_loadb, whose
 * lexer fetches each byte through a stream callback: about half the agent's
 * instructions went there (callgrind, 20,000 JSONL lines of 300 bytes:
 * 49,000 instructions per line).  jload reads the bytes directly and builds
 * the same tree with jansson's own constructors, so everything downstream
 * (parse.c) is unchanged.
 *
 * Contract: for every input without NUL bytes (parse.c's prescan refuses
 * those first; jansson's own handling of them is odd), jload(buf, len, &trunc) is equal (json_equal)
 * to json_loadb(buf, len, JSON_DECODE_ANY, &err), or both fail and TRUNC is
 * 1 exactly when json_error_code(&err) is json_error_premature_end_of_input.
 * tests/unit/test_agent_jload.c checks this over a corpus, every prefix of
 * it and targeted cases; the fuzz target jload does it over random inputs.
 * Same rules as jansson: any value at the top, whitespace is space, tab, CR
 * and LF, no \u0000, surrogates only in pairs, integers that overflow a long
 * long and reals that overflow a double are errors, the last of duplicate
 * keys wins, nesting deeper than 2048 fails, input must be valid UTF-8.
 */
#ifndef TV_AGENT_JLOAD_H
#define TV_AGENT_JLOAD_H

#include <jansson.h>
#include <stddef.h>

/* The tree of BUF[0..LEN), or NULL with *TRUNCATED (1: the text ended
 * early, 0: anything else is wrong with it, or out of memory). */
json_t *jload(const char *buf, size_t len, int *truncated);

#endif
