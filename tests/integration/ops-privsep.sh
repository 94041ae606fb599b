#!/bin/sh
# The privilege separation the systemd units set up, reproduced with setpriv
# (no systemd needed): keyd as its own user with the master key handed over
# as a credential, the vault as its own user with only the unit's four
# capabilities (ambient) and no_new_privs, forking once mounted (Type=forking), the agent as a third
# user with no capabilities, a writer as a fourth.  Traces flow end to end;
# each daemon holds exactly the privileges the unit gives it; the vault user
# cannot read the keystore; the unit's stop commands leave no mount.
# The unit runs the vault unprivileged, which relies on /dev/fuse being 0666
# (Debian's udev rule).  Where it is not (a container without udev), run this
# test in a private mount namespace with a 0666 node bound over /dev/fuse;
# nothing of it is visible outside the namespace.
if [ -z "${TV_PRIVSEP_NS:-}" ] && [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] &&
   [ "$(stat -c %a /dev/fuse)" != 666 ] && command -v unshare >/dev/null; then
    TV_PRIVSEP_NS=1 exec unshare -m sh "$0" "$@"
fi
FUSEDEV=""
if [ -n "${TV_PRIVSEP_NS:-}" ]; then
    FUSEDEV=$(mktemp -d /tmp/tv-fusedev.XXXXXX)
    mknod -m 0666 "$FUSEDEV/fuse" c 10 229 && mount --bind "$FUSEDEV/fuse" /dev/fuse ||
        { echo "1..0 # SKIP /dev/fuse is not 0666 and cannot be replaced in a namespace"; exit 0; }
fi
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init ops-privsep
[ -n "$FUSEDEV" ] && tv_defer "umount /dev/fuse; rm -rf '$FUSEDEV'"
tv_need_root
tv_need_fuse
for b in "$KEYD" "$KEYCTL" "$VAULT" "$AGENT"; do
    [ -x "$b" ] || tv_skip_all "$(basename "$b") not built"
done
command -v setpriv >/dev/null || tv_skip_all "no setpriv"
setpriv --help 2>&1 | grep -q -- --ambient-caps || tv_skip_all "setpriv without --ambient-caps"
tv_plan 21

K=$(tv_add_user kd) && V=$(tv_add_user vt) && A=$(tv_add_user ag) && W=$(tv_add_user wr) ||
    tv_skip_all "cannot add test users"
G=$(id -gn "$V")     # tv_add_user's users share one primary group
TV_VAULT_USERS=$V TV_AGENT_USERS=$A tv_write_conf <<CONF
[keyd]
keyd_user = $K

[project.app]
writers = $W
readers = $A
CONF
chmod 0644 "$T/tv.conf"
M="$T/mnt"

# As the runbook (docs/OPERATIONS.md): init as root, then hand the key files
# to the keyd user; directories and audit logs as the tmpfiles.d file makes them.
"$KEYD" -c "$T/tv.conf" init >/dev/null 2>"$T/init.err"
chown "$K" "$T/lib" "$T/lib/keys" "$T/lib/keys.seal" "$T/lib/keys.lock" "$T/log/keyd-audit.log" "$T/log/keyd-audit.log.head"
chown "$K:$G" "$T/run"; chmod 0750 "$T/run"
chown "$V" "$T/data"; chmod 0700 "$T/data"
for f in vault-audit.log vault-audit.log.head; do
    : > "$T/log/$f"; chown "$V" "$T/log/$f"; chmod 0600 "$T/log/$f"
done
chown "$A" "$T/agent" "$T/outbox"
# LoadCredential=: systemd copies the key, readable by the service user only.
mkdir -p "$T/cred" && install -m 0400 -o "$K" "$T/etc/master.key" "$T/cred/master.key"
chown "$K" "$T/cred"; chmod 0500 "$T/cred"

# Type=notify, as systemd does it: a datagram socket in $NOTIFY_SOCKET.  On
# READY=1 the listener records the sender's pid (SCM_CREDENTIALS; the units
# say NotifyAccess=main) and whether the service was really ready then (keyd:
# its socket exists; the vault: the mount is in mountinfo).
cat > "$T/notify.py" <<'PY'
import os, socket, struct, sys
path, out, kind, target = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.settimeout(20)
open(path + ".up", "w").close()
while True:
    try:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        break
    pid = 0
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    if b"READY=1" in msg.split(b"\n"):
        if kind == "mount":
            ok = any(l.split()[4] == target for l in open("/proc/self/mountinfo"))
        else:
            ok = os.path.exists(target)
        with open(out + ".tmp", "w") as f:
            f.write("%d %s\n" % (pid, "yes" if ok else "no"))
        os.rename(out + ".tmp", out)
        break
