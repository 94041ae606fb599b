#!/bin/sh
# libFuzzer over the frame peek + msgpack validator + decoder (bounded run).
exec "$top_srcdir/tests/fuzz/run-fuzz.sh" frame "${FUZZ_SECONDS:-20}" lib/frame.c lib/util.c -- $(pkg-config --cflags --libs msgpack)
