#!/bin/sh
# The README's test command: install dependencies, build, run every test.
# Ends with one line "N passed, N failed, N skipped" and exits non-zero on any
# failure (a build failure counts as one failed test, so the line is always there).
#
# Two runs of the whole suite:
#  1. the normal build, in the tree: make check;
#  2. make distcheck with --enable-sanitizers: the release tarball, unpacked
#     read-only, builds out of tree (VPATH) with AddressSanitizer, LeakSanitizer
#     and UBSan, and runs the same make check there (docs/DEVELOPMENT.md).  Its
#     tests count one by one in the final line, as "san:" (a sanitizer finding
#     fails the test that met it), and the packaging steps around them
#     (install, uninstall, distclean) as one more test.
# Distcheck and the sanitizer run are one run because each is a whole make
# check: doing both would add a third (CI's budget is 45 minutes of 90).
# TV_NO_DISTCHECK=1 skips run 2; TV_NO_SANITIZERS=1 makes it a plain distcheck.
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

# count LOG KIND: the sum of automake's "# KIND: N" summary lines in LOG.
count() { grep -E "^# $2: " "$1" | awk '{s += $3} END {print s + 0}'; }
# show_failed DIR: the logs of what failed under DIR, so that CI's output says why.
show_failed() {
    grep -lE '^(not ok|Bail out)' $(find "$1" -name '*.log' -path '*tests/*' 2>/dev/null) 2>/dev/null |
    head -10 | while read -r log; do
        echo "==== $log"
        tail -60 "$log"
    done
}

status=0
t0=$(date +%s)
make -j"$jobs" check >make-check.log 2>&1 || status=$?
grep -E '^(FAIL|ERROR|XPASS):' make-check.log || true
pass=$(count make-check.log PASS); xfail=$(count make-check.log XFAIL)
fail=$(count make-check.log FAIL); xpass=$(count make-check.log XPASS)
err=$(count make-check.log ERROR); skip=$(count make-check.log SKIP)
if [ "$status" -ne 0 ]; then
    show_failed tests
    [ $((fail + xpass + err)) -eq 0 ] && err=1   # make failed without a failed test
fi
echo "check: make check took $(( $(date +%s) - t0 )) s"

if [ -z "${TV_NO_DISTCHECK:-}" ]; then
    flags=--enable-sanitizers what="make distcheck (sanitizers)"
    [ -n "${TV_NO_SANITIZERS:-}" ] && flags= what="make distcheck"
    t0=$(date +%s)
    # -j reaches the make check inside distcheck: its tests run in parallel.
    if make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS="$flags" >distcheck.log 2>&1; then
        dstatus=0
    else
        dstatus=1
        status=1
    fi
    grep -E '^(FAIL|ERROR|XPASS):' distcheck.log | sed 's/^/san: /' || true
    dfail=$(( $(count distcheck.log FAIL) + $(count distcheck.log XPASS) + $(count distcheck.log ERROR) ))
    pass=$((pass + $(count distcheck.log PASS) + $(count distcheck.log XFAIL)))
    skip=$((skip + $(count distcheck.log SKIP)))
    err=$((err + dfail))
    if [ "$dstatus" -eq 0 ]; then
        pass=$((pass + 1))
        echo "PASS: $what"
    else
        [ "$dfail" -gt 0 ] && show_failed "$(ls -d tracevault-*/_build 2>/dev/null | head -1)"
        # The tests passed (or never ran): the build or packaging failed.
        if [ "$dfail" -eq 0 ]; then
            err=$((err + 1))
            grep -E 'Error|error:' distcheck.log | head -20
        fi
        echo "FAIL: $what"
    fi
    echo "check: $what took $(( $(date +%s) - t0 )) s"
else
    skip=$((skip + 1))
fi
echo "$((pass + xfail)) passed, $((fail + xpass + err)) failed, $skip skipped"
exit "$status"
