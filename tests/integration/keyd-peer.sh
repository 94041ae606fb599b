#!/bin/sh
# keyd-peer: clients make sure the socket is keyd's before sending a byte.
#  - an impostor (another local user) listening on the configured socket,
#    in a directory of its own: keyctl apikey-set refuses it, naming the
#    peer's uid and keyd_user, and the impostor receives nothing (no API key);
#  - a socket directory writable by group or others is refused;
#  - keyd running as root is accepted whatever keyd_user says.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-peer
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_need_root
I=$(tv_add_user imp) && K=$(tv_add_user kd) || tv_skip_all "cannot add test users"
tv_plan 10

# The real keyd, as root, with keyd_user naming another user.
tv_write_conf <<CONF
[keyd]
keyd_user = $K
CONF
tv_ok "keyd starts" tv_start_keyd
tv_ok "keyd as root is accepted though keyd_user is $K" kctl_q create p
chmod 0770 "$T/run"
kctl list > "$T/gw.out" 2>&1; rc=$?
tv_ok "a group-writable socket directory is refused (exit $rc)" \
    sh -c 'test "$0" = 1 && grep -q "writable by group or others" "$1"' $rc "$T/gw.out"
chmod 0750 "$T/run"
tv_ok "...and accepted again at 0750" kctl_q list
keyd_stop

# An impostor on the socket path.
mkdir "$T/imp"; chown "$I" "$T/imp"; chmod 0755 "$T/imp"
sed -i "s|^socket .*|socket      = $T/imp/keyd.sock|" "$T/tv.conf"
cat > "$T/imp.py" <<'PY'
import os, socket, sys
path, got = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(16)
s.settimeout(20)
n = 0
open(got, "w").write("0\n")
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    c.settimeout(1)
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            n += len(b)
            open(got, "w").write("%d\n" % n)
    except socket.timeout:
        pass
    c.close()
PY
TV_BG_OUT="$T/imp.log" tv_as_bg "$I" "$PY" "$T/imp.py" "$T/imp/keyd.sock" "$T/imp/got"
tv_wait_for "$T/imp/keyd.sock" 10 || tv_diag "impostor did not start: $(cat "$T/imp.log")"
echo "sk-CANARY-peer-$$" | kctl apikey-set p > "$T/imp.out" 2>&1; rc=$?
tv_ok "apikey-set to an impostor fails (exit $rc)" test $rc = 1
tv_ok "...naming the peer's uid and keyd_user ($(cut -c1-90 "$T/imp.out"))" \
    grep -q "the peer is uid $(id -u "$I") .*not keyd_user $K (uid $(id -u "$K")) or root" "$T/imp.out"
sleep 0.3
tv_ok "the impostor received nothing (got $(cat "$T/imp/got") bytes)" test "$(cat "$T/imp/got")" = 0
tv_ok "the vault refuses it too" \
    sh -c '"$0" audit-verify -c "$1" 2>&1 | grep -q "not keyd_user"' "$VAULT" "$T/tv.conf"
# The agent asks keyd for pseudonym keys: it must refuse the impostor too
# (it retries a key it cannot get, so --once is stopped after a while).
printf '[project.p]\nwriters = root\nreaders = root\n' >> "$T/tv.conf"
mkdir -p "$T/mnt/p"
echo '{"event_id":"e1","event_type":"model"}' > "$T/mnt/p/t.json"
timeout 5 "$AGENT" -c "$T/tv.conf" --once > "$T/agent.out" 2>&1
tv_ok "the agent refuses it too ($(grep -m1 -o 'not keyd_user.*' "$T/agent.out" | cut -c1-60))" \
    grep -q "not keyd_user $K" "$T/agent.out"
tv_ok "...and the impostor still received nothing ($(cat "$T/imp/got") bytes)" \
    test "$(cat "$T/imp/got")" = 0
tv_done
