#!/bin/sh
# ingest-hostile.sh - hostile bodies and clients against tracevault-ingest:
# truncated protobuf, 10^5-deep JSON and protobuf nesting, a gzip bomb, a
# 2 GB Content-Length, an over-long chunked body, a span that is not UTF-8
# (partial_success), wrong media types and paths, slowloris connections.
# Each gets a clear error (the status and a google.rpc.Status naming the
# reason), nothing of it is stored, the gateway stays up with bounded
# memory, and the good requests around them are stored and shipped.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/ingest-lib.sh"
tv_init ingest-hostile
ingest_need
tv_plan 22
ingest_setup checkout <<CONF
[ingest]
request_timeout_s = 3
max_connections = 64
CONF
K=$(cat "$T/key.checkout")
PB="$PY $top_srcdir/tests/integration/ingest-pb.py"
CAN="CANARY-hostile-$$-k2"
post() { ingest_post "$@"; }    # PATH FILE CTYPE KEY [curl args]
proto=application/x-protobuf
json=application/json

$PB spans 3 "$CAN" > "$T/good.pb"
tv_ok "a good protobuf request first: 200" test "$(post /v1/traces "$T/good.pb" $proto "$K")" = 200

head -c 100 "$T/good.pb" > "$T/trunc.pb"
tv_ok "truncated protobuf: 400" test "$(post /v1/traces "$T/trunc.pb" $proto "$K")" = 400
tv_ok "... with a protobuf Status naming the reason" grep -qa "truncated or malformed" "$T/resp"

"$PY" -c 'import sys; sys.stdout.write("["*100000 + "]"*100000)' > "$T/deep.json"
tv_ok "10^5-deep JSON: 400, 'nested deeper'" \
    sh -c "test '$(post /v1/traces "$T/deep.json" $json "$K")' = 400 && grep -q 'nested deeper' '$T/resp'"
tv_ok "10^5-deep JSON as events: 400" test "$(post /v1/events "$T/deep.json" $json "$K")" = 400
$PB deep 100000 > "$T/deep.pb"
tv_ok "10^5-deep protobuf nesting: 400, 'nested deeper'" \
    sh -c "test '$(post /v1/traces "$T/deep.pb" $proto "$K")' = 400 && grep -qa 'nested deeper' '$T/resp'"

head -c 300000000 /dev/zero | gzip -9 > "$T/bomb.gz"
tv_ok "gzip bomb (300 MB of zeros in $(wc -c < "$T/bomb.gz") bytes): 413" \
    sh -c "test '$(post /v1/traces "$T/bomb.gz" $json "$K" -H 'Content-Encoding: gzip')' = 413 &&
           grep -q 'inflates to more than' '$T/resp'"
printf 'not gzip at all' > "$T/notgz"
tv_ok "Content-Encoding gzip on bytes that are not gzip: 400" \
    test "$(post /v1/traces "$T/notgz" $json "$K" -H 'Content-Encoding: gzip')" = 400

t0=$(date +%s)
code=$(post /v1/traces "$T/good.pb" $proto "$K" -H 'Content-Length: 2147483648' --max-time 10)
tv_ok "a 2 GB Content-Length: 413 at once, before any body" \
    sh -c "test '$code' = 413 && test \$((\$(date +%s) - $t0)) -le 3"
head -c 5000000 /dev/urandom > "$T/big"
tv_ok "a chunked body past max_request_bytes: 413" \
    test "$(post /v1/traces "$T/big" $proto "$K" -H 'Transfer-Encoding: chunked')" = 413

$PB badutf8 "$CAN" > "$T/bad.pb"
tv_ok "a span that is not UTF-8: 200 with partial_success rejected_spans = 1" \
    sh -c "test '$(post /v1/traces "$T/bad.pb" $proto "$K")' = 200 &&
           test \"\$($PB partial '$T/resp')\" = 1"
tv_ok "text/plain: 415" test "$(post /v1/traces "$T/good.pb" text/plain "$K")" = 415
tv_ok "an unknown path: 404" test "$(post /v1/metrics "$T/good.pb" $proto "$K")" = 404
printf '{"hello":"world"}' > "$T/notev.json"
tv_ok "an object that is not a HoneyHive event: 400" \
    sh -c "test '$(post /v1/events "$T/notev.json" $json "$K")' = 400 && grep -q 'not a HoneyHive event' '$T/resp'"

# Slowloris: 40 connections dribbling header lines; a normal request
# meanwhile is served, and the dribblers are cut after request_timeout_s.
"$PY" - "$PORT" > "$T/slow.out" 2>&1 <<'PYEOF' &
import socket, sys, time
socks = []
for i in range(40):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
    socks.append(s)
t0 = time.time()
while socks and time.time() - t0 < 12:
    for s in list(socks):
        try:
            s.sendall(b"X-Slow: 1\r\n")
        except OSError:
            socks.remove(s)
    time.sleep(0.5)
print("left", len(socks), "after", round(time.time() - t0))
PYEOF
SLOW=$!
sleep 1
tv_ok "while 40 slowloris connections hang on, a request is served" \
    test "$(post /v1/traces "$T/good.pb" $proto "$K" --max-time 5)" = 200
wait $SLOW
tv_ok "the slowloris connections are all cut (request_timeout_s = 3)" \
    grep -Eq '^left 0 after ([3-9]|1[01])$' "$T/slow.out"

tv_ok "the gateway is still up and healthy" \
    sh -c "kill -0 $GW_PID && test \"\$(curl -s '$URL/healthz')\" = ok"
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$GW_PID/status")
tv_ok "its peak memory stayed bounded (VmHWM ${hwm} kB < 200 MB)" test "$hwm" -lt 204800
tv_ok "exactly the good requests were stored once (2 files: the repeated one is not stored twice), no temp file left" \
    sh -c "test $(ingest_files checkout) -eq 2 && test -z \"\$(find '$M' -name '.*.tmp')\""
"$AGENT" -c "$T/tv.conf" --once >>"$T/agent.log" 2>&1
tv_ok "the agent ships them: 3 + 1 spans (the rejected span is not there)" \
    test "$(ingest_shipped_spans | wc -l)" -eq 4
tv_ok "the canary is nowhere at rest, in logs or upstream" \
    sh -c "! grep -rlaF '$CAN' '$T/data' '$T/log' '$T/outbox' '$T/agent' '$T/ingest' '$T'/*.log"
sleep 5
tv_ok "the rejections are counted by reason" \
    sh -c "grep -q 'rejections_total{reason=\"too_large\"} 3' '$T/ingest/metrics.prom' &&
           grep -q 'rejections_total{reason=\"too_deep\"} 3' '$T/ingest/metrics.prom' &&
           grep -Eq 'rejections_total\\{reason=\"timeout\"\\} [1-9]' '$T/ingest/metrics.prom' &&
           grep -q '^tracevault_ingest_duplicates_total 1$' '$T/ingest/metrics.prom'"
tv_done
