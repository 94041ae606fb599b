#!/bin/bash
# vault-bench.sh - tracevault vs gocryptfs vs securefs in one run (and bindfs,
# FUSE passthrough, as the ceiling when installed), all over one tmpfs, same
# workload (tests/bench/vault-bench.py).  Needs root, FUSE, a built tree
# (top_builddir, default: the current directory) and the Debian packages
# gocryptfs and securefs (bindfs optional).  Prints the medians per file
# system and, per round, the ratio of each vault to the better peer of that
# round, as a range.  Not part of make check.
#   BENCH_FILES=500 BENCH_STREAM_MB=256 ROUNDS=3 tests/bench/vault-bench.sh
#   BENCH_VAULTS='old=/tmp/old/vault/tracevault et1=vault/tracevault:--entry-timeout 1'
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
# every file system under test is mounted at $T/m/<label>
mkdir -p "$T/m/gocryptfs" "$T/m/securefs" "$T/tmpfs/gc" "$T/tmpfs/sf"
ln -s "$T/mnt" "$T/m/tracevault"
echo pw > "$T/pw"
gocryptfs -q -init -scryptn 10 -passfile "$T/pw" "$T/tmpfs/gc" >/dev/null
gocryptfs -q -passfile "$T/pw" "$T/tmpfs/gc" "$T/m/gocryptfs"
tv_defer "fusermount3 -u -z '$T/m/gocryptfs'"
securefs create --pass pw -r 1 "$T/tmpfs/sf" >/dev/null 2>&1
securefs mount -b --pass pw "$T/tmpfs/sf" "$T/m/securefs" >/dev/null 2>&1
for i in $(seq 50); do mountpoint -q "$T/m/securefs" && break; sleep 0.1; done
tv_defer "fusermount3 -u -z '$T/m/securefs'"
dirs="$T/m/tracevault/bench/run"
# BENCH_VAULTS='label=BIN[:ARGS] ...': more vault binaries or options, each
# on its own backing store with the same config and keyd (an A/B of two
# builds, or one build with other options: 'et1=vault/tracevault:--entry-timeout 1')
for spec in ${BENCH_VAULTS:-}; do
    label=${spec%%=*} rest=${spec#*=}
    bin=${rest%%:*} args=
    [ "$rest" != "$bin" ] && args=${rest#*:}
    mkdir -p "$T/tmpfs/v-$label" "$T/m/$label"
    # shellcheck disable=SC2086
    "$bin" -c "$T/tv.conf" -f $args "$T/tmpfs/v-$label" "$T/m/$label" >>"$T/vault-$label.log" 2>&1 &
    tv_defer "fusermount3 -u -z '$T/m/$label'; kill $!"
    for _ in $(seq 100); do mountpoint -q "$T/m/$label" && break; sleep 0.05; done
    mkdir -p "$T/m/$label/bench/run"
    dirs="$dirs $T/m/$label/bench/run"
done
dirs="$dirs $T/m/gocryptfs $T/m/securefs"
# bindfs: FUSE passthrough without crypto or policy, the ceiling a FUSE file
# system reaches on this machine (not a peer: reported beside them)
if command -v bindfs >/dev/null; then
    mkdir -p "$T/tmpfs/bf" "$T/m/bindfs"
    bindfs "$T/tmpfs/bf" "$T/m/bindfs"
    tv_defer "fusermount3 -u -z '$T/m/bindfs'"
    dirs="$dirs $T/m/bindfs"
fi
mkdir -p "$T/mnt/bench/run"
# BENCH_REQUESTS=N: first count the FUSE requests each operation costs each
# file system (the kernel's fuse tracepoints, N files, one process)
if [ -n "${BENCH_REQUESTS:-}" ]; then
    # shellcheck disable=SC2086
    /usr/bin/python3 "$here/fuse-requests.py" "$BENCH_REQUESTS" $dirs
fi
for _ in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2086
    /usr/bin/python3 "$here/vault-bench.py" $dirs
done | tee "$T/results.jsonl"
/usr/bin/python3 - "$T/results.jsonl" "$T/m/" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
if not rows:
    sys.exit(0)
for r in rows:
    r["fs"] = r["dir"][len(sys.argv[2]):].split("/")[0]
keys = ["create", "stat", "read", "append", "unlink", "lines", "stream_write_MBps", "stream_read_MBps"]
labels = list(dict.fromkeys(r["fs"] for r in rows))
peers = [l for l in labels if l in ("gocryptfs", "securefs")]
ours = [l for l in labels if l not in peers and l != "bindfs"]
rounds = len(rows) // len(labels)
# rows come round by round, one per file system in the same order
byround = [{r["fs"]: r for r in rows[i * len(labels):(i + 1) * len(labels)]} for i in range(rounds)]
def rng(xs):
    return "%.2f–%.2f" % (min(xs), max(xs)) if len(xs) > 1 else "%.2f" % xs[0]
head = ["phase"] + ["%s (median)" % l for l in labels] + ["%s / best peer, %d rounds" % (l, rounds) for l in ours]
print("| " + " | ".join(head) + " |")
print("|---" + "|---:" * (len(head) - 1) + "|")
for k in keys:
    med = [statistics.median(r[k] for r in rows if r["fs"] == l) for l in labels]
    ratios = [rng([rd[l][k] / max(rd[p][k] for p in peers) for rd in byround]) for l in ours]
    print("| %s | %s | %s |" % (k.replace("_MBps", " MB/s").replace("_", " "),
          " | ".join("%d" % m for m in med), " | ".join(ratios)))
PY
