#!/bin/sh
# ingest-clients.sh - real OpenTelemetry exporters (the npm OTLP/HTTP JSON and
# protobuf exporters with the JS SDK) and curl's HoneyHive events go through
# tracevault-ingest, running as its own user, into the vault; the agent ships
# their metadata to a file:// upstream.  Every span acknowledged with 200 is
# shipped exactly once, GenAI fields survive the trip (model, tokens), and
# the canaries planted in prompts and completions are nowhere at rest (the
# vault's backing store), in any log, in the agent's state or upstream.
# Then the key decides: a wrong, missing or revoked key is 401 and stores
# nothing; the token never appears in a log; keyd audits the failures.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/ingest-lib.sh"
tv_init ingest-clients
ingest_need
ingest_clients
tv_plan 22
ingest_setup checkout billing </dev/null
KC=$(cat "$T/key.checkout")
KB=$(cat "$T/key.billing")
CJ="CANARY-otlpjson-$$-q7"
CP="CANARY-otlpproto-$$-x3"
CE="CANARY-honeyhive-$$-m9"
send() { node "$CLIENTS/send-spans.js" "$@" >>"$T/clients.log" 2>&1; }

tv_ok "the JSON exporter: 20 spans in 3 requests, all acknowledged" \
    send --url "$URL/v1/traces" --key "$KC" --encoding json --spans 20 --batch 8 \
        --canary "$CJ" --acks "$T/acks" --tag json
tv_ok "the protobuf exporter at /opentelemetry/v1/traces: 600 spans (512 + 88), all acknowledged" \
    send --url "$URL/opentelemetry/v1/traces" --key "$KB" --encoding proto --spans 600 --batch 512 \
        --canary "$CP" --acks "$T/acks" --tag proto
{
    printf '{"event_id":"ev-1-%s","session_id":"s-1","event_type":"model","event_name":"draft",' "$$"
    printf '"start_time":1763790000000,"duration":120,"config":{"model":"gpt-4o","provider":"openai"},'
    printf '"inputs":{"q":"%s one"},"outputs":{"content":"%s two"},' "$CE" "$CE"
    printf '"metrics":{"prompt_tokens":10,"completion_tokens":5}}\n'
} > "$T/ev1.json"
{
    printf '['
    for i in 2 3; do
        [ $i = 3 ] && printf ','
        printf '{"event_id":"ev-%s-%s","event_type":"tool","event_name":"lookup",' $i "$$"
        printf '"start_time":1763790000000,"duration":5,"inputs":{"q":"%s"},"outputs":{"r":"%s"}}' "$CE" "$CE"
    done
    printf ']\n'
} > "$T/ev23.json"
tv_ok "curl: one HoneyHive event is 200" test "$(ingest_post /v1/events "$T/ev1.json" application/json "$KC")" = 200
tv_ok "curl: an array of two (gzip) is 200" \
    sh -c "gzip -c '$T/ev23.json' > '$T/ev23.json.gz' &&
           test \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
                  -H 'Content-Encoding: gzip' -H 'Authorization: Bearer $KC' \
                  --data-binary @'$T/ev23.json.gz' '$URL/v1/events')\" = 200"
tv_ok "one file per request: 3 + 2 in checkout, 2 in billing" \
    sh -c "test $(ingest_files checkout) -eq 5 && test $(ingest_files billing) -eq 2 &&
           test \$(find '$M/billing/ingest' -name '*.pb.json' | wc -l) -eq 2"
tv_ok "no temp file is left behind" test -z "$(find "$M" -name '.*.tmp')"

tv_ok "the agent ships everything (--once exits 0)" \
    sh -c "'$AGENT' -c '$T/tv.conf' --once >>'$T/agent.log' 2>&1"
ingest_shipped_spans > "$T/shipped"
tv_ok "every acknowledged span (620) is shipped exactly once" \
    sh -c "test \$(wc -l < '$T/acks') -eq 620 &&
           test \$(sort -u '$T/acks' | wc -l) -eq 620 &&
           test \$(awk '\$2 == 1' '$T/shipped' | wc -l) -eq 620 &&
           test \$(awk '\$2 != 1' '$T/shipped' | wc -l) -eq 0 &&
           sort -u '$T/acks' | while read s; do grep -q \"^\$s 1\$\" '$T/shipped' || exit 1; done"
