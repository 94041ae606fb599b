#!/bin/sh
# retention-bench.sh [FILES] [MOUNT_FILES] - tracevault-retention against
# find(1) -delete, the peer a cron job would otherwise use, on identical trees,
# in the same run.  Not part of make check.
#
#   top_builddir=BUILD top_srcdir=SRC sh SRC/tests/bench/retention-bench.sh 20000 2000
#
# Four identical projects of FILES files in 200 directories, half 90 days
# old, half 10 days.  Backing store (vault not mounted): two are expired by
# tracevault-retention, two by
#   find DIR -type f ! -name '.*' -mtime +30 -delete
# in the order retention, find, find, retention (ABBA: whichever runs later
# profits from what the earlier runs left in the caches and the journal).
# Then the same through a live vault (keyd + vault started here) with
# MOUNT_FILES files per project, both removers running as root, the
# projects' maintainer.  Prints seconds and files per second, and the ratio
# of the summed times retention / find.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init retention-bench
N=${1:-20000}
NM=${2:-2000}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

tv_write_conf <<'CONF'
[project.ret1]
writers = root
[project.ret2]
writers = root
[project.find1]
writers = root
[project.find2]
writers = root
CONF

mktree() {  # mktree DIR COUNT
    $PY - "$1" "$2" <<'PY'
import os, sys, time
top, n = sys.argv[1], int(sys.argv[2])
old, new = time.time() - 90 * 86400, time.time() - 10 * 86400
for i in range(n):
    d = os.path.join(top, "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "trace-%06d.json" % i)
    with open(p, "wb") as f:
        f.write(b"x" * 300)
    t = old if i % 2 else new
    os.utime(p, (t, t))
PY
}

# run BASE COUNT: ABBA over the four projects below BASE; prints the summary.
run() {
    for p in ret1 find1 find2 ret2; do mktree "$1/$p" "$2"; done
    sync
    t0=$(now); "$RETENTION" -c "$T/tv.conf" --project ret1 --no-syslog >/dev/null; t1=$(now)
    find "$1/find1" -type f ! -name '.*' -mtime +30 -delete; t2=$(now)
    find "$1/find2" -type f ! -name '.*' -mtime +30 -delete; t3=$(now)
    "$RETENTION" -c "$T/tv.conf" --project ret2 --no-syslog >/dev/null; t4=$(now)
    r=$(awk -v a="$(secs "$t0" "$t1")" -v b="$(secs "$t3" "$t4")" 'BEGIN { print a + b }')
    f=$(awk -v a="$(secs "$t1" "$t2")" -v b="$(secs "$t2" "$t3")" 'BEGIN { print a + b }')
    awk -v r="$r" -v f="$f" -v n="$2" 'BEGIN {
        printf "tracevault-retention: %.3f s for %d files, %.0f files/s\n", r, n, n / r
        printf "find -delete:         %.3f s for %d files, %.0f files/s\n", f, n, n / f
        printf "ratio retention/find time: %.2f\n", r / f }'
    for p in ret1 find1 find2 ret2; do
        printf '%s left %s; ' "$p" "$(find "$1/$p" -type f ! -name '.*' | wc -l)"
    done
    echo "(each should be $(($2 / 2)))"
}

echo "# backing store, 4 x $N files (half expired)"
run "$T/data" "$N"

[ -x "$VAULT" ] && [ -x "$KEYD" ] || { echo "# vault not built: no mount case"; exit 0; }
rm -rf "$T/data"/*
tv_start_keyd || { echo "keyd did not start"; exit 1; }
for p in ret1 ret2 find1 find2; do "$KEYCTL" -c "$T/tv.conf" create $p >/dev/null; done
tv_start_vault || { echo "vault did not mount"; exit 1; }
echo "# through the mount, 4 x $NM files (half expired)"
run "$T/mnt" "$NM"
