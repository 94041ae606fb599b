# tests/integration/ingest-lib.sh - helpers for the gateway's tests
# (ingest-*.sh).  Source after lib.sh, after tv_init.
#
#   ingest_need          skip unless root, FUSE, the binaries and keyd's
#                        ingest keys are there
#   ingest_clients       the pinned OTel JS clients (npm ci once into a cache
#                        keyed by package-lock.json); sets CLIENTS; skips with
#                        the reason when npm cannot reach its registry
#   ingest_setup P...    (extra INI on stdin) a gateway user $GW, config with
#                        projects P (writers = $GW, readers = root), keyd
#                        with keys, the vault on $M, one ingest key per
#                        project in $T/key.P, the gateway started as $GW on
#                        127.0.0.1:$PORT ($URL); its log is $T/ingest.log
#   ingest_start / ingest_stop   (re)start or stop the gateway (GW_PID)
#   ingest_post PATH FILE CTYPE [KEY] [curl args...]   POST a body with curl;
#                        prints the HTTP status; the answer is in $T/resp
#   ingest_bail MSG      "Bail out!" with the tails of the daemons' logs

INGEST="$top_builddir/ingest/tracevault-ingest"

ingest_bail() {
    echo "Bail out! $*"
    for f in "$T/keyd.log" "$T/vault.log" "$T/ingest.log" "$T/agent.log"; do
        [ -s "$f" ] && { echo "# --- $f"; tail -15 "$f" | sed 's/^/# /'; }
    done
    exit 1
}

ingest_need() {
    tv_need_root
    tv_need_fuse
    for b in "$KEYD" "$KEYCTL" "$VAULT" "$AGENT" "$INGEST"; do
        [ -x "$b" ] || tv_skip_all "$(basename "$b") not built"
    done
    command -v curl >/dev/null || tv_skip_all "curl missing"
    "$KEYCTL" --help 2>&1 | grep -q ingest-key-create ||
        tv_skip_all "tracevault-keyctl has no ingest-key-create (keyd's ingest keys not merged)"
}

ingest_clients() {
    command -v node >/dev/null && command -v npm >/dev/null || tv_skip_all "node/npm missing"
    _src="$top_srcdir/tests/ingest-clients"
    _sum=$(cat "$_src/package.json" "$_src/package-lock.json" | sha256sum | cut -c1-16)
    CLIENTS="${TV_INGEST_CLIENTS_CACHE:-/tmp/tv-ingest-clients}-$_sum"
    mkdir -p "$CLIENTS"
    # One test installs, the others wait for it (make check runs them in parallel).
    (
        flock 9
        if [ ! -f "$CLIENTS/.installed" ]; then
            cp "$_src/package.json" "$_src/package-lock.json" "$CLIENTS/"
            (cd "$CLIENTS" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) \
                >"$CLIENTS/npm.log" 2>&1 && touch "$CLIENTS/.installed"
        fi
    ) 9>"$CLIENTS.lock"
    [ -f "$CLIENTS/.installed" ] ||
        tv_skip_all "npm ci failed (registry unreachable?): $(tail -1 "$CLIENTS/npm.log")"
    cp "$_src/send-spans.js" "$CLIENTS/"
}

# A TCP port nobody listens on now.
ingest_free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ingest_start() {
    rm -f "$T/ingest/metrics.prom"
    setpriv --reuid="$GW" --regid="$(id -g "$GW")" --init-groups -- \
        "$INGEST" -c "$T/tv.conf" ${INGEST_ARGS:-} >>"$T/ingest.log" 2>&1 &
    GW_PID=$!
    tv_defer "kill -9 $GW_PID 2>/dev/null"
    # Ready once its first metrics file is written (after the listeners).
    tv_wait_for "$T/ingest/metrics.prom" 10
}

ingest_stop() {
    kill -TERM "$GW_PID" 2>/dev/null
    wait "$GW_PID" 2>/dev/null
}

