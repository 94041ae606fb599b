# tests/integration/agent-lib.sh - helpers for the agent's integration tests.
# Source after lib.sh and tv_init.

# agent_conf [UPSTREAM]: $T/tv.conf with project "checkout" (and "billing"),
# short batch linger, the upstream given (default file://$T/outbox).  Extra
# INI text on stdin is appended.  Pseudonym keys are local (no keyd needed)
# unless AGENT_PSEUDONYM_KEYS=keyd, or agent_use_keyd is called after keyd starts.
agent_conf() {
    _extra=$(cat)
    tv_write_conf <<CONF
[agent]
pseudonym_keys = ${AGENT_PSEUDONYM_KEYS:-local}
batch_linger_ms = ${AGENT_LINGER_MS:-100}
batch_max_records = ${AGENT_BATCH_MAX:-500}

[project.checkout]
writers = root
readers = root
latency_slo_ms = 2000

[project.billing]
writers = root
readers = root
$_extra
CONF
    [ -n "${1:-}" ] && sed -i "s|^upstream .*|upstream    = $1|" "$T/tv.conf"
    # A vault makes project directories itself; a plain directory needs them.
    [ -n "${AGENT_VAULT:-}" ] || mkdir -p "$T/mnt/checkout" "$T/mnt/billing"
}

# Take pseudonym keys from keyd (call once keyd runs and the projects exist).
agent_use_keyd() {
    sed -i 's/^pseudonym_keys = .*/pseudonym_keys = keyd/' "$T/tv.conf"
}

# Start the agent in the background (follow mode); AGENT_PID, log in $T/agent.log.
agent_start() {
    rm -f "$T/agent/metrics.prom"
    "$AGENT" -c "$T/tv.conf" "$@" >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    tv_defer "kill -9 $AGENT_PID 2>/dev/null"
    # Ready once the first metrics file is written (after the initial scan).
    tv_wait_for "$T/agent/metrics.prom" 10
}

# Stop the agent with SIGTERM; returns its exit status.
agent_stop() {
    kill -TERM "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID"
}

# Every record in the file:// outbox, one JSON line each (sorted, may repeat
# across re-sent batches).
# A batch file is written once (renamed into place): each is dumped once and
# its JSON kept in $T/.dumps, keyed by name, size and mtime, so that the
# polls of agent_wait_count cost one dump per new batch, not one per batch
# (hundreds of batches, a dump each per poll: minutes in a sanitizer build).
agent_outbox() {
    mkdir -p "$T/.dumps"
    find "$T/outbox" -name '*.msgpack' 2>/dev/null | sort | while read -r f; do
        _k="$T/.dumps/$(printf '%s' "$f" | md5sum | cut -c1-32)-$(stat -c %s-%Y "$f" 2>/dev/null)"
        if [ -f "$_k" ]; then
            cat "$_k"
        elif "$AGENT" dump "$f" > "$_k.tmp"; then
            mv "$_k.tmp" "$_k" && cat "$_k"
        else
            cat "$_k.tmp"; rm -f "$_k.tmp"
        fi
    done
}

# Number of distinct record_ids in the outbox.
agent_outbox_ids() {
    agent_outbox | sed -n 's/.*"record_id":"\([0-9a-f]*\)".*/\1/p' | sort -u | wc -l
}

# Wait until CMD prints a number >= N (timeout $3 s, default 20).  The
# timeout is wall time, not a count of polls: one poll (agent_outbox dumps
# every batch) can take seconds on a loaded machine or in a sanitizer build,
# where 300 polls of a 30 s wait ran for over half an hour.
agent_wait_count() {
    _n=$1; _cmd=$2; _end=$(( $(date +%s) + ${3:-20} ))
    while :; do
        _c=$(eval "$_cmd" 2>/dev/null); _c=${_c:-0}
        [ "$_c" -ge "$_n" ] && return 0
        [ "$(date +%s)" -ge "$_end" ] && { tv_diag "waited for $_n, have $_c"; return 1; }
        sleep 0.1
    done
}

# A metric's value from the agent's metrics file.
agent_metric() {
    awk -v m="tracevault_agent_$1" '$1 == m { print $2 }' "$T/agent/metrics.prom"
}

