#!/bin/sh
# keyd-crash: recovery and refusals across restarts.
#  - kill -9 at random moments during rotates: the keystore always loads and
#    holds the old or the new state; the audit chain verifies;
#  - a crash exactly between keystore save and log flush (fault injection) is
#    repaired from the keystore's pending record;
#  - a restored older keystore is refused (shredded keys must not come back);
#  - edited, reordered, deleted and truncated audit records fail audit-verify,
#    and keyd refuses to start on a broken log;
#  - loose modes on the master key or keystore are refused; the master key is
#    taken from $CREDENTIALS_DIRECTORY; one keyd per keystore.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-crash
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_plan 24
RT="$top_builddir/tests/integration/keyd_roundtrip"
S="$T/run/keyd.sock"
T0=$T

tv_ok "keyd starts" keyd_setup
kctl_q create p
"$RT" "$S" p 4 gen > "$T/v1.wrapped"

# kill -9 during rotates.
bad=0; i=0; last=1
while [ $i -lt 12 ]; do
    i=$((i + 1))
    "$KEYCTL" -c "$T/tv.conf" rotate p >/dev/null 2>&1 &
    RPID=$!
    # 0..15 ms: sometimes before, sometimes during, sometimes after the rotate.
    sleep "0.00$(( (i * 7) % 16 ))" 2>/dev/null || sleep 0.01
    kill -9 "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null; wait $RPID 2>/dev/null
    if ! keyd_restart; then bad=$((bad + 1)); tv_diag "restart $i failed: $(tail -1 "$T/keyd.log")"; break; fi
    cur=$(kctl list | sed -n 's/^p current=\([0-9]*\) .*/\1/p')
    if [ -z "$cur" ] || [ "$cur" -lt "$last" ] || [ "$cur" -gt $((last + 1)) ]; then
        bad=$((bad + 1)); tv_diag "round $i: current=$cur after $last"
    fi
    last=${cur:-$last}
done
tv_ok "12 kill -9 during rotate: keyd restarts each time, state is old or new" test $bad -eq 0
tv_ok "version 1 DEKs still unwrap after the crashes" sh -c '"$0" "$1" p 0 unwrap < "$2"' "$RT" "$S" "$T/v1.wrapped"
tv_ok "audit chain verifies after the crashes" kctl_q audit-verify

# Crash in the window between keystore save and audit flush.
keyd_stop
TRACEVAULT_KEYD_TEST_CRASH=after-keystore-save keyd_restart
before=$(wc -l < "$T/log/keyd-audit.log")
kctl rotate p >/dev/null 2>&1
wait "$KEYD_PID" 2>/dev/null; rc=$?
tv_ok "fault injection: keyd died after saving the keystore (status $rc)" test $rc -eq 137
tv_ok "...the ROTATE record is not in the log yet" test "$(wc -l < "$T/log/keyd-audit.log")" -eq "$before"
tv_ok "keyd restarts" keyd_restart
tv_ok "...and restored the record from the keystore" sh -c 'grep -q "restored record" "$0" && tail -1 "$1" | grep -q "op=ROTATE project=p"' "$T/keyd.log" "$T/log/keyd-audit.log"
tv_ok "...the chain verifies" kctl_q audit-verify

# Restored older keystore: from before a rotate (same sealing key: the
# generation in the log refuses it) and from before a retire (re-sealed
# since: it does not even open).
cp -p "$T/lib/keys" "$T/keys.old"
kctl_q rotate p
keyd_stop
cp -p "$T/lib/keys" "$T/keys.new"
cp -p "$T/keys.old" "$T/lib/keys"
tv_fails "keyd refuses to start with a restored older keystore" keyd_restart
tv_ok "...naming the reason" grep -q "restored old keystore" "$T/keyd.log"
cp -p "$T/keys.new" "$T/lib/keys"
keyd_restart
kctl_q retire p "$(kctl list | sed -n 's/^p current=\([0-9]*\) .*/\1/p')"
keyd_stop
cp -p "$T/lib/keys" "$T/keys.new"
cp -p "$T/keys.old" "$T/lib/keys"
tv_fails "keyd refuses a keystore from before a retire" keyd_restart
tv_ok "...which no longer opens (re-sealed since)" grep -q "a copy from before a shred, retire or rekey-master" "$T/keyd.log"
cp -p "$T/keys.new" "$T/lib/keys"
tv_ok "keyd starts again with the current keystore" keyd_restart
tv_ok "retired versions stayed retired" sh -c '"$0" "$1" p 0 unwrap < "$2" | grep -qx EKEYEXPIRED' "$RT" "$S" "$T/v1.wrapped"

# Loose modes and the systemd credential.
keyd_stop
chmod 0444 "$T/etc/master.key"
tv_fails "a world-readable master key is refused" keyd_restart
chmod 0400 "$T/etc/master.key"; chmod 0644 "$T/lib/keys"
tv_fails "a world-readable keystore is refused" keyd_restart
chmod 0600 "$T/lib/keys"
mkdir -p "$T/cred"; chmod 0700 "$T/cred"; mv "$T/etc/master.key" "$T/cred/master.key"
CREDENTIALS_DIRECTORY="$T/cred" keyd_restart
tv_ok "the master key is read from \$CREDENTIALS_DIRECTORY/master.key" "$RT" "$S" p 2
tv_fails "a second keyd on the same keystore is refused" "$KEYD" -c "$T/tv.conf"
keyd_stop

# Audit log tampering, each on a fresh keyd: the running keyd must report it.
tamper() {  # tamper KIND: prints the audit-verify exit status
    T="$T0/$1"; mkdir -p "$T"; chmod 0755 "$T"
    keyd_setup >/dev/null 2>&1 || { echo setup; return; }
    kctl_q create a; kctl_q create b; kctl_q rotate a; kctl_q list
    L="$T/log/keyd-audit.log"
    case $1 in
    edit)     sed -i '3s/op=ROTATE/op=LIST/; 3s/op=CREATE/op=LIST/' "$L" ;;
    reorder)  { sed -n 1,2p "$L"; sed -n 4p "$L"; sed -n 3p "$L"; sed -n '5,$p' "$L"; } > "$T/x"; cat "$T/x" > "$L" ;;
    delete)   sed -i 3d "$L" ;;
    truncate) head -n -1 "$L" > "$T/x"; cat "$T/x" > "$L" ;;
    esac
    kctl audit-verify > "$T/verify.out" 2>&1; echo $?
    keyd_stop
    T=$T0
}
for kind in edit reorder delete truncate; do
    rc=$(tamper $kind)
    tv_ok "audit-verify detects a $kind record (exit $rc: $(tail -c 90 "$T0/$kind/verify.out"))" test "$rc" = 1
done
tv_fails "keyd refuses to start on an edited audit log" sh -c 'T="$0/edit"; . "$1"; . "$2"; keyd_restart' "$T0" "$top_srcdir/tests/integration/lib.sh" "$top_srcdir/tests/integration/keyd-lib.sh"
tv_done
