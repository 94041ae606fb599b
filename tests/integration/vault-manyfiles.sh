#!/bin/bash
# vault-manyfiles.sh - the vault's descriptors are bounded whatever the
# number of files the kernel remembers (issue 11): under an open-file limit
# of 1024 (soft and hard), 200,000 files are created in 200 directories and
# read back, every one intact, while the kernel still knows them all; the
# vault never holds more descriptors than its budget allows (half the limit
# for unused vnodes, an eighth of that for closed files whose state is kept,
# three each, and the few of its own), and never fails with EMFILE.  Descriptors closed under the limit are
# reopened from file handles (open_by_handle_at).  fsck checks them all
# with one keyd request per batch of files.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-manyfiles
tv_need_root
tv_need_fuse
[ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "vault or keyd not built"
command -v prlimit >/dev/null || tv_skip_all "no prlimit"
N=${TV_MANYFILES:-200000}
tv_write_conf <<'CONF'
[project.alpha]
writers = root
readers = root
CONF
tv_start_keyd || vault_bail "keyd did not start"
"$KEYCTL" -c "$T/tv.conf" create alpha >/dev/null || vault_bail "keyctl create"
prlimit --nofile=1024:1024 "$VAULT" -c "$T/tv.conf" -f >>"$T/vault.log" 2>&1 &
VAULT_PID=$!
tv_defer "fusermount3 -u -z '$T/mnt'; kill $VAULT_PID; wait $VAULT_PID"
i=0
while ! mountpoint -q "$T/mnt"; do
    i=$((i + 1)); [ $i -gt 200 ] && vault_bail "vault did not mount"
    sleep 0.05
done
tv_plan 6
fds() { ls "/proc/$VAULT_PID/fd" | wc -l; }
cat > "$T/many.py" <<'PY'
import multiprocessing as mp, os, sys
root, n, op = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def work(w):
    bad = 0
    for i in range(w, n, 4):
        p = "%s/d%03d/t%06d.json" % (root, i % 200, i)
        body = b'{"n":%d}\n' % i
        try:
            if op == "create":
                with open(p, "wb") as f:
                    f.write(body)
            elif open(p, "rb").read() != body:
                bad += 1
        except OSError as e:
            bad += 1
            if bad < 3:
                print("#", p, e, flush=True)
    return bad
if op == "create":
    for d in range(200):
        os.makedirs("%s/d%03d" % (root, d), exist_ok=True)
with mp.Pool(4) as pool:
    print(sum(pool.map(work, range(4))))
PY
peak=0
( while kill -0 $VAULT_PID 2>/dev/null; do fds; sleep 0.5; done ) > "$T/fds" &
watcher=$!
tv_defer "kill $watcher 2>/dev/null"
t0=$(date +%s)
bad=$("$PY" "$T/many.py" "$T/mnt/alpha" "$N" create | tail -1)
t1=$(date +%s)
tv_ok "$N files created under a limit of 1024 descriptors ($bad failed, $((t1 - t0)) s)" test "$bad" = 0
bad=$("$PY" "$T/many.py" "$T/mnt/alpha" "$N" read | tail -1)
t2=$(date +%s)
tv_ok "all $N read back intact while the kernel remembers them ($bad failed, $((t2 - t1)) s)" \
    test "$bad" = 0
kill $watcher 2>/dev/null
peak=$(sort -n "$T/fds" | tail -1)
tv_diag "the vault's descriptors: at most $peak (sampled every 0.5 s), $(fds) now"
tv_ok "the vault never held more than its budget: 512 + 3 x 64 + a few (peak $peak)" test "$peak" -le 768
tv_ok "no EMFILE in the vault's log" sh -c "! grep -qi 'too many open files' '$T/vault.log'"
unwraps() { grep -c 'op=UNWRAP ' "$T/log/keyd-audit.log"; }
u0=$(unwraps); t0=$(date +%s)
tv_ok "fsck is clean" sh -c "'$VAULT' fsck -c '$T/tv.conf' alpha >/dev/null 2>&1"
u1=$(unwraps); t1=$(date +%s)
# one keyd request (and audit record, each made durable) per batch of up to
# 512 files, not one per file: 200,000 files took 12 minutes one by one
tv_ok "fsck unwraps the keys in batches ($((u1 - u0)) UNWRAP requests for $N files, $((t1 - t0)) s)" \
    test $((u1 - u0)) -le $((N / 100 + 400))
tv_done
