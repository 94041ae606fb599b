#!/bin/sh
# keyd-audit: keyd's audit log on lib/audit, by attack.
#  - kill -9 after requests (the keystore's chain head is then old), cut the
#    log back to that head: keyd refuses to start (the anchor remembers);
#    with the log put back it starts, and the anchor file removed is refused too;
#  - a flipped byte, a deleted and a reordered record in the live log:
#    tracevault-keyctl audit-verify exits 1 naming the break;
#  - rotation: the log renamed away + SIGHUP: keyd goes on in a new file that
#    continues the chain; it verifies, and keyd restarts on it;
#  - the log's file system full (a 256 KiB tmpfs): requests fail with EIO,
#    keyd keeps running, and once there is room again every request that
#    succeeded has its record and the chain verifies (nothing lost silently).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-audit
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_need_root
tv_plan 18
RT="$top_builddir/tests/integration/keyd_roundtrip"
S="$T/run/keyd.sock"
L="$T/log/keyd-audit.log"

tv_ok "keyd starts" keyd_setup
kctl_q create p
"$RT" "$S" p 4 gen > /dev/null
lines=$(wc -l < "$L")
kill -9 "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
cp -p "$L" "$T/full.log"
# The keystore's head is the CREATE record (line 2): cut back to it.
head -n 2 "$L" > "$T/cut"; cat "$T/cut" > "$L"
tv_fails "after kill -9, a log cut back to the keystore's head: keyd refuses to start" keyd_restart
tv_ok "...naming the cut ($(grep -o 'ends at record [0-9]* but its anchor says record [0-9]*' "$T/keyd.log" | tail -1))" \
    grep -q "records cut from the end" "$T/keyd.log"
cat "$T/full.log" > "$L"
mv "$L.head" "$T/anchor"
tv_fails "the anchor removed: keyd refuses to start" keyd_restart
mv "$T/anchor" "$L.head"
tv_ok "with the log and anchor back keyd starts ($lines records)" keyd_restart

# Tampering with the live log.
# Each audit-verify is itself a request with a record, appended after the
# tampered bytes: the repair puts the good bytes back and keeps what came after.
tamper() {  # tamper DESC SED-SCRIPT
    cp -p "$L" "$T/good.log"
    sed "$2" "$T/good.log" > "$T/bad.log"
    cat "$T/bad.log" > "$L"               # in place: keyd's descriptor stays on it
    size=$(stat -c %s "$L")
    kctl audit-verify > "$T/verify.out" 2>&1; rc=$?
    tv_ok "audit-verify detects $1 (exit $rc: $(tail -c 70 "$T/verify.out"))" test $rc = 1
    { cat "$T/good.log"; tail -c +$((size + 1)) "$L"; } > "$T/repaired"
    cat "$T/repaired" > "$L"
}
tamper "a flipped byte" '3s/uid=0/uid=1/'
tamper "a deleted record" '3d'
tamper "a reordered record" '3{h;d};4G'
tv_ok "the restored log verifies" kctl_q audit-verify

# Rotation.
mv "$L" "$L.1"
kill -HUP "$KEYD_PID"
i=0; while [ ! -s "$L" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
"$RT" "$S" p 2 gen > /dev/null
tv_ok "after rotation the new log starts with a continuation record" \
    sh -c 'head -1 "$0" | grep -q "op=LOG_CONTINUES .* prev=[0-9a-f]\{64\} mac="' "$L"
tv_ok "...and holds the new requests" grep -q "op=GEN_DEK project=p .*result=ok" "$L"
tv_ok "audit-verify passes on the rotated log" kctl_q audit-verify
kill -9 "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
tv_ok "after kill -9 keyd restarts on the rotated log (its keystore head is in the old file)" keyd_restart
keyd_stop

# ENOSPC on the log's file system.
mkdir "$T/small"
mount -t tmpfs -o size=256k,mode=0755 tmpfs "$T/small" || tv_skip_all "cannot mount a tmpfs"
tv_defer "umount -l '$T/small'"
sed -i "s|^audit_log .*|audit_log   = $T/small/keyd-audit.log|" "$T/tv.conf"
rm -f "$T/etc/master.key" "$T/lib/keys" "$T/lib/keys.lock"
tv_start_keyd || { tv_diag "$(cat "$T/keyd-init.out" "$T/keyd.log")"; exit 1; }
kctl_q create p
dd if=/dev/zero of="$T/small/fill" bs=4k 2>/dev/null
keyd_py '
ok = err = 0
errs = set()
s = kd_conn()
for i in range(300):
    r = kd_call({"op": "GEN_DEK", "project": "p", "n": 1}, s)
    if r.get("ok"): ok += 1
    else: err += 1; errs.add(r.get("err"))
print(ok, err, ",".join(sorted(errs)))
' > "$T/full.out" 2>&1
read -r ok1 err1 errs1 < "$T/full.out"
tv_ok "log's file system full: requests fail with EIO ($ok1 ok, $err1 failed: $errs1)" \
    test "$err1" -gt 0 -a "$errs1" = EIO
tv_ok "keyd is still running" kill -0 "$KEYD_PID"
rm -f "$T/small/fill"
keyd_py '
ok = 0
s = kd_conn()
for i in range(20):
    ok += 1 if kd_call({"op": "GEN_DEK", "project": "p", "n": 1}, s).get("ok") else 0
print(ok)
' > "$T/room.out" 2>&1
tv_ok "with room again requests succeed ($(cat "$T/room.out") of 20)" test "$(cat "$T/room.out")" = 20
n=$(grep -c 'op=GEN_DEK project=p .*result=ok' "$T/small/keyd-audit.log")
tv_ok "every successful GEN_DEK has its record, no other ($n = $ok1 + 20)" test "$n" -eq $((ok1 + 20))
tv_ok "the chain verifies: no hole, no partial record" kctl_q audit-verify
tv_done
