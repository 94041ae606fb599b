#!/bin/bash
# vault-bench.sh - tracevault vs gocryptfs vs securefs in one run, all three
# over one tmpfs, same workload (tests/bench/vault-bench.py).  Needs root,
# FUSE, a built tree (top_builddir, default: the current directory) and the
# Debian packages gocryptfs and securefs.  Prints the per-fs numbers and the
# ratios of tracevault to the better peer.  Not part of make check.
#   BENCH_FILES=500 BENCH_STREAM_MB=256 ROUNDS=3 tests/bench/vault-bench.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
. "$here/../integration/lib.sh"
ROUNDS=${ROUNDS:-3}
tv_init vault-bench
mkdir -p "$T/tmpfs"
mount -t tmpfs -o size=3g tmpfs "$T/tmpfs" || { echo "cannot mount tmpfs"; exit 1; }
tv_defer "umount -l '$T/tmpfs'"
tv_write_conf <<'CONF'
[project.bench]
writers = root
readers = root
CONF
# every store of the vault on the tmpfs, as the peers' are: its backing
# store and its audit log (each record made durable before the reply: on
# the VM's disk that is two syncs per open, create or unlink, which no peer
# pays; docs/PERFORMANCE.md has the figures with the log on disk too)
sed -i "s|^backing .*|backing     = $T/tmpfs/tv|" "$T/tv.conf"
[ -n "${BENCH_AUDIT_ON_DISK:-}" ] ||
    sed -i "/^\[vault\]/,/^\[/ s|^audit_log .*|audit_log   = $T/tmpfs/vault-audit.log|" "$T/tv.conf"
[ -n "${BENCH_THREADS:-}" ] && sed -i "s|^\[vault\]|[vault]\nthreads = $BENCH_THREADS|" "$T/tv.conf"
mkdir -p "$T/tmpfs/tv"
tv_start_keyd || { echo "keyd failed"; exit 1; }
"$KEYCTL" -c "$T/tv.conf" create bench >/dev/null
tv_start_vault || { echo "vault failed"; cat "$T/vault.log"; exit 1; }
mkdir -p "$T/tmpfs/gc" "$T/gc" "$T/tmpfs/sf" "$T/sf"
echo pw > "$T/pw"
gocryptfs -q -init -scryptn 10 -passfile "$T/pw" "$T/tmpfs/gc" >/dev/null
gocryptfs -q -passfile "$T/pw" "$T/tmpfs/gc" "$T/gc"
tv_defer "fusermount3 -u -z '$T/gc'"
securefs create --pass pw -r 1 "$T/tmpfs/sf" >/dev/null 2>&1
securefs mount -b --pass pw "$T/tmpfs/sf" "$T/sf" >/dev/null 2>&1
for i in $(seq 50); do mountpoint -q "$T/sf" && break; sleep 0.1; done
tv_defer "fusermount3 -u -z '$T/sf'"
# a second vault mount with --entry-timeout 1 (names cached inside projects)
mkdir -p "$T/tmpfs/tv2" "$T/mnt2"
"$VAULT" -c "$T/tv.conf" -f --entry-timeout 1 "$T/tmpfs/tv2" "$T/mnt2" >>"$T/vault2.log" 2>&1 &
V2=$!
tv_defer "fusermount3 -u -z '$T/mnt2'; kill $V2"
for i in $(seq 100); do mountpoint -q "$T/mnt2" && break; sleep 0.05; done
mkdir -p "$T/mnt/bench/run" "$T/mnt2/bench/run"
for r in $(seq "$ROUNDS"); do
    /usr/bin/python3 "$here/vault-bench.py" "$T/mnt/bench/run" "$T/mnt2/bench/run" "$T/gc" "$T/sf"
done | tee "$T/results.jsonl"
/usr/bin/python3 - "$T/results.jsonl" "$T" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
T = sys.argv[2]
name = lambda d: "tracevault" if "/mnt/" in d else "tv-cached" if "/mnt2/" in d else ("gocryptfs" if d.endswith("/gc") else "securefs")
keys = ["create", "stat", "read", "append", "unlink", "stream_write_MBps", "stream_read_MBps"]
med = {}
for fs in ("tracevault", "tv-cached", "gocryptfs", "securefs"):
    rs = [r for r in rows if name(r["dir"]) == fs]
    med[fs] = {k: statistics.median(r[k] for r in rs) for k in keys}
print("| phase | tracevault | ratio vs best peer | tracevault --entry-timeout 1 | ratio | gocryptfs | securefs |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k in keys:
    best = max(med["gocryptfs"][k], med["securefs"][k])
    unit = "" if "MBps" in k else " ops/s"
    print("| %s | %d | %.2f× | %d | %.2f× | %d | %d |" % (k.replace("_MBps", " MB/s").replace("_", " "),
          med["tracevault"][k], med["tracevault"][k] / best, med["tv-cached"][k],
          med["tv-cached"][k] / best, med["gocryptfs"][k], med["securefs"][k]))
PY
