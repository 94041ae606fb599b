#!/bin/bash
# agent-manyprojects.sh - the use-after-free of issue 8: a backlog spread
# over many projects whose pseudonym keys load for the first time while
# documents of other projects are already prepared for encoding (a group of
# up to 64 *.json documents).  The key cache used to realloc its array under
# those documents, and key_version shipped bytes of freed memory ("key", "!",
# fragments of attribute names, binary).  Run under valgrind when it is
# installed (any invalid read fails the run), and every record's key_version
# must be its project's own fingerprint.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent-lib.sh"
tv_init agent-manyprojects
[ -x "$AGENT" ] || tv_skip_all "agent not built"
NP=24
agent_conf </dev/null
for i in $(seq $NP); do
    printf '\n[project.p%d]\nwriters = root\nreaders = root\n' "$i" >> "$T/tv.conf"
    mkdir -p "$T/mnt/p$i"
    for j in 1 2; do agent_event "p$i-e$j" "s-$i" > "$T/mnt/p$i/t$j.json"; done
done
tv_plan 4
VG=
if command -v valgrind >/dev/null; then
    VG="valgrind -q --error-exitcode=97 --log-file=$T/valgrind.log"
fi
$VG "$AGENT" -c "$T/tv.conf" --once >>"$T/agent.log" 2>&1; rc=$?
[ -s "$T/valgrind.log" ] && sed 's/^/# /' "$T/valgrind.log" | head -40
tv_ok "--once over $NP projects exits 0${VG:+ under valgrind, no invalid access} (exit $rc)" test $rc -eq 0
agent_outbox > "$T/records.jsonl"
tv_ok "every event shipped ($((NP * 2)) records)" test "$(grep -c '"record_id"' "$T/records.jsonl")" -eq $((NP * 2))
tv_ok "every key_version is a fingerprint (local- and 8 hex digits)" \
    sh -c "! grep -v '\"key_version\":\"local-[0-9a-f]\\{8\\}\"' '$T/records.jsonl'"
# Each project's records carry that project's own fingerprint, all different.
tv_ok "each project has one key_version, its own" "$PY" - "$T/records.jsonl" $NP <<'PYEOF'
import json, sys
kv = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    kv.setdefault(r["project"], set()).add(r["key_version"])
ok = len(kv) == int(sys.argv[2]) and all(len(v) == 1 for v in kv.values()) and \
     len({next(iter(v)) for v in kv.values()}) == len(kv)
print("# %d projects, key versions per project: %s" % (len(kv), sorted({len(v) for v in kv.values()})))
sys.exit(0 if ok else 1)
PYEOF
tv_done
