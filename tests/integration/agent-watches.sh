#!/bin/sh
# agent-watches.sh - running out of inotify watches is never a silent gap:
# the agent runs in its own user namespace whose watch limit
# (/proc/sys/user/max_inotify_watches, per namespace: the host is untouched)
# is lowered to 4, so most directories cannot be watched; it logs that, and
# periodic rescans still ship every file, exactly once.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-watches
[ -x "$AGENT" ] || tv_skip_all "agent not built"
command -v unshare >/dev/null || tv_skip_all "no unshare"
unshare -U -r sh -c 'echo 4 > /proc/sys/user/max_inotify_watches' 2>/dev/null ||
    tv_skip_all "cannot lower the inotify watch limit in a user namespace"
tv_plan 5
agent_conf </dev/null
for i in $(seq 1 12); do mkdir -p "$T/mnt/checkout/d$i"; done
rm -f "$T/agent/metrics.prom"
unshare -U -r sh -c "echo 4 > /proc/sys/user/max_inotify_watches && exec '$AGENT' -c '$T/tv.conf'" \
    >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
tv_defer "kill -9 $AGENT_PID 2>/dev/null"
tv_wait_for "$T/agent/metrics.prom" 10
for i in 1 6 12; do agent_event "w-$i" > "$T/mnt/checkout/d$i/t.json"; done
agent_event w-new > "$T/mnt/checkout/d12/u.json"
tv_ok "the watch shortage is logged" grep -q "out of inotify watches" "$T/agent.log"
tv_ok "files in unwatched directories are shipped by the periodic rescan" agent_wait_count 4 agent_outbox_ids 15
sleep 1.1
tv_ok "rescans are counted" test "$(agent_metric rescans_total)" -ge 2
tv_ok "no record shipped twice" test "$(agent_outbox | grep -c record_id)" -eq 4
tv_ok "SIGTERM exits 0" agent_stop
tv_done
