#!/bin/sh
# ingest-tls.sh - how tracevault-ingest listens: TLS 1.2/1.3 only when a
# certificate is configured (plain HTTP and TLS 1.1 refused; the real OTLP
# exporter works over it with the CA), a unix socket, and the refusal to
# serve plain HTTP on an address that is not loopback.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/ingest-lib.sh"
tv_init ingest-tls
ingest_need
command -v openssl >/dev/null || tv_skip_all "openssl missing"
agent_make_tls || tv_skip_all "cannot make test certificates"
tv_plan 10
# The gateway's user reads its key (0600, its own), as a deployment would.
GWTLS="$T/gwtls"
mkdir -p "$GWTLS" && cp "$T/tls/server.pem" "$T/tls/server.key" "$GWTLS/" && chmod 0644 "$GWTLS/server.key"
ingest_setup checkout <<CONF
[ingest]
tls_cert = $GWTLS/server.pem
tls_key = $GWTLS/server.key
CONF
K=$(cat "$T/key.checkout")
HTTPS="https://127.0.0.1:$PORT"
tv_ok "over TLS with the CA: /healthz is ok" \
    test "$(curl -s --cacert "$T/tls/ca.pem" "$HTTPS/healthz")" = ok
tv_ok "plain HTTP to the TLS port gets no answer" \
    sh -c "! curl -s -o /dev/null --max-time 5 -w '%{http_code}' 'http://127.0.0.1:$PORT/healthz' | grep -q 200"
tv_ok "TLS 1.1 is refused" \
    sh -c "! curl -s -o /dev/null --max-time 5 --cacert '$T/tls/ca.pem' --tlsv1.1 --tls-max 1.1 '$HTTPS/healthz'"
tv_ok "TLS 1.2 is accepted" \
    test "$(curl -s --cacert "$T/tls/ca.pem" --tlsv1.2 --tls-max 1.2 "$HTTPS/healthz")" = ok
if command -v node >/dev/null && ( ingest_clients ) >/dev/null 2>&1; then
    ingest_clients
    tv_ok "the OTLP exporter over TLS: 5 spans acknowledged" \
        sh -c "NODE_EXTRA_CA_CERTS='$T/tls/ca.pem' node '$CLIENTS/send-spans.js' --url '$HTTPS/v1/traces' \
                 --key '$K' --spans 5 --encoding proto >>'$T/clients.log' 2>&1"
else
    _tv_n=$((_tv_n + 1)); echo "ok $_tv_n # SKIP node or the npm clients unavailable"
fi
ingest_stop

# A unix socket (no TLS there: local peers only).
sed -e "s|^listen = .*|listen = unix:$T/ingest/ingest.sock|" -e '/^tls_/d' "$T/tv.conf" > "$T/unix.conf"
chmod 0644 "$T/unix.conf"
setpriv --reuid="$GW" --regid="$(id -g "$GW")" --init-groups -- \
    "$INGEST" -c "$T/unix.conf" >>"$T/ingest.log" 2>&1 &
UPID=$!
tv_defer "kill -9 $UPID 2>/dev/null"
tv_wait_for "$T/ingest/ingest.sock" 10
agent_event u-1 > "$T/ev.json"
tv_ok "a unix socket serves /v1/events (200)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/ingest/ingest.sock" \
            -H 'Content-Type: application/json' -H "Authorization: Bearer $K" \
            --data-binary @"$T/ev.json" http://localhost/v1/events)" = 200
tv_ok "... and the event is in the vault" test "$(ingest_files checkout)" -ge 1
kill "$UPID"; wait "$UPID" 2>/dev/null

# Plain HTTP on a network address is refused at start.
sed -e "s|^listen = .*|listen = 0.0.0.0:$PORT|" -e '/^tls_/d' "$T/tv.conf" > "$T/open.conf"
chmod 0644 "$T/open.conf"
"$INGEST" -c "$T/open.conf" >"$T/open.out" 2>&1; rc=$?
tv_ok "listen 0.0.0.0 without TLS: exit 1 (got $rc)" test "$rc" -eq 1
tv_ok "... saying why" grep -q "not a loopback address.*refusing to serve plain HTTP" "$T/open.out"
sed -e "s|^listen = .*|listen = 127.0.0.1:$PORT|" -e '/^tls_key/d' "$T/tv.conf" > "$T/half.conf"
chmod 0644 "$T/half.conf"
"$INGEST" -c "$T/half.conf" >"$T/half.out" 2>&1; rc=$?
tv_ok "tls_cert without tls_key: exit 1 (got $rc), an error naming both" \
    sh -c "test $rc -eq 1 && grep -q 'tls_cert and tls_key go together' '$T/half.out'"
tv_done
