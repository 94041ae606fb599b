#!/bin/sh
# keyd-bench.sh [SECONDS] - keyd round-trip benchmark (not part of make check).
# Starts a private keyd in a temp dir, then measures GEN_DEK (1 and 1024 per
# request) and UNWRAP (1 and 64 per request) with 1 and 2 client threads,
# twice: with the audit log on the disk (/tmp: every request's record is
# fdatasync'd before its reply) and with the audit log on tmpfs (/dev/shm),
# which isolates keyd's own CPU cost from the disk's flush latency; and
# single-DEK UNWRAP with 4 and 16 clients on disk, to show group commit.
# Run from the build directory: top_builddir=. top_srcdir=SRC sh SRC/tests/bench/keyd-bench.sh
: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
export top_builddir top_srcdir
. "$top_srcdir/tests/integration/lib.sh"
SECS=${1:-3}
BENCH="$top_builddir/tests/bench/keyd-bench"
[ -x "$BENCH" ] || { echo "build tests/bench/keyd-bench first (make)"; exit 1; }
tv_init keyd-bench

run_set() {  # run_set LABEL
    echo "## $1"
    for mode in gen1 genN unwrap unwrapN; do
        for th in 1 2; do
            "$BENCH" "$T/run/keyd.sock" bench $mode $th "$SECS"
        done
    done
}

tv_write_conf </dev/null
tv_start_keyd || { echo "keyd did not start"; cat "$T/keyd.log"; exit 1; }
"$KEYCTL" -c "$T/tv.conf" create bench >/dev/null
run_set "audit log on disk ($(df -T "$T" | awk 'NR==2 {print $2}'), fdatasync per flush)"
echo "## group commit: single-DEK UNWRAP, more concurrent clients, audit log on disk"
for th in 4 16; do "$BENCH" "$T/run/keyd.sock" bench unwrap $th "$SECS"; done
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null

if [ -d /dev/shm ]; then
    SHM=$(mktemp -d /dev/shm/tv-keyd-bench.XXXXXX)
    tv_defer "rm -rf '$SHM'"
    sed -i "s|^audit_log .*|audit_log   = $SHM/keyd-audit.log|" "$T/tv.conf"
    rm -f "$T/etc/master.key" "$T/lib/keys"
    tv_start_keyd || { echo "keyd did not start"; exit 1; }
    "$KEYCTL" -c "$T/tv.conf" create bench >/dev/null
    run_set "audit log on tmpfs (flush cost ~0: keyd's own CPU cost)"
    kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
fi
