#!/bin/bash
# vault-scale.sh - create and stat cost per file as the vault grows to 10k,
# 100k and 1M files (tests/bench/vault-scale.py), with gocryptfs on the same
# tmpfs as the reference (BENCH_SCALE_PEER=0 skips it).  Prints one JSON row
# per filesystem and checkpoint and a table of the rates relative to each
# filesystem's own rate at the first checkpoint (1.00 = flat).  Needs root,
# FUSE, a built tree (top_builddir, default: the current directory) and about
# 2.5 KiB of tmpfs per file per filesystem.  Not part of make check.
#   BENCH_SCALE=10000,100000,1000000 BENCH_WINDOW=10000 tests/bench/vault-scale.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
. "$here/../integration/lib.sh"
tv_init vault-scale
mkdir -p "$T/tmpfs"
mount -t tmpfs -o size=${BENCH_TMPFS:-12g},nr_inodes=0 tmpfs "$T/tmpfs" || { echo "cannot mount tmpfs"; exit 1; }
tv_defer "umount -l '$T/tmpfs'"
tv_write_conf <<'CONF'
[project.bench]
writers = root
readers = root
CONF
sed -i "s|^backing .*|backing     = $T/tmpfs/tv|" "$T/tv.conf"
sed -i "/^\[vault\]/,/^\[/ s|^audit_log .*|audit_log   = $T/tmpfs/vault-audit.log|" "$T/tv.conf"
sed -i "/^\[keyd\]/,/^\[/ s|^audit_log .*|audit_log   = $T/tmpfs/keyd-audit.log|" "$T/tv.conf"
mkdir -p "$T/tmpfs/tv"
tv_start_keyd || { echo "keyd failed"; exit 1; }
"$KEYCTL" -c "$T/tv.conf" create bench >/dev/null
tv_start_vault || { echo "vault failed"; cat "$T/vault.log"; exit 1; }
VPID=$(pgrep -f "tracevault -c $T/tv.conf" | head -1)
targets="tracevault:$T/mnt/bench:$VPID"
if [ "${BENCH_SCALE_PEER:-1}" != 0 ] && command -v gocryptfs >/dev/null; then
    mkdir -p "$T/tmpfs/gc" "$T/gc"
    echo pw > "$T/pw"
    gocryptfs -q -init -scryptn 10 -passfile "$T/pw" "$T/tmpfs/gc" >/dev/null
    gocryptfs -q -passfile "$T/pw" "$T/tmpfs/gc" "$T/gc"
    tv_defer "fusermount3 -u -z '$T/gc'"
    targets="$targets gocryptfs:$T/gc:$(pgrep -f "gocryptfs .*$T/gc" | head -1)"
fi
# shellcheck disable=SC2086
/usr/bin/python3 "$here/vault-scale.py" $targets | tee "$T/scale.jsonl"
/usr/bin/python3 - "$T/scale.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n%-11s %9s %10s %8s %9s %8s %7s %6s" % ("fs", "files", "create/s", "(rel)", "stat/s", "(rel)", "RSS MiB", "fds"))
first = {}
for r in rows:
    f = first.setdefault(r["fs"], r)
    print("%-11s %9d %10d %8.2f %9d %8.2f %7s %6s" % (r["fs"], r["files"], r["create_per_s"],
          r["create_per_s"] / f["create_per_s"], r["stat_per_s"], r["stat_per_s"] / f["stat_per_s"],
          r.get("rss_MiB"), r.get("fds")))
PY