ingest_setup() {
    GW=$(tv_add_user gw) || tv_skip_all "cannot add a user"
    PORT=$(ingest_free_port)
    URL="http://127.0.0.1:$PORT"
    _extra=$(cat)
    {
        printf '[keyd]\ningest_users = %s\n' "$GW"
        printf '[agent]\npseudonym_keys = local\nbatch_linger_ms = 100\n'
        printf '[ingest]\nlisten = 127.0.0.1:%s\nmetrics_file = %s\n' "$PORT" "$T/ingest/metrics.prom"
        for _p in "$@"; do
            printf '\n[project.%s]\nwriters = %s%s\nreaders = root\n' "$_p" "$GW" \
                "${INGEST_EXTRA_WRITERS:+, $INGEST_EXTRA_WRITERS}"
        done
        printf '%s\n' "$_extra"
    } > "$T/extra.ini"
    # tv_write_conf's [keyd] section takes the ingest_users line.
    tv_write_conf < /dev/null
    "$PY" - "$T/tv.conf" "$T/extra.ini" <<'PYEOF'
import sys
conf, extra = open(sys.argv[1]).read(), open(sys.argv[2]).read()
# Merge [keyd] ingest_users into the existing [keyd] section; append the rest.
lines = extra.split('\n')
assert lines[0] == '[keyd]'
conf = conf.replace('[keyd]\n', '[keyd]\n' + lines[1] + '\n', 1)
open(sys.argv[1], 'w').write(conf + '\n' + '\n'.join(lines[2:]))
PYEOF
    mkdir -p "$T/ingest"
    chown "$GW" "$T/ingest"
    chmod 0644 "$T/tv.conf"
    tv_start_keyd || ingest_bail "keyd did not start"
    chmod 0751 "$T/run"            # the gateway's user reaches keyd's socket
    for _p in "$@"; do
        "$KEYCTL" -c "$T/tv.conf" create "$_p" >/dev/null 2>>"$T/keyctl.err" ||
            ingest_bail "keyctl create $_p: $(cat "$T/keyctl.err")"
        "$KEYCTL" -c "$T/tv.conf" ingest-key-create "$_p" > "$T/key.$_p" 2>>"$T/keyctl.err" ||
            ingest_bail "keyctl ingest-key-create $_p: $(cat "$T/keyctl.err")"
        # The key is the tvi_ token on the output, whatever else is printed.
        grep -o 'tvi_[0-9a-f]\{16\}_[A-Za-z0-9_-]\{43\}' "$T/key.$_p" | head -1 > "$T/key.$_p.tok"
        [ -s "$T/key.$_p.tok" ] || ingest_bail "no key in ingest-key-create's output"
        mv "$T/key.$_p.tok" "$T/key.$_p"
    done
    tv_start_vault || ingest_bail "the vault did not mount"
    M="$T/mnt"
    ingest_start || ingest_bail "the gateway did not start"
}

ingest_post() {
    _path=$1 _file=$2 _ct=$3; shift 3
    _key=${1:-}; [ $# -gt 0 ] && shift
    if [ -n "$_key" ]; then
        curl -s -o "$T/resp" -w '%{http_code}' -X POST -H "Content-Type: $_ct" \
            -H "Authorization: Bearer $_key" --data-binary "@$_file" "$@" "$URL$_path"
    else
        curl -s -o "$T/resp" -w '%{http_code}' -X POST -H "Content-Type: $_ct" \
            --data-binary "@$_file" "$@" "$URL$_path"
    fi
}

# Files the gateway stored for project P (count).
ingest_files() {
    find "$M/$1/ingest" -type f -name '*.json' 2>/dev/null | wc -l
}

# Span IDs the agent shipped (one per record; repeats mean a duplicate).
ingest_shipped_spans() {
    find "$T/outbox" -name '*.msgpack' 2>/dev/null | sort | while read -r f; do
        "$AGENT" dump "$f"
    done | "$PY" -c '
import json, sys
seen = {}
for line in sys.stdin:
    r = json.loads(line)
    if r.get("span_id"):
        seen.setdefault(r["span_id"], set()).add(r["record_id"])
for s, ids in seen.items():
    print(s, len(ids))
'
}
