#!/bin/sh
# system-canary.sh - DESIGN §8 "no byte of trace content anywhere", across
# the whole system at once: keyd + the vault + the agent shipping over real
# TLS (a CA made here) to the test upstream, two projects.  A unique content
# canary is planted in every content field of every accepted format
# (HoneyHive event, array, OTLP gen_ai, OpenInference, JSONL lines, and
# malformed documents), a second canary in file and directory names (short
# and long, so the vault's long-name side files are exercised) of accepted
# traces and of skipped ones (the agent's log names a skipped file by its
# file ID, never by its name).  Once the
# upstream holds exactly the expected records, neither canary may appear in
# the backing store (contents or names), keyd's keystore or audit log, the
# vault's audit log, the agent's state (sqlite and WAL bytes, taken while it
# runs and after it stopped), the metrics file, any daemon's log, or
# anything the upstream received.  Positive controls prove the search works:
# both canaries are readable through the mount by a reader.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/system-lib.sh"
tv_init system-canary
sys_setup alpha beta <<'CONF'
[project.alpha]
evaluators = all
CONF
tv_plan 21

touch "$T/.start"                # files made elsewhere after this are searched too
rnd() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
C="CNRY$(rnd)"          # content canary
N="NCNRY$(rnd)"         # name canary
D="$top_srcdir/tests/data/agent"
A="$M/alpha"
B="$M/beta"

agent_start -v || sys_bail "the agent did not start"

# alpha: every JSON document shape, some in canary-named directories.
put() { sed "s/@C@/$C/g" "$D/$1" > "$2"; }
put canary-honeyhive.json "$A/hh.json"
put canary-otlp.json "$A/otlp.json"
put canary-openinference.json "$A/oi.json"
ev() {  # ev ID: a HoneyHive event with the canary in every content field
    printf '{"event_id":"%s","session_id":"%s_SESS_%s","event_type":"model","event_name":"%s_NAME_%s","start_time":1763790000000,"duration":80,"config":{"model":"gpt-4o","provider":"openai","system_prompt":"%s_SYS_%s"},"inputs":{"q":"%s_IN_%s"},"outputs":{"content":"%s_OUT_%s"},"metadata":{"m":"%s_META_%s"},"metrics":{"prompt_tokens":7,"completion_tokens":3},"error":null}' \
        "$1" "$C" "$1" "$C" "$1" "$C" "$1" "$C" "$1" "$C" "$1" "$C" "$1"
}
{ printf '['; ev arr-1; printf ','; ev arr-2; printf ','; ev arr-3; printf ']'; } > "$A/.arr.json.tmp"
mv "$A/.arr.json.tmp" "$A/arr.json"
mkdir -p "$A/d-${N}_DIR/sub-${N}_SUB"
ev named-1 > "$A/d-${N}_DIR/sub-${N}_SUB/t-${N}_FILE.json"
long="long-${N}_LONG-$(printf '%0150d' 0).json"       # > 134 bytes: a side file
ev long-1 > "$A/d-${N}_DIR/$long"
# beta: JSONL streams (one with a broken line and an array line), a truncated document.
put canary-stream.jsonl "$B/s.jsonl"
for i in 1 2 3; do ev "jl-$i"; echo; done > "$B/j-${N}_JSONL.jsonl"
mkdir -p "$B/bad-${N}_BADDIR"
put canary-truncated.json "$B/bad-${N}_BADDIR/trunc-${N}_SKIPPED.json"
# Expected: alpha 1+1+1+3+1+1 = 8; beta 4 (s.jsonl) + 3 + 1 (skipped) = 8.

tv_ok "positive control: the content canary is readable through the mount by a reader" \
    test "$(cat "$A/hh.json" "$A/otlp.json" "$A/oi.json" "$A/arr.json" "$B/s.jsonl" \
           "$B/j-${N}_JSONL.jsonl" "$B/bad-${N}_BADDIR/trunc-${N}_SKIPPED.json" "$A/d-${N}_DIR/$long" | grep -o "$C" | wc -l)" -ge 60
tv_ok "positive control: the name canary is visible in the mount (7 names)" \
    test "$(find "$M" | grep -c "$N")" -eq 7
tv_ok "the upstream accepted all 16 records" agent_wait_count 16 sys_records 30
sleep 1   # anything extra would arrive now
tv_ok "exactly 8 records per project, none twice" sh -c \
    "test $(sys_records alpha) -eq 8 && test $(sys_records beta) -eq 8 && test \"\$(cat '$T/up/dups' 2>/dev/null || echo 0)\" -eq 0"
