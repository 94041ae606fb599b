#!/bin/bash
# agent-nokeyd.sh - with the default pseudonym_keys = keyd and keyd absent, the
# agent pauses the project instead of falling back to a local key (which
# would survive a SHRED and change every hash); once keyd is back the same
# traces ship, hashed with keyd's key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent-lib.sh"
tv_init agent-nokeyd
[ -x "$AGENT" ] && [ -x "$KEYD" ] || tv_skip_all "agent or keyd not built"
AGENT_PSEUDONYM_KEYS=keyd agent_conf </dev/null
tv_plan 6

M="$T/mnt"
for i in 1 2 3; do agent_event "nk-$i" s-1 > "$M/checkout/t$i.json"; done
agent_start
sleep 2
tv_ok "nothing shipped while keyd is absent" [ "$(agent_outbox_ids)" -eq 0 ]
tv_ok "no local key file was made" sh -c "! ls '$T/agent'/pseudonym-* 2>/dev/null"
tv_ok "the log says reading is paused for the project" grep -q 'project "checkout".*paused' "$T/agent.log"

tv_start_keyd || { echo "Bail out! keyd"; exit 1; }
"$KEYCTL" -c "$T/tv.conf" create checkout >/dev/null
"$KEYCTL" -c "$T/tv.conf" create billing >/dev/null
agent_wait_count 3 agent_outbox_ids 20
tv_ok "all 3 traces ship once keyd answers" [ "$(agent_outbox_ids)" -eq 3 ]
tv_ok "hashed with keyd's key, not a local one" \
    sh -c "! find '$T/outbox' -name '*.msgpack' -exec '$AGENT' dump {} \\; | grep -q '\"key_version\":\"local-'"
tv_ok "still no local key file" sh -c "! ls '$T/agent'/pseudonym-* 2>/dev/null"
agent_stop
tv_done
