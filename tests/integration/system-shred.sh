#!/bin/bash
# system-shred.sh - crypto-shredding end to end, across keyd, the vault, the
# agent (shipping over TLS) and retention.  Projects alpha and beta have
# traces shipped; records of both wait in the agent's queue (upstream
# answering 503) when `tracevault-keyctl shred alpha --yes` runs.  Then:
#   - alpha's files fail with EIO through the mount, one held open across the
#     shred included, and its directory can no longer be listed or written;
#   - fsck fails for alpha, naming the project and why; beta is clean;
#   - the agent hears of the shred from keyd at once (issue 8): it wipes
#     alpha's pseudonym key, deletes alpha's queued records unsent (their
#     hashes were made with a key that no longer exists; nothing of alpha
#     ships again), logs and counts it, asks keyd for alpha's API key no
#     more, and keeps beta flowing;
#   - beta's files read back intact; keyd's audit chain records the shred;
#   - retention: through the mount alpha cannot be listed any more (its names
#     were encrypted under the shredded key), so the run reports an error
#     (exit 1) instead of guessing, and still expires the other projects;
#     with the vault stopped, retention in the
#     backing store removes exactly alpha's expired files by their mtime,
#     which needs no key (docs/OPERATIONS.md: afterwards remove the project).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/system-lib.sh"
. "$top_srcdir/tests/integration/vault-lib.sh"
tv_init system-shred
[ -x "$RETENTION" ] || tv_skip_all "tracevault-retention not built"
sys_setup alpha beta <<'CONF'
[project.alpha]
retention_days = 30

[project.beta]
retention_days = 30
CONF
tv_plan 28
A="$M/alpha"
B="$M/beta"
C="$T/tv.conf"

# Traces before the agent starts (aged ones must not be touched after it took them).
for i in 1 2 3; do agent_event "a-$i" > "$A/a$i.json"; agent_event "b-$i" > "$B/b$i.json"; done
mkdir "$A/sub"
agent_event a-old > "$A/sub/old.json"
agent_event a-old2 > "$A/old.jsonl"
agent_event b-old > "$B/old-b.json"
touch -d '40 days ago' "$A/a1.json" "$A/sub/old.json" "$A/old.jsonl" "$B/old-b.json"
sha256sum "$B"/b*.json > "$T/beta.sha"
agent_start || sys_bail "the agent did not start"
tv_ok "before the shred: all 9 traces shipped (alpha 5, beta 4)" agent_wait_count 9 sys_records 20
tv_ok "alpha's batches carried alpha's API key" grep -q '"auth": "Bearer key-alpha-s3cret"' "$T/up/requests.log"

# Records of both projects wait in the queue while the upstream answers 503.
echo 503 > "$T/up/control"
for i in 1 2; do agent_event "a-live-$i" >> "$A/live.jsonl"; agent_event "b-live-$i" >> "$B/live.jsonl"; done
tv_ok "4 new records queued while the upstream refuses" \
    agent_wait_count 13 "agent_metric records_queued_total" 15

# A file of alpha held open across the shred.
mkdir "$T/sync"
cat > "$T/holder.py" <<'PY'
import errno, os, sys, time
path, sync = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
ok = len(os.pread(fd, 4096, 0)) > 0
open(sync + "/ready", "w").write("1")
while not os.path.exists(sync + "/go"):
    time.sleep(0.05)
res = []
for op in (lambda: os.pread(fd, 4096, 0), lambda: os.pwrite(fd, b"x", 0)):
    try:
        op(); res.append("OK")
    except OSError as e:
        res.append(errno.errorcode[e.errno])
print(("OK" if ok else "EMPTY"), *res)
PY
"$PY" "$T/holder.py" "$A/a2.json" "$T/sync" > "$T/holder.out" 2>&1 &
hp=$!
tv_defer "kill $hp"
tv_wait_for "$T/sync/ready" 10 || sys_bail "holder did not open its file"
audit0=$(wc -l < "$T/log/keyd-audit.log")
"$KEYCTL" -c "$C" shred alpha --yes > "$T/shred.out" 2>&1
tv_ok "keyctl shred alpha --yes succeeds" test $? -eq 0
sleep 0.5
touch "$T/sync/go"; wait $hp
tv_ok "the file held open across the shred: reads and writes now fail with EIO" \
    test "$(cat "$T/holder.out")" = "OK EIO EIO"
tv_ok "a closed file of alpha fails with EIO" test "$(vault_read_errno "$A/a3.json")" = EIO
tv_ok "a file in a subdirectory of alpha fails with EIO" test "$(vault_read_errno "$A/sub/old.json")" = EIO
tv_fails "alpha can no longer be listed" ls "$A" 2>/dev/null
tv_fails "nothing new can be created in alpha" sh -c "echo x > '$A/new.json'" 2>/dev/null
"$VAULT" fsck -c "$C" alpha > "$T/fsck-a.out" 2>&1; rc=$?
tv_ok "fsck alpha fails (exit $rc) and says the project's keys are shredded" \
    sh -c "test $rc -ne 0 && grep -q 'project \"alpha\".*shredded' '$T/fsck-a.out'"
