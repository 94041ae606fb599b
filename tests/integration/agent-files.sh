#!/bin/sh
# agent-files.sh - discovery and delivery on a plain directory to a file://
# outbox: backlog at start, close-after-write, rename into place (hidden and
# temporary names ignored until then), live JSONL tailing with partial lines
# waiting, a file deleted right after writing, new directories, hostile
# documents as counted skips, restart without duplicates, SIGTERM, metrics,
# no listening socket, --once and dump.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-files
[ -x "$AGENT" ] || tv_skip_all "agent not built"
tv_plan 29
D="$top_srcdir/tests/data/agent"
agent_conf </dev/null
ids() { agent_outbox_ids; }
total() { agent_outbox | grep -c record_id; }

# Backlog present before the agent starts: 1 + 5 records.
cp "$D/honeyhive-model-event.json" "$D/honeyhive-session.json" "$T/mnt/checkout/"
agent_start
tv_ok "backlog shipped at start (6 records)" agent_wait_count 6 ids 10

# Written in place: taken when closed.
cp "$D/otlp-genai.json" "$T/mnt/billing/otlp.json"
tv_ok "a file written in place is taken at close" agent_wait_count 7 ids 10
tv_ok "it is in the billing project's outbox" test -n "$(ls "$T/outbox/billing" 2>/dev/null)"

# Hidden temp name, then renamed into place.
cp "$D/openinference.json" "$T/mnt/checkout/.oi.json.tmp"
cp "$D/openinference.json" "$T/mnt/checkout/oi.json.part"
sleep 1.5
tv_ok "hidden and temporary names are not traces" test "$(ids)" -eq 7
mv "$T/mnt/checkout/.oi.json.tmp" "$T/mnt/checkout/oi.json"
tv_ok "renamed into place: taken (2 spans)" agent_wait_count 9 ids 10

# JSONL tailing, complete lines only.
head -n 2 "$D/stream.jsonl" > "$T/mnt/checkout/live.jsonl"
tv_ok "two JSONL lines shipped" agent_wait_count 11 ids 10
tail -n 1 "$D/stream.jsonl" | tr -d '\n' | head -c 100 >> "$T/mnt/checkout/live.jsonl"
sleep 1.5
tv_ok "a partial last line waits" test "$(ids)" -eq 11
tail -n 1 "$D/stream.jsonl" | tail -c +101 >> "$T/mnt/checkout/live.jsonl"
tv_ok "completed line shipped" agent_wait_count 12 ids 10
tv_ok "the line's record carries its byte offset" \
    sh -c "find '$T/outbox' -name '*.msgpack' -exec '$AGENT' dump {} \\; | grep '\"event_hash\":\"$(agent_hash l-3)\"' | grep -q '\"position\":494'"

# Deleted right after the writer closed it.
"$PY" - "$T/mnt/checkout/gone.json" "$D/honeyhive-model-event.json" <<'PYEOF'
import os, sys, time
data = open(sys.argv[2], "rb").read().replace(b"6f1c2b9e", b"deadbeef")
f = open(sys.argv[1], "wb")
f.write(data[:100]); f.flush(); time.sleep(0.3)
f.write(data[100:]); f.close()
os.unlink(sys.argv[1])
PYEOF
tv_ok "a file deleted right after writing is still shipped" agent_wait_count 13 ids 10
tv_ok "... the deleted file's own record" sh -c "find '$T/outbox' -name '*.msgpack' -exec '$AGENT' dump {} \\; | grep -q '\"event_hash\":\"$(agent_hash deadbeef-3f4a-4c1d-9a51-2f0c6d1e8a77)\"'"

# New nested directories are watched at once.
mkdir -p "$T/mnt/billing/2026/11/22"
agent_event n-1 > "$T/mnt/billing/2026/11/22/a.json"
tv_ok "file in a new nested directory shipped" agent_wait_count 14 ids 10

# Hostile documents: counted skips naming the file, never a stall.
printf '\000\001\002binary' > "$T/mnt/checkout/bin.json"
: > "$T/mnt/checkout/empty.json"
printf '{"event_type": "model", "inputs": {"q": "x"' > "$T/mnt/checkout/trunc.json"
printf '{"event_type": "\377\376"}' > "$T/mnt/checkout/utf8.json"
printf 'not json at all\n' >> "$T/mnt/checkout/live.jsonl"
agent_event after-hostile > "$T/mnt/checkout/after.json"
tv_ok "hostile documents become skipped records, others keep flowing" agent_wait_count 20 ids 10
tv_ok "each skip reason recorded" sh -c "
    for r in binary empty truncated invalid_utf8 malformed; do
        find '$T/outbox' -name '*.msgpack' -exec '$AGENT' dump {} \; | grep -q \"\\\"skip_reason\\\":\\\"\$r\\\"\" || exit 1
    done"