PY
notify_listen() {  # notify_listen NAME KIND TARGET: listener on $T/NAME.notify
    "$PY" "$T/notify.py" "$T/$1.notify" "$T/$1.ready" "$2" "$3" &
    tv_defer "kill $! 2>/dev/null"
    tv_wait_for "$T/$1.notify.up" 5
}

# keyd: User=, CapabilityBoundingSet= (empty), NoNewPrivileges=yes, Type=notify.
notify_listen keyd socket "$T/run/keyd.sock"
CREDENTIALS_DIRECTORY="$T/cred" NOTIFY_SOCKET="$T/keyd.notify" \
    setpriv --reuid="$K" --regid="$G" --init-groups --no-new-privs \
    --bounding-set=-all --inh-caps=-all "$KEYD" -c "$T/tv.conf" >>"$T/keyd.log" 2>&1 &
KPID=$!
tv_defer "kill $KPID 2>/dev/null; wait $KPID 2>/dev/null"
tv_wait_for "$T/keyd.ready" 10
tv_ok "keyd sends READY=1 from its main pid once its socket exists ($(cat "$T/keyd.ready" 2>/dev/null))" \
    test "$(cat "$T/keyd.ready" 2>/dev/null)" = "$KPID yes"
tv_ok "keyd runs as its own user from the credential copy of the master key" \
    sh -c 'test -S "$1/run/keyd.sock" && test "$(stat -c %U /proc/$2)" = "$3"' _ "$T" "$KPID" "$K"
