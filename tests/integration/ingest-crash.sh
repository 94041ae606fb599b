#!/bin/sh
# ingest-crash.sh - 64 real OTLP exporters (the npm protobuf exporter, each
# its own connection) send GenAI spans through tracevault-ingest while the
# vault is killed with SIGKILL and mounted again mid-run.  Requests during
# the outage are answered 503 with Retry-After (the exporters retry), and
# every span acknowledged with 200 is shipped by the agent exactly once:
# a 200 means durable, and a retried request is not stored twice.  Then the
# gateway itself is killed -9 under load and restarted: the same holds.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/ingest-lib.sh"
tv_init ingest-crash
ingest_need
ingest_clients
tv_plan 11
ingest_setup checkout <<CONF
[ingest]
max_requests = 128
request_timeout_s = 3
CONF
K=$(cat "$T/key.checkout")
CAN="CANARY-crash-$$-v5"
send() {
    node "$CLIENTS/send-spans.js" --url "$URL/v1/traces" --key "$K" --encoding proto \
        --exporters 64 --spans 40 --batch 4 --pause 300 --canary "$CAN" --acks "$T/acks" "$@" \
        >>"$T/clients.log" 2>&1
}
remount() {
    wait "$VAULT_PID" 2>/dev/null
    fusermount3 -u -z "$T/mnt" 2>/dev/null
    tv_start_vault
}

# Round 1: the vault dies mid-run.
send --tag vault &
NODE=$!
# Wait until the run is well under way (files are landing).
agent_wait_count 10 "ingest_files checkout" 30 || ingest_bail "no file stored at the start"
kill -9 "$VAULT_PID"
sleep 1
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")
tv_ok "while the vault is down, /healthz says 503" test "$code" = 503
remount || ingest_bail "the vault did not mount again"
wait $NODE
tv_ok "the gateway survived the vault's death" kill -0 "$GW_PID"
acked1=$(sort -u "$T/acks" | wc -l)
tv_diag "round 1: $acked1 of 2560 spans acknowledged ($(tail -1 "$T/clients.log"))"
tv_ok "requests were refused while the vault was down (store_failed counted)" \
    sh -c "sleep 5; grep -Eq 'rejections_total\\{reason=\"store_failed\"\\} [1-9]' '$T/ingest/metrics.prom'"
tv_ok "most spans were acknowledged anyway (the exporters retried): $acked1 >= 1280" \
    test "$acked1" -ge 1280

# Round 2: the gateway dies mid-run (kill -9) and comes back.
send --tag gateway &
NODE=$!
n=$(ingest_files checkout)
agent_wait_count $((n + 10)) "ingest_files checkout" 30 || ingest_bail "round 2 did not start"
kill -9 "$GW_PID"
wait "$GW_PID" 2>/dev/null
sleep 1
ingest_start || ingest_bail "the gateway did not restart"
wait $NODE
acked=$(sort -u "$T/acks" | wc -l)
tv_diag "round 2: $((acked - acked1)) of 2560 spans acknowledged"

tmps() { find "$M" -name '.*.tmp' | wc -l; }
tv_diag "temp files left by the killed gateway: $(tmps)"
tv_ok "the restarted gateway removes the temp files of the stores cut short" \
    sh -c "i=0; while [ \$(find '$M' -name '.*.tmp' | wc -l) -gt 0 ]; do
               i=\$((i + 1)); [ \$i -gt 30 ] && exit 1; sleep 1; done"
tv_ok "the agent ships everything (--once exits 0)" \
    sh -c "'$AGENT' -c '$T/tv.conf' --once >>'$T/agent.log' 2>&1"
ingest_shipped_spans > "$T/shipped"
tv_ok "every acknowledged span ($acked) is shipped" \
    sh -c "sort -u '$T/acks' | while read s; do grep -q \"^\$s \" '$T/shipped' || { echo \"# missing \$s\"; exit 1; }; done"
tv_ok "... and no span is shipped twice" test "$(awk '$2 != 1' "$T/shipped" | wc -l)" -eq 0
tv_ok "... and every shipped span is one the exporters made (no garbage)" \
    test "$(wc -l < "$T/shipped")" -le 5120
tv_ok "the canary is nowhere at rest, in logs or upstream" \
    sh -c "! grep -rlaF '$CAN' '$T/data' '$T/log' '$T/outbox' '$T/agent' '$T/ingest' '$T'/*.log"
tv_ok "the vault's files all authenticate (fsck)" "$VAULT" fsck -c "$T/tv.conf" checkout
tv_done
