#!/bin/bash
# vault-policy.sh - the shared-host matrix with real users made by the test:
# writers (drop box), a second writer, a reader, a maintainer, an outsider,
# and root (not listed, so an outsider too), for each operation; ownership
# shown as the creator; denials audited; SIGHUP revokes a reader whose file
# is already open.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-policy
tv_need_root
for r in w w2 r m o; do tv_add_user $r > "$T/user.$r" || vault_bail "useradd"; done
W=$(cat "$T/user.w"); W2=$(cat "$T/user.w2"); R=$(cat "$T/user.r"); MT=$(cat "$T/user.m"); O=$(cat "$T/user.o")
policy_conf() {
    cat <<CONF
[project.alpha]
writers = $W, $W2
readers = $1
maintainers = $MT
CONF
}
VAULT_PROJECTS=alpha vault_setup < <(policy_conf "$R")
A="$M/alpha"
mkdir -m 1777 "$T/sync"
tv_plan 45
as() { u=$1; shift; tv_as "$u" "$@" >/dev/null 2>&1; }

# writer
tv_ok "writer creates a file" as "$W" sh -c "printf 'secret-1\n' > '$A/w.jsonl'"
tv_ok "the file shows its creator as owner" test "$(stat -c %U "$T/mnt/alpha/w.jsonl" 2>/dev/null || tv_as "$R" stat -c %U "$A/w.jsonl")" = "$W"
tv_ok "writer appends to its own file" as "$W" sh -c "printf 'secret-2\n' >> '$A/w.jsonl'"
tv_fails "writer cannot read, even its own file (drop box)" as "$W" cat "$A/w.jsonl"
tv_ok "writer lists the project" as "$W" ls "$A"
tv_ok "writer drops via tmp-then-rename" as "$W" sh -c "printf '{}' > '$A/.t.tmp' && mv '$A/.t.tmp' '$A/t.json'"
tv_ok "writer makes a directory" as "$W" mkdir "$A/wdir"
tv_ok "writer sets times on its own file" as "$W" touch "$A/t.json"
# second writer
tv_ok "second writer creates its own file" as "$W2" sh -c "printf 'x' > '$A/w2.json'"
tv_fails "second writer cannot write the first writer's file" as "$W2" sh -c "printf 'evil' >> '$A/w.jsonl'"
tv_fails "second writer cannot truncate it" as "$W2" truncate -s 0 "$A/w.jsonl"
tv_fails "second writer cannot read it" as "$W2" cat "$A/w.jsonl"
tv_fails "second writer cannot unlink it" as "$W2" rm -f "$A/w.jsonl"
tv_fails "second writer cannot rename it" as "$W2" mv "$A/w.jsonl" "$A/stolen"
tv_fails "second writer cannot replace it by rename-over" as "$W2" mv "$A/w2.json" "$A/w.jsonl"
# reader
tv_ok "reader reads the writer's file" test "$(tv_as "$R" cat "$A/w.jsonl")" = "$(printf 'secret-1\nsecret-2')"
tv_ok "reader lists" as "$R" ls "$A"
tv_ok "reader reads the file ID xattr" as "$R" getfattr -n user.tracevault.file_id "$A/w.jsonl"
tv_fails "reader cannot write" as "$R" sh -c "printf 'x' >> '$A/w.jsonl'"
tv_fails "reader cannot create" as "$R" sh -c "printf 'x' > '$A/r.json'"
tv_fails "reader cannot unlink" as "$R" rm -f "$A/w2.json"
tv_fails "reader cannot mkdir" as "$R" mkdir "$A/rdir"
# maintainer
tv_ok "maintainer lists and stats" as "$MT" sh -c "ls '$A' >/dev/null && stat '$A/w2.json' >/dev/null"
tv_fails "maintainer cannot read content" as "$MT" cat "$A/w2.json"
tv_fails "maintainer cannot write" as "$MT" sh -c "printf 'x' >> '$A/w2.json'"
tv_ok "maintainer unlinks any file" as "$MT" rm "$A/w2.json"
tv_ok "maintainer removes directories" as "$MT" rmdir "$A/wdir"
# outsider and root
for who in "$O" root; do
    tv_fails "$who cannot list the project" as "$who" ls "$A"
    tv_fails "$who cannot stat a file" as "$who" stat "$A/w.jsonl"
    tv_fails "$who cannot read" as "$who" cat "$A/w.jsonl"
    tv_fails "$who cannot create or unlink" as "$who" sh -c "printf x > '$A/o.json' || rm -f '$A/t.json'; test -e '$A/o.json'"
    tv_fails "$who cannot read the file ID xattr" as "$who" getfattr -n user.tracevault.file_id "$A/w.jsonl"
    tv_fails "$who cannot mkdir, rename or truncate" as "$who" sh -c "mkdir '$A/od' || mv '$A/t.json' '$A/t2.json' || truncate -s 0 '$A/w.jsonl'"
done
tv_ok "the outsiders changed nothing" test "$(tv_as "$R" cat "$A/w.jsonl")|$(tv_as "$R" ls "$A" | tr '\n' ' ')" = "$(printf 'secret-1\nsecret-2')|t.json w.jsonl "
tv_ok "outsider's denials are audited with its uid" grep -q "\"uid\":$(id -u "$O"),.*\"result\":\"EACCES\"" "$T/log/vault-audit.log"

# SIGHUP applies to open handles: revoke the reader while it holds the file open
cat > "$T/holder.py" <<'PY'
import errno, os, sys, time
path, sync = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
first = os.pread(fd, 8, 0)
open(sync + "/ready", "w").write("1")
while not os.path.exists(sync + "/go"):
    time.sleep(0.05)
try:
    os.pread(fd, 8, 0)
    print("READ_OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
TV_BG_OUT="$T/holder.out" tv_as_bg "$R" "$PY" "$T/holder.py" "$A/w.jsonl" "$T/sync"
hp=$TV_BG_PID
tv_wait_for "$T/sync/ready" 10
policy_conf "$MT" | tv_write_conf
kill -HUP "$VAULT_PID"
sleep 0.5
touch "$T/sync/go"
wait $hp
tv_ok "after SIGHUP the revoked reader's next read on its open file fails" test "$(cat "$T/holder.out")" = EACCES
tv_fails "and it cannot open the file again" as "$R" cat "$A/w.jsonl"
policy_conf "$R" | tv_write_conf
kill -HUP "$VAULT_PID"; sleep 0.5
tv_ok "restoring the policy and SIGHUP lets it read again" as "$R" cat "$A/w.jsonl"
mv "$T/log/vault-audit.log" "$T/log/vault-audit.log.1"
kill -HUP "$VAULT_PID"; sleep 0.5
as "$O" cat "$A/w.jsonl"
tv_ok "SIGHUP reopens the audit log (rotation)" grep -q "\"uid\":$(id -u "$O"),.*\"result\":\"EACCES\"" "$T/log/vault-audit.log"
tv_done
