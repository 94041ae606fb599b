#!/bin/sh
# tracevault-retention's lock with a configuration of its own (issue 12): with
# no [retention] lock_file the lock sits beside [vault] backing, wherever the
# configuration puts it, and needs nothing under /run; it still keeps runs
# apart (exit 3); two vaults' runs do not block each other; with no backing
# store and no lock directory a run reports empty projects and creates
# nothing; an explicit lock_file in a missing directory is a clear error.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init retention-lock
[ -x "$RETENTION" ] || tv_skip_all "tracevault-retention not built"
tv_plan 12

# Two configurations of their own, each with its state under its own directory
# and no lock_file line (tv_write_conf writes one: drop it).
tv_write_conf <<'CONF'
[project.alpha]
retention_days = 30
CONF
mkconf() {  # mkconf NAME: $T/NAME/ holds data/ and NAME.conf
    mkdir -p "$T/$1/data/alpha"
    sed -e '/^\[retention\]$/d' -e '/^lock_file/d' \
        -e "s#^backing .*#backing = $T/$1/data#" -e "s#^mountpoint .*#mountpoint = $T/$1/mnt#" \
        "$T/tv.conf" >"$T/$1.conf"
}
mkconf a
mkconf b
touch -d '90 days ago' "$T/a/data/alpha/old.json"
run_ls=$(ls -d /run/tracevault 2>/dev/null)

"$RETENTION" -c "$T/a.conf" --no-syslog >"$T/a.out" 2>"$T/a.err"; rc=$?
tv_ok "a run with no lock_file configured succeeds (exit $rc)" test "$rc" -eq 0
tv_ok "...and expires what is due" sh -c '! test -e "$1" && grep -q "^project=alpha via=backing .* files=1 " "$2"' _ "$T/a/data/alpha/old.json" "$T/a.out"
tv_ok "...nothing on stderr" test ! -s "$T/a.err"
tv_ok "the lock is beside the backing store" test -f "$T/a/retention.lock"
tv_ok "nothing was created under /run" test "$(ls -d /run/tracevault 2>/dev/null)" = "$run_ls"

# The default lock still keeps runs apart.
$PY -c 'import fcntl, sys, time
f = open(sys.argv[1], "w"); fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close(); time.sleep(30)' "$T/a/retention.lock" "$T/held" &
HOLDER=$!
tv_defer "kill $HOLDER 2>/dev/null"
tv_wait_for "$T/held" 10
touch -d '90 days ago' "$T/a/data/alpha/old2.json"
"$RETENTION" -c "$T/a.conf" --no-syslog >"$T/a2.out" 2>"$T/a2.err"; rc=$?
tv_ok "a run while another holds the default lock exits 3 (got $rc) and removes nothing" \
    sh -c '[ $0 -eq 3 ] && grep -q "another run holds $1" "$2" && test -e "$3"' "$rc" "$T/a/retention.lock" "$T/a2.err" "$T/a/data/alpha/old2.json"
"$RETENTION" -c "$T/b.conf" --no-syslog >"$T/b.out" 2>"$T/b.err"; rc=$?
tv_ok "another vault's run is not blocked by it (exit $rc)" sh -c '[ $0 -eq 0 ] && test -f "$1"' "$rc" "$T/b/retention.lock"
kill $HOLDER; wait $HOLDER 2>/dev/null
"$RETENTION" -c "$T/a.conf" --no-syslog >/dev/null 2>&1; rc=$?
tv_ok "once released, the next run proceeds (exit $rc)" sh -c '[ $0 -eq 0 ] && ! test -e "$1"' "$rc" "$T/a/data/alpha/old2.json"

# Nothing stored yet: neither the backing store nor its directory exists.
sed "s#^backing .*#backing = $T/none/data#" "$T/a.conf" >"$T/none.conf"
"$RETENTION" -c "$T/none.conf" --no-syslog >"$T/n.out" 2>"$T/n.err"; rc=$?
tv_ok "no backing store and no lock directory: exit $rc, every project reported empty" \
    sh -c '[ $0 -eq 0 ] && grep -q "^project=alpha via=backing retention_days=30 files=0 bytes=0 dirs=0 errors=0$" "$1" && test ! -s "$2"' "$rc" "$T/n.out" "$T/n.err"
tv_ok "...and nothing is created" test ! -e "$T/none"

# An explicit lock_file keeps working, and a missing directory for it is an error.
printf '[retention]\nlock_file = %s\n' "$T/explicit.lock" >>"$T/a.conf"
"$RETENTION" -c "$T/a.conf" --no-syslog >/dev/null 2>&1; rc=$?
tv_ok "an explicit lock_file is used (exit $rc)" sh -c '[ $0 -eq 0 ] && test -f "$1"' "$rc" "$T/explicit.lock"
sed -i "s#^lock_file = .*#lock_file = $T/missing/dir/retention.lock#" "$T/a.conf"
"$RETENTION" -c "$T/a.conf" --no-syslog >"$T/m.out" 2>"$T/m.err"; rc=$?
tv_ok "an explicit lock_file in a missing directory: exit 1 naming it (got $rc)" \
    sh -c '[ $0 -eq 1 ] && grep -q "lock file $1: No such file or directory" "$2"' "$rc" "$T/missing/dir/retention.lock" "$T/m.err"
tv_done
