#!/bin/sh
# agent-vault.sh - the agent end to end through a mounted vault (keyd + FUSE):
# it reads as a listed project reader, identifies files by the vault's
# user.tracevault.file_id (so a remount, which may renumber inodes, resumes
# exactly where it stopped), tails JSONL appended through the mount, survives
# kill -9 without duplicates, keeps trace content out of everything it
# writes, and a project that does not list it as a reader is refused by the
# vault without stalling the others.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-vault
tv_need_root
tv_need_fuse
[ -x "$AGENT" ] && [ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "agent, vault or keyd not built"
tv_plan 12
OTHER=$(tv_add_user rd) || tv_skip_all "cannot add a user"
AGENT_VAULT=1 AGENT_PSEUDONYM_KEYS=keyd agent_conf <<CONF
[project.secret]
writers = root
readers = $OTHER
CONF
tv_start_keyd || { echo "Bail out! keyd"; exit 1; }
for p in checkout billing secret; do "$KEYCTL" -c "$T/tv.conf" create $p >/dev/null; done
tv_start_vault || { echo "Bail out! vault did not mount"; sed 's/^/# /' "$T/vault.log"; exit 1; }
M="$T/mnt"
D="$top_srcdir/tests/data/agent"
ids() { agent_outbox_ids; }
total() { agent_outbox | grep -c record_id; }
C="CNRY$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

cp "$D/honeyhive-session.json" "$M/checkout/session.json"
agent_start
tv_ok "backlog in the vault shipped (5 records)" agent_wait_count 5 ids 15
fid=$(getfattr --only-values -n user.tracevault.file_id "$M/checkout/session.json" 2>/dev/null ||
      "$PY" -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.tracevault.file_id").decode())' "$M/checkout/session.json")
tv_ok "records carry the vault's file id ($fid)" sh -c "find '$T/outbox' -name '*.msgpack' -exec '$AGENT' dump {} \; | grep -q '\"file_id\":\"$fid\"'"
for i in 1 2 3; do agent_event "v-$i"; done >> "$M/billing/live.jsonl"
tv_ok "JSONL appended through the mount is tailed" agent_wait_count 8 ids 15
sed "s/@C@/$C/g" "$D/canary-honeyhive.json" > "$M/checkout/canary.json"
sed "s/@C@/$C/g" "$D/canary-stream.jsonl" >> "$M/billing/live.jsonl"
tv_ok "canary traces shipped as records" agent_wait_count 13 ids 15
cp "$D/otlp-genai.json" "$M/secret/otlp.json"
agent_event after-secret > "$M/checkout/after.json"
tv_ok "a project without the agent as reader does not stall the others" agent_wait_count 14 ids 15
tv_ok "the vault refused the agent there (logged, not shipped)" \
    sh -c "grep -q 'project \"secret\": .*: cannot open: Permission denied' '$T/agent.log' &&
           ! grep -q 'otlp\.json' '$T/agent.log' && ! find '$T/outbox' -path '*secret*' -name '*.msgpack' | grep -q ."

# kill -9, remount the vault while the agent is down, append, restart.
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
before=$(ids)
fusermount3 -u "$M"; wait "$VAULT_PID" 2>/dev/null
tv_start_vault || { echo "Bail out! vault did not remount"; exit 1; }
agent_event after-remount >> "$M/billing/live.jsonl"
agent_start
tv_ok "after kill -9 and a remount only the new line is shipped" agent_wait_count $((before + 1)) ids 15
sleep 1.5
tv_ok "nothing was read twice: ids are stable across the remount" test "$(ids)" -eq $((before + 1))
tv_ok "no record shipped twice" test "$(total)" -eq "$(ids)"
agent_stop
tv_ok "positive control: the canary is readable through the mount" grep -q "$C" "$M/checkout/canary.json"
tv_ok "no canary in the outbox, the agent's state or its log" \
    sh -c "! grep -rqa '$C' '$T/outbox' '$T/agent' '$T/agent.log'"
tv_ok "no canary in the vault's backing store either" sh -c "! grep -rqa '$C' '$T/data'"
tv_done
