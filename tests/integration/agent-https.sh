#!/bin/sh
# agent-https.sh - delivery to a real TLS upstream (tests/integration/
# agent-upstream.py, self-signed CA made here) with API keys from the real
# keyd: every record once with its project's bearer key; 503 for a while
# then 200 loses nothing; 429 + Retry-After is honoured; 400 goes to the
# dead-letter table; a wrong CA or a wrong pin sends nothing (and loses
# nothing once fixed).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-https
[ -x "$AGENT" ] || tv_skip_all "agent not built"
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
"$PY" -c 'import msgpack' 2>/dev/null || tv_skip_all "python3-msgpack missing"
command -v openssl >/dev/null || tv_skip_all "openssl missing"
tv_plan 27

agent_make_tls || tv_skip_all "cannot make test certificates"
agent_start_upstream || { echo "Bail out! test upstream did not start"; exit 1; }
URL="https://127.0.0.1:$UP_PORT/v1/batches"
agent_conf "$URL" <<CONF
[agent]
ca_file = $T/tls/ca.pem
CONF
agent_keyd_projects checkout billing || { echo "Bail out! keyd"; exit 1; }
req() { grep -c '' "$T/up/requests.log" 2>/dev/null || echo 0; }

agent_start
for i in 1 2 3 4 5; do agent_event "c-$i" "sess-$i"; done > "$T/mnt/checkout/a.jsonl"
for i in 1 2 3; do agent_event "b-$i"; done > "$T/mnt/billing/b.jsonl"
tv_ok "all 8 records delivered" agent_wait_count 8 agent_up_records 15
tv_ok "checkout batches carry checkout's API key" \
    sh -c "grep '\"n\": 5' '$T/up/requests.log' | grep -q '\"auth\": \"Bearer key-checkout-s3cret\"'"
tv_ok "billing batches carry billing's API key" \
    sh -c "grep '\"n\": 3' '$T/up/requests.log' | grep -q '\"auth\": \"Bearer key-billing-s3cret\"'"
tv_ok "Content-Type application/msgpack" sh -c "! grep -v '\"ctype\": \"application/msgpack\"' '$T/up/requests.log'"
tv_ok "every request has a 32-hex Idempotency-Key" \
    sh -c "! grep -v '\"idem\": \"[0-9a-f]\{32\}\"' '$T/up/requests.log'"
tv_ok "no record received twice" test "$(cat "$T/up/dups")" -eq 0
tv_ok "session ids arrive only as keyed hashes" sh -c "! grep -q 'sess-' '$T/up/records.jsonl' && grep -q '\"session_hash\"' '$T/up/records.jsonl'"

# 503 for a while, then 200: nothing lost.
echo 503 > "$T/up/control"
for i in 1 2 3 4; do agent_event "u-$i"; done >> "$T/mnt/checkout/a.jsonl"
sleep 2.5
tv_ok "while the upstream answers 503 nothing is accepted" test "$(agent_up_records)" -eq 8
tv_ok "... and the agent kept retrying" test "$(grep -c '"code": 503' "$T/up/requests.log")" -ge 2
rm -f "$T/up/control"
tv_ok "after 503s end every record arrives" agent_wait_count 12 agent_up_records 70
tv_ok "retries counted" sh -c "sleep 1.2; test \"\$(awk '\$1==\"tracevault_agent_retries_total\"{print \$2}' '$T/agent/metrics.prom')\" -ge 2"

# 429 with Retry-After: 2 once.
echo "429 2 1" > "$T/up/control"
agent_event r-1 >> "$T/mnt/checkout/a.jsonl"
tv_ok "after a 429 the record arrives" agent_wait_count 13 agent_up_records 20
tv_ok "the retry waited at least Retry-After (2 s)" "$PY" - "$T/up/requests.log" <<'PYEOF'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
i = max(k for k, r in enumerate(reqs) if r["code"] == 429)
gap = reqs[i + 1]["t"] - reqs[i]["t"]
print("# retry after %.2f s" % gap)
sys.exit(0 if gap >= 1.95 else 1)
PYEOF

