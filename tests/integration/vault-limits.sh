#!/bin/bash
# vault-limits.sh - a hostile writer cannot exhaust the vault's memory or
# the disk (DESIGN §5, issue 9): 1 GiB and 64 GiB pwrites and a 1 PiB
# truncate as a project writer are refused with EFBIG before any byte is
# written; max_file_bytes, quota_bytes and reserve_bytes answer EFBIG /
# EDQUOT / ENOSPC up front and are audited; a long extension is filled in
# bounded chunks (the vault's peak RSS stays small), stops when its caller is
# killed (no D state until the disk is full) and leaves the file at its old
# size; another user's writes are served meanwhile.  Backing store: a
# size-limited tmpfs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-limits
tv_need_root
tv_need_fuse
[ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "vault or keyd not built"
W=$(tv_add_user w) || tv_skip_all "cannot add users"
O=$(tv_add_user o) || tv_skip_all "cannot add users"
tv_write_conf <<CONF
[project.alpha]
writers = $W
readers = $W

[project.small]
writers = $W
readers = $W
max_file_bytes = 1M
quota_bytes = 3M

[project.big]
writers = $W
readers = $W
max_file_bytes = 4G
quota_bytes = 0

[project.other]
writers = $O
readers = $O
CONF
sed -i 's|^\[vault\]|[vault]\nreserve_bytes = 64M|' "$T/tv.conf"
mount -t tmpfs -o size=1200m tmpfs "$T/data" || tv_skip_all "cannot mount a tmpfs"
tv_defer "umount -l '$T/data'"
tv_start_keyd || vault_bail "keyd"
for p in alpha small big other; do
    "$KEYCTL" -c "$T/tv.conf" create $p >/dev/null || vault_bail "create $p"
done
tv_start_vault || vault_bail "mount"
M="$T/mnt"
tv_plan 23

# op.py PATH OP ARG: pwrite one byte at ARG, truncate to ARG, or write ARG
# bytes; prints OK or the errno name
cat > "$T/op.py" <<'PY'
import errno, os, sys
path, op, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    if op == "pwrite":
        os.pwrite(fd, b"x", arg)
    elif op == "truncate":
        os.ftruncate(fd, arg)
    else:
        os.write(fd, b"y" * arg)
    os.close(fd)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
op() { tv_as "$W" "$PY" "$T/op.py" "$@"; }
rss() { awk '/VmHWM/ {print $2}' "/proc/$VAULT_PID/status"; }
used() { df -k --output=used "$T/data" | tail -1; }

echo '{"a":1}' | tv_as "$W" tee "$M/alpha/keep.json" >/dev/null
rss0=$(rss)
used0=$(used)
tv_ok "a 1-byte pwrite at 1 GiB (past max_file_bytes, default 1 GiB): EFBIG" \
    test "$(op "$M/alpha/keep.json" pwrite $((1 << 30)))" = EFBIG
tv_ok "a 1-byte pwrite at 64 GiB: EFBIG" test "$(op "$M/alpha/keep.json" pwrite $((64 << 30)))" = EFBIG
tv_ok "truncate to 1 PiB (pjdfstest truncate/12.t's 999999999999999): EFBIG" \
    test "$(op "$M/alpha/keep.json" truncate 999999999999999)" = EFBIG
tv_ok "... the file is as it was" test "$(tv_as "$W" cat "$M/alpha/keep.json")" = '{"a":1}'
tv_ok "... nothing was written to the disk" test $(( $(used) - used0 )) -lt 1024
tv_ok "... refusals are audited with the file's ID" \
    sh -c "grep -c EFBIG '$T/log/vault-audit.log' | grep -qx 3"

# per-project limits (small: max_file_bytes 1M, quota_bytes 3M)
tv_ok "small: a 1 MiB file fits" test "$(op "$M/small/a" write $((1 << 20)))" = OK
tv_ok "small: one byte more is EFBIG" test "$(op "$M/small/a" pwrite $((1 << 20)))" = EFBIG
op "$M/small/b" write $((1 << 20)) >/dev/null
op "$M/small/c" write $((1000 << 10)) >/dev/null
tv_ok "small: past quota_bytes is EDQUOT" test "$(op "$M/small/d" write $((100 << 10)))" = EDQUOT
tv_ok "... the refused file holds nothing" test "$(stat -c %s "$M/small/d")" = 0
tv_ok "... EDQUOT is audited" grep -q EDQUOT "$T/log/vault-audit.log"
rm -f "$M/small/a"
tv_ok "small: unlinking a file gives its bytes back" test "$(op "$M/small/d" write $((100 << 10)))" = OK
r0=$(op "$M/small/f" write $((1 << 20)))
r1=$(op "$M/small/b" truncate 0)
r2=$(op "$M/small/f" write $((1 << 20)))
tv_ok "small: so does truncating one (EDQUOT, truncate, then it fits: $r0 $r1 $r2)" \
    test "$r0 $r1 $r2" = "EDQUOT OK OK"

# reserve_bytes: growth that would leave less than 64M free is ENOSPC
tv_ok "big: an extension past the free space minus the reserve is ENOSPC, up front" \
    test "$(op "$M/big/huge" truncate $((1300 << 20)))" = ENOSPC
tv_ok "... the file is as it was" test "$(stat -c %s "$M/big/huge")" = 0

# a long extension is filled in bounded chunks
rss1=$(rss)
tv_ok "big: a 1-byte pwrite at 600 MiB works" test "$(op "$M/big/sparse" pwrite $((600 << 20)))" = OK
rss2=$(rss)
tv_diag "vault peak RSS: $rss0 kB at start, $rss1 kB before, $rss2 kB after a 600 MiB extension"
tv_ok "... the vault's peak RSS grew by less than 32 MiB" test $((rss2 - rss1)) -lt 32768
tv_ok "... and the file reads as zeros with the byte at its end" \
    tv_as "$W" "$PY" -c "import sys; f=open(sys.argv[1],'rb'); f.seek(600<<20); sys.exit(0 if f.read()==b'x' else 1)" "$M/big/sparse"
rm -f "$M/big/sparse"

# killing the caller of a long extension stops it; the file keeps its old size
used1=$(used)
echo hello | tv_as "$W" tee "$M/big/slow" >/dev/null
TV_BG_OUT="$T/slow.out" tv_as_bg "$W" "$PY" "$T/op.py" "$M/big/slow" truncate $((1100 << 20))
sleep 0.3
# meanwhile another user's writes are served promptly
t0=$(date +%s%N)
ok_other=1
for i in $(seq 20); do
    echo "{\"i\":$i}" | tv_as "$O" tee -a "$M/other/x.jsonl" >/dev/null || ok_other=0
done
t1=$(date +%s%N)
kill -9 "$TV_BG_PID" 2>/dev/null
gone=0
for i in $(seq 40); do
    kill -0 "$TV_BG_PID" 2>/dev/null || { gone=1; break; }
    sleep 0.05
done
tv_diag "20 appends by another user took $(( (t1 - t0) / 1000000 )) ms during the extension"
tv_ok "another user's appends were served during the extension (under 5 s)" \
    test "$ok_other" = 1 -a $(( (t1 - t0) / 1000000 )) -lt 5000
tv_ok "kill -9 of the caller ends it within 2 s (no D state until the disk is full)" test "$gone" = 1
sleep 0.5
tv_ok "... the file keeps its old size and content" test "$(tv_as "$W" cat "$M/big/slow")" = hello
tv_ok "... and its space is given back" test "$(used)" -lt $((used1 + 2048))
tv_ok "the vault is still up and fsck is clean" \
    sh -c "mountpoint -q '$M' && '$VAULT' fsck -c '$T/tv.conf' >/dev/null 2>&1"
tv_done
