# tests/integration/keyd-lib.sh - helpers for keyd's integration tests.
# Source after lib.sh.  Provides:
#   keyd_setup                 conf + init + start keyd (root on every list unless
#                              TV_*_USERS say otherwise)
#   kctl ARGS...               tracevault-keyctl -c $T/tv.conf ARGS
#   keyd_stop / keyd_restart   SIGTERM and wait / start again
#   keyd_py SCRIPT             run /usr/bin/python3 with SOCK and helpers (kd_call ...)
#   keyd_probe                 a round trip (ok / exit status of keyctl list)

kctl() { "$KEYCTL" -c "$T/tv.conf" "$@"; }
# Quiet: output goes to $T/kctl.out (last command), for TAP-clean tests.
kctl_q() { "$KEYCTL" -c "$T/tv.conf" "$@" >"$T/kctl.out" 2>&1; }

keyd_setup() {
    tv_write_conf </dev/null || return 1
    tv_start_keyd
}

keyd_stop() {
    [ -n "${KEYD_PID:-}" ] || return 0
    kill -TERM "$KEYD_PID" 2>/dev/null
    wait "$KEYD_PID" 2>/dev/null
    _rc=$?
    KEYD_PID=
    return $_rc
}

# Start keyd again on the existing files (no init); fails if it exits at once.
keyd_restart() {
    rm -f "$T/run/keyd.sock"
    "$KEYD" -c "$T/tv.conf" >>"$T/keyd.log" 2>&1 &
    KEYD_PID=$!
    tv_defer "kill $KEYD_PID 2>/dev/null; wait $KEYD_PID 2>/dev/null"
    _i=0
    while [ ! -S "$T/run/keyd.sock" ]; do
        _i=$((_i + 1)); [ $_i -gt 200 ] && return 1
        kill -0 "$KEYD_PID" 2>/dev/null || return 1
        sleep 0.05
    done
}

# Python prelude: raw protocol access for hostile-client tests.
KEYD_PY_LIB='
import msgpack, os, socket, struct, sys, time
SOCK = os.environ["SOCK"]
def kd_conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(SOCK)
    return s
def kd_recv(s):
    h = b""
    while len(h) < 4:
        c = s.recv(4 - len(h))
        if not c: raise EOFError("closed")
        h += c
    n = struct.unpack(">I", h)[0]
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("closed")
        b += c
    return msgpack.unpackb(b, raw=False)
def kd_send(s, obj):
    b = msgpack.packb(obj, use_bin_type=True)
    s.sendall(struct.pack(">I", len(b)) + b)
def kd_call(obj, s=None):
    own = s is None
    if own: s = kd_conn()
    kd_send(s, obj)
    r = kd_recv(s)
    if own: s.close()
    return r
'

keyd_py() {
    SOCK="$T/run/keyd.sock" "$PY" -c "$KEYD_PY_LIB
$1"
}
