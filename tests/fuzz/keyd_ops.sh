#!/bin/sh
# libFuzzer over keyd's request decoding and dispatch (bounded run, ~15 s).
exec "$top_srcdir/tests/fuzz/run-fuzz.sh" keyd_ops "${FUZZ_SECONDS:-15}" \
    keyd/ops.c keyd/records.c keyd/keystore.c keyd/keystore_file.c keyd/sealkey.c keyd/gbuf.c keyd/seal.c \
    keyd/proto.c \
    lib/frame.c lib/config.c lib/util.c lib/log.c lib/audit.c \
    -- $(pkg-config --cflags --libs msgpack libsodium inih)
