#!/bin/sh
# keyd-hostile: garbage, oversized and bomb frames, stalled (slow-loris)
# clients, a client that never reads its replies and a connection flood do
# not stop keyd from serving others promptly; stalled clients are cut off at
# client_timeout_ms; every rejected frame is audited and the chain stays intact.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-hostile
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
"$PY" -c 'import msgpack' 2>/dev/null || tv_skip_all "python3-msgpack missing"
tv_plan 12
RT="$top_builddir/tests/integration/keyd_roundtrip"
S="$T/run/keyd.sock"

tv_write_conf <<'CONF' || exit 1
[keyd]
client_timeout_ms = 1000
max_clients = 40
CONF
tv_ok "keyd starts" tv_start_keyd
kctl_q create p

got=$(keyd_py '
s = kd_conn(); s.sendall(os.urandom(3) + b"\x00" * 1 + os.urandom(2000))
try:
    r = kd_recv(s); print(r.get("err"))
except Exception as e: print("closed")')
tv_ok "random garbage gets an error or a close, not a crash ($got)" sh -c '[ "$0" = EPROTO ] || [ "$0" = EMSGSIZE ] || [ "$0" = closed ]' "$got"

got=$(keyd_py '
s = kd_conn(); s.sendall(b"\xff\xff\xff\xff" + b"x" * 100)
r = kd_recv(s); print(r["err"])
try:
    print("open" if s.recv(1) else "closed")
except Exception: print("closed")')
tv_ok "a 4 GiB frame header is refused with EMSGSIZE and the connection closed" test "$(echo $got)" = "EMSGSIZE closed"

got=$(keyd_py '
s = kd_conn()
for body in [b"\xdd\xff\xff\xff\xff", b"\x91" * 5000, b"\xdf\x00\x01\x00\x00", b"\x81\xa2op\xc1"]:
    s.sendall(struct.pack(">I", len(body)) + body); print(kd_recv(s)["err"])
print(kd_call({"op": "GEN_DEK", "project": "p", "n": 2}, s)["ok"])')
tv_ok "count bombs, nesting bombs and invalid bytes: EPROTO each, connection still usable" \
    test "$(echo $got)" = "EPROTO EPROTO EPROTO EPROTO True"

# Slow loris: 30 connections each holding half a frame; meanwhile a good client.
export READY="$T/loris.ready"
keyd_py '
conns = []
for i in range(30):
    s = kd_conn(); s.sendall(b"\x00\x00"); conns.append(s)
open(os.environ["READY"], "w").close()
time.sleep(4)
closed = 0
for s in conns:
    s.settimeout(0.5)
    try:
        closed += s.recv(1) == b""
    except Exception: pass
print(closed)' > "$T/loris.out" 2>&1 &
LPID=$!
tv_defer "kill $LPID 2>/dev/null"
tv_wait_for "$T/loris.ready" 10
t0=$(date +%s%N)
tv_ok "a good client is served while 30 clients stall mid-frame" "$RT" "$S" p 16
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
tv_ok "...promptly (${ms} ms < 900 ms)" test "$ms" -lt 900
wait $LPID
tv_ok "stalled clients are disconnected after client_timeout_ms ($(cat "$T/loris.out")/30)" test "$(cat "$T/loris.out")" = 30

# A client that floods requests and never reads replies.
keyd_py '
s = kd_conn(); s.setblocking(False)
b = msgpack.packb({"op": "GEN_DEK", "project": "p", "n": 1024}, use_bin_type=True)
f = struct.pack(">I", len(b)) + b
sent = 0
t = time.time()
while time.time() - t < 3:
    try: sent += s.send(f)
    except BlockingIOError: time.sleep(0.01)
    except Exception: break
' &
FPID=$!
tv_defer "kill $FPID 2>/dev/null"
sleep 1
tv_ok "others are served while one client floods and never reads" "$RT" "$S" p 64
wait $FPID

# Connection flood beyond max_clients.
got=$(keyd_py '
cs = []
for i in range(60):
    try: cs.append(kd_conn())
    except Exception: pass
time.sleep(0.3)
alive = 0
for s in cs:
    try:
        kd_send(s, {"op": "LIST"}); kd_recv(s); alive += 1
    except Exception: pass
for s in cs: s.close()
print(alive)')
tv_ok "connections beyond max_clients=40 are refused, not queued forever (served $got of 60)" test "$got" -le 40 -a "$got" -ge 30
sleep 0.3
tv_ok "service resumes once the flood is gone" "$RT" "$S" p 4
tv_ok "keyd is still running" kill -0 "$KEYD_PID"
kctl_q audit-verify
tv_ok "rejected frames were audited and the chain is intact" sh -c 'grep -q "op=? project=- version=0 n=0 result=EMSGSIZE" "$0" && grep -q "result=EPROTO" "$0" && grep -q "audit log OK" "$1"' "$T/log/keyd-audit.log" "$T/kctl.out"
tv_done
