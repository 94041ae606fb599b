#!/bin/sh
# agent-crash.sh - kill -9 the agent at random moments while traces are being
# written (JSONL appends, in-place JSON files, tmp-then-rename drops), restart
# it each time, finish with --once: every event arrives, and each under
# exactly one record_id (re-sent batches repeat ids, never mint new ones), and
# no partial line was ever read as a malformed document.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-crash
[ -x "$AGENT" ] || tv_skip_all "agent not built"
tv_plan 5
AGENT_LINGER_MS=50 AGENT_BATCH_MAX=200 agent_conf </dev/null

cat > "$T/writer.py" <<'PYEOF'
import json, os, random, sys, time
root, n_lines, n_files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
streams = [open(os.path.join(root, "checkout" if i % 2 else "billing", "s%d.jsonl" % i), "a")
           for i in range(4)]
def ev(eid):
    return {"event_id": eid, "session_id": "s", "event_type": "model", "start_time": 1763790000000,
            "duration": 10, "config": {"model": "gpt-4o"}, "inputs": {"q": "x" * random.randint(10, 400)},
            "outputs": {"content": "ok"}, "metrics": {"prompt_tokens": 3, "completion_tokens": 4}}
f = 0
for i in range(n_lines):
    s = streams[i % 4]
    s.write(json.dumps(ev("L-%d" % i)) + "\n")
    s.flush()
    if i % (n_lines // n_files) == 0 and f < n_files:
        d = os.path.join(root, "checkout" if f % 2 else "billing")
        data = json.dumps([ev("J-%d-a" % f), ev("J-%d-b" % f)])
        if f % 3 == 0:
            tmp = os.path.join(d, ".f%d.tmp" % f)
            open(tmp, "w").write(data)
            os.rename(tmp, os.path.join(d, "f%d.json" % f))
        else:
            open(os.path.join(d, "f%d.json" % f), "w").write(data)
        f += 1
    if i % 10 == 0:
        time.sleep(0.02)
PYEOF
LINES=4000
FILES=200
"$PY" "$T/writer.py" "$T/mnt" $LINES $FILES &
WPID=$!
tv_defer "kill $WPID 2>/dev/null"
kills=0
while kill -0 $WPID 2>/dev/null; do
    agent_start
    sleep "$(awk -v r="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { printf "%.2f", 0.2 + (r % 80) / 100 }')"
    kill -9 "$AGENT_PID" 2>/dev/null && kills=$((kills + 1))
    wait "$AGENT_PID" 2>/dev/null
done
wait $WPID
tv_diag "agent killed $kills times while writing"
tv_ok "the agent was killed at least 5 times under load" test "$kills" -ge 5
# A few more kills while it catches up on the backlog.
for i in 1 2 3; do
    agent_start
    sleep 0.3
    kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
done
tv_ok "a final --once delivers everything and exits 0" "$AGENT" -c "$T/tv.conf" --once
agent_outbox > "$T/all.jsonl"
{ i=0; while [ $i -lt $LINES ]; do echo "L-$i"; i=$((i + 1)); done
  f=0; while [ $f -lt $FILES ]; do echo "J-$f-a"; echo "J-$f-b"; f=$((f + 1)); done
} | agent_hash_map "$T/hmap" checkout billing
tv_ok "every event exactly once by record_id" "$PY" - "$T/all.jsonl" $LINES $FILES "$T/hmap" <<'PYEOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
n_lines, n_files = int(sys.argv[2]), int(sys.argv[3])
# Ids leave only as keyed hashes, one key per project.
hmap = {(p, h): i for p, i, h in (l.split() for l in open(sys.argv[4]))}
want = {"L-%d" % i for i in range(n_lines)} | {"J-%d-%s" % (f, s) for f in range(n_files) for s in "ab"}
ids = {}
for r in recs:
    if "event_hash" in r:
        ids.setdefault(hmap.get((r["project"], r["event_hash"]), "?" + r["event_hash"]), set()).add(r["record_id"])
missing = want - set(ids)
multi = [e for e, s in ids.items() if len(s) != 1]
extra = set(ids) - want
print("# %d records received (%d distinct ids), %d events expected, %d missing, %d under several ids, %d unexpected"
      % (len(recs), len({r["record_id"] for r in recs}), len(want), len(missing), len(multi), len(extra)))
sys.exit(0 if not missing and not multi and not extra else 1)
PYEOF
tv_ok "no partial line was ever read (no skipped records)" sh -c "! grep -q skip_reason '$T/all.jsonl'"
tv_ok "the queue is empty" test "$(agent_metric queue_depth)" -eq 0
tv_done
