#!/bin/bash
# vault-basic.sh - file semantics through the mount: round trips of random
# sizes (every block boundary), exact sizes in stat, append, truncate,
# rename-over, mkdir/rmdir, readdir, long names, xattr file ID, utimens,
# refused object types (EPERM) and cross-project rename (EXDEV).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-basic
vault_setup <<'CONF'
[project.alpha]
writers = root
readers = root

[project.beta]
writers = root
readers = root

[project.gamma]
writers = root
readers = root
CONF
tv_plan 38
A="$M/alpha"

# round trips at and around every boundary plus random sizes
sizes="0 1 2 4095 4096 4097 8191 8192 8193 12288 65535 65536 1048575 1048576 1048577 3000000"
for s in $(seq 1 8); do sizes="$sizes $(( (RANDOM * 32768 + RANDOM) % 2000000 ))"; done
bad=""
for s in $sizes; do
    vault_write_random "$T/ref" "$s" "$s"
    cp "$T/ref" "$A/rt-$s" && cmp -s "$T/ref" "$A/rt-$s" && [ "$(stat -c %s "$A/rt-$s")" = "$s" ] || bad="$bad $s"
done
tv_ok "round trips of $(echo $sizes | wc -w) sizes (0..3 MB, block boundaries) with exact stat sizes${bad:+ (bad:$bad)}" test -z "$bad"
vault_remount
bad=""
for s in $sizes; do
    vault_write_random "$T/ref" "$s" "$s"
    cmp -s "$T/ref" "$A/rt-$s" && [ "$(stat -c %s "$A/rt-$s")" = "$s" ] || bad="$bad $s"
done
tv_ok "all sizes read back after a remount${bad:+ (bad:$bad)}" test -z "$bad"
tv_ok "backing size = 128 + blocks*40 + plaintext" test "$(stat -c %s "$(vault_backing "$A/rt-8193")")" = $((128 + 3*40 + 8193))
tv_ok "empty file is header plus one empty block" test "$(stat -c %s "$(vault_backing "$A/rt-0")")" = 168

# append and O_APPEND
printf 'one\n' > "$A/log.jsonl"; printf 'two\n' >> "$A/log.jsonl"; printf 'three\n' >> "$A/log.jsonl"
tv_ok "appends land in order" test "$(cat "$A/log.jsonl")" = "$(printf 'one\ntwo\nthree')"

# write at offsets beyond the end leaves zeros
"$PY" -c '
import os,sys
fd=os.open(sys.argv[1],os.O_CREAT|os.O_WRONLY,0o644); os.pwrite(fd,b"X",10000); os.pwrite(fd,b"Y",3); os.close(fd)' "$A/holes"
tv_ok "write past the end fills the gap with zeros" "$PY" -c '
import sys; d=open(sys.argv[1],"rb").read(); sys.exit(0 if len(d)==10001 and d[3:4]==b"Y" and d[10000:]==b"X" and d[:3]==b"\0\0\0" and d[4:10000]==bytes(9996) else 1)' "$A/holes"

# truncate down / up, ftruncate
vault_write_random "$T/ref" 20000 7; cp "$T/ref" "$A/tr"
truncate -s 8192 "$A/tr"; head -c 8192 "$T/ref" > "$T/ref2"
tv_ok "truncate to a block boundary keeps the prefix" cmp -s "$T/ref2" "$A/tr"
truncate -s 5000 "$A/tr"; head -c 5000 "$T/ref" > "$T/ref2"
tv_ok "truncate inside a block keeps the prefix" cmp -s "$T/ref2" "$A/tr"
truncate -s 9000 "$A/tr"; { head -c 5000 "$T/ref"; head -c 4000 /dev/zero; } > "$T/ref2"
tv_ok "truncate up appends zeros" cmp -s "$T/ref2" "$A/tr"
truncate -s 0 "$A/tr"
tv_ok "truncate to zero" test "$(stat -c %s "$A/tr")" = 0 -a "$(vault_read_errno "$A/tr")" = OK
"$PY" -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT,0o644); os.write(fd,b"a"*9000); os.ftruncate(fd,4097); os.close(fd)' "$A/ftr"
tv_ok "ftruncate through an open handle" test "$(stat -c %s "$A/ftr")" = 4097
printf 'short' > "$A/otrunc"; vault_write_random "$A/otrunc" 10 1
tv_ok "O_TRUNC reopen replaces the content" test "$(stat -c %s "$A/otrunc")" = 10

