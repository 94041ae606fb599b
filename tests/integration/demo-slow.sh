#!/bin/sh
# demo-slow: scripts/tracevault-demo on a machine too busy for its daemons to
# start promptly (issue 12: "the vault did not mount" although it then
# mounted).  The demo waits for the real conditions -- keyd's socket, the
# mount answering, the agent's "following" line -- for as long as the process
# it started lives (up to $TV_DEMO_WAIT s), and fails at once when that
# process exits.  Binaries come from this build through TV_DEMO_BUILDDIR; the
# vault is wrapped to stay, for a few seconds, a live process whose command
# line is not yet the vault's -- the window between fork and exec, stretched:
# the old demo took that for a dead vault and gave up at once.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init demo-slow
tv_need_root
tv_need_fuse
INGEST="$top_builddir/ingest/tracevault-ingest"
for b in "$KEYD" "$KEYCTL" "$VAULT" "$AGENT" "$RETENTION" "$INGEST"; do
    [ -x "$b" ] || tv_skip_all "$b not built"
done
tv_plan 6

DEMO="$top_srcdir/scripts/tracevault-demo"
B="$T/b"
D="$T/demo"
mkdir -p "$B/keyd" "$B/vault" "$B/agent" "$B/ingest" "$B/scripts"
ln -s "$KEYD" "$KEYCTL" "$B/keyd/" && ln -s "$AGENT" "$B/agent/" && ln -s "$RETENTION" "$B/scripts/" &&
    ln -s "$INGEST" "$B/ingest/"
# slow_vault SECONDS [exit]: for SECONDS the process runs as "/bin/sh -c ..."
# with the vault's path and arguments only in its environment (so its command
# line names neither, as before exec), then execs the vault, or exits 1.
slow_vault() {
    {
        echo '#!/bin/sh'
        echo "TV_SLOW_ARGS=\"\$*\" TV_SLOW_REAL='$VAULT' TV_SLOW_S=$1 TV_SLOW_EXIT=${2:-no}"
        echo 'export TV_SLOW_ARGS TV_SLOW_REAL TV_SLOW_S TV_SLOW_EXIT'
        echo 'exec /bin/sh -c '"'"'sleep $TV_SLOW_S; [ $TV_SLOW_EXIT = no ] || { echo "slow vault: giving up" >&2; exit 1; }; exec $TV_SLOW_REAL $TV_SLOW_ARGS'"'"
    } >"$B/vault/tracevault"
    chmod 0755 "$B/vault/tracevault"
}
demo() { TV_DEMO_DIR="$D" TV_DEMO_BUILDDIR="$B" "$DEMO" "$@"; }
tv_defer "TV_DEMO_DIR='$D' TV_DEMO_BUILDDIR='$B' '$DEMO' stop; fusermount3 -u -z '$D/traces'"

slow_vault 5
t0=$(date +%s)
demo >"$T/run1.out" 2>"$T/run1.err"; rc=$?
t1=$(date +%s)
tv_ok "the demo waits for a vault still starting and runs to the end (exit $rc, $((t1 - t0)) s)" \
    sh -c '[ $0 -eq 0 ] && [ $1 -ge 5 ]' "$rc" "$((t1 - t0))"
[ "$rc" -eq 0 ] || { tail -5 "$T/run1.out" | sed 's/^/# out: /'; tail -5 "$T/run1.err" | sed 's/^/# err: /'; }
# 12 dropped traces and 5 through the gateway, as demo-run.sh counts them
tv_ok "it reports 17 records shipped" grep -q '^shipped: 17 records' "$T/run1.out"
tv_ok "it never claimed the vault did not mount" sh -c '! grep -q "did not mount\|no mount at" "$0"' "$T/run1.err"

# A vault that gives up is reported as soon as it exits, not after the timeout.
kill -9 "$(cat "$D/run/vault.pid")"; sleep 0.3
slow_vault 1 exit
t0=$(date +%s)
TV_DEMO_WAIT=100 demo >"$T/run2.out" 2>"$T/run2.err"; rc=$?
t1=$(date +%s)
tv_ok "a vault that exits fails the demo (exit $rc) with the reason" \
    sh -c '[ $0 -eq 1 ] && grep -q "vault exited before mount at" "$1" && grep -q "slow vault: giving up" "$1"' "$rc" "$T/run2.err"
tv_ok "...at once, not after the 100 s timeout ($((t1 - t0)) s)" test $((t1 - t0)) -lt 30

# A vault that never mounts (and never exits) hits the timeout, named.
slow_vault 3600
TV_DEMO_WAIT=3 demo >"$T/run3.out" 2>"$T/run3.err"; rc=$?
tv_ok "a vault that never mounts: exit $rc after TV_DEMO_WAIT, saying so" \
    sh -c '[ $0 -eq 1 ] && grep -q "vault: no mount at .* after 3 s" "$1"' "$rc" "$T/run3.err"
# The wrapper's session (setsid) holds its sleep too: end both.
vpid=$(cat "$D/run/vault.pid" 2>/dev/null) && kill -TERM -- "-$vpid" 2>/dev/null
tv_done
