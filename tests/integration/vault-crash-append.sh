#!/bin/bash
# vault-crash-append.sh - kill -9 of the vault while a file is being appended
# to (DESIGN §8): every byte closed before the kill reads back, the file can
# be appended to after the remount, and fsck finds no damage (a torn tail is
# restored from the file's tail journal, docs/FORMAT.md "Crash consistency").
# Then the same with a torn block made by hand (deterministic): the journal
# follows the file through a rename (across directories) and goes with it on
# unlink.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-crash-append
VAULT_PROJECTS=alpha vault_setup <<'CONF'
[project.alpha]
writers = root
readers = root
CONF
# a closed file's journal goes with its cached DEK: make that 1 s
sed -i "s|^\[vault\]|[vault]\ndek_cache_seconds = 1|" "$T/tv.conf"
vault_remount
ROUNDS=16
tv_plan $((ROUNDS * 4 + 18))

# The content of every file is a function of the offset (byte o is o % 251),
# so any prefix can be checked without keeping copies.
cat > "$T/appender.py" <<'PY'
import os, sys
path, log = sys.argv[1], sys.argv[2]
N = 200 * 1024 + 123
pat = bytes(range(251)) * ((N + 502) // 251 + 1)
out = open(log, "a")
while True:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        off = os.fstat(fd).st_size
        data = pat[off % 251:off % 251 + N]
        done = 0
        while done < N:
            done += os.write(fd, data[done:])
        os.close(fd)
    except OSError:
        sys.exit(0)
    out.write("%d\n" % (off + N))        # recorded only after close() returned
    out.flush()
PY
# verify.py PATH CLOSED: read PATH in 4 KiB pieces; every byte matches the
# pattern and at least CLOSED bytes are there.
cat > "$T/verify.py" <<'PY'
import os, sys
path, closed = sys.argv[1], int(sys.argv[2])
pat = bytes(range(251)) * 20
off = 0
try:
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(4096)
            if not b:
                break
            if b != pat[off % 251:off % 251 + len(b)]:
                e = pat[off % 251:off % 251 + len(b)]
                i = next(k for k in range(len(b)) if b[k] != e[k])
                print("content differs at %d (size %d): %s, expected %s" % (off + i,
                      os.fstat(f.fileno()).st_size, b[i:i + 8].hex(), e[i:i + 8].hex()))
                sys.exit(1)
            off += len(b)
except OSError as e:
    print("read error at %d (closed size %d): %s" % (off, closed, e)); sys.exit(1)
if off < closed:
    print("short: %d < closed size %d" % (off, closed)); sys.exit(1)
print("ok %d" % off)
PY
# append1.py PATH: append 123 pattern bytes, check the size grew by 123.
cat > "$T/append1.py" <<'PY'
import os, sys
pat = bytes(range(251)) * 2
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
off = os.fstat(fd).st_size
assert os.write(fd, pat[off % 251:off % 251 + 123]) == 123
os.close(fd)
assert os.stat(sys.argv[1]).st_size == off + 123
PY
# side_files: list the tail journals left in the backing store
side_files() { find "$T/data/alpha/.tvjournal" -type f 2>/dev/null | sort; }

# the delays between start and kill come from a fixed seed
delays=$("$PY" -c 'import random; r=random.Random(8); print(" ".join("%.2f" % r.uniform(0.1, 0.3) for _ in range('$ROUNDS')))')
r=0
for delay in $delays; do
    r=$((r + 1))
    # three appenders, each on a file made (and closed) before it starts, so
    # the kill falls into appends, not into a create
    apids=""
    for w in 1 2 3; do
        "$PY" -c 'import sys; open(sys.argv[1], "wb").write(bytes(range(251)) * 4 + b"\0\1\2")' \
            "$M/alpha/a$r-$w.log"
        echo 1007 > "$T/sizes.$r-$w"
        "$PY" "$T/appender.py" "$M/alpha/a$r-$w.log" "$T/sizes.$r-$w" 2>/dev/null &
        apids="$apids $!"
    done
    sleep "$delay"
    kill -9 "$VAULT_PID"
    for p in $apids; do wait "$p" 2>/dev/null; done
    wait "$VAULT_PID" 2>/dev/null
    fusermount3 -u -z "$T/mnt" 2>/dev/null
    "$VAULT" fsck -c "$T/tv.conf" alpha > "$T/fsck.$r" 2>&1
    tv_ok "round $r: fsck after the kill finds no damage" test "$(grep -c ': damaged' "$T/fsck.$r")" -eq 0
    grep ': damaged' "$T/fsck.$r" | sed 's/^/# /'
    grep -c 'torn tail, restorable' "$T/fsck.$r" >> "$T/torn"
    tv_start_vault || vault_bail "remount after kill -9 (round $r)"
    ok=0 app=0 again=0 closed=""
    for w in 1 2 3; do
        f="$M/alpha/a$r-$w.log"
        c=$(tail -1 "$T/sizes.$r-$w"); closed="$closed $c"
        "$PY" "$T/verify.py" "$f" "$c" > "$T/verify.$r-$w" && ok=$((ok + 1))
        grep -v '^ok' "$T/verify.$r-$w" | sed "s/^/# a$r-$w: /"
        "$PY" "$T/append1.py" "$f" 2>/dev/null && app=$((app + 1))
        "$PY" "$T/verify.py" "$f" "$((c + 123))" > /dev/null && again=$((again + 1))
        rm -f "$f"
    done
    tv_ok "round $r: all closed bytes read back (closed sizes$closed)" test $ok -eq 3
    tv_ok "round $r: each file can be appended to after the remount" test $app -eq 3
    tv_ok "round $r: reads back after that append, and unlink leaves no journal" \
        sh -c "test $again -eq 3 && test -z \"\$(find '$T/data/alpha/.tvjournal' -type f)\""
done
tv_diag "fsck found torn tails (restorable) after $(grep -vc '^0' "$T/torn") of $ROUNDS kills"

# ---- a torn tail made by hand --------------------------------------------
# tear NAME: append twice to NAME through one descriptor that stays open, kill
# the vault with the file open (its journal then describes the second
# append), and overwrite the second half of the old last block in the backing
# file with garbage, as an interrupted rewrite leaves it.  Prints the size
# before the second append (what the file must come back as).
tear() {
    "$PY" - "$M/alpha/$1" "$T/hold.$1" <<'PY' &
import os, sys, time
pat = bytes(range(251)) * 100
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, pat[:5000])                  # blocks 0 (full) and 1 (904 bytes)
os.write(fd, pat[5000 % 251:5000 % 251 + 3000])
open(sys.argv[2], "w").write("held\n")
time.sleep(60)
PY
    hold=$!
    tv_wait_for "$T/hold.$1"; sleep 0.2
    b=$(vault_backing "$M/alpha/$1")
    kill -9 "$VAULT_PID"
    kill "$hold" 2>/dev/null
    wait "$hold" 2>/dev/null
    wait "$VAULT_PID" 2>/dev/null
    fusermount3 -u -z "$T/mnt" 2>/dev/null
    # the state of a kill during the second append's pwrite: its journal
    # record still valid (a completed rewrite voids it), block 1 (now 3904
    # bytes, [4264, 8208)) with its part in the third page, the tag, old
    j="$T/data/alpha/.tvjournal/$(xxd -s 8 -l 16 -p "$b")"
    printf TVJ1 | dd of="$j" bs=1 conv=notrunc status=none
    dd if=/dev/urandom of="$b" bs=1 seek=8192 count=16 conv=notrunc status=none
    echo 5000
}

