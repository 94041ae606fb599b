#!/bin/bash
# system-crash.sh - DESIGN §8 "kill -9 any daemon at any moment", across the
# whole system: four writers drop traces continuously into two projects
# (*.json by tmp-then-rename, JSONL lines appended with open/write/close),
# while kill -9 hits keyd, then the vault (remounted), then the agent, at
# seeded random moments (twice round; SYS_SEED=N replays a run).  Each writer
# records an operation only after it returned: a drop after rename() with
# the document's SHA-256, a line after close(); an operation that failed
# part-way (the vault died under it) is "uncertain": it may or may not be in
# the vault.  The second round runs with the upstream down until the agent
# restarts, so the queue is full when the daemons die.  Afterwards, through
# the remounted vault:
#   - every file closed before a kill reads back intact (SHA-256 of drops,
#     exact line sequence of JSONL files);
#   - the traces in the vault are the certain ones plus at most the
#     uncertain ones;
#   - the test upstream received every trace in the vault exactly once:
#     each event_id under one record_id, no other event, no skipped record.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/system-lib.sh"
tv_init system-crash
SYS_LINGER_MS=50 SYS_BATCH_MAX=200 sys_setup alpha beta </dev/null
tv_plan 10
SEED=${SYS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
tv_diag "seed $SEED (replay with SYS_SEED=$SEED)"
RANDOM=$((SEED % 32768))
# pick LO HI: a random duration in [LO, HI) seconds, from the seeded $RANDOM.
pick() { awk -v r=$RANDOM -v lo="$1" -v hi="$2" 'BEGIN { printf "%.2f", lo + (hi - lo) * r / 32768 }'; }

cat > "$T/writer.py" <<'PY'
import hashlib, json, os, random, sys, time
root, w, seed, log, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
r = random.Random(seed * 10 + w)
d = os.path.join(root, "alpha" if w % 2 else "beta", "w%d" % w)
out = open(log, "a")
def note(*f):
    out.write(" ".join(str(x) for x in f) + "\n")
    out.flush()
def ev(eid):
    return {"event_id": eid, "session_id": "s%d" % w, "event_type": "model",
            "start_time": 1763790000000, "duration": 10, "config": {"model": "gpt-4o"},
            "inputs": {"q": "x" * r.randint(10, 3000)}, "outputs": {"content": "ok"},
            "metrics": {"prompt_tokens": 3, "completion_tokens": 4}}
while True:
    try:
        os.makedirs(d, exist_ok=True)
        break
    except OSError:
        time.sleep(0.1)
i = seg = nlines = 0
while not os.path.exists(stop):
    i += 1
    time.sleep(0.04)
    if r.random() < 0.3:                       # a JSON drop
        ids = ["J%d-%d-a" % (w, i), "J%d-%d-b" % (w, i)]
        data = json.dumps([ev(e) for e in ids]).encode()
        tmp, final = "%s/.j%d.tmp" % (d, i), "%s/j%d.json" % (d, i)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            note("refused", tmp, e.errno)
            time.sleep(0.1); continue          # nothing written
        try:
            os.write(fd, data)
            os.close(fd)
        except OSError:
            time.sleep(0.1); continue          # only a .tmp, never a trace
        try:
            os.rename(tmp, final)
        except OSError:
            note("uncertain", final, *ids)
            time.sleep(0.1); continue
        note("json", final, hashlib.sha256(data).hexdigest(), *ids)
    else:                                      # a JSONL line
        if nlines >= 150:
            seg += 1; nlines = 0
        path = "%s/s%d.jsonl" % (d, seg)
        eid = "L%d-%d" % (w, i)
        line = json.dumps(ev(eid)) + "\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            note("refused", path, e.errno)
            time.sleep(0.1); continue          # nothing written
        try:
            os.write(fd, line.encode())
            os.close(fd)
        except OSError:
            note("uncertain", path, eid, hashlib.sha256(line.encode()).hexdigest())
            seg += 1; nlines = 0                # never append to it again
            time.sleep(0.1); continue
        note("line", path, eid, hashlib.sha256(line.encode()).hexdigest())
        nlines += 1
PY

agent_start || sys_bail "the agent did not start"
wpids=""
for w in 1 2 3 4; do
    "$PY" "$T/writer.py" "$M" $w "$SEED" "$T/w$w.log" "$T/stop" 2>>"$T/writers.err" &
    wpids="$wpids $!"
done
tv_defer "touch '$T/stop'; kill $wpids"

kills=""
for round in 1 2; do
    # Round 2 runs with the upstream down (503) until the agent restarts, so
    # records pile up in the queue across the keyd and vault kills.
    [ $round -eq 2 ] && echo 503 > "$T/up/control"
    sleep "$(pick 0.8 2.5)"
    kill -9 "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
    kills="$kills keyd"
    sleep "$(pick 0.2 1.5)"
    rm -f "$T/run/keyd.sock"
    tv_start_keyd || sys_bail "keyd did not restart"
    sleep "$(pick 0.8 2.5)"
    kill -9 "$VAULT_PID"
    kills="$kills vault"
    sleep "$(pick 0.2 1.0)"
    sys_remount || sys_bail "the vault did not remount"
    sleep "$(pick 0.8 2.5)"
    kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
    kills="$kills agent"
    sleep "$(pick 0.2 1.0)"
    agent_start || sys_bail "the agent did not restart"
    rm -f "$T/up/control"
done
sleep "$(pick 0.5 1.5)"
touch "$T/stop"
for p in $wpids; do wait "$p"; done
tv_diag "kill -9 order:$kills"
tv_ok "all three daemons were killed twice while the writers ran" test "$kills" = " keyd vault agent keyd vault agent"
cat "$T"/w?.log > "$T/ops.log"
tv_diag "writer operations: $(grep -c '^json' "$T/ops.log") drops, $(grep -c '^line' "$T/ops.log") lines, $(grep -c '^uncertain' "$T/ops.log") uncertain, $(grep -c '^refused' "$T/ops.log") opens refused during outages"
tv_ok "the writers wrote through every kill (>= 100 operations, no crash)" \
    sh -c "test $(grep -c '^[jl]' "$T/ops.log") -ge 100 && test ! -s '$T/writers.err'"

# What the vault holds now, read through the mount.
cat > "$T/check.py" <<'PY'
import glob, hashlib, json, os, sys
M, ops, mode = sys.argv[1], sys.argv[2], sys.argv[3]
certain, uncertain, drops, lines = set(), set(), {}, {}
for l in open(ops):
    f = l.split()
    if f[0] == "json":
        drops[f[1]] = f[2]; certain.update(f[3:])
    elif f[0] == "line":
        lines.setdefault(f[1], []).append((f[2], f[3], True)); certain.add(f[2])
    elif f[0] == "uncertain":
        uncertain.update(f[2:3] if f[1].endswith(".jsonl") else f[2:])
        if f[1].endswith(".jsonl"):
            lines.setdefault(f[1], []).append((f[2], f[3], False))
bad = []
def diag(m):
    print("# " + m)
if mode == "intact":
    for p, h in drops.items():
        try:
            got = hashlib.sha256(open(p, "rb").read()).hexdigest()
        except OSError as e:
            got = "error %s" % e
        if got != h: bad.append("%s: %s" % (p, got))
    for p, want in lines.items():
        try:
            got = open(p, "rb").read().splitlines(keepends=True)
        except OSError as e:
            bad.append("%s: %s" % (p, e)); continue
        gh = [hashlib.sha256(x).hexdigest() for x in got]
        sure = [h for _, h, c in want if c]
        opt = [h for _, h, c in want if not c]
        if gh != sure and gh != sure + opt:
            bad.append("%s: %d lines read, %d certain, %d uncertain" % (p, len(gh), len(sure), len(opt)))
    for b in bad[:10]: diag("not intact: " + b)
    diag("%d drops and %d JSONL files checked" % (len(drops), len(lines)))
    sys.exit(1 if bad else 0)
# The events in the vault (every trace file, parsed).
vault = {}
for p in glob.glob(M + "/*/w*/*"):
    n = os.path.basename(p)
    try:
        if n.endswith(".json"):
            for e in json.load(open(p)):
                vault[e["event_id"]] = p
        elif n.endswith(".jsonl"):
            for x in open(p):
                vault[json.loads(x)["event_id"]] = p
    except (OSError, ValueError) as e:
        bad.append("%s: %s" % (p, e))
if mode == "vault":
    missing, extra = certain - set(vault), set(vault) - certain - uncertain
    diag("%d events in the vault: %d certain, %d of %d uncertain, %d certain missing, %d unexpected"
         % (len(vault), len(certain & set(vault)), len(uncertain & set(vault)), len(uncertain),
            len(missing), len(extra)))
    for b in (bad + sorted(missing) + sorted(extra))[:10]: diag("bad: %s" % b)
    sys.exit(1 if bad or missing or extra else 0)
recs = [json.loads(l) for l in open(sys.argv[4])]
# Event ids leave only as keyed hashes (one key per project): ask the agent
# for the hash of every id in the vault and map the records back.
import subprocess
byproj, hmap = {}, {}
for eid, p in vault.items():
    byproj.setdefault(os.path.relpath(p, M).split("/")[0], []).append(eid)
for proj, eids in byproj.items():
    out = subprocess.run([sys.argv[5], "-c", sys.argv[6], "hash", proj, "event"] + eids,
                         capture_output=True, text=True, check=True).stdout.split()
    hmap.update({(proj, h): e for e, h in zip(eids, out)})
ids, skipped = {}, [r for r in recs if "skip_reason" in r]
for r in recs:
    if "event_hash" in r:
        e = hmap.get((r["project"], r["event_hash"]), "?" + r["event_hash"])
        ids.setdefault(e, set()).add(r["record_id"])
multi = [e for e, s in ids.items() if len(s) != 1]
missing, extra = set(vault) - set(ids), set(ids) - set(vault)
diag("%d records upstream for %d events (%d in the vault): %d missing, %d unexpected, "
     "%d under several record_ids, %d skipped" % (len(recs), len(ids), len(vault), len(missing),
                                                  len(extra), len(multi), len(skipped)))
for e in (sorted(missing) + sorted(extra) + multi)[:10]: diag("event %s (%s)" % (e, vault.get(e, "?")))
sys.exit(0 if not (missing or extra or multi or skipped or bad) else 1)
PY
tv_ok "every file closed before a kill reads back intact through the remounted vault" \
    "$PY" "$T/check.py" "$M" "$T/ops.log" intact
tv_ok "the vault holds every certain trace and nothing but certain or uncertain ones" \
    "$PY" "$T/check.py" "$M" "$T/ops.log" vault
want=$("$PY" - "$M" <<'PY'
import glob, json, sys
n = 0
for p in glob.glob(sys.argv[1] + "/*/w*/*.json"): n += len(json.load(open(p)))
for p in glob.glob(sys.argv[1] + "/*/w*/*.jsonl"): n += sum(1 for _ in open(p))
print(n)
PY
)
tv_ok "the agent in follow mode delivers all $want traces" agent_wait_count "$want" sys_records 40
tv_diag "delivered in follow mode: $(sys_records)"
tv_ok "the agent stops cleanly (exit 0)" agent_stop
tv_ok "a final --once finds nothing left and exits 0" "$AGENT" -c "$T/tv.conf" --once 2>>"$T/agent.log"
tv_diag "records the upstream saw again (re-sent after a kill, deduplicated): $(cat "$T/up/dups" 2>/dev/null || echo 0)"
tv_ok "every trace in the vault delivered exactly once (one record_id per event, no extra, no skip)" \
    "$PY" "$T/check.py" "$M" "$T/ops.log" shipped "$T/up/records.jsonl" "$AGENT" "$T/tv.conf"
tv_ok "the vault's audit log is whole after two kill -9 (every line is a JSON object)" "$PY" -c '
import json, sys
n = 0
for l in open(sys.argv[1]):
    json.loads(l); n += 1
print("# %d vault audit records" % n)' "$T/log/vault-audit.log"
tv_ok "keyd's audit chain is intact after two kill -9" sh -c "\"$KEYCTL\" -c \"$T/tv.conf\" audit-verify >/dev/null"
tv_done
