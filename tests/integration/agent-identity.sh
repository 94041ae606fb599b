#!/bin/sh
# agent-identity.sh - a file's identity is the vault's file ID, never a
# stand-in made while that ID could not be read.  An LD_PRELOAD shim makes
# the first read of user.tracevault.file_id fail with EIO on every file (what
# a descriptor from a vault that was killed gives, while its bytes still come
# from the page cache; system-crash.sh met it).  The agent must retry, not
# fall back to an inode identity: a second run without the shim then finds
# every document taken, and each event reaches the upstream under one
# record_id.  (The agent before this fix shipped every event twice here.)
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-identity
tv_need_root
tv_need_fuse
[ -x "$AGENT" ] && [ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "agent, vault or keyd not built"
command -v cc >/dev/null 2>&1 || tv_skip_all "no C compiler for the LD_PRELOAD shim"
cc -shared -fPIC -O1 -o "$T/xattr-flaky.so" "$top_srcdir/tests/integration/xattr-flaky.c" -ldl -lpthread ||
    tv_skip_all "cannot build the LD_PRELOAD shim"
tv_plan 5
AGENT_VAULT=1 AGENT_PSEUDONYM_KEYS=keyd agent_conf </dev/null
tv_start_keyd || { echo "Bail out! keyd"; exit 1; }
for p in checkout billing; do "$KEYCTL" -c "$T/tv.conf" create $p >/dev/null; done
tv_start_vault || { echo "Bail out! vault did not mount"; sed 's/^/# /' "$T/vault.log"; exit 1; }
N=40
for i in $(seq 1 $N); do agent_event "id-$i" > "$T/mnt/checkout/t$i.json"; done
agent_event "s-1" > "$T/mnt/billing/s.jsonl"
agent_event "s-2" >> "$T/mnt/billing/s.jsonl"
# an ASan build must accept a preloaded library ahead of its runtime
env LD_PRELOAD="$T/xattr-flaky.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    "$AGENT" -c "$T/tv.conf" --once 2>>"$T/agent.log"
tv_ok "first run, every first file-ID read failing, exits 0" test $? -eq 0
tv_ok "the failures were retried, not replaced by an inode identity" \
    grep -q "its file ID cannot be read now" "$T/agent.log"
"$AGENT" -c "$T/tv.conf" --once 2>>"$T/agent.log"
tv_ok "a second run, the file IDs readable, exits 0" test $? -eq 0
ids=$(agent_outbox_ids)
total=$(agent_outbox | grep -c record_id)
tv_diag "$total records, $ids record_ids, $((N + 2)) events"
tv_ok "each event shipped under one record_id ($((N + 2)))" test "$ids" -eq $((N + 2))
tv_ok "and once" test "$total" -eq $((N + 2))
