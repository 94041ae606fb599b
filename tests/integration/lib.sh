# tests/integration/lib.sh - shared helpers for integration tests (POSIX sh + bash ok).
#
# Source it, then: tv_init NAME; tv_plan N; ...; tv_ok COND-CMD "desc"; tv_done.
# Everything a test starts is registered with tv_defer and undone by the EXIT
# trap in reverse order, even when the test fails or is interrupted.  All state
# lives in $T (a fresh directory under /tmp: Unix socket paths must stay short).
#
# Binaries are taken from $top_builddir; /usr/bin/python3 is used explicitly
# because the python3 first on PATH may lack python3-msgpack.

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
KEYD="$top_builddir/keyd/tracevault-keyd"
KEYCTL="$top_builddir/keyd/tracevault-keyctl"
VAULT="$top_builddir/vault/tracevault"
AGENT="$top_builddir/agent/tracevault-agent"
RETENTION="$top_builddir/scripts/tracevault-retention"
PY=/usr/bin/python3
export LC_ALL=C

_tv_n=0
_tv_failed=0

tv_init() {
    _tv_name=$1
    T=$(mktemp -d "/tmp/tv-$1.XXXXXX") || exit 1
    chmod 0755 "$T"
    trap '_tv_cleanup' EXIT
    trap 'exit 130' INT TERM
    _tv_san_init
}

# Sanitizer builds (configure --enable-sanitizers, docs/DEVELOPMENT.md).  A
# test cannot see a finding by itself: a daemon in the background reports it
# into a log that the test deletes, a CLI's exit status 1 looks like the
# refusal a tv_fails expects, and LeakSanitizer speaks only when a process
# exits, which for a daemon is at teardown.  So every instrumented process the
# test starts writes its reports into $T/.san (log_path; world-writable and
# sticky, as some run as test users), and teardown fails the test when a
# report is there, after giving the killed daemons time to exit.  A daemon
# killed with -9 on purpose reports nothing: that is expected.
_tv_san=no
_tv_san_init() {
    if [ -z "${TV_SANITIZERS:-}" ]; then
        # Run by hand, outside make: ask the build.
        grep -q '^TV_SANITIZERS = yes' "$top_builddir/Makefile" 2>/dev/null &&
            TV_SANITIZERS=yes || TV_SANITIZERS=no
        export TV_SANITIZERS
    fi
    [ "$TV_SANITIZERS" = yes ] || return 0
    . "$top_srcdir/tests/san-env.sh"
    mkdir -p "$T/.san" && chmod 1777 "$T/.san" || exit 1
    ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$T/.san/asan"
    UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$T/.san/ubsan"
    export ASAN_OPTIONS UBSAN_OPTIONS
    _tv_san=yes
}

