#!/bin/sh
# agent-overflow.sh - an inotify queue overflow is never a silent gap: the
# agent is stopped (SIGSTOP) while more files appear than the kernel queues
# events for (fs.inotify.max_queued_events), then continued; it sees
# IN_Q_OVERFLOW, rescans, and ships every file exactly once.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-overflow
[ -x "$AGENT" ] || tv_skip_all "agent not built"
MAXQ=$(cat /proc/sys/fs/inotify/max_queued_events 2>/dev/null || echo 16384)
[ "$MAXQ" -le 40000 ] || tv_skip_all "max_queued_events $MAXQ too large to overflow quickly"
N=$((MAXQ / 2 + 2000))          # each file makes >= 3 events (create, modify, close)
tv_plan 5
AGENT_BATCH_MAX=5000 agent_conf </dev/null
agent_start
kill -STOP "$AGENT_PID"
"$PY" - "$T/mnt/checkout" "$N" <<'PYEOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "o%06d.json" % i), "w") as f:
        f.write('{"event_id": "o-%d", "event_type": "model", "duration": 5}' % i)
PYEOF
kill -CONT "$AGENT_PID"
tv_ok "all $N files shipped after the overflow" agent_wait_count "$N" agent_outbox_ids 50
tv_ok "the overflow was logged" grep -q "inotify queue overflow: rescanning" "$T/agent.log"
sleep 1.1
tv_ok "and counted as a rescan" test "$(agent_metric rescans_total)" -ge 2
tv_ok "no record shipped twice" test "$(agent_outbox | grep -c record_id)" -eq "$N"
tv_ok "SIGTERM exits 0" agent_stop
tv_done
