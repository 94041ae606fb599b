#!/bin/bash
# vault-nofile.sh - the vault holds a descriptor per file the kernel knows, and
# the kernel decides when to forget: started with a tiny soft open-file limit
# (the common default is 1024) it must raise it to the hard limit so that
# many files stay usable (no EMFILE).  Raising the hard limit too needs
# CAP_SYS_RESOURCE, which test sandboxes may lack, so only the soft one is set.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-nofile
tv_need_root
tv_need_fuse
[ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "vault or keyd not built"
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 2048 ] || tv_skip_all "hard open-file limit below 2048"
command -v prlimit >/dev/null || tv_skip_all "no prlimit"
tv_write_conf <<'CONF'
[project.alpha]
writers = root
readers = root
CONF
tv_start_keyd || vault_bail "keyd did not start"
"$KEYCTL" -c "$T/tv.conf" create alpha >/dev/null || vault_bail "keyctl create"
prlimit --nofile=128: "$VAULT" -c "$T/tv.conf" -f >>"$T/vault.log" 2>&1 &
VAULT_PID=$!
tv_defer "fusermount3 -u -z '$T/mnt'; kill $VAULT_PID; wait $VAULT_PID"
i=0
while ! mountpoint -q "$T/mnt"; do
    i=$((i + 1)); [ $i -gt 200 ] && vault_bail "vault did not mount"
    sleep 0.05
done
tv_plan 3

N=1000
mkdir "$T/mnt/alpha/many"
fail=0
for i in $(seq 1 $N); do
    printf '{"n": %d}\n' "$i" > "$T/mnt/alpha/many/t$i.json" 2>>"$T/err" || fail=$((fail + 1))
done
tv_ok "$N files created under a starting limit of 128 descriptors ($fail failed)" [ "$fail" -eq 0 ]
bad=0
for i in $(seq 1 $N); do
    [ "$(cat "$T/mnt/alpha/many/t$i.json" 2>>"$T/err")" = "{\"n\": $i}" ] || bad=$((bad + 1))
done
tv_ok "all $N read back while the kernel still knows them ($bad failed)" [ "$bad" -eq 0 ]
soft=$(awk '/Max open files/ {print $4}' /proc/$VAULT_PID/limits)
tv_ok "the vault raised its open-file limit (now $soft)" [ "$soft" -gt 128 ]
[ -s "$T/err" ] && head -3 "$T/err" | sed 's/^/# /'
tv_done
