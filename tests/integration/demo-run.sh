#!/bin/sh
# The README's run command, from a clean copy: scripts/tracevault-demo builds
# the tree, starts keyd, the vault, the agent and the ingest gateway, drops
# traces of every accepted shape, sends spans through the gateway with a real
# OpenTelemetry exporter and an event with curl, and ends with their metadata
# shipped to the file:// outbox; no plaintext (a canary) lands anywhere but the mount; a second run
# is safe; `stop` leaves no mount and no process behind.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init demo-run
tv_need_root
tv_need_fuse
tv_plan 20

S="$T/src"
D="$T/demo"
DEMO="$S/scripts/tracevault-demo"
# Whatever happens, stop what the demo started.
tv_defer "TV_DEMO_DIR='$D' '$DEMO' stop; fusermount3 -u -z '$D/traces'"

# A clean copy: a clone of the repository's HEAD when there is one (what a
# newcomer gets), else (a release tarball, make distcheck) a copy.
# (A build directory inside the source tree, as make distcheck's _build and
# _inst are, is left out: it is not source, and other tests write into it.)
src=$(cd "$top_srcdir" && pwd -P)
bld=$(cd "$top_builddir" && pwd -P)
if [ -e "$src/.git" ]; then     # a file in a git worktree
    git clone -q "$src" "$S" 2>"$T/clone.err"; rc=$?
else
    set -- --exclude=./_build --exclude=./_inst
    case $bld/ in "$src"/?*) b=${bld#"$src"/}; set -- "$@" "--exclude=./${b%%/*}" ;; esac
    mkdir -p "$S" && (cd "$src" && tar -cf - "$@" .) | (cd "$S" && tar -xf -) && chmod -R u+w "$S"; rc=$?
fi
tv_ok "clean copy of the source tree (rc $rc)" test "$rc" -eq 0
tv_ok "the copy has no build products" sh -c '! test -e "$1/keyd/tracevault-keyd" && ! test -e "$1/vault/tracevault"' _ "$S"

# One build job: other tests run beside this one and some of them time things.
TV_DEMO_JOBS=1 TV_DEMO_DIR="$D" "$DEMO" >"$T/run1.out" 2>"$T/run1.err"; rc=$?
tv_ok "the demo runs to the end (exit $rc)" test "$rc" -eq 0
if [ "$rc" -ne 0 ]; then
    tail -15 "$T/run1.out" | sed 's/^/# out: /'; tail -15 "$T/run1.err" | sed 's/^/# err: /'
    [ -f "$D/log/build.log" ] && tail -15 "$D/log/build.log" | sed 's/^/# build: /'
fi
tv_ok "it built the tree it was run from" test -x "$S/vault/tracevault"
tv_ok "it reports 17 records shipped (12 dropped, 4 spans and 1 event through the gateway)" \
    grep -q '^shipped: 17 records' "$T/run1.out"
tv_ok "the vault is mounted and the daemons run" \
    sh -c 'TV_DEMO_DIR="$1" "$2" status | grep -c "running\|mounted at" | grep -qx 5' _ "$D" "$DEMO"

# What the outbox holds, decoded by the agent.
find "$D/outbox" -name '*.msgpack' -type f | while IFS= read -r f; do
    "$S/agent/tracevault-agent" dump "$f"
done > "$T/records.jsonl"
tv_ok "the outbox holds 17 records" test "$(wc -l < "$T/records.jsonl")" -eq 17
summary=$($PY - "$T/records.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join(sorted({r.get("project", "?") + ":" + r.get("format", "?") for r in recs})))
PY
)
tv_ok "records of both projects and all three shapes ($summary)" \
    test "$summary" = "checkout:honeyhive checkout:otlp support:honeyhive support:openinference support:otlp"
tv_ok "every record has a record_id and no prompt text" \
    $PY -c 'import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in recs if len(r.get("record_id", "")) != 32 or "trail stove" in json.dumps(r)]
sys.exit(1 if bad or not recs else 0)' "$T/records.jsonl"

canary=$(sed -n 's/^==> Where the canary \(TVDEMO-CANARY-[0-9a-f]*\) is$/\1/p' "$T/run1.out")
tv_ok "the demo names its canary" test -n "$canary"
tv_ok "the canary is readable through the mount (8 files: 6 dropped, 2 through the gateway)" \
    test "$(grep -rlF "${canary:-none}" "$D/traces" | wc -l)" -eq 8
tv_ok "no file outside the mount holds the canary or any prompt text" \
    sh -c '! grep -rlF -e "$1" -e "trail stove" "$2/data" "$2/lib" "$2/outbox" "$2/log" "$2/etc" "$2/tracevault.conf"' _ "${canary:-none}" "$D"
tv_ok "the keyd audit chain verified" grep -q '^audit log OK: ' "$T/run1.out"

pids1=$(cat "$D/run/keyd.pid" "$D/run/vault.pid" "$D/run/agent.pid" "$D/run/ingest.pid" | tr '\n' ' ')
TV_DEMO_DIR="$D" "$DEMO" >"$T/run2.out" 2>"$T/run2.err"; rc=$?
pids2=$(cat "$D/run/keyd.pid" "$D/run/vault.pid" "$D/run/agent.pid" "$D/run/ingest.pid" | tr '\n' ' ')
tv_ok "running it twice is safe: exit $rc, the same processes ($pids2)" \
    sh -c 'test "$1" -eq 0 && test "$2" = "$3" && grep -q "^shipped: 17 records (outbox total 34)" "$4"' _ "$rc" "$pids1" "$pids2" "$T/run2.out"

# A vault killed behind the demo's back leaves a dead mount; the next start
# clears it, remounts the same data and ships again.
kill -9 "$(cat "$D/run/vault.pid")"; sleep 0.3
TV_DEMO_DIR="$D" "$DEMO" >"$T/run3.out" 2>"$T/run3.err"; rc=$?
tv_ok "after kill -9 of the vault, start again recovers (exit $rc) and ships" \
    sh -c 'test "$1" -eq 0 && grep -q "^shipped: 17 records (outbox total 51)" "$2"' _ "$rc" "$T/run3.out"
[ "$rc" -eq 0 ] || tail -5 "$T/run3.err" | sed 's/^/# /'

TV_DEMO_DIR="$D" "$DEMO" stop >"$T/stop.out" 2>&1; rc=$?
tv_ok "stop exits 0 (got $rc)" test "$rc" -eq 0
tv_ok "no mount is left" sh -c '! grep -qF " $1 " /proc/self/mountinfo' _ "$D/traces"
left=""
for p in /proc/[0-9]*; do
    if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -qF "$D/tracevault.conf"; then
        left="$left ${p#/proc/}"
    fi
done
tv_ok "no process of the demo is left${left:+ (left:$left)}" test -z "$left"
tv_ok "its pid files are gone" sh -c '! ls "$1"/run/*.pid >/dev/null 2>&1' _ "$D"
TV_DEMO_DIR="$D" "$DEMO" stop >/dev/null 2>&1; rc=$?
tv_ok "stop again is harmless (exit $rc)" test "$rc" -eq 0
tv_done