# Wait (at most TV_SAN_EXIT_WAIT seconds) for this test's child processes to
# exit -- the deferred kills have been sent, LSan runs as each one exits --
# then fail if any sanitizer report was written.  Zombies count as exited.
_tv_san_check() {
    [ "$_tv_san" = yes ] || return 0
    _i=0; _max=$(( ${TV_SAN_EXIT_WAIT:-20} * 10 ))
    while [ $_i -lt $_max ]; do
        ps -o stat=,comm= --ppid $$ > "$T/.san-ps" 2>/dev/null
        awk '$1 !~ /^Z/ && $2 != "ps"' "$T/.san-ps" | grep -q . || break
        _i=$((_i + 1)); sleep 0.1
    done
    [ $_i -ge $_max ] && echo "# sanitizers: children still running at teardown:" &&
        sed 's/^/#   /' "$T/.san-ps"
    set -- "$T"/.san/*
    [ -e "$1" ] || return 0
    for _f; do
        echo "# ==== sanitizer report $(basename "$_f")"
        sed 's/^/# /' "$_f" | head -80
    done
    # UBSan (combined with ASan) writes only its SUMMARY line to log_path and
    # the diagnostic itself to stderr, which for a daemon is a log in $T.
    grep -r -I -A8 --exclude-dir=.san 'runtime error: ' "$T" 2>/dev/null |
        head -60 | sed 's/^/# /'
    echo "Bail out! sanitizer findings in $_tv_name ($# report(s))"
    return 1
}

# Register a shell command to run at exit (last registered runs first).  The
# list lives in a file, not a variable, so that registrations made inside
# command substitutions ($(tv_add_user x)) are not lost with the subshell.
tv_defer() {
    printf '%s\n' "$1" >> "$T/.tv-deferred"
}

_tv_cleanup() {
    rc=$?
    set +e
    if [ -f "$T/.tv-deferred" ]; then
        tac "$T/.tv-deferred" | while IFS= read -r cmd; do
            [ -n "$cmd" ] && eval "$cmd" >/dev/null 2>&1
        done
    fi
    _tv_san_check || rc=1
    if [ -n "${TV_KEEP:-}" ]; then
        echo "# kept $T"
    else
        rm -rf "$T"
    fi
    exit $rc
}

tv_plan() { echo "1..$1"; }

tv_skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

# tv_ok "description" cmd args...   (passes when the command exits 0)
tv_ok() {
    desc=$1; shift
    _tv_n=$((_tv_n + 1))
    if "$@"; then
        echo "ok $_tv_n - $desc"
    else
        echo "not ok $_tv_n - $desc"
        _tv_failed=$((_tv_failed + 1))
    fi
}

# tv_fails "description" cmd args...  (passes when the command exits non-zero)
tv_fails() {
    desc=$1; shift
    _tv_n=$((_tv_n + 1))
    if "$@"; then
        echo "not ok $_tv_n - $desc (unexpectedly succeeded)"
        _tv_failed=$((_tv_failed + 1))
    else
        echo "ok $_tv_n - $desc"
    fi
}

tv_diag() { printf '# %s\n' "$@"; }

tv_done() {
    [ "$_tv_failed" -eq 0 ]
    exit $?
}

tv_need_root() {
    [ "$(id -u)" -eq 0 ] || tv_skip_all "needs root"
}

tv_need_fuse() {
    [ -c /dev/fuse ] || tv_skip_all "no /dev/fuse"
    command -v fusermount3 >/dev/null || tv_skip_all "no fusermount3"
}

# Wait up to $2 seconds (default 10) for a path to exist.
tv_wait_for() {
    _i=0; _max=$(( ${2:-10} * 20 ))
    while [ ! -e "$1" ]; do
        _i=$((_i + 1)); [ $_i -gt $_max ] && return 1
        sleep 0.05
    done
}

# Write $T/tv.conf with every path inside $T.  Extra INI text on stdin is appended.
tv_write_conf() {
    mkdir -p "$T/run" "$T/lib" "$T/log" "$T/etc" "$T/data" "$T/mnt" "$T/agent" "$T/outbox"
    chmod 0750 "$T/run"
    cat > "$T/tv.conf" <<CONF
[keyd]
socket      = $T/run/keyd.sock
keystore    = $T/lib/keys
master_key  = $T/etc/master.key
audit_log   = $T/log/keyd-audit.log
vault_users = ${TV_VAULT_USERS:-root}
agent_users = ${TV_AGENT_USERS:-root}
admin_users = ${TV_ADMIN_USERS:-root}

[vault]
backing     = $T/data
mountpoint  = $T/mnt
audit_log   = $T/log/vault-audit.log

[agent]
state_dir   = $T/agent
upstream    = file://$T/outbox

[retention]
lock_file   = $T/run/retention.lock
CONF
    cat >> "$T/tv.conf"
}

# Initialise and start keyd in the background; waits for its socket.
tv_start_keyd() {
    [ -e "$T/etc/master.key" ] || "$KEYD" -c "$T/tv.conf" init >"$T/keyd-init.out" 2>&1 || return 1
    "$KEYD" -c "$T/tv.conf" >>"$T/keyd.log" 2>&1 &
    KEYD_PID=$!
    tv_defer "kill $KEYD_PID 2>/dev/null; wait $KEYD_PID 2>/dev/null"
    tv_wait_for "$T/run/keyd.sock" 10
}

# Mount the vault in the foreground process put in the background; waits for the mount.
tv_start_vault() {
    "$VAULT" -c "$T/tv.conf" -f >>"$T/vault.log" 2>&1 &
    VAULT_PID=$!
    tv_defer "fusermount3 -u -z '$T/mnt' 2>/dev/null; kill $VAULT_PID 2>/dev/null; wait $VAULT_PID 2>/dev/null"
    _i=0
    while ! mountpoint -q "$T/mnt"; do
        _i=$((_i + 1)); [ $_i -gt 200 ] && return 1
        kill -0 $VAULT_PID 2>/dev/null || return 1
        sleep 0.05
    done
}

# Create a user for the shared-host tests (removed at exit).  Prints the name.
tv_add_user() {
    _u="tvt$$_$1"
    _u=$(printf '%s' "$_u" | cut -c1-31)
    # useradd fails while another test holds /etc/passwd's lock: retry briefly.
    _i=0
    until useradd -M -N -s /usr/sbin/nologin "$_u" 2>/dev/null; do
        _i=$((_i + 1)); [ $_i -gt 50 ] && return 1
        id "$_u" >/dev/null 2>&1 && break
        sleep 0.1
    done
    tv_defer "userdel '$_u'"
    printf '%s\n' "$_u"
}

# Run a command as USER: tv_as USER cmd args...  (foreground only: "tv_as ... &"
# would background a subshell, and $! would not be the command; use tv_as_bg.)
tv_as() {
    _u=$1; shift
    setpriv --reuid="$_u" --regid="$(id -g "$_u")" --init-groups -- "$@"
}

# Start a command as USER in the background; TV_BG_PID is the command itself
# (setpriv execs it), killed at exit.  Redirect with TV_BG_OUT (default /dev/null).
tv_as_bg() {
    _u=$1; shift
    setpriv --reuid="$_u" --regid="$(id -g "$_u")" --init-groups -- "$@" \
        >"${TV_BG_OUT:-/dev/null}" 2>&1 &
    TV_BG_PID=$!
    tv_defer "kill $TV_BG_PID 2>/dev/null"
}
