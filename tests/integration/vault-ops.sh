#!/bin/bash
# vault-ops.sh - a seeded random-operations test (write/append/truncate/read
# at random offsets, reopen, thousands of ops) against a plain reference
# file, and 4 processes appending JSON lines concurrently to one file with
# O_APPEND: every write lands whole, none is lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-ops
VAULT_PROJECTS=alpha vault_setup <<'CONF'
[project.alpha]
writers = root
readers = root
CONF
tv_plan 6
SEED=${VAULT_SEED:-$(date +%s)}
tv_diag "seed $SEED (rerun with VAULT_SEED=$SEED)"

cat > "$T/randops.py" <<'PY'
import os, random, sys
seed, vpath, rpath, nops = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
r = random.Random(seed)
def opn(p, extra=0):
    return os.open(p, os.O_RDWR | os.O_CREAT | extra, 0o644)
v, ref = opn(vpath), opn(rpath)
size = 0
counts = {}
for i in range(nops):
    op = r.choice(["write", "write", "append", "truncate", "read", "read", "reopen", "bigwrite"])
    counts[op] = counts.get(op, 0) + 1
    if op in ("write", "bigwrite"):
        off = r.randrange(0, size + 9000)
        n = r.randrange(0, 9000) if op == "write" else r.randrange(60000, 300000)
        data = r.randbytes(n)
        assert os.pwrite(v, data, off) == n, ("short write", i)
        os.pwrite(ref, data, off)
        size = max(size, off + n) if n else size
    elif op == "append":
        data = r.randbytes(r.randrange(1, 5000))
        a = os.open(vpath, os.O_WRONLY | os.O_APPEND)
        os.write(a, data); os.close(a)
        os.lseek(ref, 0, os.SEEK_END); os.write(ref, data)
        size += len(data)
    elif op == "truncate":
        n = r.choice([0, r.randrange(0, size + 10000), (size // 4096) * 4096, size + 4096])
        os.ftruncate(v, n); os.ftruncate(ref, n); size = n
    elif op == "read":
        off = r.randrange(0, size + 100); n = r.randrange(0, 70000)
        a, b = os.pread(v, n, off), os.pread(ref, n, off)
        if a != b:
            print("mismatch at op %d read off=%d n=%d" % (i, off, n)); sys.exit(1)
    elif op == "reopen":
        os.close(v); v = opn(vpath)
    if os.fstat(v).st_size != size:
        print("size mismatch at op %d (%s): %d vs %d" % (i, op, os.fstat(v).st_size, size)); sys.exit(1)
os.close(v); os.close(ref)
if open(vpath, "rb").read() != open(rpath, "rb").read():
    print("final content differs"); sys.exit(1)
print("# ops:", counts, "final size", size)
PY
tv_ok "3000 seeded random ops match a reference file" "$PY" "$T/randops.py" "$SEED" "$M/alpha/random.bin" "$T/reference.bin" 3000
vault_remount
tv_ok "content still matches the reference after a remount" cmp -s "$M/alpha/random.bin" "$T/reference.bin"
tv_ok "a second seed, on a fresh file" "$PY" "$T/randops.py" "$((SEED + 1))" "$M/alpha/random2.bin" "$T/reference2.bin" 1500

cat > "$T/appender.py" <<'PY'
import json, os, random, sys
path, w, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(w)
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(n):
    line = json.dumps({"writer": w, "seq": i, "pad": "x" * r.randrange(0, 6000)}) + "\n"
    b = line.encode()
    assert os.write(fd, b) == len(b)
os.close(fd)
PY
pids=""
for w in 1 2 3 4; do "$PY" "$T/appender.py" "$M/alpha/shared.jsonl" $w 400 & pids="$pids $!"; done
for p in $pids; do wait "$p"; done
cat > "$T/check.py" <<'PY'
import json, sys
seen = {1: [], 2: [], 3: [], 4: []}
bad = 0
for line in open(sys.argv[1], "rb"):
    try:
        o = json.loads(line)
        seen[o["writer"]].append(o["seq"])
    except Exception:
        bad += 1
ok = bad == 0 and all(seen[w] == list(range(400)) for w in seen)
print("# bad lines %d, per writer %s" % (bad, [len(seen[w]) for w in seen]))
sys.exit(0 if ok else 1)
PY
tv_ok "4 concurrent O_APPEND writers: 1600 whole lines, none lost, each writer in order" "$PY" "$T/check.py" "$M/alpha/shared.jsonl"
vault_remount
tv_ok "the shared file reads back the same after a remount" "$PY" "$T/check.py" "$M/alpha/shared.jsonl"
tv_ok "fsck finds the project clean" "$VAULT" fsck -c "$T/tv.conf" alpha
tv_done
