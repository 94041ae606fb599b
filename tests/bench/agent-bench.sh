#!/bin/sh
# agent-bench.sh - end-to-end throughput of tracevault-agent to a file://
# outbox, against plain `cat` over the same files in the same run.
#
#   tests/bench/agent-bench.sh [FILES] [LINES] [BACKLOG]
#   (defaults 4000 single-event 2 KiB JSON files, 200000 JSONL lines,
#    100000-file backlog for the memory figure)
#
# Runs through a mounted vault when vault/tracevault is built and /dev/fuse
# exists (AGENT_BENCH_PLAIN=1 forces a plain directory); needs root for the
# vault.  Not part of `make check`.  Prints one line per figure.
# AGENT_BENCH_WRAP='PREFIX' runs each timed agent run under PREFIX, with @
# replaced by the case (json, jsonl): a profile, e.g.
#   AGENT_BENCH_WRAP='perf record -g -o /tmp/@.data --'
# (the wrapper's own cost then counts in the figures).
# AGENT_BENCH_AGENTS='NAME=PATH ...' times several agent binaries over the
# same files in the same run (each with its own state and outbox), e.g. the
# agent of main beside a change: before/after figures on a shared machine.
# AGENT_BENCH_OUTBOX=DIR puts those agents' file:// outboxes under DIR (a
# tmpfs, say: every batch file is fsync'd, and on this VM's disk those
# flushes, not the agent's CPU, bound the JSONL rate).  (4000
# files by default: the vault holds one or two descriptors per known inode,
# and this machine's hard RLIMIT_NOFILE is 20000.)
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
: "${top_srcdir:=$here}" "${top_builddir:=$here}"
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
FILES=${1:-4000}
LINES=${2:-200000}
BACKLOG=${3:-100000}
tv_init agent-bench
agent_conf </dev/null
mode=plain
if [ -z "${AGENT_BENCH_PLAIN:-}" ] && [ -x "$VAULT" ] && [ -c /dev/fuse ] && [ "$(id -u)" -eq 0 ]; then
    rmdir "$T/mnt/checkout" "$T/mnt/billing"
    tv_start_keyd && "$KEYCTL" -c "$T/tv.conf" create checkout >/dev/null &&
        "$KEYCTL" -c "$T/tv.conf" create billing >/dev/null && tv_start_vault && mode=vault ||
        { echo "vault did not start: plain directory"; mkdir -p "$T/mnt/checkout" "$T/mnt/billing"; }
