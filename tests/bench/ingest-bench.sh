#!/bin/sh
# ingest-bench.sh - throughput of tracevault-ingest into a mounted vault, side
# by side with writing the same spans as files into the vault directly.
#
#   tests/bench/ingest-bench.sh [REQUESTS] [CLIENTS]
#   (defaults: 40 requests of 512 GenAI spans each (about 0.9 KiB a span on
#    the wire), 4 concurrent keep-alive clients)
#
# Figures (one line each): spans/s accepted through the gateway (protobuf,
# converted and stored, and JSON, checked and stored as received, each
# request durable before its 200), spans/s written directly as OTLP JSON
# files (tmp + fsync + rename + fsync dir, the gateway's own sequence,
# same clients), and the gateway's CPU per span (user + system time of its
# process over the run).  Needs root, FUSE, keyd, the vault.  Not part of
# `make check`; run it under flock /tmp/tv-suite.lock on a shared machine.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
: "${top_srcdir:=$here}" "${top_builddir:=$here}"
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/ingest-lib.sh"
REQS=${1:-40}
CLIENTS=${2:-4}
tv_init ingest-bench
ingest_need
INGEST_EXTRA_WRITERS=root ingest_setup bench </dev/null
K=$(cat "$T/key.bench")
mkdir -p "$T/bodies"
"$PY" - "$T/bodies" "$REQS" <<'PYEOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
# Build the bodies with the helper's encoder (imported without running its CLI).
src = open(os.environ["top_srcdir"] + "/tests/integration/ingest-pb.py").read()
src = src[:src.index("cmd = sys.argv[1]")]
g = {}
exec(src, g)
for i in range(n):
    spans = []
    for j in range(512):
        text = ("The customer asks about order %d-%d and the refund policy; " % (i, j)) * 12
        s = g["span"](b"chat gpt-4o", text[:700])
        spans.append(s)
    open(os.path.join(d, "%04d.pb" % i), "wb").write(g["request"](spans))
PYEOF
bytes=$(cat "$T/bodies"/*.pb | wc -c)
cpu() { awk '{ print $14 + $15 }' "/proc/$GW_PID/stat"; }
hz=$(getconf CLK_TCK)

# send MODE: post every body (MODE pb: as is; json: the gateway's own JSON
# conversion of it, prepared first) with CLIENTS threads; prints seconds.
"$PY" - "$T" "$PORT" "$K" "$CLIENTS" <<'PYEOF' > "$T/fig"
import glob, http.client, json, os, socket, sys, threading, time
T, port, key, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
bodies = [open(f, "rb").read() for f in sorted(glob.glob(T + "/bodies/*.pb"))]
def run(kind, items):
    q = list(enumerate(items)); lock = threading.Lock(); bad = []
    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port)
        # http.client sends headers and body in two writes: without NODELAY,
        # Nagle and the server's delayed ACK add 40 ms to every request.
        c.connect(); c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            with lock:
                if not q: return
                i, b = q.pop()
            c.request("POST", "/v1/traces", body=b, headers={
                "Content-Type": "application/x-protobuf" if kind == "pb" else "application/json",
                "Authorization": "Bearer " + key})
            r = c.getresponse(); r.read()
            if r.status != 200: bad.append(r.status)
    t0 = time.time()
    th = [threading.Thread(target=worker) for _ in range(clients)]
    [t.start() for t in th]; [t.join() for t in th]
    if bad: sys.exit("%s: %d requests failed: %s" % (kind, len(bad), bad[:3]))
    return time.time() - t0
print("pb", run("pb", bodies))
PYEOF
cpu_pb=$(cpu)
# The JSON bodies: what the gateway stored for the protobuf run (so both
# paths carry the same spans), with ids changed so none is a duplicate.
find "$M/bench/ingest" -name '*.pb.json' | sort > "$T/stored"
mkdir -p "$T/json"
i=0; while read -r f; do i=$((i + 1)); sed 's/"spanId":"\(..\)/"spanId":"ff/' "$f" > "$T/json/$i.json"; done < "$T/stored"
MNT=$M "$PY" - "$T" "$PORT" "$K" "$CLIENTS" <<'PYEOF' >> "$T/fig"
import glob, http.client, os, socket, sys, threading, time
T, port, key, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
items = [open(f, "rb").read() for f in sorted(glob.glob(T + "/json/*.json"))]
q = list(items); lock = threading.Lock(); bad = []
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.connect(); c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        with lock:
            if not q: return
            b = q.pop()
        c.request("POST", "/v1/traces", body=b, headers={"Content-Type": "application/json",
                                                         "Authorization": "Bearer " + key})
        r = c.getresponse(); r.read()
        if r.status != 200: bad.append(r.status)
t0 = time.time()
th = [threading.Thread(target=worker) for _ in range(clients)]
[t.start() for t in th]; [t.join() for t in th]
if bad: sys.exit("json: %d failed" % len(bad))
print("json", time.time() - t0)
# Direct: the same JSON documents written into the vault by CLIENTS threads
# with the gateway's durability sequence.
d = os.path.join(os.environ.get("MNT", ""), "bench", "direct")
os.makedirs(d, exist_ok=True)
q = list(enumerate(items))
def writer():
    while True:
        with lock:
            if not q: return
            i, b = q.pop()
        tmp = os.path.join(d, ".%d.tmp" % i)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, b); os.fsync(fd); os.close(fd)
        os.rename(tmp, os.path.join(d, "%d.json" % i))
        dfd = os.open(d, os.O_RDONLY); os.fsync(dfd); os.close(dfd)
t0 = time.time()
th = [threading.Thread(target=writer) for _ in range(clients)]
[t.start() for t in th]; [t.join() for t in th]
print("direct", time.time() - t0)
PYEOF
cpu_all=$(cpu)
spans=$((REQS * 512))
awk -v s="$spans" -v b="$bytes" -v hz="$hz" -v c1="$cpu_pb" -v c2="$cpu_all" -v cl="$CLIENTS" '
$1 == "pb" { pb = $2 } $1 == "json" { js = $2 } $1 == "direct" { di = $2 }
END {
    printf "requests: %d x 512 spans, %.0f bytes/span as protobuf, %d clients\n", s / 512, b / s, cl
    printf "gateway, protobuf -> OTLP JSON, durable: %.0f spans/s (%.1f requests/s)\n", s / pb, s / 512 / pb
    printf "gateway, JSON as received, durable:      %.0f spans/s\n", s / js
    printf "direct files into the vault (same JSON): %.0f spans/s\n", s / di
    printf "gateway CPU: %.1f us/span (protobuf run), %.1f us/span (JSON run)\n", \
        c1 / hz / s * 1e6, (c2 - c1) / hz / s * 1e6
}' "$T/fig"
