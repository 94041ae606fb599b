# tests/integration/system-lib.sh - helpers for the whole-system tests
# (system-*.sh): keyd, the vault and the agent at once, the agent shipping
# over real TLS to the agent's test upstream (agent-upstream.py, reused
# through agent-lib.sh).  Source after lib.sh and agent-lib.sh, after tv_init.
#
#   sys_setup P...   (extra INI on stdin) skip checks, TLS, upstream, config
#                    with projects P (writers = readers = root), keyd with
#                    keys and API keys "key-P-s3cret", the vault mounted on $M
#   sys_bail MSG     "Bail out!" with the tails of every daemon's log
#   sys_records      distinct records the upstream accepted, per project
#   sys_alive        every daemon still running (pids in KEYD_PID, VAULT_PID,
#                    AGENT_PID)

sys_bail() {
    echo "Bail out! $*"
    for f in "$T/keyd.log" "$T/vault.log" "$T/agent.log" "$T/up.log"; do
        [ -s "$f" ] && { echo "# --- $f"; tail -15 "$f" | sed 's/^/# /'; }
    done
    exit 1
}

sys_setup() {
    tv_need_root
    tv_need_fuse
    for b in "$KEYD" "$KEYCTL" "$VAULT" "$AGENT"; do
        [ -x "$b" ] || tv_skip_all "$(basename "$b") not built"
    done
    "$PY" -c 'import msgpack' 2>/dev/null || tv_skip_all "python3-msgpack missing"
    command -v openssl >/dev/null || tv_skip_all "openssl missing"
    agent_make_tls || tv_skip_all "cannot make test certificates"
    agent_start_upstream || sys_bail "the test upstream did not start"
    _extra=$(cat)
    {
        printf '[agent]\nca_file = %s\nbatch_linger_ms = %s\nbatch_max_records = %s\n' \
            "$T/tls/ca.pem" "${SYS_LINGER_MS:-100}" "${SYS_BATCH_MAX:-500}"
        for _p in "$@"; do
            printf '\n[project.%s]\nwriters = root\nreaders = root\n' "$_p"
        done
        printf '%s\n' "$_extra"
    } | tv_write_conf
    sed -i "s|^upstream .*|upstream    = https://127.0.0.1:$UP_PORT/v1/batches|" "$T/tv.conf"
    tv_start_keyd || sys_bail "keyd did not start"
    for _p in "$@"; do
        "$KEYCTL" -c "$T/tv.conf" create "$_p" >/dev/null 2>>"$T/keyctl.err" ||
            sys_bail "keyctl create $_p: $(cat "$T/keyctl.err")"
        printf 'key-%s-s3cret\n' "$_p" |
            "$KEYCTL" -c "$T/tv.conf" apikey-set "$_p" >/dev/null 2>>"$T/keyctl.err" ||
            sys_bail "keyctl apikey-set $_p"
    done
    tv_start_vault || sys_bail "the vault did not mount"
    M="$T/mnt"
}

# Distinct records the test upstream accepted for project $1 (all when empty).
sys_records() {
    [ -f "$T/up/records.jsonl" ] || { echo 0; return; }
    if [ -n "${1:-}" ]; then
        grep -c "\"project\": \"$1\"" "$T/up/records.jsonl"
    else
        grep -c '' "$T/up/records.jsonl"
    fi
}

sys_alive() {
    for _pid in "$@"; do
        kill -0 "$_pid" 2>/dev/null || return 1
    done
}

# Remount the vault after its process died or was killed.
sys_remount() {
    wait "$VAULT_PID" 2>/dev/null
    fusermount3 -u -z "$T/mnt" 2>/dev/null
    tv_start_vault
}