"$AGENT" dump "$(find "$T/outbox" -name '*.msgpack' | head -1)" > /dev/null 2>&1
find "$T/outbox" -name '*.msgpack' | sort | while read -r f; do "$AGENT" dump "$f"; done > "$T/records"
tv_ok "GenAI metadata made it: model and token counts of the spans" \
    sh -c "grep '\"span_id\"' '$T/records' | grep -q '\"model\":\"gpt-4o-mini\"' &&
           grep '\"span_id\"' '$T/records' | grep -q '\"input_tokens\":1[2-8]'"
tv_ok "the 3 HoneyHive events are shipped" \
    test "$(grep -c '"format":"honeyhive"' "$T/records")" -eq 3
tv_ok "the canaries are nowhere at rest, in logs, agent state or upstream" \
    sh -c "! grep -rlaF -e '$CJ' -e '$CP' -e '$CE' '$T/data' '$T/log' '$T/outbox' '$T/agent' \
             '$T/ingest' '$T'/*.log"
tv_ok "... while the vault serves them to a reader" \
    sh -c "cat '$M'/checkout/ingest/*/*/*/*.json | grep -q '$CJ' &&
           cat '$M'/billing/ingest/*/*/*/*.pb.json | grep -q '$CP'"
m() { awk -v m="tracevault_ingest_$1" '$1 == m { print $2 }' "$T/ingest/metrics.prom"; }
sleep 6   # the metrics file is rewritten every 5 s
tv_ok "metrics: 620 spans and 3 events accepted, no content in the file" \
    sh -c "test '$(m spans_accepted_total)' = 620 && test '$(m events_accepted_total)' = 3 &&
           ! grep -qF CANARY '$T/ingest/metrics.prom'"

# The key decides.
n0=$(ingest_files checkout)
WRONG="$(printf '%s' "$KC" | cut -c1-21)$(printf '%s' "$KC" | cut -c22- | tr 'A-Za-z' 'N-ZA-Mn-za-m')"
tv_ok "a wrong secret is 401" test "$(ingest_post /v1/events "$T/ev1.json" application/json "$WRONG")" = 401
tv_ok "no key is 401" test "$(ingest_post /v1/events "$T/ev1.json" application/json)" = 401
tv_ok "the OTLP exporter with a wrong key is not acknowledged" \
    sh -c "! node '$CLIENTS/send-spans.js' --url '$URL/v1/traces' --key '$WRONG' --spans 3 >>'$T/clients.log' 2>&1"
ID=$(printf '%s' "$KC" | cut -c5-20)
"$KEYCTL" -c "$T/tv.conf" ingest-key-revoke checkout "$ID" >>"$T/keyctl.out" 2>&1
tv_ok "a revoked key is 401 at once" \
    test "$(ingest_post /v1/events "$T/ev1.json" application/json "$KC")" = 401
tv_ok "... and nothing was stored by any refused request" test "$(ingest_files checkout)" -eq "$n0"
tv_ok "the other project's key still works" \
    test "$(ingest_post /v1/events "$T/ev1.json" application/json "$KB")" = 200
SECRET=$(printf '%s' "$KC" | cut -c22-)
tv_ok "no token appears in any log (gateway, keyd, audit)" \
    sh -c "! grep -rqaF -e '$SECRET' -e \"\$(printf '%s' '$WRONG' | cut -c22-)\" '$T/log' '$T'/*.log"
tv_ok "the gateway logged the refusals with the key ID only" grep -q "key ID $ID" "$T/ingest.log"
tv_ok "keyd audited the failed verifications, naming the key ID" \
    grep -q "op=INGEST_AUTH project=checkout .*key=$ID result=EKEYREJECTED" "$T/log/keyd-audit.log"
tv_done
