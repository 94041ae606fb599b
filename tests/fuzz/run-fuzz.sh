#!/bin/sh
# run-fuzz.sh NAME SECONDS SOURCE... -- LIBS...
# Build tests/fuzz/fuzz_NAME.c with clang's libFuzzer + ASan/UBSan and run it for
# a bounded time on a fresh corpus seeded from tests/fuzz/corpus/NAME (if any)
# and from every file in the source-relative directories of $FUZZ_SEEDS, where a
# *.jsonl file also gives one seed per line.  Crash artifacts go to the build
# tree.  Prints TAP; skips (ok # SKIP) when clang lacks libFuzzer.
set -u
name=$1; secs=$2; shift 2
srcs=""; while [ $# -gt 0 ] && [ "$1" != "--" ]; do srcs="$srcs $top_srcdir/$1"; shift; done
[ $# -gt 0 ] && shift
cc=${CLANG:-clang}
out="$top_builddir/tests/fuzz/fuzz_$name"
mkdir -p "$top_builddir/tests/fuzz"
echo "1..2"
if [ -z "$cc" ] || ! command -v "$cc" >/dev/null 2>&1 ||
   ! echo 'int LLVMFuzzerTestOneInput(const char*d,unsigned long n){return 0;}' |
     "$cc" -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
    echo "ok 1 # SKIP clang with libFuzzer not available"
    echo "ok 2 # SKIP clang with libFuzzer not available"
    exit 0
fi
# shellcheck disable=SC2086
if "$cc" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
     -I"$top_srcdir" -I"$top_builddir" "$top_srcdir/tests/fuzz/fuzz_$name.c" $srcs "$@" -o "$out" \
     2>"$out.build.log"; then
    echo "ok 1 - fuzz_$name builds with libFuzzer"
else
    echo "not ok 1 - fuzz_$name builds with libFuzzer"; sed 's/^/# /' "$out.build.log" | head -40
    echo "not ok 2 - fuzz_$name runs"; exit 0
fi
corpus="$top_builddir/tests/fuzz/corpus-$name"
rm -rf "$corpus"; mkdir -p "$corpus"
[ -d "$top_srcdir/tests/fuzz/corpus/$name" ] && cp "$top_srcdir/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
i=0
for d in ${FUZZ_SEEDS:-}; do
    for f in "$top_srcdir/$d"/*; do
        [ -f "$f" ] || continue
        i=$((i + 1)); cp "$f" "$corpus/seed-$i"
        case "$f" in
        *.jsonl)
            while IFS= read -r line; do
                i=$((i + 1)); printf '%s' "$line" > "$corpus/seed-$i"
            done < "$f" ;;
        esac
    done
done
if "$out" -max_total_time="$secs" -rss_limit_mb=1024 -max_len=65536 -timeout=10 \
     -artifact_prefix="$top_builddir/tests/fuzz/" "$corpus" >"$out.log" 2>&1; then
    echo "ok 2 - fuzz_$name ran ${secs}s without a crash ($(grep -c '' "$out.log") log lines)"
else
    echo "not ok 2 - fuzz_$name found a crash"; tail -40 "$out.log" | sed 's/^/# /'
fi