# A self-signed CA and a server certificate for 127.0.0.1/localhost in $T/tls;
# a second, unrelated CA in $T/tls/other-ca.pem; a certificate from the right
# CA for another host name (wronghost.pem); the server key's pin in
# $T/tls/pin (sha256//BASE64).
agent_make_tls() {
    mkdir -p "$T/tls"
    (
        cd "$T/tls" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tv test CA" \
            -keyout ca.key -out ca.pem 2>/dev/null &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
            -keyout other-ca.key -out other-ca.pem 2>/dev/null &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
            -keyout server.key -out server.csr 2>/dev/null &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext -out server.pem 2>/dev/null &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=example.com" \
            -keyout wronghost.key -out wronghost.csr 2>/dev/null &&
        printf 'subjectAltName=DNS:example.com\nbasicConstraints=CA:FALSE\n' > ext2 &&
        openssl x509 -req -in wronghost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext2 -out wronghost.pem 2>/dev/null &&
        openssl x509 -in server.pem -pubkey -noout | openssl pkey -pubin -outform der 2>/dev/null |
            openssl dgst -sha256 -binary | base64 | sed 's|^|sha256//|' > pin
    )
}

# Start the TLS test upstream; its state is in $T/up; port in UP_PORT.
# AGENT_UP_CERT=NAME serves $T/tls/NAME.pem instead of server.pem.
agent_start_upstream() {
    mkdir -p "$T/up"
    _c=${AGENT_UP_CERT:-server}
    "$PY" "$top_srcdir/tests/integration/agent-upstream.py" --cert "$T/tls/$_c.pem" \
        --key "$T/tls/$_c.key" --dir "$T/up" >>"$T/up.log" 2>&1 &
    UP_PID=$!
    tv_defer "kill $UP_PID 2>/dev/null"
    tv_wait_for "$T/up/port" 10 || return 1
    UP_PORT=$(cat "$T/up/port")
}

# Distinct records accepted by the test upstream.
agent_up_records() {
    [ -f "$T/up/records.jsonl" ] && grep -c '' "$T/up/records.jsonl" || echo 0
}

# Start keyd, create PROJECTS and give each the API key "key-PROJECT-s3cret".
agent_keyd_projects() {
    tv_start_keyd || return 1
    for _p in "$@"; do
        "$KEYCTL" -c "$T/tv.conf" create "$_p" >/dev/null || return 1
        printf 'key-%s-s3cret\n' "$_p" | "$KEYCTL" -c "$T/tv.conf" apikey-set "$_p" >/dev/null || return 1
    done
    agent_use_keyd
}

# agent_hash ID...: the event_hash the agent ships for each event (or parent)
# id ID of project $AGENT_HASH_PROJECT (default checkout), one a line: ids
# never leave raw, tests find their records by these hashes.
agent_hash() {
    "$AGENT" -c "$T/tv.conf" hash "${AGENT_HASH_PROJECT:-checkout}" event "$@" 2>/dev/null
}

# agent_hash_map FILE PROJECT... < IDS: FILE gets "project id event_hash"
# lines for every id read (one a line) under each project.
agent_hash_map() {
    _f=$1; shift
    cat > "$T/.hash-ids"
    : > "$_f"
    for _p in "$@"; do
        # shellcheck disable=SC2046
        AGENT_HASH_PROJECT=$_p agent_hash $(cat "$T/.hash-ids") > "$T/.hash-out" || return 1
        paste -d' ' "$T/.hash-ids" "$T/.hash-out" | sed "s/^/$_p /" >> "$_f"
    done
}

# A HoneyHive event line with event_id $1 (and optional session $2).
agent_event() {
    printf '{"event_id":"%s","session_id":"%s","event_type":"model","event_name":"n","start_time":1763790000000,"duration":120,"config":{"model":"gpt-4o","provider":"openai"},"inputs":{"q":"hello"},"outputs":{"content":"hi"},"metrics":{"prompt_tokens":10,"completion_tokens":5}}\n' "$1" "${2:-s-1}"
}
