#!/bin/sh
# libFuzzer over the gateway's body handling (protobuf scan, decode and
# conversion; JSON and events checks; gzip), seeded with real exporter bodies.
P="$top_builddir/ingest/proto"
exec "$top_srcdir/tests/fuzz/run-fuzz.sh" ingest_otlp "${FUZZ_SECONDS:-20}" \
    ingest/otlp.c ingest/body.c ingest/events.c lib/util.c \
    -- -I"$P" "$P/otlp_common.pb-c.c" "$P/otlp_resource.pb-c.c" "$P/otlp_trace.pb-c.c" \
    "$P/otlp_collector.pb-c.c" "$P/rpc_status.pb-c.c" \
    $(pkg-config --cflags --libs jansson libprotobuf-c zlib)
