# tests/san-env.sh - sanitizer settings for every test (sourced, POSIX sh).
#
# Sourced by the makefile's AM_TESTS_ENVIRONMENT (unit tests, fuzz runs,
# integration tests) and by tests/integration/lib.sh (so one test run by hand
# gets them too).  Only does anything in a build configured with
# --enable-sanitizers (TV_SANITIZERS=yes); a variable the caller already set
# wins, so a developer can add options (docs/DEVELOPMENT.md).
#
# Why these options:
#  - detect_leaks=1: LeakSanitizer at every process's exit (its default on
#    x86-64 Linux, said here so nobody has to know that).
#  - halt_on_error=1 (with -fno-sanitize-recover=all at build time): the first
#    finding ends the process with a non-zero status, never a line in a log
#    that a passing test leaves behind.
#  - allocator_may_return_null=1: a huge malloc returns NULL as glibc's does,
#    so the code's own "out of memory" path runs instead of ASan aborting on
#    an allocation a hostile size asked for (that path is what tests check).
#  - log_exe_name=1: tests/integration/lib.sh points log_path into the test's
#    directory; each report file then names the program that failed.
#  - LSan suppressions: tests/lsan.supp, third-party leaks only.
if [ "${TV_SANITIZERS:-no}" = yes ]; then
    : "${ASAN_OPTIONS:=detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:check_initialization_order=1:strict_init_order=1:print_summary=1:log_exe_name=1}"
    : "${UBSAN_OPTIONS:=halt_on_error=1:print_stacktrace=1:print_summary=1:log_exe_name=1}"
    : "${LSAN_OPTIONS:=suppressions=${top_srcdir:-.}/tests/lsan.supp:print_suppressions=0}"
    export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    # Scale tests whose size buys nothing more under a sanitizer: 20000 files
    # exercise every vault path the 200000 of the normal run do (the descriptor
    # cap, parking, reopening), at a tenth of a run that ASan makes 3x slower.
    : "${TV_MANYFILES:=20000}"
    export TV_MANYFILES
fi
