#!/bin/bash
# agent-unreadable.sh - a trace the vault refuses to decrypt (a flipped
# ciphertext byte) is retried with exponential backoff, counted and logged on
# attempts 1, 2, 4, 8...: not read, logged and audited once a second forever.
# Good traces beside it still ship.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent-lib.sh"
tv_init agent-unreadable
tv_need_root
tv_need_fuse
[ -x "$AGENT" ] && [ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "agent, vault or keyd not built"
AGENT_VAULT=1 AGENT_PSEUDONYM_KEYS=keyd agent_conf </dev/null
tv_start_keyd || { echo "Bail out! keyd"; exit 1; }
for p in checkout billing; do "$KEYCTL" -c "$T/tv.conf" create $p >/dev/null; done
tv_start_vault || { echo "Bail out! vault did not mount"; exit 1; }
M="$T/mnt"
tv_plan 6

agent_event bad-1 > "$M/billing/t.json.part"
backing=$(find "$T/data/billing" -name .tvjournal -prune -o -type f ! -name '.*' -print)
tv_ok "one backing file for the trace" [ "$(printf '%s\n' "$backing" | grep -c .)" -eq 1 ]
printf '\xff' | dd of="$backing" bs=1 seek=200 conv=notrunc status=none
mv "$M/billing/t.json.part" "$M/billing/t.json"
# The log names files by their vault file ID, never by path.
fid=$("$PY" -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.tracevault.file_id").decode())' "$M/billing/t.json")
agent_event good-1 > "$M/checkout/good.json"
agent_start
sleep 12
agent_stop
warn=$(grep -c "file $fid: read" "$T/agent.log")
audits=$(grep -c '"integrity"' "$T/log/vault-audit.log")
retries=$(sed -n 's/^tracevault_agent_read_retries_total \([0-9]*\).*/\1/p' "$T/agent/metrics.prom")
tv_ok "the good trace shipped" [ "$(agent_outbox_ids)" -eq 1 ]
tv_ok "the damaged file was retried and counted ($retries retries)" [ "${retries:-0}" -ge 3 ]
tv_ok "retries back off: at most 5 reads in 12 s ($audits integrity audit records)" \
    [ "$audits" -ge 3 -a "$audits" -le 5 ]
tv_ok "logged on attempts 1, 2 and 4 only ($warn lines)" [ "$warn" -ge 2 -a "$warn" -le 3 ]
tv_ok "the log line names the file by its ID and the reason, not by its path" sh -c \
    "grep -q 'project \"billing\": file $fid: read 0 of [0-9]* bytes: Input/output error (attempt 1' '$T/agent.log' &&
     ! grep -q 't\.json' '$T/agent.log'"
tv_done
