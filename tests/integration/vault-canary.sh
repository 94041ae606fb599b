#!/bin/bash
# vault-canary.sh - canary content and canary names written through the
# mount never appear in the backing store, keyd's keystore, or any log
# (vault log, keyd log, both audit logs), in plain or common encodings.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-canary
VAULT_PROJECTS=alpha vault_setup <<'CONF'
[project.alpha]
writers = root
readers = root
CONF
tv_plan 8
C="CanaryContent$$x$RANDOM"
N="canaryname$$y$RANDOM"
D="canarydir$$z$RANDOM"
mkdir "$M/alpha/$D"
for i in 1 2 3; do
    "$PY" -c 'import sys; open(sys.argv[1],"w").write(("{\"prompt\": \"%s\"}\n" % sys.argv[2]) * int(sys.argv[3]))' \
        "$M/alpha/$D/$N-$i.json" "$C" $((i * 3000))
done
long="$N$(printf 'L%.0s' $(seq 1 200))"
printf '%s\n' "$C" > "$M/alpha/$long"
printf '%s\n' "$C" >> "$M/alpha/$D/$N-1.json"
mv "$M/alpha/$D/$N-2.json" "$M/alpha/$D/$N-renamed.json"
cat "$M/alpha/$D/$N-1.json" > /dev/null; ls -R "$M/alpha" > /dev/null
"$VAULT" fsck -c "$T/tv.conf" > "$T/log/fsck.out" 2>&1
tv_ok "the canary reads back through the mount" grep -q "$C" "$M/alpha/$D/$N-3.json"
vault_umount
b64() { printf '%s' "$1" | base64 | cut -c1-16; }
search() {   # search PATTERN DIR...: succeed when PATTERN is nowhere
    ! grep -rqa -- "$1" "${@:2}" 2>/dev/null
}
tv_ok "content canary absent from the backing store" search "$C" "$T/data"
tv_ok "name canaries absent from the backing store (file and dir names)" sh -c "! find '$T/data' | grep -q -e '$N' -e '$D'"
tv_ok "name canaries absent from backing file contents" search "$N" "$T/data"
tv_ok "content canary base64 absent from the backing store" search "$(b64 "$C")" "$T/data"
tv_ok "canaries absent from keyd's keystore" sh -c "! grep -rqa -e '$C' -e '$N' -e '$D' '$T/lib'"
tv_ok "canaries absent from every log (vault, keyd, audits, fsck output)" sh -c "! grep -rqa -e '$C' -e '$N' -e '$D' '$T/log' '$T/vault.log' '$T/keyd.log'"
tv_ok "the vault audit log did record the activity" test "$(grep -c '"op":"open"' "$T/log/vault-audit.log")" -ge 1
tv_done