fi
now() { date +%s.%N; }
prof() {   # prof CASE: the wrapper of a timed agent run, or nothing
    [ -n "${AGENT_BENCH_WRAP:-}" ] || return 0
    printf '%s\n' "$AGENT_BENCH_WRAP" | sed "s|@|$1|g"
}
# run_agents CASE N UNIT [NOTE]: time each agent over what is new to it.
run_agents() {
    for _spec in ${AGENT_BENCH_AGENTS:-agent=$AGENT}; do
        _name=${_spec%%=*} _bin=${_spec#*=}
        if [ ! -f "$T/$_name.conf" ]; then
            sed -e "s|^state_dir .*|state_dir   = $T/state-$_name|" \
                -e "s|^upstream .*|upstream    = file://${AGENT_BENCH_OUTBOX:-$T}/outbox-$_name|" "$T/tv.conf" > "$T/$_name.conf"
        fi
        _a=$(now)
        /usr/bin/time -f '%U %S' -o "$T/cpu" $(prof "$1") "$_bin" -c "$T/$_name.conf" --once \
            2>>"$T/agent-bench.log"
        _b=$(now)
        _shipped=$(awk '$1 == "tracevault_agent_records_shipped_total" { print $2 }' \
            "$T/state-$_name/metrics.prom")
        echo "$1: $_name: $2 $3 ${4:-}, $(rate "$2" "$_a" "$_b") $3/s, $(awk -v n="$2" \
            '{ printf "%.0f", n / ($1 + $2) }' "$T/cpu") per agent CPU-second ($_shipped records shipped in all)"
    done
}
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

gen() {   # gen DIR N: N single-event JSON files of about 2 KiB
    "$PY" - "$1" "$2" <<'PYEOF'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    ev = {"event_id": "e-%d" % i, "session_id": "s-%d" % (i % 97), "event_type": "model",
          "event_name": "reply", "start_time": 1763790000000 + i, "duration": 800 + i % 2000,
          "config": {"model": "gpt-4o-mini", "provider": "openai"},
          "inputs": {"chat_history": [{"role": "user", "content": "Where is order %d? mail me at x%d@example.com " % (i, i) + "lorem ipsum " * 60}]},
          "outputs": {"content": "Your order is on its way. " + "dolor sit amet " * 40},
          "metrics": {"prompt_tokens": 400, "completion_tokens": 120}}
    s = json.dumps(ev)
    s += " " * max(0, 2048 - len(s))
    with open(os.path.join(d, "t%06d.json" % i), "w") as f:
        f.write(s)
PYEOF
}

echo "# agent benchmark: $mode directory, $(nproc) CPUs, $(date -u +%FT%TZ)"
gen "$T/mnt/checkout/json" "$FILES"
sync
# Warm the page cache / vault for both readers alike, then measure cat.
find "$T/mnt/checkout/json" -name '*.json' -print0 | xargs -0 cat > /dev/null
a=$(now); find "$T/mnt/checkout/json" -name '*.json' -print0 | xargs -0 cat > /dev/null; b=$(now)
cat_rate=$(rate "$FILES" "$a" "$b")
run_agents json "$FILES" files
echo "json_files: cat $cat_rate files/s over the same files"

"$PY" - "$T/mnt/billing/stream.jsonl" "$LINES" <<'PYEOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"event_id": "l-%d" % i, "session_id": "s-%d" % (i % 13), "event_type": "model",
                            "start_time": 1763790000000 + i, "duration": 300, "config": {"model": "gpt-4o"},
                            "inputs": {"text": "classify this request please %d" % i},
                            "outputs": {"label": "billing"}, "metrics": {"prompt_tokens": 20, "completion_tokens": 2}}) + "\n")
PYEOF
sz=$(stat -c %s "$T/mnt/billing/stream.jsonl")
cat "$T/mnt/billing/stream.jsonl" > /dev/null
a=$(now); cat "$T/mnt/billing/stream.jsonl" > /dev/null; b=$(now)
cat_lines=$(rate "$LINES" "$a" "$b")
run_agents jsonl "$LINES" lines "($((sz / LINES)) B each)"
echo "jsonl_lines: cat $cat_lines lines/s over the same file"

# Memory with a backlog of BACKLOG files.  On a plain directory even when
# the rest ran through the vault: a cold vault spends its time unwrapping one
# DEK per file in keyd (audited and fsync'd per request), which would measure
# keyd, not the agent.
mkdir -p "$T/plain/checkout" "$T/agent-plain"
sed -e "s|^mountpoint .*|mountpoint  = $T/plain|" -e "s|^state_dir .*|state_dir   = $T/agent-plain|" \
    -e "s|^upstream .*|upstream    = file://$T/outbox-plain|" "$T/tv.conf" > "$T/plain.conf"
gen "$T/plain/checkout/backlog" "$BACKLOG"
a=$(now)
/usr/bin/time -f '%M %U %S' -o "$T/rss" "$AGENT" -c "$T/plain.conf" --once 2>>"$T/agent-bench.log"
b=$(now)
read -r rss cpu_u cpu_s < "$T/rss"
echo "backlog: $BACKLOG files (plain directory), agent $(rate "$BACKLOG" "$a" "$b") files/s wall, $(awk -v n="$BACKLOG" -v u="$cpu_u" -v s="$cpu_s" 'BEGIN{printf "%.0f", n/(u+s)}') files per CPU-second, max RSS $((rss / 1024)) MiB"
