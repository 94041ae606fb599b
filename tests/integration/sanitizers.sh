#!/bin/bash
# sanitizers: "a finding fails CI" is itself tested.  In a build configured
# with --enable-sanitizers, a planted bug (tests/unit/san_planted.c) in each
# place a finding can hide must make the test that met it fail, as automake's
# TAP driver (the one make check and CI use) reports it:
#   - a foreground command whose exit status 1 a tv_fails would take for the
#     refusal it expects (use-after-free, overflow, UB, leak);
#   - a daemon started in the background that reports at SIGTERM;
#   - a daemon whose only finding is a leak, reported as it exits at teardown;
#   - a unit test that printed a passing plan before the finding.
# The same harness with the bug-free mode must pass, or the check proves
# nothing.  Skipped in a normal build: without the sanitizers the planted
# bugs are silent (that is the point of the other build).
. "$top_srcdir/tests/integration/lib.sh"
tv_init sanitizers
[ "$TV_SANITIZERS" = yes ] || tv_skip_all "not a --enable-sanitizers build"
P="$top_builddir/tests/unit/san_planted"
[ -x "$P" ] || tv_skip_all "san_planted not built"
DRIVER="$top_srcdir/build-aux/tap-driver.sh"
[ -f "$DRIVER" ] || tv_skip_all "no build-aux/tap-driver.sh"
tv_plan 16

# A test script in the style of every integration test.  $1: fg|daemon,
# $2: the wrapper (tv_ok|tv_fails) or unused, $3: the planted mode.
cat > "$T/child.sh" <<'CHILD'
#!/bin/bash
. "$top_srcdir/tests/integration/lib.sh"
tv_init san-child
tv_plan 1
case $1 in
fg)
    "$2" "the planted program ($3)" "$PLANTED" "$3" ;;
daemon)
    "$PLANTED" -d "$3" > "$T/daemon.out" 2>&1 &
    D=$!
    tv_defer "kill $D 2>/dev/null; wait $D 2>/dev/null"
    ready() { for _ in $(seq 100); do grep -q ready "$T/daemon.out" && return 0; sleep 0.05; done; return 1; }
    tv_ok "the planted daemon ($3) is up" ready ;;
esac
tv_done
CHILD

# run NAME CMD...: run CMD under the TAP driver as make check does; the
# driver's verdict is in $T/NAME.trs, its log in $T/NAME.log.
run() {
    _n=$1; shift
    AM_TAP_AWK=${AWK:-awk} "$SHELL" "$DRIVER" --test-name "$_n" \
        --log-file "$T/$_n.log" --trs-file "$T/$_n.trs" --color-tests no \
        --enable-hard-errors yes --expect-failure no -- "$@" >/dev/null 2>&1
}
passed() { grep -q '^:global-test-result: PASS$' "$T/$1.trs"; }
failed() { grep -q '^:global-test-result: \(FAIL\|ERROR\)$' "$T/$1.trs" && grep -q "$2" "$T/$1.log"; }
export PLANTED="$P"
SHELL=${SHELL:-/bin/bash}

run fg-clean bash "$T/child.sh" fg tv_ok clean
tv_ok "control: a bug-free command passes the harness" passed fg-clean
run daemon-clean bash "$T/child.sh" daemon - clean
tv_ok "control: a bug-free daemon stopped at teardown passes" passed daemon-clean

for m in uaf:heap-use-after-free overflow:heap-buffer-overflow \
         "ubsan:signed integer overflow" "leak:detected memory leaks"; do
    mode=${m%%:*} what=${m#*:}
    run "fg-$mode" bash "$T/child.sh" fg tv_fails "$mode"
    tv_ok "$mode in a command whose failure the test expects fails the test" \
        failed "fg-$mode" "$what"
done
run fg-okleak bash "$T/child.sh" fg tv_ok leak
tv_ok "a leak in a command that otherwise succeeds fails the test" \
    failed fg-okleak "detected memory leaks"

for m in uaf:heap-use-after-free "ubsan:signed integer overflow" "leak:detected memory leaks"; do
    mode=${m%%:*} what=${m#*:}
    run "daemon-$mode" bash "$T/child.sh" daemon - "$mode"
    tv_ok "$mode in a daemon at SIGTERM (teardown) fails the test" \
        failed "daemon-$mode" "$what"
    tv_ok "  ... and its report is in the test's log" grep -q "sanitizer report" "$T/daemon-$mode.log"
done

# A unit test: the driver sees a complete, passing plan, then the finding;
# the exit status must still fail it.  Reports go to stderr (the test's log).
u_opts="$ASAN_OPTIONS:log_path=stderr"
ASAN_OPTIONS=$u_opts run unit-clean "$P" -t clean
tv_ok "control: a bug-free unit test passes" passed unit-clean
for m in uaf:heap-use-after-free "leak:detected memory leaks"; do
    mode=${m%%:*} what=${m#*:}
    ASAN_OPTIONS=$u_opts run "unit-$mode" "$P" -t "$mode"
    tv_ok "$mode after a passing TAP plan fails the unit test" failed "unit-$mode" "$what"
done
tv_done
