#!/bin/bash
# agent-signals.sh - SIGHUP (sent by operators and log rotators) neither kills
# the agent nor stops it shipping; SIGTERM ends it cleanly with status 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent-lib.sh"
tv_init agent-signals
[ -x "$AGENT" ] || tv_skip_all "agent not built"
agent_conf </dev/null
tv_plan 5
agent_start
kill -HUP "$AGENT_PID"
# The signal may land on the encoder thread: the main loop notices it at its
# next wake-up (at most about a second).
i=0
while ! grep -q 'SIGHUP: the configuration' "$T/agent.log" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
tv_ok "the agent survives SIGHUP" kill -0 "$AGENT_PID"
tv_ok "and says the configuration is not reloaded" grep -q 'SIGHUP: the configuration is not reloaded' "$T/agent.log"
agent_event sig-1 > "$T/mnt/checkout/after-hup.json"
agent_wait_count 1 agent_outbox_ids 10
tv_ok "a trace written after SIGHUP ships" [ "$(agent_outbox_ids)" -eq 1 ]
agent_stop; rc=$?
tv_ok "SIGTERM ends it with status 0 (got $rc)" [ "$rc" -eq 0 ]
tv_ok "exactly one record" [ "$(agent_outbox | grep -c record_id)" -eq 1 ]
tv_done
