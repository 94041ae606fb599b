#!/bin/bash
# vault-crash.sh - kill -9 of the vault under 4 concurrent writers; after a
# remount every file closed before the kill reads back intact (checked
# against the SHA-256 the writer recorded after close()).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-crash
VAULT_PROJECTS=alpha vault_setup <<'CONF'
[project.alpha]
writers = root
readers = root
CONF
tv_plan 5
mkdir "$M/alpha/w"
cat > "$T/writer.py" <<'PY'
import hashlib, os, random, sys
d, w, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = random.Random(w)
i = 0
while True:
    name = "%s/w%d-%d.jsonl" % (d, w, i)
    data = r.randbytes(r.choice([100, 2048, 4096, 5000, 70000, 300000]))
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for k in range(0, len(data), 8192):
            os.write(fd, data[k:k + 8192])
        os.close(fd)
    except OSError:
        sys.exit(0)
    with open(log, "a") as f:          # recorded only after close() returned
        f.write("%s %s\n" % (name, hashlib.sha256(data).hexdigest()))
    i += 1
PY
pids=""
for w in 1 2 3 4; do "$PY" "$T/writer.py" "$M/alpha/w" $w "$T/closed.$w" 2>/dev/null & pids="$pids $!"; done
sleep 2
kill -9 "$VAULT_PID"
for p in $pids; do wait "$p" 2>/dev/null; done
fusermount3 -u -z "$T/mnt" 2>/dev/null
cat "$T"/closed.* > "$T/closed"
n=$(wc -l < "$T/closed")
tv_ok "writers closed files before the kill ($n)" test "$n" -ge 20
tv_start_vault || vault_bail "remount after kill -9"
"$PY" - "$T/closed" > "$T/verify.out" <<'PY'
import hashlib, sys
bad = 0
for line in open(sys.argv[1]):
    name, h = line.split()
    try:
        if hashlib.sha256(open(name, "rb").read()).hexdigest() != h:
            bad += 1; print("# differs:", name)
    except OSError as e:
        bad += 1; print("# unreadable:", name, e)
print("bad", bad)
PY
tv_ok "every file closed before the kill reads back intact" grep -qx "bad 0" "$T/verify.out"
grep '^#' "$T/verify.out" | head -5
total=$(ls "$M/alpha/w" | wc -l)
tv_ok "the directory lists every closed file (and at most 4 in flight): $total" test "$total" -ge "$n" -a "$total" -le $((n + 4))
"$VAULT" fsck -c "$T/tv.conf" alpha > "$T/fsck.out" 2>&1
tv_ok "fsck reports at most the 4 files in flight" test "$(grep -c ': damaged' "$T/fsck.out")" -le 4
tv_ok "new files can be written after the crash" sh -c "printf ok > '$M/alpha/after' && test \"\$(cat '$M/alpha/after')\" = ok"
tv_done