[ -S "$T/run/keyd.sock" ] || sed 's/^/# /' "$T/keyd.log"
capeff() { sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$1/status"; }
nnp() { sed -n 's/^NoNewPrivs:[[:space:]]*//p' "/proc/$1/status"; }
tv_ok "keyd has no capabilities and no_new_privs ($(capeff $KPID), $(nnp $KPID))" \
    test "$(capeff $KPID)" = 0000000000000000 -a "$(nnp $KPID)" = 1
"$KEYCTL" -c "$T/tv.conf" create app >/dev/null 2>"$T/create.err"
tv_ok "root (admin_users) creates the project through the socket" test ! -s "$T/create.err"

# vault: User=, AmbientCapabilities= and CapabilityBoundingSet= SYS_ADMIN CHOWN
# DAC_OVERRIDE FOWNER DAC_READ_SEARCH, NoNewPrivileges=yes, as the unit says; -f with
# Type=notify when the binary calls sd_notify, else forking (Type=forking).
VCAPS=+sys_admin,+chown,+dac_override,+fowner,+dac_read_search
vault_as_unit() {  # vault_as_unit [-f]; in the background as (vault_as_unit -f) & so $! is its pid
    exec setpriv --reuid="$V" --regid="$G" --init-groups --no-new-privs \
        --inh-caps=-all,$VCAPS --ambient-caps=-all,$VCAPS --bounding-set=-all,$VCAPS \
        "$VAULT" -c "$T/tv.conf" "$@" >>"$T/vault.log" 2>&1
}
if grep -q sd_notify "$VAULT"; then
    notify_listen vault mount "$M"
    (NOTIFY_SOCKET="$T/vault.notify"; export NOTIFY_SOCKET; vault_as_unit -f) &
    VPID=$!
    tv_wait_for "$T/vault.ready" 10
    tv_ok "the vault sends READY=1 from its main pid once mounted ($(cat "$T/vault.ready" 2>/dev/null))" \
        test "$(cat "$T/vault.ready" 2>/dev/null)" = "$VPID yes"
else
    (vault_as_unit); rc=$?
    mounted_now=no; mountpoint -q "$M" && mounted_now=yes
    VPID=$(pgrep -u "$V" -f "tracevault -c $T/tv.conf" | head -1)
    tv_ok "the vault forks only once it is mounted (exit $rc, mounted: $mounted_now)" \
        test "$rc" -eq 0 -a "$mounted_now" = yes
fi
tv_defer "fusermount3 -u -z '$M'; [ -n '$VPID' ] && kill $VPID"
mountpoint -q "$M" || sed 's/^/# /' "$T/vault.log"
tv_ok "the vault runs as its own user with exactly its five capabilities and no_new_privs" \
    sh -c 'test -n "$1" && test "$(stat -c %U /proc/$1)" = "$2" && test "$3" = 000000000020000f && test "$4" = 1' \
    _ "$VPID" "$V" "$(capeff "${VPID:-0}" 2>/dev/null)" "$(nnp "${VPID:-0}" 2>/dev/null)"
tv_ok "with them it can bound its descriptors (reopens backing files by handle)" \
    sh -c '! grep -q "descriptors are not bounded" "$1"' _ "$T/vault.log"
tv_ok "the mount is fuse.tracevault with allow_other, owned by the vault user" \
    grep -q " $M .* - fuse.tracevault tracevault .*user_id=$(id -u "$V"),.*allow_other" /proc/self/mountinfo
tv_fails "the vault user cannot read the keystore" setpriv --reuid="$V" --regid="$G" --init-groups cat "$T/lib/keys"
tv_fails "the vault user cannot read the master key" setpriv --reuid="$V" --regid="$G" --init-groups cat "$T/etc/master.key"

# A writer drops a trace; the agent (no capabilities) ships its metadata.
tv_as "$W" sh -c 'printf "%s\n" "{\"event_id\":\"p-1\",\"event_type\":\"model\",\"event_name\":\"x\",\"start_time\":1763790000000,\"duration\":10,\"inputs\":{\"q\":\"PRIVSEP-CANARY\"},\"outputs\":{\"a\":\"ok\"}}" > "$1/app/.t.tmp" && mv "$1/app/.t.tmp" "$1/app/t.json"' _ "$M"
tv_ok "the writer's trace is stored, its backing file owned by the writer" \
    test "$(find "$T/data" -name .tvjournal -prune -o -type f ! -name '.*' -user "$W" -print | wc -l)" -eq 1
tv_fails "another user cannot write into the project" tv_as "$A" sh -c 'echo x > "$1/app/other.json"' _ "$M"
setpriv --reuid="$A" --regid="$G" --init-groups --no-new-privs --bounding-set=-all --inh-caps=-all \
    "$AGENT" -c "$T/tv.conf" --once >"$T/agent.log" 2>&1; rc=$?
n=$(find "$T/outbox" -name '*.msgpack' -type f | while IFS= read -r f; do "$AGENT" dump "$f"; done | grep '"event_hash":"[0-9a-f]\{32\}"' | grep -c '"format":"honeyhive"')
tv_ok "the agent, unprivileged, ships the record (exit $rc, records $n)" test "$rc" -eq 0 -a "$n" -eq 1
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/agent.log" | tail -5
tv_ok "no canary outside the mount" sh -c '! grep -rqF PRIVSEP-CANARY "$1/data" "$1/agent" "$1/outbox" "$1/log" "$1/lib"' _ "$T"
tv_fails "the agent user cannot read the backing store" \
    setpriv --reuid="$A" --regid="$G" --init-groups ls "$T/data"

# ExecReload= sends SIGHUP: a daemon whose unit has it must survive SIGHUP
# (a daemon without a handler would die, and systemd counts SIGHUP as a clean
# exit: no restart).  The agent runs in follow mode for this check.
UNITS="$top_builddir/scripts/systemd"
reload_ok() {  # reload_ok UNIT PID
    _has=no; grep -q '^ExecReload=.*kill -HUP' "$UNITS/$1" && _has=yes
    kill -HUP "$2"; sleep 0.5
    if kill -0 "$2" 2>/dev/null; then return 0; fi
    tv_diag "$1: the daemon died of SIGHUP (unit has ExecReload: $_has)"
    [ "$_has" = no ]
}
setpriv --reuid="$A" --regid="$G" --init-groups --no-new-privs --bounding-set=-all --inh-caps=-all \
    "$AGENT" -c "$T/tv.conf" >>"$T/agent-follow.log" 2>&1 &
APID=$!
tv_defer "kill $APID 2>/dev/null"
sleep 0.5
tv_ok "reload: keyd survives SIGHUP (its unit has ExecReload)" reload_ok tracevault-keyd.service "$KPID"
tv_ok "reload: the vault survives SIGHUP (its unit has ExecReload)" reload_ok tracevault.service "$VPID"
tv_ok "reload: the agent's unit sends SIGHUP only if the agent survives it" reload_ok tracevault-agent.service "$APID"
kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null

# ExecStop=+fusermount3 -u -z: root unmounts, the vault then exits by itself.
fusermount3 -u -z "$M"; i=0
while kill -0 "$VPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
tv_ok "after the unit's ExecStop the vault exits and nothing is mounted" \
    sh -c '! kill -0 "$1" 2>/dev/null && ! mountpoint -q "$2"' _ "$VPID" "$M"

# SIGTERM (systemctl stop when ExecStop could not run): the vault unmounts
# through fusermount3, or ExecStopPost does; either way nothing is left.
(vault_as_unit -f) &
VPID=$!
i=0; while ! mountpoint -q "$M" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill "$VPID"; i=0
while kill -0 "$VPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if mountpoint -q "$M" 2>/dev/null || grep -q " $M " /proc/self/mountinfo; then
    tv_diag "after SIGTERM the unprivileged vault left its mount: ExecStopPost removes it"
    fusermount3 -u -z "$M"
fi
tv_ok "after SIGTERM (+ ExecStopPost) the vault is gone and nothing is mounted" \
    sh -c '! kill -0 "$1" 2>/dev/null && ! grep -q " $2 " /proc/self/mountinfo' _ "$VPID" "$M"
tv_ok "the data survives a restart (the trace is still stored)" test -n "$(find "$T/data" -name .tvjournal -prune -o -type f ! -name '.*' -print)"
tv_done
