#!/bin/sh
# The README's test command: install dependencies, build, run every test.
# Ends with one line "N passed, N failed, N skipped" and exits non-zero on any
# failure (a build failure counts as one failed test, so the line is always there).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
jobs=$(nproc 2>/dev/null || echo 2)

die() {
    echo "check: $*" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
}

"$top/scripts/setup.sh" || die "installing dependencies failed"
if [ ! -x configure ]; then
    autoreconf -fi >autoreconf.log 2>&1 || { cat autoreconf.log; die "autoreconf failed"; }
fi
if [ ! -f Makefile ]; then
    ./configure -q >configure.log 2>&1 || { tail -30 configure.log config.log; die "configure failed"; }
fi
make -j"$jobs" >build.log 2>&1 || { grep -E 'error|Error' build.log | head -40; die "build failed"; }

status=0
make -j"$jobs" check >make-check.log 2>&1 || status=$?
grep -E '^(FAIL|ERROR|XPASS):' make-check.log || true
count() { grep -E "^# $1: " make-check.log | awk '{s += $3} END {print s + 0}'; }
pass=$(count PASS); xfail=$(count XFAIL); fail=$(count FAIL); xpass=$(count XPASS)
err=$(count ERROR); skip=$(count SKIP)
if [ "$status" -ne 0 ]; then
    # Print the logs of what failed, so that CI's output says why.
    grep -lE '^(not ok|Bail out)' $(find tests -name '*.log') 2>/dev/null | head -10 |
    while read -r log; do
        echo "==== $log"
        tail -60 "$log"
    done
    [ $((fail + xpass + err)) -eq 0 ] && err=1   # make failed without a failed test
fi
# Packaging: the tarball builds out of tree from a read-only source and
# passes the same tests (automake's distcheck).  One more test in the count.
if [ "$status" -eq 0 ] && [ -z "${TV_NO_DISTCHECK:-}" ]; then
    if make distcheck >distcheck.log 2>&1; then
        pass=$((pass + 1))
        echo "PASS: make distcheck"
    else
        err=$((err + 1))
        status=1
        echo "FAIL: make distcheck"
        grep -E '^(FAIL|ERROR):|Error|error:' distcheck.log | head -20
    fi
else
    skip=$((skip + 1))
fi
echo "$((pass + xfail)) passed, $((fail + xpass + err)) failed, $skip skipped"
exit "$status"
