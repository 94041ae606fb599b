#!/bin/sh
# Operations files as installed by `make install`: the systemd units pass
# `systemd-analyze verify` with no complaint at all, carry the hardening the
# design asks for, the sysusers.d and tmpfiles.d files create exactly the
# users and directories (in a scratch root), the crontab example is well
# formed and the example configuration loads.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init ops-units
command -v systemd-analyze >/dev/null || tv_skip_all "no systemd-analyze"
tv_plan 46

R="$T/root"
make -s -C "$top_builddir" install DESTDIR="$R" >"$T/install.log" 2>&1; rc=$?
tv_ok "make install DESTDIR=... exits 0 (got $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/install.log" | tail -20

# Where things went: find them by name under the DESTDIR.
unitdir=$(dirname "$(find "$R" -name tracevault-keyd.service | head -1)")
sysusers=$(find "$R" -path '*/sysusers.d/tracevault.conf' | head -1)
tmpfiles=$(find "$R" -path '*/tmpfiles.d/tracevault.conf' | head -1)
example=$(find "$R" -name tracevault.conf.example | head -1)
crontab=$(find "$R" -name tracevault-retention.cron | head -1)
mandir=$(dirname "$(dirname "$(find "$R" -name tracevault-retention.8 | head -1)")")
tv_ok "units installed in the systemd unit directory" \
    sh -c 'for u in tracevault-keyd.service tracevault.service tracevault-agent.service tracevault-ingest.service tracevault-ingest.socket tracevault-retention.service tracevault-retention.timer; do test -f "$1/$u" || exit 1; done; case "$1" in */lib/systemd/system) ;; *) exit 1;; esac' _ "$unitdir"
tv_ok "sysusers.d and tmpfiles.d files installed" \
    sh -c 'case "$1" in */lib/sysusers.d/tracevault.conf) ;; *) exit 1;; esac; case "$2" in */lib/tmpfiles.d/tracevault.conf) ;; *) exit 1;; esac' _ "$sysusers" "$tmpfiles"
tv_ok "example configuration and crontab installed under the docdir" \
    sh -c 'case "$1$2" in *doc/tracevault/examples/tracevault.conf.example*doc/tracevault/examples/tracevault-retention.cron) ;; *) exit 1;; esac' _ "$example" "$crontab"
tv_ok "seven man pages installed" \
    sh -c 'for p in man8/tracevault.8 man8/tracevault-ingest.8 man8/tracevault-keyd.8 man8/tracevault-keyctl.8 man8/tracevault-agent.8 man8/tracevault-retention.8 man5/tracevault.conf.5; do test -f "$1/$p" || exit 1; done' _ "$mandir"
tv_ok "no unsubstituted @placeholders@ in installed files" \
    sh -c '! grep -l "@[a-z]*dir@" "$1"/tracevault* "$2"' _ "$unitdir" "$crontab"

# systemd-analyze verify needs every ExecStart binary to exist: point the
# units at the DESTDIR, where make install put them.
mkdir -p "$T/units"
for u in "$unitdir"/tracevault*; do
    sed -e "s#^\(ExecStart=[-+!@]*\)/#\1$R/#" "$u" > "$T/units/$(basename "$u")"
