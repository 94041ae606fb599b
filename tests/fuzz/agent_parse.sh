#!/bin/sh
# libFuzzer over the agent's parse + evaluate + record path (bounded run),
# seeded with the sample and canary traces of tests/data/agent.  Same shape
# as run-fuzz.sh, which seeds only from tests/fuzz/corpus/NAME.
set -u
cc=${CLANG:-clang}
out="$top_builddir/tests/fuzz/fuzz_agent"
secs=${FUZZ_SECONDS:-20}
mkdir -p "$top_builddir/tests/fuzz"
echo "1..2"
if [ -z "$cc" ] || ! command -v "$cc" >/dev/null 2>&1 ||
   ! echo 'int LLVMFuzzerTestOneInput(const char*d,unsigned long n){return 0;}' |
     "$cc" -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
    echo "ok 1 # SKIP clang with libFuzzer not available"
    echo "ok 2 # SKIP clang with libFuzzer not available"
    exit 0
fi
s="$top_srcdir"
# shellcheck disable=SC2046
if "$cc" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
     -I"$s" -I"$top_builddir" "$s/tests/fuzz/fuzz_agent.c" "$s/agent/parse.c" "$s/agent/evaluate.c" \
     "$s/agent/price.c" "$s/agent/record.c" \
     $(pkg-config --cflags --libs jansson libpcre2-8 msgpack libsodium) -lm -o "$out" \
     2>"$out.build.log"; then
    echo "ok 1 - fuzz_agent builds with libFuzzer"
else
    echo "not ok 1 - fuzz_agent builds with libFuzzer"; sed 's/^/# /' "$out.build.log" | head -40
    echo "not ok 2 - fuzz_agent runs"; exit 0
fi
corpus="$top_builddir/tests/fuzz/corpus-agent"
rm -rf "$corpus"; mkdir -p "$corpus"
cp "$s"/tests/data/agent/* "$corpus"/
# One seed per JSONL line as well.
i=0
cat "$s"/tests/data/agent/*.jsonl | while IFS= read -r line; do
    i=$((i + 1)); printf '%s' "$line" > "$corpus/line-$i"
done
if "$out" -max_total_time="$secs" -rss_limit_mb=1024 -max_len=65536 -timeout=10 -artifact_prefix="$top_builddir/tests/fuzz/" "$corpus" >"$out.log" 2>&1; then
    echo "ok 2 - fuzz_agent ran ${secs}s without a crash ($(grep -c '' "$out.log") log lines)"
else
    echo "not ok 2 - fuzz_agent found a crash"; tail -40 "$out.log" | sed 's/^/# /'
fi
