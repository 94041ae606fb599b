#!/bin/bash
# vault-service.sh - the vault as the systemd unit runs it: an unprivileged
# service user holding only CAP_SYS_ADMIN, CAP_CHOWN, CAP_DAC_OVERRIDE and
# CAP_FOWNER (scripts/systemd/tracevault.service.in), keyd knowing that user
# as its vault user.  Writers and readers work, files belong to their
# creators, SIGHUP and SIGTERM behave.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-service
tv_need_root
tv_need_fuse
[ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "vault or keyd not built"
command -v setpriv >/dev/null || tv_skip_all "no setpriv"
for r in svc wr rd; do tv_add_user $r > "$T/user.$r" || vault_bail "useradd"; done
SVC=$(cat "$T/user.svc"); WR=$(cat "$T/user.wr"); RD=$(cat "$T/user.rd")
TV_VAULT_USERS="$SVC" tv_write_conf <<CONF
[project.p]
writers = $WR
readers = $RD
CONF
chown "$SVC" "$T/data" "$T/mnt"; chmod 0700 "$T/data"
touch "$T/log/vault-audit.log"; chown "$SVC" "$T/log/vault-audit.log"
tv_start_keyd || vault_bail "keyd"
"$KEYCTL" -c "$T/tv.conf" create p >/dev/null || vault_bail "create"
chmod 0666 "$T/run/keyd.sock"
caps=+sys_admin,+chown,+dac_override,+fowner
setpriv --reuid="$SVC" --regid="$(id -g "$SVC")" --init-groups --inh-caps=$caps --ambient-caps=$caps \
    "$VAULT" -c "$T/tv.conf" -f >> "$T/vault.log" 2>&1 &
VAULT_PID=$!
tv_defer "fusermount3 -u -z '$T/mnt'; kill $VAULT_PID"
for i in $(seq 100); do mountpoint -q "$T/mnt" && break; sleep 0.05; done
M="$T/mnt"
tv_plan 9
tv_ok "mounted by the unprivileged service user" sh -c "mountpoint -q '$M' && test \"\$(ps -o user= -p $VAULT_PID)\" = '$SVC' || test \"\$(stat -c %U /proc/$VAULT_PID)\" = '$SVC'"
tv_ok "a writer drops a trace" tv_as "$WR" sh -c "printf 'a\n' > '$M/p/t.jsonl' && printf 'b\n' >> '$M/p/t.jsonl'"
tv_ok "a reader reads it" test "$(tv_as "$RD" cat "$M/p/t.jsonl")" = "$(printf 'a\nb')"
tv_ok "the file shows the writer as owner" test "$(tv_as "$RD" stat -c %U "$M/p/t.jsonl")" = "$WR"
tv_ok "the writer's directories work" tv_as "$WR" sh -c "mkdir '$M/p/d' && printf x > '$M/p/d/f' && touch -d 2001-01-01 '$M/p/d/f'"
tv_ok "the reader reads inside them" test "$(tv_as "$RD" cat "$M/p/d/f")" = x
tv_ok "the audit log is written by the service user" grep -q '"op":"create","result":"ok"' "$T/log/vault-audit.log"
kill -HUP "$VAULT_PID"; sleep 0.3
tv_ok "SIGHUP reload works without privileges" tv_as "$RD" cat "$M/p/t.jsonl"
kill -TERM "$VAULT_PID"
for i in $(seq 100); do kill -0 "$VAULT_PID" 2>/dev/null || break; sleep 0.05; done
tv_ok "SIGTERM unmounts" sh -c "! mountpoint -q '$M'"
tv_done
