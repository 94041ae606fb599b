#!/bin/sh
# The README's test command: install dependencies, build, run every test.
# Ends with one line "N passed, N failed[, N skipped]" and exits non-zero on failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/setup.sh"
[ -x configure ] || autoreconf -fi >/dev/null
[ -f Makefile ] || ./configure -q
make -j"$(nproc)" >/dev/null
status=0
make -j"$(nproc)" check >make-check.log 2>&1 || status=$?
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP)' make-check.log | sed -n '/^\(FAIL\|ERROR\|XPASS\)/p' || true
count() { grep -E "^# $1: " make-check.log | awk '{s+=$3} END {print s+0}'; }
pass=$(count PASS); xfail=$(count XFAIL); fail=$(count FAIL); xpass=$(count XPASS)
err=$(count ERROR); skip=$(count SKIP)
if [ "$status" -ne 0 ]; then
    # Show the logs of what failed so CI output says why.
    for log in $(grep -lE '^(not ok|ERROR|FAIL)' $(find . -name '*.log' -path './tests/*' -o -name '*.log' -path './*/tests/*' 2>/dev/null) 2>/dev/null | head -10); do
        echo "==== $log"; tail -60 "$log"
    done
fi
echo "$((pass + xfail)) passed, $((fail + xpass + err)) failed, $skip skipped"
exit "$status"
