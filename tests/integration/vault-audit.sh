#!/bin/bash
# vault-audit.sh - the vault's audit log on lib/audit, by attack:
#  - records are chained JSON lines; tracevault audit-verify passes, and
#    exits 1 on a flipped byte, a deleted and a reordered record;
#  - kill -9 the vault, cut the log's tail: audit-verify says so and the
#    vault refuses to mount on it; with the log restored it mounts;
#  - keyd down at mount: no audit key, no mount (a clear error, exit 1);
#  - a local user's flood of denied stats costs two records (one in full, one
#    summary with the count), not one per request;
#  - rotation: the log renamed away + SIGHUP: a new file continuing the
#    chain; audit-verify over both files passes, over the new one too;
#  - the log's file system full (a small tmpfs): an audited open fails with
#    EIO, and with room again the log verifies (nothing lost silently).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-audit
tv_need_root
O=$(tv_add_user o) || vault_bail "useradd"
VAULT_PROJECTS=alpha vault_setup <<CONF
[project.alpha]
writers = root
readers = root

[vault]
audit_denied_interval = 2
CONF
tv_plan 21
L="$T/log/vault-audit.log"
verify() { "$VAULT" audit-verify -c "$T/tv.conf" "$@" > "$T/verify.out" 2>&1; }

for i in 1 2 3; do echo "{\"i\":$i}" > "$M/alpha/t$i.json"; cat "$M/alpha/t$i.json" > /dev/null; done
tv_ok "audit-verify passes" verify
tv_ok "records are JSON objects with seq and mac" \
    "$PY" -c 'import json,sys; [json.loads(l)["mac"] for l in open(sys.argv[1])]' "$L"
tv_ok "...the creates are there, by file ID only" \
    sh -c 'test $(grep -c "\"op\":\"create\",\"result\":\"ok\"" "$0") -ge 3 && ! grep -q "t1.json" "$0"' "$L"

# Tampering with the live log (in place: the vault keeps appending to it).
tamper() {  # tamper DESC SED-SCRIPT
    cp -p "$L" "$T/good.log"
    sed "$2" "$T/good.log" > "$T/bad.log"
    cat "$T/bad.log" > "$L"
    verify; rc=$?
    tv_ok "audit-verify detects $1 (exit $rc: $(tail -c 60 "$T/verify.out"))" test $rc = 1
    cat "$T/good.log" > "$L"
}
tamper "a flipped byte" '2s/"uid":0/"uid":1/'
tamper "a deleted record" '2d'
tamper "a reordered record" '2{h;d};3G'
tv_ok "the restored log verifies" verify

# kill -9, then a cut tail.
kill -9 "$VAULT_PID"; wait "$VAULT_PID" 2>/dev/null
fusermount3 -u -z "$M" 2>/dev/null
cp -p "$L" "$T/full.log"
head -n -1 "$T/full.log" > "$L"
tv_fails "after kill -9, a log missing its last record fails audit-verify" verify
tv_ok "...which names the cut" grep -q "records cut from the end" "$T/verify.out"
tv_fails "the vault refuses to mount on the cut log" tv_start_vault
tv_ok "...saying why" grep -q "not mounting" "$T/vault.log"
cat "$T/full.log" > "$L"
tv_ok "with the log restored the vault mounts" tv_start_vault

# keyd down at mount.
vault_umount
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
tv_fails "keyd down: the vault does not mount (no audit key)" tv_start_vault
tv_ok "...and says so" grep -q "cannot get its key from keyd" "$T/vault.log"
rm -f "$T/run/keyd.sock"
tv_start_keyd || vault_bail "keyd restart"
tv_start_vault || vault_bail "vault did not remount"

# A flood of denials by a user on no list: every denial accounted for (in
# full or counted in a summary), at most two records per interval.
before=$(wc -l < "$L")
t0=$(date +%s)
tv_as "$O" sh -c 'for i in $(seq 300); do stat "$0/alpha/t1.json"; done' "$M" >/dev/null 2>&1
t1=$(date +%s)
sleep 3
tail -n +$((before + 1)) "$L" > "$T/flood.log"
read -r full sums counted <<EOF2
$("$PY" -c '
import json, sys
full = sums = counted = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["uid"] != int(sys.argv[2]): continue
    if r.get("detail") == "denied": full += 1
    elif r["op"] == "denied-summary": sums += 1; counted += r["count"]
print(full, sums, counted)' "$T/flood.log" "$(id -u "$O")")
EOF2
windows=$(( (t1 - t0) / 2 + 1 ))
tv_ok "300 denied stats in $((t1 - t0)) s: $full in full + $sums summaries counting $counted (at most 2 records per 2 s interval)" \
    test "$full" -ge 1 -a "$full" -le "$windows" -a "$sums" -le "$full" -a $((full + counted)) -ge 300

# Rotation.
mv "$L" "$L.1"
kill -HUP "$VAULT_PID"
i=0; while [ ! -s "$L" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
cat "$M/alpha/t2.json" > /dev/null
tv_ok "after rotation the new log starts with a log-continues record" \
    sh -c 'head -1 "$0" | grep -q "\"op\":\"log-continues\",\"result\":\"ok\",\"prev\":\"[0-9a-f]\{64\}\""' "$L"
tv_ok "audit-verify over the rotated and the new file passes" verify "$L.1"
tv_ok "audit-verify of the new file alone passes" verify

# The log's file system full.
vault_umount
mkdir "$T/small"
mount -t tmpfs -o size=64k,mode=0755 tmpfs "$T/small" || tv_skip_all "cannot mount a tmpfs"
tv_defer "umount -l '$T/small'"
sed -i "/^\[vault\]/,/^\[/ s|^audit_log .*|audit_log   = $T/small/vault-audit.log|" "$T/tv.conf"
tv_start_vault || vault_bail "vault did not mount with its log on the tmpfs"
dd if=/dev/zero of="$T/small/fill" bs=4k 2>/dev/null
errs=0
for i in $(seq 40); do cat "$M/alpha/t1.json" > /dev/null 2>&1 || errs=$((errs + 1)); done
tv_ok "log's file system full: audited opens fail ($errs of 40)" test "$errs" -gt 0
rm -f "$T/small/fill"
tv_ok "with room again opens work" cat "$M/alpha/t1.json"
vault_umount
tv_ok "the log verifies: no partial record, no hole" verify
tv_done