# rename-over (tmp-then-rename drop)
printf 'old content\n' > "$A/drop.json"
printf 'new content\n' > "$A/.drop.json.tmp"
mv -f "$A/.drop.json.tmp" "$A/drop.json"
tv_ok "rename over an existing file replaces it" test "$(cat "$A/drop.json")" = "new content"
tv_ok "the temp name is gone" test ! -e "$A/.drop.json.tmp"
mkdir -p "$A/sub/deeper"
printf 'x' > "$A/sub/deeper/f"
mv "$A/sub/deeper/f" "$A/moved"
tv_ok "rename across directories" test "$(cat "$A/moved")" = x -a ! -e "$A/sub/deeper/f"
mv "$A/sub" "$A/sub2"
printf 'y' > "$A/sub2/deeper/g"
tv_ok "renamed directory keeps its entries readable" test "$(cat "$A/sub2/deeper/g")" = y
tv_fails "rename across projects" mv -T --no-copy "$A/moved" "$M/beta/moved" 2>/dev/null
tv_ok "the EXDEV rename left the source" test -e "$A/moved"
tv_ok "rename across projects is EXDEV" "$PY" -c 'import os,sys,errno
try: os.rename(sys.argv[1],sys.argv[2])
except OSError as e: sys.exit(0 if e.errno==errno.EXDEV else 1)
sys.exit(1)' "$A/moved" "$M/beta/moved"

# directories and listing
tv_fails "rmdir of a non-empty directory" rmdir "$A/sub2/deeper" 2>/dev/null
rm "$A/sub2/deeper/g"; rmdir "$A/sub2/deeper"
tv_ok "rmdir of an emptied directory" test ! -e "$A/sub2/deeper"
mkdir "$A/ra" "$A/rb"; printf 'k' > "$A/ra/kept"
tv_ok "rename of a directory over an empty one" sh -c "mv -T '$A/ra' '$A/rb' && test \"\$(cat '$A/rb/kept')\" = k && test ! -e '$A/ra'"
mkdir "$A/rc"; printf 'z' > "$A/rc/full"
tv_fails "rename over a non-empty directory" mv -T "$A/rb" "$A/rc" 2>/dev/null
long=$(printf 'L%.0s' $(seq 1 250)).json
printf 'long' > "$A/$long"
tv_ok "a 255-byte name works and lists" sh -c "test \"\$(cat '$A/$long')\" = long && ls '$A' | grep -qx '$long'"
mv "$A/$long" "$A/short-again"
tv_ok "renaming a long name to a short one leaves no side file" sh -c "test -z \"\$(find '$T/data/alpha' -maxdepth 1 -name '.~*')\""
tv_ok "readdir lists exactly the created names" test "$(ls "$A" | grep -c '^rt-')" = "$(echo $sizes | wc -w)"
tv_ok "project directory names stay plain, nothing else in the mount root" test "$(ls "$M" | tr '\n' ' ')" = "alpha beta "

# metadata
fid=$(getfattr --only-values -n user.tracevault.file_id "$A/moved" 2>/dev/null)
tv_ok "file ID xattr is 32 lowercase hex chars" sh -c "echo '$fid' | grep -Eqx '[0-9a-f]{32}'"
tv_fails "file ID xattr is read-only" setfattr -n user.tracevault.file_id -v 00 "$A/moved" 2>/dev/null
touch -d '2001-02-03 04:05:06' "$A/moved"
tv_ok "utimens sets mtime, mirrored on the backing file" test "$(stat -c %Y "$A/moved")" = "$(date -d '2001-02-03 04:05:06' +%s)" -a "$(stat -c %Y "$(vault_backing "$A/moved")")" = "$(date -d '2001-02-03 04:05:06' +%s)"
tv_fails "symlinks are refused" ln -s moved "$A/sym" 2>/dev/null
tv_fails "hard links are refused" ln "$A/moved" "$A/hard" 2>/dev/null
tv_fails "FIFOs are refused" mkfifo "$A/fifo" 2>/dev/null
tv_fails "a configured project without a key in keyd does not exist" stat "$M/gamma" 2>/dev/null
tv_ok "... and leaves nothing in the backing store" test ! -e "$T/data/gamma"
tv_fails "projects cannot be made through the mount" mkdir "$M/delta" 2>/dev/null
tv_ok "fsync, fsyncdir and statfs work" sh -c "$PY -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDWR); os.fsync(fd); os.close(fd); os.statvfs(sys.argv[1]); d=os.open(os.path.dirname(sys.argv[1]),os.O_RDONLY); os.fsync(d); os.close(d)' '$A/moved'"
kill -TERM "$VAULT_PID"
i=0; while kill -0 "$VAULT_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
tv_ok "SIGTERM unmounts cleanly and the vault exits" sh -c "! mountpoint -q '$M' && ! kill -0 $VAULT_PID 2>/dev/null"
tv_done