done
tv_ok "every ExecStart binary is installed" sh -c '
    for bin in $(sed -n "s/^ExecStart=[-+!@]*\([^ ]*\).*/\1/p" "$2"/*.service); do
        test -x "$1$bin" || { echo "# missing: $bin"; exit 1; }
    done' _ "$R" "$unitdir"
verify() {  # verify UNIT...: exit 0 and print nothing, man pages included
    out=$(cd "$T/units" && MANPATH="$mandir" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$@" 2>&1)
    rc=$?
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
    [ $rc -eq 0 ] && [ -z "$out" ]
}
for u in tracevault-keyd.service tracevault.service tracevault-agent.service \
         tracevault-ingest.service tracevault-ingest.socket \
         tracevault-retention.service tracevault-retention.timer; do
    tv_ok "systemd-analyze verify $u: no error, no warning" verify "$T/units/$u"
done
# The checker itself must catch a bad unit (systemd-analyze exits 0 on
# unknown keys and bad values, so the test insists on silence).
sed 's/^NoNewPrivileges=yes/NoNewPrivileges=maybe/' "$T/units/tracevault-keyd.service" > "$T/units/broken.service"
tv_fails "a unit with a bad value is caught by the check" verify "$T/units/broken.service"
rm -f "$T/units/broken.service"

has() {  # has UNIT LINE...: the unit contains each of these exact lines
    _u=$1; shift
    for _l in "$@"; do grep -qxF "$_l" "$unitdir/$_u" || { tv_diag "$_u lacks $_l"; return 1; }; done
}
keyd_basics() {
    has tracevault-keyd.service User=tracevault-keyd &&
        grep -q '^LoadCredential=master.key:/' "$unitdir/tracevault-keyd.service"
}
vault_basics() {
    has tracevault.service "DeviceAllow=/dev/fuse rw" \
        "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_DAC_READ_SEARCH" \
        "AmbientCapabilities=CAP_SYS_ADMIN CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_DAC_READ_SEARCH" NoNewPrivileges=yes &&
        grep -q '^ExecStopPost=.*fusermount3 -u' "$unitdir/tracevault.service"
}
# Every option that makes systemd give the service its own mount namespace
# (systemd's exec_needs_mount_namespace(); PrivateNetwork= and PrivateIPC=
# imply one too): a FUSE mount made in there would be invisible to the host.
no_namespace() {
    ! grep -qE '^(ProtectSystem|PrivateTmp|ProtectHome|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|ExecPaths|NoExecPaths|PrivateDevices|PrivateMounts|PrivateNetwork|PrivateIPC|ProtectKernel[A-Za-z]*|ProtectControlGroups|ProtectProc|ProcSubset|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|RootDirectory|RootImage|MountFlags|DynamicUser|ProtectHostname)=' "$unitdir/$1"
}
tv_ok "keyd: own user, master key by LoadCredential" keyd_basics
tv_ok "keyd: PrivateNetwork, ProtectSystem=strict, PrivateTmp, NoNewPrivileges, no capabilities" \
    has tracevault-keyd.service PrivateNetwork=yes ProtectSystem=strict PrivateTmp=yes \
        NoNewPrivileges=yes CapabilityBoundingSet=
tv_ok "vault: /dev/fuse, five capabilities (mount, chown, dac_override, fowner, dac_read_search), NoNewPrivileges, unmounts on stop" vault_basics
tv_ok "vault: no mount-namespace option (the mount must be visible on the host)" \
    no_namespace tracevault.service
tv_ok "agent: own user, ProtectSystem=strict, PrivateTmp, NoNewPrivileges, no capabilities" \
    has tracevault-agent.service User=tracevault-agent ProtectSystem=strict \
        PrivateTmp=yes NoNewPrivileges=yes CapabilityBoundingSet=
tv_ok "agent: restarted with the vault (PartOf), ordered after it and keyd" \
    has tracevault-agent.service PartOf=tracevault.service \
        "After=tracevault.service tracevault-keyd.service network-online.target"
# Type=notify for a daemon that never calls sd_notify would time out at
# start; Type=exec for one that does would start dependants too early.
type_matches() {  # type_matches UNIT BINARY
    [ -x "$2" ] || { tv_diag "$(basename "$2") not built: cannot check Type="; return 0; }
    if grep -q sd_notify "$2"; then has "$1" Type=notify; else has "$1" Type=exec; fi
}
tv_ok "keyd: Type= matches whether the binary calls sd_notify" type_matches tracevault-keyd.service "$KEYD"
tv_ok "agent: Type= matches whether the binary calls sd_notify" type_matches tracevault-agent.service "$AGENT"
tv_ok "ingest: Type= matches whether the binary calls sd_notify" \
    type_matches tracevault-ingest.service "$top_builddir/ingest/tracevault-ingest"
ingest_basics() {
    has tracevault-ingest.service User=tracevault-ingest ProtectSystem=strict \
        NoNewPrivileges=yes CapabilityBoundingSet= &&
        ! grep '^ListenStream=' "$unitdir/tracevault-ingest.socket" | grep -v '127\.0\.0\.1\|\[::1\]'
}
tv_ok "ingest: own user, ProtectSystem=strict, no capabilities; its socket unit is loopback only" \
    ingest_basics
tv_ok "vault: Type=notify in the foreground (-f) if it calls sd_notify, else Type=forking" sh -c '
    if grep -q sd_notify "$1"; then grep -qx Type=notify "$2" && grep -q "^ExecStart=.*/tracevault -c .* -f$" "$2"
    else grep -qx Type=forking "$2"; fi' _ "$VAULT" "$unitdir/tracevault.service"
retention_basics() {
    has tracevault-retention.service Type=oneshot SuccessExitStatus=3 NoNewPrivileges=yes &&
        no_namespace tracevault-retention.service &&
        has tracevault-retention.timer OnCalendar=daily Persistent=true
}
tv_ok "retention: oneshot, exit 3 is success, sees the mount; timer daily and persistent" \
    retention_basics

# systemd's own exposure score (systemd-analyze security, 0 = locked down,
# 10 = exposed): keep each unit at or below what it reaches today, so a
# change that loosens the hardening fails here.
exposure_ok() {  # exposure_ok UNIT MAX (in tenths: 10 = 1.0)
    _o=$(cd "$T/units" && systemd-analyze security --offline=true --threshold="$2" "$T/units/$1" 2>&1)
    _r=$?
    tv_diag "$(printf '%s\n' "$_o" | tail -1)"
    [ $_r -eq 0 ]
}
if (cd "$T/units" && systemd-analyze security --offline=true "$T/units/tracevault-keyd.service" >/dev/null 2>&1); then
    tv_ok "keyd exposure <= 1.0" exposure_ok tracevault-keyd.service 10
    tv_ok "agent exposure <= 2.0" exposure_ok tracevault-agent.service 20
    tv_ok "ingest exposure <= 2.0" exposure_ok tracevault-ingest.service 20
    tv_ok "vault exposure <= 4.0 (no mount namespace possible)" exposure_ok tracevault.service 40
    tv_ok "retention exposure <= 4.0 (no mount namespace: it works through the mount)" \
        exposure_ok tracevault-retention.service 40
    sed 's/^NoNewPrivileges=yes/NoNewPrivileges=no/; s/^PrivateNetwork=yes/PrivateNetwork=no/; s/^ProtectSystem=strict/ProtectSystem=no/' \
        "$T/units/tracevault-keyd.service" > "$T/units/loose.service"
    tv_fails "a loosened keyd unit fails the exposure check" exposure_ok loose.service 10
    rm -f "$T/units/loose.service"
else
    i=0; while [ $i -lt 6 ]; do _tv_n=$((_tv_n + 1)); echo "ok $_tv_n # SKIP no offline systemd-analyze security"; i=$((i + 1)); done
fi

# sysusers.d / tmpfiles.d applied to a scratch root.
S="$T/sroot"; mkdir -p "$S/etc"
if command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
    systemd-sysusers --root="$S" "$sysusers" >"$T/sysusers.log" 2>&1; rc=$?
    tv_ok "systemd-sysusers accepts the file (got $rc)" test "$rc" -eq 0
    tv_ok "four system users with nologin shells" \
        sh -c 'for u in tracevault-keyd tracevault tracevault-agent tracevault-ingest; do grep -q "^$u:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$" "$1/etc/passwd" || exit 1; done' _ "$S"
    tv_ok "vault, agent and gateway (only) may reach keyd's socket directory" \
        grep -qx 'tracevault-clients:x:[0-9]*:tracevault,tracevault-agent,tracevault-ingest' "$S/etc/group"
    systemd-tmpfiles --root="$S" --create "$tmpfiles" >"$T/tmpfiles.log" 2>&1; rc=$?
    tv_ok "systemd-tmpfiles --create succeeds (got $rc)" test "$rc" -eq 0
    uid() { sed -n "s/^$1:x:\([0-9]*\):.*/\1/p" "$S/etc/passwd"; }
    gid() { sed -n "s/^$1:x:\([0-9]*\):.*/\1/p" "$S/etc/group"; }
    own() {  # own PATH MODE USER GROUP: exact mode and numeric owner
        _eu=0; [ "$3" = root ] || _eu=$(uid "$3")
        _eg=0; [ "$4" = root ] || _eg=$(gid "$4")
        test "$(stat -c '%a %u %g' "$S$1")" = "$2 $_eu $_eg"
    }
    tv_ok "keystore directory 0700 tracevault-keyd" own /var/lib/tracevault/keyd 700 tracevault-keyd tracevault-keyd
    tv_ok "backing store 0700 tracevault" own /var/lib/tracevault/data 700 tracevault tracevault
    tv_ok "agent state 0700 tracevault-agent" own /var/lib/tracevault/agent 700 tracevault-agent tracevault-agent
    tv_ok "socket directory 0750 tracevault-keyd:tracevault-clients" own /run/tracevault 750 tracevault-keyd tracevault-clients
    tv_ok "audit logs pre-created 0600 for their daemons" \
        sh -c 'test "$(stat -c "%a %U" "$1/var/log/tracevault/keyd-audit.log")" = "600 $(stat -c %U "$1/var/lib/tracevault/keyd")" && test "$(stat -c "%a %U" "$1/var/log/tracevault/vault-audit.log")" = "600 $(stat -c %U "$1/var/lib/tracevault/data")"' _ "$S"
    tv_ok "mountpoint /srv/traces exists" test -d "$S/srv/traces"
else
    i=0; while [ $i -lt 10 ]; do _tv_n=$((_tv_n + 1)); echo "ok $_tv_n # SKIP no systemd-sysusers/tmpfiles"; i=$((i + 1)); done
fi

# Crontab: /etc/cron.d format (5 time fields, a user, a command) naming the
# installed binary.
line=$(grep -v '^#' "$crontab" | grep -v '^[A-Z]*=' | grep -v '^$')
cron_job_ok() {
    [ "$(printf '%s\n' "$line" | wc -l)" -eq 1 ] || return 1
    set -f      # the time fields are globs
    # shellcheck disable=SC2086
    set -- $line
    set +f
    [ "$6" = root ] && [ -x "$R$7" ] && case "$7" in */tracevault-retention) ;; *) false;; esac
}
tv_ok "crontab example: one job line, cron.d format, runs the installed binary as root" cron_job_ok
tv_ok "crontab example documents the exit codes" grep -q '3 another run in progress' "$crontab"

# The example configuration loads (users mapped to root, paths into $T) and
# a dry run over it succeeds.
mkdir -p "$T/x/run/tracevault"
sed -e "s#= /#= $T/x/#" -e "s#file:///#file://$T/x/#" \
    -e 's/^\(vault_users\|agent_users\|admin_users\|ingest_users\|writers\|readers\|maintainers\)\( *\)=.*/\1\2= root/' \
    "$example" > "$T/example.conf"
"$top_builddir/scripts/tracevault-retention" -c "$T/example.conf" --dry-run --no-syslog >"$T/ex.out" 2>&1; rc=$?
tv_ok "the example configuration is valid (retention --dry-run exits 0, got $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/ex.out"
tv_done
