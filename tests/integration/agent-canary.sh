#!/bin/sh
# agent-canary.sh - a unique canary in every content field of every accepted
# format (HoneyHive event, array, JSONL, OTLP gen_ai, OpenInference, and
# malformed documents) must appear in no record, no queue or dead-letter row
# (the sqlite files' bytes, WAL included), no log line (debug level), no
# metrics, no upstream body (https and file://) - while the evaluators did
# see the content.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-canary
[ -x "$AGENT" ] || tv_skip_all "agent not built"
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
"$PY" -c 'import msgpack' 2>/dev/null || tv_skip_all "python3-msgpack missing"
command -v openssl >/dev/null || tv_skip_all "openssl missing"
tv_plan 13

C="CNRY$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
agent_make_tls || tv_skip_all "cannot make test certificates"
agent_start_upstream || { echo "Bail out! test upstream did not start"; exit 1; }
agent_conf "https://127.0.0.1:$UP_PORT/v1/batches" <<CONF
[agent]
ca_file = $T/tls/ca.pem
[project.checkout]
evaluators = all
CONF
# (a second [project.checkout] section only adds keys)
agent_keyd_projects checkout billing || { echo "Bail out! keyd"; exit 1; }
echo 503 > "$T/up/control"
agent_start -v
for f in canary-honeyhive.json canary-otlp.json canary-openinference.json canary-truncated.json; do
    sed "s/@C@/$C/g" "$top_srcdir/tests/data/agent/$f" > "$T/mnt/checkout/.$f.tmp"
    mv "$T/mnt/checkout/.$f.tmp" "$T/mnt/checkout/$f"
done
sed "s/@C@/$C/g" "$top_srcdir/tests/data/agent/canary-stream.jsonl" > "$T/mnt/billing/s.jsonl"
tv_ok "positive control: the canary is in the traces (grep works)" \
    test "$(cat "$T"/mnt/*/* | grep -o "$C" | wc -l)" -ge 50
tv_ok "all 8 records queued while the upstream answers 503" \
    agent_wait_count 8 "agent_metric records_queued_total" 15
tv_ok "they are still queued" test "$(agent_metric queue_depth)" -ge 1
tv_ok "no canary in the queue's sqlite files (db and WAL)" sh -c "! grep -rla '$C' '$T/agent'"
echo "400 - 1" > "$T/up/control"
tv_ok "one batch dead-lettered" agent_wait_count 1 "agent_metric records_dead_lettered_total" 15
tv_ok "the rest delivered" agent_wait_count 1 agent_up_records 15
tv_ok "no canary in the dead-letter rows either" sh -c "! grep -rla '$C' '$T/agent'"
tv_ok "no canary in any upstream body" sh -c "test -s '$T/up/bodies.bin' && ! grep -qa '$C' '$T/up/bodies.bin'"
tv_ok "the evaluators saw the content (PII counted)" grep -q '"pii_email": [1-9]' "$T/up/records.jsonl"
tv_ok "skipped documents were reported" grep -q '"skip_reason": "truncated"' "$T/up/records.jsonl"
agent_stop

# The file:// sink, from a fresh state.
rm -rf "$T/agent"
sed -i "s|^upstream .*|upstream    = file://$T/outbox|" "$T/tv.conf"
tv_ok "--once to the file:// outbox" "$AGENT" -v -c "$T/tv.conf" --once 2>>"$T/agent.log"
tv_ok "no canary in the outbox, its dump, the state or the metrics" sh -c "
    test -n \"\$(find '$T/outbox' -name '*.msgpack')\" &&
    ! grep -rla '$C' '$T/outbox' '$T/agent' &&
    ! find '$T/outbox' -name '*.msgpack' -exec '$AGENT' dump {} \; | grep -q '$C'"
tv_ok "no canary in the agent's log (debug level)" sh -c "test -s '$T/agent.log' && ! grep -qa '$C' '$T/agent.log'"
tv_done