s=$(tear r.log)
tv_ok "a journal exists for the file killed while open" test -n "$(side_files)"
"$VAULT" fsck -c "$T/tv.conf" alpha > "$T/fsck.tear" 2>&1
tv_ok "fsck reports the torn tail as restorable, not damaged" \
    sh -c "grep -q 'r.log: torn tail' '$T/fsck.tear' && ! grep -q ': damaged' '$T/fsck.tear'"
tv_start_vault || vault_bail "remount after the tear"
mkdir "$M/alpha/sub"
tv_ok "rename of the torn file into another directory" mv "$M/alpha/r.log" "$M/alpha/sub/moved.log"
"$PY" "$T/verify.py" "$M/alpha/sub/moved.log" "$s" > "$T/verify.r"
tv_ok "after the rename the file reads back as before the torn append ($(cat "$T/verify.r"))" \
    grep -qx "ok $s" "$T/verify.r"
tv_ok "... and can be appended to" "$PY" "$T/append1.py" "$M/alpha/sub/moved.log"
"$PY" "$T/verify.py" "$M/alpha/sub/moved.log" "$((s + 123))" > "$T/verify.r2"
tv_ok "... and reads back with that append" grep -qx "ok $((s + 123))" "$T/verify.r2"
no_journal_soon() { for i in $(seq 40); do [ -z "$(side_files)" ] && return 0; sleep 0.1; done; return 1; }
tv_ok "no journal is left once the closed file's DEK leaves the cache" no_journal_soon

