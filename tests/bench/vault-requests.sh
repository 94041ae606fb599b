#!/bin/bash
# vault-requests.sh - how many FUSE requests each small-file operation of
# the bench costs the vault (the kernel's side of the per-op price): the vault
# is mounted with -d (libfuse logs every request it receives) and one process
# runs each phase of tests/bench/vault-bench.py's workload over N files;
# the opcodes received between two phases, divided by N, are printed per
# phase.  Run it for the default mount and with --entry-timeout (what the
# kernel may cache changes the counts).  Needs root, FUSE and a built tree.
# Not part of make check.
#   N=200 tests/bench/vault-requests.sh [VAULT-OPTIONS...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
. "$here/../integration/lib.sh"
N=${N:-200}
tv_init vault-requests
tv_write_conf <<'CONF'
[project.bench]
writers = root
readers = root
CONF
tv_start_keyd || { echo "keyd failed"; exit 1; }
"$KEYCTL" -c "$T/tv.conf" create bench >/dev/null
mkdir -p "$T/rq-backing" "$T/rq-mnt"
"$VAULT" -c "$T/tv.conf" -d "$@" "$T/rq-backing" "$T/rq-mnt" 2>"$T/debug.log" &
VP=$!
tv_defer "fusermount3 -u -z '$T/rq-mnt'; kill $VP 2>/dev/null"
for i in $(seq 100); do mountpoint -q "$T/rq-mnt" && break; sleep 0.05; done
mountpoint -q "$T/rq-mnt" || { echo "vault did not mount"; tail "$T/debug.log"; exit 1; }
mkdir -p "$T/rq-mnt/bench/run"
/usr/bin/python3 - "$T/rq-mnt/bench/run" "$N" "$T/debug.log" <<'PY'
import collections, os, re, sys, time
d, n, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = b"x" * 2048
def mark():
    time.sleep(0.3)              # let the log catch up
    return os.path.getsize(log)
def count(start):
    end = mark()
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8", "replace")
    return collections.Counter(re.findall(r"opcode: (\w+)", text)), end
def create(p):
    with open(p, "wb") as f: f.write(body)
def read(p):
    with open(p, "rb") as f: f.read()
def append(p):
    with open(p, "ab") as f: f.write(b"y" * 256)
phases = [("create", create), ("stat", os.stat), ("read", read), ("append", append),
          ("unlink", os.unlink)]
pos = mark()
print("%-7s %s" % ("phase", "requests per operation"))
for name, fn in phases:
    for i in range(n):
        fn("%s/f%05d.json" % (d, i))
    c, pos = count(pos)
    total = sum(c.values()) / n
    detail = " ".join("%s %.2g" % (op, k / n) for op, k in c.most_common())
    print("%-7s %.2f  (%s)" % (name, total, detail))
PY
