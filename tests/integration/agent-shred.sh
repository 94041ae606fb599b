#!/bin/bash
# agent-shred.sh - a SHRED reaches a running agent (issue 8): keyd's event
# makes it wipe the project's pseudonym key, delete the project's queued
# records unsent, refuse the project from then on, log it and count it,
# while the other project ships on.  A SHRED sent while the agent was not
# subscribed (keyd restarted) is caught by the re-check after resubscribing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent-lib.sh"
tv_init agent-shred
[ -x "$AGENT" ] && [ -x "$KEYD" ] || tv_skip_all "agent or keyd not built"
"$PY" -c 'import msgpack' 2>/dev/null || tv_skip_all "python3-msgpack missing"
command -v openssl >/dev/null || tv_skip_all "openssl missing"
tv_plan 14

agent_make_tls || tv_skip_all "cannot make test certificates"
agent_start_upstream || { echo "Bail out! test upstream did not start"; exit 1; }
agent_conf "https://127.0.0.1:$UP_PORT/v1/batches" <<CONF
[agent]
ca_file = $T/tls/ca.pem
[project.third]
writers = root
readers = root
CONF
mkdir -p "$T/mnt/third"
agent_keyd_projects checkout billing third || { echo "Bail out! keyd"; exit 1; }
M="$T/mnt"
shipped() { # records upstream of project $1
    grep -c "\"project\": \"$1\"" "$T/up/records.jsonl" 2>/dev/null || echo 0
}
drained() { # wait until the agent's queue is empty (everything shipped or dropped)
    for _i in $(seq 150); do
        [ "$(agent_metric queue_depth)" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

agent_start
agent_event c-0 > "$M/checkout/first.json"
agent_event b-0 > "$M/billing/first.json"
agent_event t-0 > "$M/third/first.json"
tv_ok "before the shred every project ships" agent_wait_count 3 agent_up_records 15

# The upstream refuses for now: checkout's records wait in the queue.
echo 503 > "$T/up/control"
for i in 1 2 3 4 5; do agent_event "c-$i"; done > "$M/checkout/a.jsonl"
agent_wait_count 5 "agent_metric queue_depth" 15
tv_ok "checkout's records are queued while the upstream refuses" test "$(agent_metric queue_depth)" -ge 5
"$KEYCTL" -c "$T/tv.conf" shred checkout --yes > "$T/shred.out" 2>&1 || tv_diag "shred: $(cat "$T/shred.out")"
agent_wait_count 1 "agent_metric shredded_projects_total" 10
tv_ok "the agent counts the shred" test "$(agent_metric shredded_projects_total)" -eq 1
tv_ok "... and deleted checkout's queued records unsent" test "$(agent_metric records_shredded_total)" -ge 5
tv_ok "the log says so, naming the project" \
    grep -q 'project "checkout" was shredded: its pseudonym key is wiped, [0-9]* queued records deleted unsent' "$T/agent.log"
tv_ok "the queue is empty" test "$(agent_metric queue_depth)" -eq 0
# Counted once the agent has acted on the shred: a retry that was already
# on its way when keyd sent the event may still carry the key before this.
sleep 0.5
nkey=$(grep -c 'key-checkout-s3cret' "$T/up/requests.log")

# The upstream is back: new checkout traces never ship, billing does.
rm -f "$T/up/control"
agent_event c-late > "$M/checkout/late.json"
agent_event b-1 > "$M/billing/second.json"
agent_wait_count 2 "shipped billing" 15
drained
tv_ok "billing ships on, and the queue drains" test "$(shipped billing)" -eq 2 -a "$(agent_metric queue_depth)" -eq 0
tv_ok "nothing of checkout shipped after the shred (only its first record)" test "$(shipped checkout)" -eq 1
tv_ok "no request carried checkout's API key after the shred" \
    test "$(grep -c 'key-checkout-s3cret' "$T/up/requests.log")" -eq "$nkey"

# A SHRED while the agent is not subscribed: keyd restarts, 'third' is
# shredded before the agent's subscription is back (keyd is stopped, the
# shred is done by a second keyd instance on the same keystore right after).
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
"$KEYD" -c "$T/tv.conf" >>"$T/keyd.log" 2>&1 &
KEYD_PID=$!
tv_defer "kill $KEYD_PID 2>/dev/null"
tv_wait_for "$T/run/keyd.sock" 10
"$KEYCTL" -c "$T/tv.conf" shred third --yes >> "$T/shred.out" 2>&1
agent_wait_count 2 "agent_metric shredded_projects_total" 15
tv_ok "a shred missed or seen after resubscribing is acted on too" \
    grep -q 'project "third" was shredded' "$T/agent.log"
agent_event t-late > "$M/third/late.json"
agent_event b-2 > "$M/billing/third.json"
agent_wait_count 3 "shipped billing" 15
drained
tv_ok "third ships nothing after its shred, billing still ships" \
    test "$(shipped third)" -eq 1 -a "$(shipped billing)" -eq 3
tv_ok "the agent is still running" kill -0 "$AGENT_PID"

# Shredded while the agent is down, with records of it still queued: at the
# next start keyd refuses the project's keys (EKEYREVOKED), which counts as
# the shred: its queued records are deleted, never shipped.
echo 503 > "$T/up/control"
agent_event b-queued > "$M/billing/queued.json"
agent_wait_count 1 "agent_metric queue_depth" 15
agent_stop
"$KEYCTL" -c "$T/tv.conf" shred billing --yes >> "$T/shred.out" 2>&1
rm -f "$T/up/control"
agent_start
agent_wait_count 1 "agent_metric shredded_projects_total" 15
drained
tv_ok "shredded while the agent was down: its queued record is deleted at the next start, not shipped" \
    sh -c "grep -q 'project \"billing\" was shredded: .* 1 queued records deleted unsent' '$T/agent.log' &&
           test \"\$(grep -c '\"project\": \"billing\"' '$T/up/records.jsonl')\" -eq 3"
agent_stop; rc=$?
tv_ok "... and the agent stops cleanly (exit $rc)" test $rc -eq 0
tv_done
