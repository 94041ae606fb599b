#!/bin/sh
# libFuzzer, differential: the agent's JSON reader against jansson (bounded
# run), seeded with the sample and canary traces of tests/data/agent.
FUZZ_SEEDS=tests/data/agent exec "$top_srcdir/tests/fuzz/run-fuzz.sh" jload "${FUZZ_SECONDS:-20}" \
    agent/jload.c lib/util.c \
    -- $(pkg-config --cflags --libs jansson libsodium) -lpthread
