#!/bin/sh
# libFuzzer over the vault's header parser, size arithmetic, block opener and
# name decoder (bounded run).
exec "$top_srcdir/tests/fuzz/run-fuzz.sh" vault_decode "${FUZZ_SECONDS:-20}" \
    vault/blockcrypt.c vault/names.c -- $(pkg-config --cflags --libs libsodium)
