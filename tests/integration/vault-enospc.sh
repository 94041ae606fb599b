#!/bin/bash
# vault-enospc.sh - a full backing filesystem: writes fail cleanly with
# ENOSPC (space is reserved before any block is rewritten), every byte
# acknowledged before reads back, an in-place rewrite fails cleanly while
# its tail journal has no room (docs/FORMAT.md "Crash consistency") and works
# once there is, fsck is clean.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-enospc
tv_need_root
tv_need_fuse
[ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "vault or keyd not built"
tv_write_conf <<'CONF'
[project.alpha]
writers = root
readers = root
CONF
# the real ENOSPC, not the vault's own free-space reserve
sed -i 's|^\[vault\]|[vault]\nreserve_bytes = 0|' "$T/tv.conf"
mount -t tmpfs -o size=1m tmpfs "$T/data" || tv_skip_all "cannot mount a tmpfs"
tv_defer "umount -l '$T/data'"
tv_start_keyd || vault_bail "keyd"
"$KEYCTL" -c "$T/tv.conf" create alpha >/dev/null || vault_bail "create"
tv_start_vault || vault_bail "mount"
M="$T/mnt"
tv_plan 8
head -c 65536 /dev/zero > "$M/alpha/spare"      # freed later for the journal
cat > "$T/fill.py" <<'PY'
import errno, os, random, sys
path, ref = sys.argv[1], sys.argv[2]
r = random.Random(7)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
acked = bytearray()
err = None
while True:
    chunk = r.randbytes(r.choice([100, 3000, 4096, 5000, 20000]))
    try:
        n = os.write(fd, chunk)
    except OSError as e:
        err = errno.errorcode[e.errno]
        break
    acked += chunk[:n]        # a short count (the kernel splits at a page boundary) is legal
os.close(fd)
open(ref, "wb").write(acked)
print(err, len(acked))
PY
out=$("$PY" "$T/fill.py" "$M/alpha/big.jsonl" "$T/ref")
tv_diag "fill ended with: $out"
tv_ok "filling the disk ends with ENOSPC" test "${out%% *}" = ENOSPC
tv_ok "every acknowledged byte reads back" cmp -s "$T/ref" "$M/alpha/big.jsonl"
tv_ok "the size is exactly what was acknowledged" test "$(stat -c %s "$M/alpha/big.jsonl")" = "$(stat -c %s "$T/ref")"
cat > "$T/overwrite.py" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.pwrite(fd, b"Z" * 5000, 10000)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
os.close(fd)
PY
tv_ok "an in-place overwrite on the full disk fails with ENOSPC (no room for its journal)" \
    test "$("$PY" "$T/overwrite.py" "$M/alpha/big.jsonl")" = ENOSPC
tv_ok "... and changes nothing" cmp -s "$T/ref" "$M/alpha/big.jsonl"
rm "$M/alpha/spare"
tv_ok "with a little room it works" sh -c "test \"\$('$PY' '$T/overwrite.py' '$M/alpha/big.jsonl')\" = OK &&
    '$PY' -c 'import sys; d = open(sys.argv[1], \"rb\").read(); sys.exit(0 if d[10000:15000] == b\"Z\" * 5000 else 1)' '$M/alpha/big.jsonl'"
vault_remount
tv_ok "after a remount the file still reads completely" test "$(vault_read_errno "$M/alpha/big.jsonl")" = OK
tv_ok "fsck finds no torn block" sh -c "'$VAULT' fsck -c '$T/tv.conf' alpha >/dev/null 2>&1"
tv_done
