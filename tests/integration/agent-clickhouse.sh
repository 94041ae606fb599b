#!/bin/sh
# agent-clickhouse.sh - the clickhouse+http:// sink against Debian's own
# clickhouse-server (18.16), started here on loopback ports with its own
# config in $T: the table is created (ReplacingMergeTree on record_id),
# records are inserted with JSONEachRow, a full re-delivery from a fresh
# agent state is deduplicated by record_id, and a ClickHouse outage loses
# nothing.  The sink authenticates: ClickHouse's default user is read-only
# here, the agent writes as "tvagent" with the password sealed in keyd as the
# project's API key ("USER:PASSWORD"), sent in headers, never logged; a
# plaintext clickhouse+http:// URL to another host is refused.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-clickhouse
[ -x "$AGENT" ] || tv_skip_all "agent not built"
CH=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
[ -x "$CH" ] || tv_skip_all "clickhouse-server not installed"
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_plan 13

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HP=$(free_port); TP=$(free_port)
PW="CH-PW-CANARY-$$-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$T/ch/log"
cat > "$T/ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$T/ch/log/server.log</log><errorlog>$T/ch/log/err.log</errorlog></logger>
  <http_port>$HP</http_port>
  <tcp_port>$TP</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$T/ch/data/</path>
  <tmp_path>$T/ch/tmp/</tmp_path>
  <user_files_path>$T/ch/user_files/</user_files_path>
  <format_schema_path>$T/ch/fs/</format_schema_path>
  <users_config>$T/ch/users.xml</users_config>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
</yandex>
XML
cat > "$T/ch/users.xml" <<XML
<?xml version="1.0"?>
<yandex><profiles><default></default><ro><readonly>1</readonly></ro></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks>
<profile>ro</profile><quota>default</quota></default>
<tvagent><password>$PW</password><networks><ip>127.0.0.1</ip></networks>
<profile>default</profile><quota>default</quota></tvagent></users>
<quotas><default></default></quotas></yandex>
XML
ch_start() {
    (cd "$T/ch" && exec "$CH" --config-file="$T/ch/config.xml") >>"$T/ch/stdout" 2>&1 &
    CH_PID=$!
    tv_defer "kill $CH_PID 2>/dev/null; wait $CH_PID 2>/dev/null"
    _i=0
    until curl -sf "http://127.0.0.1:$HP/ping" >/dev/null 2>&1; do
        _i=$((_i + 1)); [ $_i -gt 300 ] && return 1
        sleep 0.1
    done
}
ch_stop() { kill "$CH_PID"; wait "$CH_PID" 2>/dev/null; }
q() { curl -sf "http://127.0.0.1:$HP/" --data-binary "$1"; }
ch_start || { echo "Bail out! clickhouse-server did not start"; cat "$T/ch/stdout"; exit 1; }

agent_conf "clickhouse+http://127.0.0.1:$HP/tvtest.records" </dev/null
agent_keyd_projects checkout billing || { echo "Bail out! keyd"; exit 1; }
D="$top_srcdir/tests/data/agent"
cp "$D/honeyhive-model-event.json" "$D/honeyhive-session.json" "$D/otlp-genai.json" \
   "$D/openinference.json" "$D/stream.jsonl" "$T/mnt/checkout/"
# The projects' API keys are not ClickHouse credentials yet: refused.
timeout 6 "$AGENT" -c "$T/tv.conf" --once >>"$T/agent.log" 2>&1
tv_ok "with wrong credentials ClickHouse refuses: no table, nothing inserted" \
    test "$(q "SELECT count() FROM system.tables WHERE name = 'records'")" = 0
for p in checkout billing; do
    printf 'tvagent:%s\n' "$PW" | "$KEYCTL" -c "$T/tv.conf" apikey-set $p >/dev/null
done
tv_ok "--once inserts into ClickHouse as tvagent and exits 0" "$AGENT" -c "$T/tv.conf" --once
tv_ok "the agent created a ReplacingMergeTree keyed on record_id" \
    sh -c "q() { curl -sf 'http://127.0.0.1:$HP/' --data-binary \"\$1\"; }; q 'SHOW CREATE TABLE tvtest.records' | grep -q 'ReplacingMergeTree.*ORDER BY record_id'"
tv_ok "12 records inserted" test "$(q 'SELECT count() FROM tvtest.records')" = 12
tv_ok "the rows carry the evaluated metadata" \
    test "$(q "SELECT model, input_tokens, output_tokens, pii_email FROM tvtest.records WHERE event_hash = '$(agent_hash 6f1c2b9e-3f4a-4c1d-9a51-2f0c6d1e8a77)' FORMAT TSV")" = "$(printf 'gpt-4o-2024-08-06\t64\t31\t2')"

# Re-deliver everything from a fresh state: same record_ids.
rm -rf "$T/agent"
tv_ok "a full re-delivery from a fresh state succeeds" "$AGENT" -c "$T/tv.conf" --once
tv_ok "re-delivered rows are the same record_ids" \
    test "$(q 'SELECT count(), uniqExact(record_id) FROM tvtest.records FORMAT TSV')" = "$(printf '24\t12')"
tv_ok "deduplicated by ReplacingMergeTree (FINAL)" test "$(q 'SELECT count() FROM tvtest.records FINAL')" = 12

# An outage: the agent keeps the records and delivers them when it is back.
ch_stop
agent_start
agent_event ch-outage > "$T/mnt/billing/outage.json"
sleep 2
tv_ok "while ClickHouse is down the record waits in the queue" test "$(agent_metric queue_depth)" -eq 1
ch_start
tv_ok "after ClickHouse returns the record arrives" \
    agent_wait_count 1 "curl -sf 'http://127.0.0.1:$HP/' --data-binary \"SELECT count() FROM tvtest.records WHERE event_hash = '$(AGENT_HASH_PROJECT=billing agent_hash ch-outage)'\"" 40
agent_stop
tv_ok "the password is in no agent log or state file" \
    sh -c "! grep -rqF '$PW' '$T/agent.log' '$T/agent' '$T/ch/log'"
bad=$(sed "s|^upstream .*|upstream    = clickhouse+http://192.0.2.7:$HP/tvtest.records|" "$T/tv.conf")
printf '%s\n' "$bad" > "$T/remote.conf"
"$AGENT" -c "$T/remote.conf" --once > "$T/remote.out" 2>&1; rc=$?
tv_ok "plaintext clickhouse+http:// to another host is refused at start (exit $rc)" \
    sh -c "test $rc -ne 0 && grep -q 'plaintext clickhouse+http:// is allowed only to loopback' '$T/remote.out'"
sed -i "s|^upstream .*|upstream    = clickhouse+http://[::1]:$HP/tvtest.records|" "$T/remote.conf"
tv_ok "...while [::1] is loopback (accepted as a URL: --once with nothing to do exits 0)" \
    "$AGENT" -c "$T/remote.conf" --once
tv_done
