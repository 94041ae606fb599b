#!/bin/sh
# keyd-client: the client library as the vault and agent use it: a keyd
# restart is invisible to a long-lived client; a keyd that never answers gives
# -ETIMEDOUT in bounded time; a stopped keyd gives a clear refusal; the C
# subscription API delivers ROTATE, RETIRE and SHRED events at once; keyd
# sends READY=1 to $NOTIFY_SOCKET; malformed replies are EPROTO, never a crash.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-client
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_plan 12
RT="$top_builddir/tests/integration/keyd_roundtrip"
S="$T/run/keyd.sock"

tv_ok "keyd starts" keyd_setup
kctl_q create p

"$RT" "$S" p 3 sub > "$T/events" 2>"$T/sub.err" &
SUB=$!
tv_defer "kill $SUB 2>/dev/null"
_i=0; until grep -q subscribed "$T/events" 2>/dev/null || [ $_i -gt 100 ]; do _i=$((_i+1)); sleep 0.05; done
kctl_q rotate p
kctl_q retire p 2
kctl_q shred p --yes
_i=0; while kill -0 $SUB 2>/dev/null && [ $_i -lt 100 ]; do _i=$((_i+1)); sleep 0.05; done
tv_ok "keyd_subscribe/keyd_sub_read deliver ROTATE, RETIRE, SHRED in order" \
    test "$(sed 1d "$T/events" | tr '\n' ';')" = "ROTATE p 2;RETIRE p 2;SHRED p 0;"
tv_ok "...the subscriber was still connected at the end" wait $SUB

kctl_q create q
"$RT" "$S" q 1 reconnect "$T/restarted" > "$T/rc.out" 2>&1 &
RC=$!
tv_defer "kill $RC 2>/dev/null"
_i=0; until grep -q ready "$T/rc.out" 2>/dev/null || [ $_i -gt 100 ]; do _i=$((_i+1)); sleep 0.05; done
keyd_stop
# Restart under a fake systemd: keyd must send READY=1 to $NOTIFY_SOCKET.
NS="$T/run/notify.sock"
SOCK="$NS" "$PY" -c '
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(os.environ["SOCK"]); s.settimeout(10)
print(s.recv(4096).decode(), flush=True)' > "$T/notify.out" 2>&1 &
NPID=$!
tv_defer "kill $NPID 2>/dev/null"
tv_wait_for "$NS" 5
NOTIFY_SOCKET="$NS" keyd_restart
wait $NPID
tv_ok "keyd restarts on its files and tells systemd READY=1" grep -q "^READY=1" "$T/notify.out"
touch "$T/restarted"
tv_ok "a long-lived client survives the keyd restart (reconnects by itself)" wait $RC

keyd_stop
t0=$(date +%s%N)
"$RT" "$S" q 1 gen > /dev/null 2>"$T/down.err"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
tv_ok "keyd down: the call fails (rc $rc) within the retry budget (${ms} ms < 3000)" test $rc -ne 0 -a $ms -lt 3000
tv_ok "...with a message naming the socket" grep -q "keyd: socket $S" "$T/down.err"

# A "keyd" that accepts and never answers.
SOCK="$T/run/mute.sock" "$PY" -c '
import os, socket, time
s = socket.socket(socket.AF_UNIX); s.bind(os.environ["SOCK"]); s.listen(8)
c, _ = s.accept(); time.sleep(10)' &
MUTE=$!
tv_defer "kill $MUTE 2>/dev/null"
tv_wait_for "$T/run/mute.sock" 5
ms=$("$RT" "$T/run/mute.sock" q 1 timeout 300); rc=$?
tv_ok "a silent keyd gives -ETIMEDOUT" test $rc -eq 0
tv_ok "...after about the client timeout (${ms} ms for 300)" test "${ms:-0}" -ge 290 -a "${ms:-0}" -lt 1500
# A "keyd" that answers with malformed replies: the library says EPROTO.
SOCK="$T/run/liar.sock" "$PY" -c '
import msgpack, os, socket, struct
s = socket.socket(socket.AF_UNIX); s.bind(os.environ["SOCK"]); s.listen(8)
bad = [msgpack.packb({"ok": True}),                               # no results
       msgpack.packb({"ok": True, "version": 1, "deks": b"x" * 5, "wrapped": b"y"}),  # wrong sizes
       b"\xdd\xff\xff\xff\xff"]                                   # array count bomb
for b in bad:
    c, _ = s.accept(); c.recv(4096); c.sendall(struct.pack(">I", len(b)) + b); c.close()
' &
LIAR=$!
tv_defer "kill $LIAR 2>/dev/null"
tv_wait_for "$T/run/liar.sock" 5
for what in "a reply without results" "fields of the wrong size" "a count bomb"; do
    "$RT" "$T/run/liar.sock" q 1 gen >/dev/null 2>"$T/liar.err"
    tv_ok "$what in a reply is EPROTO ($(cut -c1-60 "$T/liar.err"))" grep -q "Protocol error" "$T/liar.err"
done
tv_done