s=$(tear u.log)
tv_ok "a journal exists for the second torn file" test -n "$(side_files)"
tv_start_vault || vault_bail "remount after the second tear"
# the kernel caches the size a lookup reports and would not ask again
# before reading below it: the lookup must already see the restored size
tv_ok "the size the first lookup reports is the restored one" test "$(stat -c %s "$M/alpha/u.log")" = "$s"
"$PY" "$T/verify.py" "$M/alpha/u.log" "$s" > "$T/verify.u"
tv_ok "and the file reads back exactly that" grep -qx "ok $s" "$T/verify.u"
tv_ok "unlink of a restored file" rm "$M/alpha/u.log"
tv_ok "the unlink took the journal along (no orphan side file)" test -z "$(side_files)"

# unlink while the file is open for writing: the journal goes too
"$PY" - "$M/alpha/o.log" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, b"x" * 5000)
os.write(fd, b"y" * 100)
os.unlink(sys.argv[1])
os.write(fd, b"z" * 100)
os.close(fd)
PY
tv_ok "unlink of a file open for writing leaves no journal" test -z "$(side_files)"
# a journal next to a file written a moment ago (the vault keeps it while
# the DEK is cached) holds a voided record: damage to the file is damage
"$PY" -c 'import sys, time; f = open(sys.argv[1], "rb"); time.sleep(10)' "$M/alpha/sub/moved.log" &
holder=$!                               # keeps the open state, so the journal
"$PY" "$T/append1.py" "$M/alpha/sub/moved.log"
b=$(vault_backing "$M/alpha/sub/moved.log")
tv_ok "the file just written has its journal" test -n "$(side_files)"
"$PY" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(4264 + 100); c = f.read(1); f.seek(4264 + 100); f.write(bytes([c[0] ^ 1]))' "$b"
"$VAULT" fsck -c "$T/tv.conf" alpha > "$T/fsck.flip" 2>&1
tv_ok "a flipped byte in it is damage for fsck, not a restorable tail" \
    sh -c "grep -q 'moved.log: damaged' '$T/fsck.flip' && ! grep -q ': torn tail' '$T/fsck.flip'"
grep -v '^fsck:' "$T/fsck.flip" | sed 's/^/# /'
kill "$holder"; wait "$holder" 2>/dev/null
rm "$M/alpha/sub/moved.log"
# a clean unmount leaves no journal at rest, even for a file just written
"$PY" -c 'import sys; open(sys.argv[1], "wb").write(bytes(range(251)) * 20)' "$M/alpha/sub/moved.log"
"$PY" "$T/append1.py" "$M/alpha/sub/moved.log"
tv_ok "a file just written has its journal" test -n "$(side_files)"
vault_remount
tv_ok "a clean unmount removes it" test -z "$(side_files)"
"$VAULT" fsck -c "$T/tv.conf" alpha > "$T/fsck.end" 2>&1
tv_ok "fsck at the end is clean" grep -q ' 0 damaged, 0 errors' "$T/fsck.end"
tv_done
