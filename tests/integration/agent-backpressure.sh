#!/bin/sh
# agent-backpressure.sh - with the upstream down, the durable queue fills to
# [agent] queue_max_mb and then reading pauses (the traces wait in their
# files); when the upstream returns, everything is delivered: nothing lost.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-backpressure
[ -x "$AGENT" ] || tv_skip_all "agent not built"
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
"$PY" -c 'import msgpack' 2>/dev/null || tv_skip_all "python3-msgpack missing"
command -v openssl >/dev/null || tv_skip_all "openssl missing"
tv_plan 6
agent_make_tls || tv_skip_all "cannot make test certificates"
agent_start_upstream || { echo "Bail out! test upstream did not start"; exit 1; }
AGENT_BATCH_MAX=1000 agent_conf "https://127.0.0.1:$UP_PORT/v1/batches" <<CONF
[agent]
ca_file = $T/tls/ca.pem
queue_max_mb = 1
CONF
agent_keyd_projects checkout billing || { echo "Bail out! keyd"; exit 1; }
echo 503 > "$T/up/control"
N=6000
"$PY" - "$T/mnt/checkout/big.jsonl" $N <<'PYEOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"event_id": "bp-%d" % i, "session_id": "s", "event_type": "model",
                            "duration": 5, "config": {"model": "gpt-4o"},
                            "metrics": {"prompt_tokens": 1, "completion_tokens": 1}}) + "\n")
PYEOF
agent_start
tv_ok "reading pauses at the queue's disk cap" agent_wait_count 1 "agent_metric reading_paused" 20
q=$(agent_metric queue_bytes)
tv_ok "the queue holds about queue_max_mb (1 MiB), not everything ($q bytes)" \
    sh -c "test $q -ge 1000000 && test $q -le 1300000"
tv_ok "so fewer than all $N lines were read" test "$(agent_metric records_queued_total)" -lt $N
rm -f "$T/up/control"
tv_ok "when the upstream returns all $N records arrive" agent_wait_count $N agent_up_records 60
tv_ok "none twice" test "$(cat "$T/up/dups")" -eq 0
sleep 1.1
tv_ok "reading resumed" test "$(agent_metric reading_paused)" -eq 0
agent_stop
tv_done
