#!/bin/sh
# keyd-shred: SHRED (and RETIRE, and rekey-master) is final against copies.
# A copy of the keystore taken before a shred is opened offline with keyd's
# own code (keyd_ksopen: ks_load) and the master key and .seal file as they
# are after: it must not open.  The same copy opens before the shred (so the
# check can fail), and with a copy of the old .seal file too (what defeats
# it, as docs/THREAT_MODEL.md says).  Then kill -9 at each step of the
# re-seal: the keystore always opens, the shred happened or not as the audit
# log says, and after the restart only one sealing key is left.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-shred
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_plan 22
RT="$top_builddir/tests/integration/keyd_roundtrip"
OPEN="$top_builddir/tests/integration/keyd_ksopen"
S="$T/run/keyd.sock"
K="$T/lib/keys"
MK="$T/etc/master.key"
slots() { "$OPEN" --slots "$K.seal" "$MK"; }
# ksopen_as COPY SEAL: open a keystore copy next to a given .seal file.
ksopen_as() {
    mkdir -p "$T/try"; rm -f "$T/try/keys" "$T/try/keys.seal"
    cp -p "$1" "$T/try/keys"; cp -p "$2" "$T/try/keys.seal"
    "$OPEN" "$T/try/keys" "$MK" > "$T/try.out" 2>&1
}

tv_ok "keyd starts" keyd_setup
kctl_q create a; kctl_q create b
"$RT" "$S" a 2 gen > "$T/a.wrapped"
"$RT" "$S" b 2 gen > "$T/b.wrapped"
tv_ok "the .seal file holds one sealing key" test "$(slots)" = 1
cp -p "$K" "$T/keys.before"; cp -p "$K.seal" "$T/seal.before"
tv_ok "control: the copy opens with the .seal file in place before the shred" ksopen_as "$T/keys.before" "$K.seal"
tv_ok "...showing project a's active key" grep -qx "a active" "$T/try.out"

tv_ok "shred a" kctl_q shred a --yes
tv_fails "after the shred, the copy from before does not open with the .seal file in place" \
    ksopen_as "$T/keys.before" "$K.seal"
tv_ok "...said as such ($(cut -c1-60 "$T/try.out"))" grep -q "a copy from before a shred" "$T/try.out"
tv_ok "the live keystore opens: a shredded, b active" \
    sh -c '"$0" "$1" "$2" > "$3" && grep -qx "a shredded" "$3" && grep -qx "b active" "$3"' "$OPEN" "$K" "$MK" "$T/live.out"
tv_ok "one sealing key left: the old one was overwritten" test "$(slots)" = 1
tv_ok "b's DEKs still unwrap" sh -c '"$0" "$1" b 0 unwrap < "$2"' "$RT" "$S" "$T/b.wrapped"
tv_ok "what defeats it: the copy with a copy of the old .seal file opens (keep them apart from the master key)" \
    ksopen_as "$T/keys.before" "$T/seal.before"

# rekey-master: the same without destroying a project.
cp -p "$K" "$T/keys.before2"
tv_ok "rekey-master" kctl_q rekey-master
tv_fails "a copy from before rekey-master no longer opens" ksopen_as "$T/keys.before2" "$K.seal"
tv_ok "b's DEKs still unwrap after rekey-master" sh -c '"$0" "$1" b 0 unwrap < "$2"' "$RT" "$S" "$T/b.wrapped"
tv_ok "the audit log records the shred and the rekey, and verifies" \
    sh -c 'grep -q "op=SHRED project=a .*result=ok" "$0" && grep -q "op=REKEY_MASTER .*result=ok" "$0" && "$1" -c "$2" audit-verify >/dev/null' \
    "$T/log/keyd-audit.log" "$KEYCTL" "$T/tv.conf"

# kill -9 at each step of the re-seal (a shred of project cN each time).
bad=""
for step in 1 2 3; do
    kctl_q create "c$step"
    keyd_stop
    cp -p "$K" "$T/keys.pre$step"
    TRACEVAULT_KEYD_TEST_CRASH=reseal-$step keyd_restart
    kctl shred "c$step" --yes >/dev/null 2>&1
    wait "$KEYD_PID" 2>/dev/null; rc=$?
    [ $rc -eq 137 ] || bad="$bad step$step:exit=$rc"
    keyd_restart || { bad="$bad step$step:restart"; continue; }
    state=$(kctl list | sed -n "s/^c$step .*\(shredded\).*/\1/p")
    logged=$(grep -c "op=SHRED project=c$step .*result=ok" "$T/log/keyd-audit.log")
    # Step 1 dies before the keystore is saved: no shred.  Steps 2 and 3
    # die after: the shred stands and its record was restored at start-up.
    case $step in
    1) [ -z "$state" ] && [ "$logged" = 0 ] || bad="$bad step1:state=$state,logged=$logged" ;;
    *) [ "$state" = shredded ] && [ "$logged" = 1 ] || bad="$bad step$step:state=$state,logged=$logged" ;;
    esac
    [ "$(slots)" = 1 ] || bad="$bad step$step:slots=$(slots)"
    if [ $step -gt 1 ] && ksopen_as "$T/keys.pre$step" "$K.seal"; then bad="$bad step$step:copy-opens"; fi
    kctl_q audit-verify || bad="$bad step$step:audit"
done
tv_ok "kill -9 after each re-seal step: keyd restarts, the shred stands exactly when logged, one sealing key, copies dead, audit intact${bad:+ ($bad)}" \
    test -z "$bad"
kctl_q shred c1 --yes
kctl list > "$T/list.out" 2>&1
tv_ok "the shred killed before its save can be done again" grep -q "^c1 .*shredded" "$T/list.out"
tv_ok "a .seal file open to group is refused" \
    sh -c 'chmod 0640 "$0"; "$1" "$2" "$3" > "$4" 2>&1; rc=$?; chmod 0600 "$0"; test $rc -ne 0 && grep -q "group or others" "$4"' \
    "$K.seal" "$OPEN" "$K" "$MK" "$T/mode.out"
keyd_stop

# A keystore of the previous format (v1, sealed under the master key, its
# log without an anchor): keyd adopts it and rewrites it in the current
# format (3, with its sealing key in .seal).
D="$top_srcdir/tests/data/keyd-v1"
rm -f "$K" "$K.seal" "$MK" "$T/log/keyd-audit.log" "$T/log/keyd-audit.log.head"
install -m 0400 "$D/master.key" "$MK"
install -m 0600 "$D/keys" "$K"
install -m 0600 "$D/keyd-audit.log" "$T/log/keyd-audit.log"
tv_ok "keyd starts on a v1 keystore" keyd_restart
tv_ok "...rewrites it as format 3 with one sealing key" \
    sh -c 'head -c 5 "$0" | od -An -c | grep -q "T   V   K   S 003" && test "$("$1" --slots "$0.seal" "$2")" = 1' "$K" "$OPEN" "$MK"
tv_ok "...and its DEKs still unwrap" sh -c '"$0" "$1" old 0 unwrap < "$2"' "$RT" "$S" "$D/old.wrapped"
tv_ok "...with the old log adopted and anchored" sh -c 'test -s "$0.head" && "$1" -c "$2" audit-verify >/dev/null' \
    "$T/log/keyd-audit.log" "$KEYCTL" "$T/tv.conf"
tv_done