tv_ok "every batch carried its own project's API key from keyd" "$PY" - "$T/up" <<'PY'
import json, msgpack, sys
d = sys.argv[1]
reqs = [json.loads(l) for l in open(d + "/requests.log")]
bodies = list(msgpack.Unpacker(open(d + "/bodies.bin", "rb"), raw=False))
seen = set()
for r, b in zip(reqs, bodies):
    seen.add(b["project"])
    if r["auth"] != "Bearer key-%s-s3cret" % b["project"]:
        sys.exit(1)
sys.exit(0 if len(reqs) == len(bodies) and seen == {"alpha", "beta"} else 1)
PY
tv_ok "the evaluators saw the content (PII counted, skips reported)" sh -c \
    "grep -q '\"pii_email\": [1-9]' '$T/up/records.jsonl' && grep -q '\"skip_reason\": \"truncated\"' '$T/up/records.jsonl'"
fid=$("$PY" -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.tracevault.file_id").decode())' \
      "$B/bad-${N}_BADDIR/trunc-${N}_SKIPPED.json")
tv_ok "the agent's log names the canary-named skipped file by its file ID ($fid)" \
    grep -q "project \"beta\": file $fid: offset 0: skipped [0-9]* bytes: truncated" "$T/agent.log"

# Searches.  nowhere DESC PATH...: neither canary in any file's bytes or name.
_nowhere() {
    for p; do [ -e "$p" ] || { tv_diag "missing: $p"; return 1; }; done
    _hits=$( { grep -rlaF -e "$C" -e "$N" -- "$@"
               find "$@" \( -name "*$C*" -o -name "*$N*" \) -print; } 2>/dev/null)
    [ -z "$_hits" ] && return 0
    printf '%s\n' "$_hits" | sed 's/^/# leak: /'
    return 1
}
nowhere() {
    _d=$1; shift
    tv_ok "$_d" _nowhere "$@"
}
_found() { ! _nowhere "$@" >/dev/null; }
: > "$A/e-${N}_EMPTY.txt"   # a name canary alone (not a trace name: the agent ignores it)
_controls() { _found "$A/hh.json" && _found "$A/e-${N}_EMPTY.txt"; }
tv_ok "positive control: the same search finds the content and the name canary in the mount" _controls
WAL=$(ls "$T/agent/"*-wal 2>/dev/null | head -1)
tv_diag "agent state while running: $(cd "$T/agent" && ls | tr '\n' ' ')"
nowhere "no canary in the agent's state while it runs (sqlite db and WAL bytes)" "$T/agent"
tv_ok "the WAL is there to be searched" test -n "$WAL"
nowhere "no canary in the metrics file" "$T/agent/metrics.prom"
nowhere "no canary in the backing store (contents, names, side files)" "$T/data"
tv_ok "the backing store holds the long name's side file" \
    sh -c "find '$T/data/alpha' -name '.~*.name' | grep -q ."
nowhere "no canary in keyd's keystore or its audit log" "$T/lib" "$T/log/keyd-audit.log"
nowhere "no canary in the vault's audit log" "$T/log/vault-audit.log"
nowhere "no canary in anything the upstream received (raw bodies, records)" \
    "$T/up/bodies.bin" "$T/up/records.jsonl" "$T/up/requests.log"

tv_ok "the agent stops cleanly (exit 0)" agent_stop
nowhere "no canary in the agent's state after it stopped" "$T/agent"
nowhere "no canary in any daemon's log (keyd -v, vault, agent -v, upstream)" \
    "$T/keyd.log" "$T/vault.log" "$T/agent.log" "$T/up.log"
# Everything under $T but the mount: configuration, certificates, logs, state.
_outside_mount() {
    _hits=$( { grep -rlaF --exclude-dir=mnt -e "$C" -e "$N" "$T"
               find "$T" -path "$T/mnt" -prune -o \( -name "*$C*" -o -name "*$N*" \) -print; } 2>/dev/null)
    [ -z "$_hits" ] && return 0
    printf '%s\n' "$_hits" | sed 's/^/# leak: /'
    return 1
}
tv_ok "no canary in any file or name anywhere in the test tree outside the mount" _outside_mount
# Temporary files a daemon might leave elsewhere (sqlite, curl, libfuse).
# -xdev keeps find out of FUSE mounts (ours and other tests').
_elsewhere() {
    _hits=$(find /tmp /var/tmp /dev/shm -xdev -path "$T" -prune -o -newer "$T/.start" -type f \
                -size -64M -print0 2>/dev/null | xargs -0 -r grep -laF -e "$C" -e "$N" 2>/dev/null)
    [ -z "$_hits" ] && return 0
    printf '%s\n' "$_hits" | sed 's/^/# leak: /'
    return 1
}
tv_ok "no canary in any file made meanwhile in /tmp, /var/tmp or /dev/shm" _elsewhere
tv_done