"$VAULT" fsck -c "$C" beta > "$T/fsck-b.out" 2>&1
tv_ok "fsck beta is clean" test $? -eq 0
tv_ok "beta's files read back intact" sha256sum -c --quiet "$T/beta.sha"
tv_ok "keyctl list shows alpha shredded, beta not" sh -c \
    "'$KEYCTL' -c '$C' list > '$T/list.out' && grep -q '^alpha .*shredded' '$T/list.out' && ! grep -q '^beta .*shredded' '$T/list.out'"

# The upstream accepts again: beta flows, alpha cannot get its key.
rm -f "$T/up/control"
alpha_req=$(grep -c 'key-alpha' "$T/up/requests.log")
agent_event b-after > "$B/after.json"
tv_ok "beta keeps flowing: its 2 queued and 1 new record delivered" agent_wait_count 7 "sys_records beta" 20
sleep 1
tv_ok "alpha's queued records were never sent (no request with its key since)" sh -c \
    "test $(sys_records alpha) -eq 5 && test \$(grep -c 'key-alpha' '$T/up/requests.log') -eq $alpha_req"
_queue_is() {  # the metrics file is rewritten every second: wait up to 5 s for the value
    for _i in $(seq 1 50); do [ "$(agent_metric queue_depth)" = "$1" ] && return 0; sleep 0.1; done
    tv_diag "queue_depth $(agent_metric queue_depth), want $1"; return 1
}
tv_ok "they were deleted unsent at the shred: the queue is empty" _queue_is 0
tv_ok "the agent logs the shred: alpha's key wiped, its 2 queued records deleted" \
    grep -q 'project "alpha" was shredded: its pseudonym key is wiped, 2 queued records deleted unsent' "$T/agent.log"
tv_ok "and counts it (1 project, 2 records)" \
    test "$(agent_metric shredded_projects_total)" -eq 1 -a "$(agent_metric records_shredded_total)" -eq 2
tv_ok "keyd, the vault and the agent are all still running" sys_alive "$KEYD_PID" "$VAULT_PID" "$AGENT_PID"
tail -n +$((audit0 + 1)) "$T/log/keyd-audit.log" > "$T/audit.after"
# Only records after the SHRED count: a delivery retry may fetch the key
# between the count above and the shred (seen under the sanitizers).
tv_ok "keyd's audit log records the shred, and no API key of alpha was handed out after it" sh -c \
    "grep -q 'op=SHRED project=alpha .*result=ok' '$T/audit.after' &&
     ! sed -n '/op=SHRED project=alpha .*result=ok/,\$p' '$T/audit.after' |
         grep 'op=APIKEY_GET project=alpha ' | grep -q 'result=ok'"
tv_ok "keyd's audit chain verifies" sh -c "'$KEYCTL' -c '$C' audit-verify > /dev/null"

# A restart while alpha is shredded (its directory unreadable): beta still flows.
agent_stop
agent_start || sys_bail "the agent did not restart"
agent_event b-restart > "$B/restart.json"
_restarted() {
    agent_wait_count 8 "sys_records beta" 20 && _queue_is 0 && [ "$(sys_records alpha)" -eq 5 ]
}
tv_ok "after an agent restart beta still flows, nothing of alpha is queued or shipped" _restarted
# Retention.
"$RETENTION" -c "$C" --no-syslog > "$T/ret1.out" 2> "$T/ret1.err"; rc=$?
tv_ok "retention through the mount cannot list alpha: reports it, exit 1 (got $rc)" sh -c \
    "test $rc -eq 1 && grep -q '^project=alpha via=mount .* files=0 .*errors=1' '$T/ret1.out' && grep -q 'alpha' '$T/ret1.err'"
tv_ok "the same run expired beta's old trace through the mount" sh -c \
    "grep -q '^project=beta via=mount .* files=1 .*errors=0' '$T/ret1.out' && test ! -e '$B/old-b.json' && test -e '$B/b1.json'"
agent_stop
vault_umount
backing() { find "$T/data/alpha" -name .tvjournal -prune -o -type f ! -name '.*' -print | wc -l; }
tv_ok "alpha's backing store holds its 6 files" test "$(backing)" -eq 6
"$RETENTION" -c "$C" --no-syslog --project alpha > "$T/ret2.out" 2> "$T/ret2.err"; rc=$?
tv_ok "retention in the backing store (vault stopped) removes alpha's 3 expired files, exit 0 (got $rc)" \
    sh -c "test $rc -eq 0 && grep -q '^project=alpha via=backing .*files=3 .*errors=0' '$T/ret2.out'"
tv_ok "exactly 3 of alpha's files are left in the backing store, all young" sh -c \
    "test $(backing) -eq 3 && test \$(find '$T/data/alpha' -name .tvjournal -prune -o -type f ! -name '.*' -mtime +1 -print | wc -l) -eq 0"
tv_start_vault || sys_bail "the vault did not mount again"
tv_ok "after a remount beta still reads back intact" sha256sum -c --quiet "$T/beta.sha"
tv_done
