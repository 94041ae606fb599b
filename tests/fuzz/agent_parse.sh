#!/bin/sh
# libFuzzer over the agent's parse + evaluate + record path (bounded run),
# seeded with the sample and canary traces of tests/data/agent.
FUZZ_SEEDS=tests/data/agent exec "$top_srcdir/tests/fuzz/run-fuzz.sh" agent "${FUZZ_SECONDS:-20}" \
    agent/parse.c agent/jload.c agent/evaluate.c agent/price.c agent/record.c lib/util.c \
    -- $(pkg-config --cflags --libs jansson libpcre2-8 msgpack libsodium) -lm
