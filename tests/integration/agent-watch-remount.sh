#!/bin/sh
# agent-watch-remount.sh - the agent does not go blind when the vault under
# it dies and is remounted: kill -9 the vault twice, remount it, write more
# (in place, a JSONL stream, a new directory); every record arrives once by
# record_id, and the log says the mount went away and came back.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/system-lib.sh"
tv_init agent-watch-remount
sys_setup checkout </dev/null
tv_plan 10
agent_start || sys_bail "the agent did not start"
ids() { "$PY" -c 'import json,sys; print(len({json.loads(l)["record_id"] for l in open(sys.argv[1])}))' "$T/up/records.jsonl" 2>/dev/null || echo 0; }
# Event ids leave only hashed: map the hashes back to the test's ids.
event_ids() {
    printf 'e%s\n' 1 2 3 4 5 6 7 | agent_hash_map "$T/hmap" checkout
    sed -n 's/.*"event_hash": "\([^"]*\)".*/\1/p' "$T/up/records.jsonl" |
        while read -r h; do awk -v h="$h" '$3 == h { print $2 }' "$T/hmap"; done | sort | tr '\n' ' '
}

agent_event e1 > "$M/checkout/e1.json"
tv_ok "e1 shipped before the vault dies" agent_wait_count 1 ids 15

kill -9 "$VAULT_PID"
sleep 1.5                              # the agent sees a dead mount (ENOTCONN)
sys_remount || sys_bail "the vault did not remount"
agent_event e2 > "$M/checkout/e2.json"
agent_event e3 > "$M/checkout/s.jsonl"
mkdir "$M/checkout/new"
agent_event e4 > "$M/checkout/new/e4.json"
tv_ok "after a remount: a file, a stream line and a file in a new directory are shipped" \
    agent_wait_count 4 ids 20
tv_ok "the log says the mount went away" grep -q "mount at $M went away" "$T/agent.log"
tv_ok "... and that it is back" grep -q "mount at $M is back" "$T/agent.log"

# Again, remounted at once this time (a new device on the same path).
kill -9 "$VAULT_PID"
sys_remount || sys_bail "the vault did not remount"
mkdir -p "$M/checkout/later/deeper"
agent_event e5 > "$M/checkout/later/deeper/e5.json"
agent_event e6 >> "$M/checkout/s.jsonl"
tv_ok "after a second remount: a new tree and a stream line are shipped" agent_wait_count 6 ids 20
mkdir "$M/checkout/after"
agent_event e7 > "$M/checkout/after/e7.json"
tv_ok "the agent follows the new mount (a directory made later)" agent_wait_count 7 ids 15

sleep 1.5
tv_ok "exactly 7 records, each once by record_id" test "$(ids)" -eq 7
tv_ok "... one per event" test "$(event_ids)" = "e1 e2 e3 e4 e5 e6 e7 "
tv_ok "the loss was logged once per remount" test "$(grep -c "mount at $M went away" "$T/agent.log")" -eq 2
tv_ok "SIGTERM exits 0" agent_stop
tv_done
