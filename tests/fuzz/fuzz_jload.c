/*
 * fuzz_jload.c - libFuzzer, differential: jload (agent/jload.c) must give
 * jansson's json_loadb(JSON_DECODE_ANY) result for every input: an equal
 * tree, or both failing with "truncated" exactly when jansson reports a
 * premature end of input (inputs with NUL bytes excepted, as in jload.h).  Any disagreement aborts with both outcomes.
 */
#include "config.h"
#include "agent/jload.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    int trunc = -1;
    if (memchr(data, 0, size))
        return 0;                      /* not jload's contract: parse.c's prescan refuses them */
    json_t *a = jload((const char *)data, size, &trunc);
    json_t *b = json_loadb((const char *)data, size, JSON_DECODE_ANY, &err);
    int same = (a && b) ? json_equal(a, b)
             : (!a && !b) ? trunc == (json_error_code(&err) == json_error_premature_end_of_input)
             : 0;
    if (!same) {
        fprintf(stderr, "jload: %s, jansson: %s\n", a ? "a value" : trunc ? "truncated" : "error",
                b ? "a value" : err.text);
        abort();
    }
    json_decref(a);
    json_decref(b);
    return 0;
}
