#!/bin/sh
# tracevault-retention in the backing store (vault not mounted): exactly the
# expired regular files disappear, per project policy; dot metadata, side files
# of kept files, symlink targets outside the project and young files survive;
# odd names are handled; dry run changes nothing; the lock makes overlapping
# runs do nothing (exit 3); usage and failure exit codes.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init retention-backing
[ -x "$RETENTION" ] || tv_skip_all "tracevault-retention not built"
tv_plan 33

tv_write_conf <<'CONF'
[project.alpha]
retention_days = 30
[project.beta]
retention_days = 60
[project.keep]
retention_days = 0
[project.gamma]
retention_days = 30
[project.ghost]
retention_days = 30
CONF
C="$T/tv.conf"
D="$T/data"

# Build the tree.  Each spec line: AGE_DAYS PATH (PATH relative to $T, may hold
# spaces; "\n" in it is a newline).  Sizes are distinct so byte sums are exact.
$PY - "$T" <<'PY'
import os, sys, time
T = sys.argv[1]
now = time.time()
size = 100
def mk(age, rel, kind="file", target=None):
    global size
    p = os.path.join(T, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if kind == "file":
        with open(p, "wb") as f:
            f.write(b"x" * size)
        size += 1
    elif kind == "dir":
        os.makedirs(p, exist_ok=True)
    elif kind == "link":
        os.symlink(target, p)
    t = now - age * 86400
    os.utime(p, (t, t), follow_symlinks=False)
for age, rel in [
    (10, "data/alpha/new.json"), (40, "data/alpha/mid.json"), (90, "data/alpha/old.json"),
    (40, "data/alpha/sp ace 40.json"), (40, "data/alpha/nl\nname.jsonl"),
    (90, "data/alpha/-rf 90.json"), (10, "data/alpha/--dash10.json"),
    (90, "data/alpha/.meta"), (90, "data/alpha/.mid.json.name"), (90, "data/alpha/.mid.json.x y"),
    (90, "data/alpha/.new.json.name"), (90, "data/alpha/.mid.jsonX"),
    (90, "data/alpha/sub/deep/old90.json"), (10, "data/alpha/sub/new10.json"),
    (40, "data/alpha/sub/mid40.json"),
    (90, "data/alpha/emptyold/a/b/old.json"), (90, "data/alpha/.emptyold.name"),
    (90, "data/alpha/.hidden/old.json"),
    (90, "data/alpha/.tvproject"), (90, "data/alpha/.tvdir"), (90, "data/alpha/sub/.tvdir"),
    (90, "data/alpha/sub/deep/.tvdir"), (90, "data/alpha/emptyold/.tvdir"),
    (90, "data/alpha/emptyold/a/.tvdir"), (90, "data/alpha/emptyold/a/b/.tvdir"),
    (90, "data/alpha/dotsub/old.json"), (90, "data/alpha/dotsub/.tvdir"),
    (90, "data/alpha/dotsub/.cache/x"),
    (90, "data/beta/b90.json"), (40, "data/beta/b40.json"), (10, "data/beta/b10.json"),
    (90, "data/keep/k90.json"), (90, "data/gamma/g90.json"), (10, "data/gamma/g10.json"),
    (90, "outside/victim.json"), (90, "outside/dir/victim2.json"),
]:
    mk(age, rel)
mk(90, "data/alpha/fresh-empty", "dir")
mk(90, "data/alpha/link-dir", "link", os.path.join(T, "outside/dir"))
mk(90, "data/alpha/link-file.json", "link", os.path.join(T, "outside/victim.json"))
mk(90, "data/alpha/sub/link-up", "link", "../..")
PY

# listing DIR: every entry below DIR (relative, repr-escaped), one per line, sorted.
listing() {
    $PY - "$1" <<'PY'
import os, sys
top = sys.argv[1]
out = []
for root, dirs, files in os.walk(top):
    for n in dirs + files:
        out.append(repr(os.path.relpath(os.path.join(root, n), top)))
print("\n".join(sorted(out)))
PY
}
# snapshot: listing plus mtimes and sizes of everything under $T/data and $T/outside.
snapshot() {
    $PY - "$T" <<'PY'
import os, sys
T = sys.argv[1]
for top in ("data", "outside"):
    for root, dirs, files in os.walk(os.path.join(T, top)):
        for n in sorted(dirs + files):
            p = os.path.join(root, n)
            st = os.lstat(p)
            print(repr(os.path.relpath(p, T)), st.st_mode, st.st_size, int(st.st_mtime))
PY
}
# bytes of the named files (relative to $T), summed.
sizes() {
    $PY - "$T" "$@" <<'PY'
import os, sys
print(sum(os.lstat(os.path.join(sys.argv[1], p.replace("\\n", "\n"))).st_size for p in sys.argv[2:]))
PY
}
field() {  # field KEY LINE
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# --- usage and version ----------------------------------------------------
tv_ok "--version prints NAME (tracevault) VERSION" \
    sh -c '"$1" --version | grep -qx "tracevault-retention (tracevault) [0-9.]*"' _ "$RETENTION"
tv_ok "--help exits 0 and documents the exit codes" \
    sh -c '"$1" --help | grep -q "3 another run in progress"' _ "$RETENTION"
"$RETENTION" --bogus >/dev/null 2>&1; rc=$?
tv_ok "an unknown option exits 2 (got $rc)" test "$rc" -eq 2
"$RETENTION" -c "$C" stray >/dev/null 2>&1; rc=$?
tv_ok "a stray argument exits 2 (got $rc)" test "$rc" -eq 2
"$RETENTION" -c "$C" --project nope >/dev/null 2>"$T/err"; rc=$?
tv_ok "an unknown project exits 2 and names it (got $rc)" \
    sh -c 'test "$1" -eq 2 && grep -q "project \"nope\"" "$2"' _ "$rc" "$T/err"
"$RETENTION" -c "$T/missing.conf" >/dev/null 2>&1; rc=$?
tv_ok "a missing configuration file exits 1 (got $rc)" test "$rc" -eq 1

# --- dry run ----------------------------------------------------------------
snapshot > "$T/before"
"$RETENTION" -c "$C" --dry-run --no-syslog >"$T/dry.out" 2>"$T/dry.err"; rc=$?
snapshot > "$T/after"
tv_ok "dry run exits 0 (got $rc)" test "$rc" -eq 0
tv_ok "dry run changes nothing (names, sizes, mtimes)" cmp -s "$T/before" "$T/after"
adry=$(grep '^project=alpha ' "$T/dry.out")
tv_ok "dry run counts alpha's 9 expired files and says dry_run ($adry)" \
    sh -c 'test "$(echo "$1" | grep -c "dry_run=yes files=9 ")" -eq 1' _ "$adry"

# --- one project ------------------------------------------------------------
expect_bytes=$(sizes data/alpha/mid.json data/alpha/old.json "data/alpha/sp ace 40.json" \
    'data/alpha/nl\nname.jsonl' "data/alpha/-rf 90.json" data/alpha/sub/deep/old90.json \
    data/alpha/sub/mid40.json data/alpha/emptyold/a/b/old.json \
    data/alpha/dotsub/old.json \
    data/alpha/.mid.json.name "data/alpha/.mid.json.x y" data/alpha/.emptyold.name \
    data/alpha/sub/deep/.tvdir data/alpha/emptyold/.tvdir data/alpha/emptyold/a/.tvdir \
    data/alpha/emptyold/a/b/.tvdir)
"$RETENTION" -c "$C" --project alpha --no-syslog -v >"$T/a.out" 2>"$T/a.err"; rc=$?
tv_ok "--project alpha exits 0 (got $rc)" test "$rc" -eq 0
tv_ok "--project alpha prints exactly one summary line" \
    test "$(grep -c '^project=' "$T/a.out")" -eq 1
aline=$(grep '^project=alpha ' "$T/a.out")
tv_ok "summary: 9 files, 4 directories, 0 errors, via backing ($aline)" \
    sh -c 'echo "$1" | grep -q "^project=alpha via=backing retention_days=30 files=9 bytes=[0-9]* dirs=4 errors=0$"' _ "$aline"
tv_ok "summary bytes = files + side files removed ($expect_bytes)" \
    test "$(field bytes "$aline")" = "$expect_bytes"
cat > "$T/alpha.expect" <<'EOF'
'--dash10.json'
'.hidden'
'.hidden/old.json'
'.meta'
'.mid.jsonX'
'.new.json.name'
'.tvdir'
'.tvproject'
'dotsub'
'dotsub/.cache'
'dotsub/.cache/x'
'dotsub/.tvdir'
'fresh-empty'
'link-dir'
'link-file.json'
'new.json'
'sub'
'sub/.tvdir'
'sub/link-up'
'sub/new10.json'
EOF
# (.emptyold.name went with its directory: it is that directory's side file.)
listing "$D/alpha" > "$T/alpha.got"
tv_ok "alpha holds exactly the young files, dot metadata of kept dirs, links and untouched dirs" \
    cmp -s "$T/alpha.expect" "$T/alpha.got"
[ -n "${TV_VERBOSE:-}" ] && diff "$T/alpha.expect" "$T/alpha.got" | sed 's/^/# /'
tv_ok "the newline name is reported escaped in -v output" grep -q 'removed alpha/nl\\012name.jsonl' "$T/a.out"
tv_ok "symlinked file target outside the project survives" test -f "$T/outside/victim.json"
tv_ok "files behind a symlinked directory survive" test -f "$T/outside/dir/victim2.json"
tv_ok "the symlinks themselves are not removed" \
    sh -c 'test -L "$1/alpha/link-dir" && test -L "$1/alpha/link-file.json" && test -L "$1/alpha/sub/link-up"' _ "$D"
tv_ok "other projects untouched by --project alpha" \
    sh -c 'test -f "$1/gamma/g90.json" && test -f "$1/beta/b90.json"' _ "$D"

# --- every project --------------------------------------------------------
"$RETENTION" -c "$C" >"$T/all.out" 2>"$T/all.err"; rc=$?
tv_ok "full run exits 0 (got $rc)" test "$rc" -eq 0
tv_ok "one summary line per configured project (5)" test "$(grep -c '^project=' "$T/all.out")" -eq 5
tv_ok "beta (60 days) loses only its 90-day file" \
    sh -c 'test "$(ls "$1/beta" | tr "\n" " ")" = "b10.json b40.json "' _ "$D"
tv_ok "keep (retention_days = 0) keeps its 90-day file and reports 0" \
    sh -c 'test -f "$1/keep/k90.json" && grep -q "^project=keep via=backing retention_days=0 files=0 bytes=0" "$2"' _ "$D" "$T/all.out"
tv_ok "gamma expired now" sh -c 'test ! -e "$1/gamma/g90.json" && test -f "$1/gamma/g10.json"' _ "$D"
tv_ok "a project without a directory is reported with 0 and no error" \
    grep -q '^project=ghost via=backing retention_days=30 files=0 bytes=0 dirs=0 errors=0$' "$T/all.out"
tv_ok "alpha unchanged by the second pass (files=0)" grep -q '^project=alpha .* files=0 ' "$T/all.out"
tv_ok "nothing on stderr" test ! -s "$T/all.err"

# --- one run at a time ----------------------------------------------------
touch -d '100 days ago' "$D/beta/late.json"
# The holder is one process (flock(1) would leave its child holding the lock).
$PY -c 'import fcntl, sys, time
f = open(sys.argv[1], "w"); fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close(); time.sleep(30)' "$T/run/retention.lock" "$T/held" &
HOLDER=$!
tv_defer "kill $HOLDER 2>/dev/null"
tv_wait_for "$T/held" 10
"$RETENTION" -c "$C" >"$T/lk.out" 2>"$T/lk.err"; rc=$?
tv_ok "a run while another holds the lock exits 3 (got $rc)" test "$rc" -eq 3
tv_ok "... says so and removes nothing" \
    sh -c 'grep -q "another run holds" "$1" && test -f "$2/beta/late.json" && test ! -s "$3"' _ "$T/lk.err" "$D" "$T/lk.out"
kill $HOLDER; wait $HOLDER 2>/dev/null

# Two real runs at once over many expired files: each exits 0 or 3, nothing
# is left and nothing fails.
mkdir -p "$D/beta/many"
i=0; while [ $i -lt 400 ]; do : > "$D/beta/many/f$i.json"; i=$((i + 1)); done
touch -d '100 days ago' "$D"/beta/many/*
"$RETENTION" -c "$C" --no-syslog >"$T/c1.out" 2>"$T/c1.err" & P1=$!
"$RETENTION" -c "$C" --no-syslog >"$T/c2.out" 2>"$T/c2.err" & P2=$!
wait $P1; r1=$?; wait $P2; r2=$?
tv_ok "concurrent runs exit 0 or 3 ($r1, $r2)" \
    sh -c 'case "$1$2" in 00|03|30) exit 0;; *) exit 1;; esac' _ "$r1" "$r2"
tv_ok "... and together removed all 401 expired files and the emptied dir" \
    sh -c 'test ! -e "$1/beta/many" && test ! -e "$1/beta/late.json" && test "$(cat "$2" "$3" | sed -n "s/^project=beta .* files=\([0-9]*\) .*/\1/p" | awk "{s+=\$1} END {print s+0}")" -eq 401' _ "$D" "$T/c1.out" "$T/c2.out"

# --- failures are reported with exit 1 ----------------------------------
touch -d '100 days ago' "$D/gamma/old2.json"
chattr +i "$D/gamma" 2>/dev/null && tv_defer "chattr -i '$D/gamma'"
if lsattr -d "$D/gamma" 2>/dev/null | cut -d' ' -f1 | grep -q i; then
    "$RETENTION" -c "$C" --no-syslog >"$T/f.out" 2>"$T/f.err"; rc=$?
    chattr -i "$D/gamma"
    tv_ok "an entry that cannot be removed: exit 1, errors=1, the error names it (got $rc)" \
        sh -c 'test "$1" -eq 1 && grep -q "^project=gamma .* files=0 .* errors=1$" "$2" && grep -q "gamma/old2.json: cannot remove" "$3" && grep -q "^project=beta .* errors=0$" "$2"' _ "$rc" "$T/f.out" "$T/f.err"
else
    # No immutable flag on this filesystem: an unprivileged run fails instead.
    U=$(tv_add_user ret) || U=""
    mkdir -p "$T/ulock"; [ -n "$U" ] && chown "$U" "$T/ulock"
    sed "s#^lock_file .*#lock_file = $T/ulock/retention.lock#" "$C" > "$T/u.conf"
    chmod 0644 "$T/u.conf"
    tv_as "$U" "$RETENTION" -c "$T/u.conf" --no-syslog >"$T/f.out" 2>"$T/f.err"; rc=$?
    tv_ok "an entry that cannot be removed: exit 1, errors=1, the error names it (got $rc)" \
        sh -c 'test "$1" -eq 1 && grep -q "^project=gamma .* files=0 .* errors=1$" "$2" && grep -q "gamma/old2.json: cannot remove" "$3"' _ "$rc" "$T/f.out" "$T/f.err"
fi

# Summary lines reach syslog (facility daemon, tag tracevault-retention): run
# in a private mount namespace whose /dev/log is a socket this test reads.
cat > "$T/syslog.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.settimeout(2)
open(sys.argv[1], "w").close()
with open(sys.argv[2], "wb") as out:
    try:
        while True:
            out.write(s.recv(65536) + b"\n")
    except socket.timeout:
        pass
PY
if unshare -m sh -c 'mount -t tmpfs tvdev /dev' 2>/dev/null; then
    unshare -m sh -c '
        mount -t tmpfs tvdev /dev && mknod -m 0666 /dev/null c 1 3 || exit 1
        "$1" "$2/syslog.py" "$2/syslog.ready" "$2/syslog.txt" & L=$!
        i=0; while [ ! -e "$2/syslog.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
        "$3" -c "$4" --dry-run >/dev/null 2>&1
        wait $L' _ "$PY" "$T" "$RETENTION" "$C"
    tv_ok "one syslog line per project, facility daemon, info, tagged tracevault-retention" \
        sh -c 'test "$(grep -c "^<30>.*tracevault-retention\[[0-9]*\]: project=[a-z]* via=backing " "$1")" -eq 5 &&
               grep -q "^<30>.*tracevault-retention\[[0-9]*\]: project=alpha via=backing retention_days=30 dry_run=yes files=0 " "$1"' _ "$T/syslog.txt"
    [ -f "$T/syslog.txt" ] && head -3 "$T/syslog.txt" | sed 's/^/# syslog: /'
else
    _tv_n=$((_tv_n + 1)); echo "ok $_tv_n # SKIP cannot make a private /dev here"
fi
tv_done