# 400: dead letter, and the queue keeps moving.
echo "400 - 1" > "$T/up/control"
agent_event d-1 >> "$T/mnt/checkout/a.jsonl"
tv_ok "a 400 is seen by the upstream" agent_wait_count 1 "grep -c '\"code\": 400' '$T/up/requests.log'" 15
agent_event after-400 >> "$T/mnt/checkout/a.jsonl"
tv_ok "the next record still arrives" agent_wait_count 14 agent_up_records 15
tv_ok "the rejected record is in the dead-letter table" "$PY" -c "
import sqlite3, sys
n = sqlite3.connect('$T/agent/agent.db').execute('select count(*) from dead where status = 400').fetchone()[0]
sys.exit(0 if n == 1 else 1)"
tv_ok "the rejection is logged" grep -q "rejected permanently (upstream .*: HTTP status 400)" "$T/agent.log"
sleep 1.1
tv_ok "and counted" test "$(agent_metric records_dead_lettered_total)" -eq 1

# SIGTERM while a batch is in flight: the agent waits for the answer,
# acknowledges, and exits 0; the batch is not sent again after a restart.
echo 2 > "$T/up/delay"
n=$(req)
agent_event term-1 >> "$T/mnt/checkout/a.jsonl"
agent_wait_count $((n + 1)) req 15
kill -TERM "$AGENT_PID"
tv_ok "SIGTERM during a slow request: exit 0 after the answer" wait "$AGENT_PID"
rm -f "$T/up/delay"
tv_ok "the batch in flight was acknowledged (delivered once)" \
    sh -c "test \"\$(grep -c '\"event_hash\": \"$(agent_hash term-1)\"' '$T/up/records.jsonl')\" -eq 1"
n=$(req)
"$AGENT" -c "$T/tv.conf" --once 2>>"$T/agent.log"
tv_ok "and not sent again after a restart" test "$(req)" -eq "$n"

# Wrong CA: nothing sent.  Fixed: delivered.
n=$(req)
sed -i "s|^ca_file = .*|ca_file = $T/tls/other-ca.pem|" "$T/tv.conf"
agent_event ca-1 >> "$T/mnt/billing/b.jsonl"
agent_start
sleep 2.5
tv_ok "with the wrong CA no request reaches the upstream" test "$(req)" -eq "$n"
agent_stop
sed -i "s|^ca_file = .*|ca_file = $T/tls/ca.pem|" "$T/tv.conf"
printf '[agent]\npinned_pubkey = sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n' >> "$T/tv.conf"
agent_start
sleep 2.5
tv_ok "with the right CA but a wrong pin no request reaches the upstream" test "$(req)" -eq "$n"
agent_stop
sed -i "s|^pinned_pubkey = .*|pinned_pubkey = $(cat "$T/tls/pin")|" "$T/tv.conf"
tv_ok "with the right pin, --once delivers what waited and exits 0" "$AGENT" -c "$T/tv.conf" --once
tv_ok "nothing was lost: 16 records, none twice" sh -c "test \"\$(grep -c '' '$T/up/records.jsonl')\" -eq 16 && grep -q '\"event_hash\": \"$(AGENT_HASH_PROJECT=billing agent_hash ca-1)\"' '$T/up/records.jsonl'"

# A certificate from the right CA for another host name: refused.
mv "$T/up" "$T/up-main"
UP_MAIN_PID=$UP_PID
AGENT_UP_CERT=wronghost agent_start_upstream || { echo "Bail out! second upstream"; exit 1; }
sed -i -e "s|^upstream .*|upstream    = https://127.0.0.1:$UP_PORT/v1/batches|" -e "/^pinned_pubkey/d" "$T/tv.conf"
agent_event host-1 >> "$T/mnt/billing/b.jsonl"
L=$(grep -c '' "$T/agent.log")
agent_start
sleep 2.5
tv_ok "a certificate for another host name sends nothing" test "$(req)" -eq 0
tv_ok "... and says why" sh -c "tail -n +$((L + 1)) '$T/agent.log' | grep -q 'SSL peer certificate or SSH remote key was not OK'"
agent_stop
tv_done