sleep 1.2
tv_ok "skips counted by reason in the metrics" \
    sh -c "grep -q 'skipped_total{reason=\"binary\"} 1' '$T/agent/metrics.prom' && grep -q 'skipped_total{reason=\"truncated\"} 1' '$T/agent/metrics.prom'"
# Names are content: the log gives the file's ID (here the agent's fallback
# id: a plain directory has no vault file ids), never its path.
tv_ok "the log names the skipped file by its file ID, and the reason" \
    sh -c "grep -q 'project \"checkout\": file [0-9a-f]\{32\}: offset 0: skipped [0-9]* bytes: truncated' '$T/agent.log' &&
           ! grep -q 'trunc\.json' '$T/agent.log'"

# A stream unlinked while its writer keeps appending is read to the end
# through the agent's open descriptor; a new file by the same name is new.
"$PY" - "$T/mnt/checkout/del.jsonl" <<'PYEOF'
import json, os, sys, time
def ev(i):
    return json.dumps({"event_id": "del-%d" % i, "event_type": "model", "duration": 1}) + "\n"
f = open(sys.argv[1], "w")
f.write(ev(1)); f.write(ev(2)); f.flush()
time.sleep(0.5)
os.unlink(sys.argv[1])
time.sleep(0.3)
f.write(ev(3)); f.flush()
time.sleep(0.7)
f.write(ev(4)); f.close()
open(sys.argv[1], "w").write(ev(5))
PYEOF
tv_ok "lines appended after the unlink are shipped, and the new file too" agent_wait_count 25 ids 10
agent_hash del-1 del-2 del-3 del-4 del-5 | sed 's/.*/"event_hash":"&"/' > "$T/del.h"
tv_ok "... all five of them" test "$(agent_outbox | grep -o '"event_hash":"[0-9a-f]*"' | sort -u | grep -c -F -f "$T/del.h")" -eq 5

# A stream replaced by rename-over is a new file (read from its start), and
# the old one's lines are not lost.
agent_event rot-1 > "$T/mnt/billing/rot.jsonl"
tv_ok "stream before replacement shipped" agent_wait_count 26 ids 10
{ agent_event rot-2; agent_event rot-3; } > "$T/mnt/billing/.rot.new"
mv "$T/mnt/billing/.rot.new" "$T/mnt/billing/rot.jsonl"
agent_event rot-4 >> "$T/mnt/billing/rot.jsonl"
tv_ok "the replacing stream is read from its start" agent_wait_count 29 ids 10

# The agent never listens.
tv_ok "no listening socket" sh -c "! ss -lntuxp 2>/dev/null | grep -q 'pid=$AGENT_PID,'"

tv_ok "SIGTERM: clean exit 0" agent_stop
before=$(ids)

# Restart: nothing shipped twice, new data still flows.
agent_event after-restart >> "$T/mnt/checkout/live.jsonl"
agent_start
tv_ok "after restart only the new line is shipped" agent_wait_count $((before + 1)) ids 10
sleep 1.2
tv_ok "no record shipped twice" test "$(total)" -eq "$(ids)"
agent_stop

# --once: everything pending is delivered, exit 0.
agent_event once-1 > "$T/mnt/billing/once.json"
tv_ok "--once exits 0 when all is acknowledged" "$AGENT" -c "$T/tv.conf" --once
tv_ok "--once shipped the pending file" sh -c "find '$T/outbox' -name '*.msgpack' -exec '$AGENT' dump {} \; | grep -q '\"event_hash\":\"$(AGENT_HASH_PROJECT=billing agent_hash once-1)\"'"
tv_ok "--once again: nothing new, still exit 0" "$AGENT" -c "$T/tv.conf" --once
tv_ok "no record shipped twice over all runs" test "$(total)" -eq "$(ids)"
tv_fails "dump of a non-batch file fails" "$AGENT" dump "$T/tv.conf"
tv_done
