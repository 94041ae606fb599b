#!/bin/sh
# tracevault-retention through the vault's mount: with the vault mounted,
# expired files are removed through it (the vault audits every unlink as
# uid 0, a maintainer that cannot read), exactly the expired ones, odd names
# included, and they are gone from the backing store too.  A user who is not
# a maintainer removes nothing; a dead mount or a foreign filesystem at the
# mountpoint makes the run fail instead of deleting behind it.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init retention-mount
tv_need_root
tv_need_fuse
for b in "$RETENTION" "$KEYD" "$KEYCTL" "$VAULT"; do
    [ -x "$b" ] || tv_skip_all "$(basename "$b") not built"
done
# Root writes the test files; a separate user reads; retention (root, the
# default maintainer) must never need to read.
RD=$(tv_add_user rd) || tv_skip_all "cannot add a test user"
tv_write_conf <<CONF
[project.alpha]
writers = root
readers = $RD
retention_days = 30
[project.beta]
writers = root
retention_days = 60
[project.keep]
writers = root
retention_days = 0
CONF
bail() {
    echo "Bail out! $*"
    tail -20 "$T/keyd.log" "$T/vault.log" 2>/dev/null | sed 's/^/# /'
    exit 1
}
tv_start_keyd || bail "keyd did not start"
for p in alpha beta keep; do
    "$KEYCTL" -c "$T/tv.conf" create "$p" >/dev/null || bail "keyctl create $p"
done
tv_start_vault || bail "the vault did not mount"
M="$T/mnt"
tv_plan 20
C="$T/tv.conf"
A="$M/alpha"
nl='nl
name.jsonl'

mk() {  # mk AGE_DAYS PATH: a file with a line of content, aged
    mkdir -p "$(dirname "$2")" && printf '{"n":"%s"}\n' "$1" > "$2" && touch -d "$1 days ago" -- "$2"
}
mk 10 "$A/new.json"; mk 40 "$A/mid.json"; mk 90 "$A/old.json"
mk 40 "$A/sp ace 40.json"; mk 40 "$A/$nl"; mk 90 "$A/-rf 90.json"; mk 10 "$A/--dash10.json"
mk 90 "$A/sub/deep/old90.json"; mk 10 "$A/sub/new10.json"; mk 90 "$A/emptyold/a/old.json"
mkdir "$A/fresh-empty"
mk 90 "$M/beta/b90.json"; mk 40 "$M/beta/b40.json"; mk 10 "$M/beta/b10.json"
mk 90 "$M/keep/k90.json"

listing() {  # every entry below $1, repr'd and sorted
    $PY - "$1" <<'PY'
import os, sys
out = []
for root, dirs, files in os.walk(sys.argv[1]):
    for n in dirs + files:
        out.append(repr(os.path.relpath(os.path.join(root, n), sys.argv[1])))
print("\n".join(sorted(out)))
PY
}
backing_files() {  # regular non-dot files in the backing store of project $1
    find "$T/data/$1" -name .tvjournal -prune -o -type f ! -name '.*' -print | wc -l
}
tv_ok "setup: alpha's 10 files are in the backing store" test "$(backing_files alpha)" -eq 10

listing "$M" > "$T/before"
audit="$T/log/vault-audit.log"
"$RETENTION" -c "$C" --dry-run --no-syslog >"$T/dry.out" 2>"$T/dry.err"; rc=$?
listing "$M" > "$T/after"
tv_ok "dry run through the mount exits 0 (got $rc)" test "$rc" -eq 0
tv_ok "dry run reports via=mount and 7 files for alpha" \
    grep -q '^project=alpha via=mount retention_days=30 dry_run=yes files=7 ' "$T/dry.out"
tv_ok "dry run changes nothing" cmp -s "$T/before" "$T/after"

audit_before=$(wc -l < "$audit")
"$RETENTION" -c "$C" >"$T/run.out" 2>"$T/run.err"; rc=$?
tail -n +$((audit_before + 1)) "$audit" > "$T/run.audit"
tv_ok "run through the mount exits 0 with nothing on stderr (got $rc)" \
    sh -c 'test "$1" -eq 0 && test ! -s "$2"' _ "$rc" "$T/run.err"
[ -s "$T/run.err" ] && sed 's/^/# /' "$T/run.err"
tv_ok "alpha: 7 files and 3 emptied directories removed via the mount, 0 errors" \
    grep -q '^project=alpha via=mount retention_days=30 files=7 bytes=[0-9]* dirs=3 errors=0$' "$T/run.out"
cat > "$T/alpha.expect" <<'EOF'
'--dash10.json'
'fresh-empty'
'new.json'
'sub'
'sub/new10.json'
EOF
listing "$A" > "$T/alpha.got"
tv_ok "alpha holds exactly the young files and the directories still in use" cmp -s "$T/alpha.expect" "$T/alpha.got"
[ -n "${TV_VERBOSE:-}" ] && diff "$T/alpha.expect" "$T/alpha.got" | sed 's/^/# /'
tv_ok "beta (60 days) lost only its 90-day file" \
    sh -c 'test "$(ls "$1" | tr "\n" " ")" = "b10.json b40.json "' _ "$M/beta"
tv_ok "keep (retention_days = 0) still has its 90-day file" test -f "$M/keep/k90.json"
tv_ok "the expired files are gone from the backing store too (3 left)" test "$(backing_files alpha)" -eq 3
reads_back() { [ "$(tv_as "$RD" cat "$A/new.json")" = '{"n":"10"}' ]; }
tv_ok "the remaining files still read back (as the project's reader)" reads_back
n_unlink=$(grep '"project":"alpha"' "$T/run.audit" | grep '"op":"unlink"' | grep -c '"uid":0,.*"result":"ok"')
n_rmdir=$(grep '"project":"alpha"' "$T/run.audit" | grep '"op":"rmdir"' | grep -c '"uid":0,.*"result":"ok"')
tv_ok "the vault audited 7 unlinks and 3 rmdirs by uid 0 in alpha (got $n_unlink, $n_rmdir)" \
    test "$n_unlink" -eq 7 -a "$n_rmdir" -eq 3
tv_ok "during the run the vault saw only unlink and rmdir, never an open or read" \
    sh -c 'test -s "$1" && ! grep -v "\"op\":\"\(unlink\|rmdir\)\"" "$1" | grep -q .' _ "$T/run.audit"

# A user who is not a maintainer can do nothing, through the same mount.
mk 90 "$A/late.json"
U=$(tv_add_user ret) || U=""
mkdir -p "$T/ulock" && chown "$U" "$T/ulock"
sed "s#^lock_file .*#lock_file = $T/ulock/retention.lock#" "$C" > "$T/u.conf"; chmod 0644 "$T/u.conf"
tv_as "$U" "$RETENTION" -c "$T/u.conf" --project alpha --no-syslog >"$T/u.out" 2>"$T/u.err"; rc=$?
tv_ok "a non-maintainer's run exits 1 and reports the denial (got $rc)" \
    sh -c 'test "$1" -eq 1 && grep -q "Permission denied" "$2" && grep -q "^project=alpha via=mount .* files=0 .*errors=1$" "$3"' _ "$rc" "$T/u.err" "$T/u.out"
tv_ok "... and the expired file is still there" test -f "$A/late.json"
tv_ok "... and the vault audited the denial for that user" \
    grep -q "\"uid\":$(id -u "$U"),.*\"project\":\"alpha\".*\"result\":\"EACCES\"" "$audit"

# A dead vault: the mount is still there but dead.  Retention must fail and
# must not fall back to deleting in the backing store behind it.
find "$T/data" -printf '%P %s\n' | sort > "$T/backing.before"
kill -9 "$VAULT_PID"; wait "$VAULT_PID" 2>/dev/null
"$RETENTION" -c "$C" --no-syslog >"$T/dead.out" 2>"$T/dead.err"; rc=$?
find "$T/data" -printf '%P %s\n' | sort > "$T/backing.after"
tv_ok "with a dead mount the run fails (exit 1, got $rc) and says why" \
    sh -c 'test "$1" -eq 1 && test -s "$2"' _ "$rc" "$T/dead.err"
tv_ok "... and the backing store is untouched" cmp -s "$T/backing.before" "$T/backing.after"

# Once unmounted, the same run works in the backing store.
fusermount3 -u -z "$T/mnt"
"$RETENTION" -c "$C" --no-syslog >"$T/b.out" 2>"$T/b.err"; rc=$?
tv_ok "unmounted: the run expires late.json in the backing store (exit $rc)" \
    sh -c 'test "$1" -eq 0 && grep -q "^project=alpha via=backing retention_days=30 files=1 " "$2"' _ "$rc" "$T/b.out"

# Something else mounted at the mountpoint: refuse.
if mount -t tmpfs -o size=1m tvtest "$T/mnt" 2>/dev/null; then
    tv_defer "umount '$T/mnt'"
    "$RETENTION" -c "$C" --no-syslog >"$T/f.out" 2>"$T/f.err"; rc=$?
    umount "$T/mnt"
    tv_ok "a tmpfs at the mountpoint: exit 1, 'not the vault' (got $rc)" \
        sh -c 'test "$1" -eq 1 && grep -q "not the vault" "$2" && test ! -s "$3"' _ "$rc" "$T/f.err" "$T/f.out"
else
    _tv_n=$((_tv_n + 1)); echo "ok $_tv_n # SKIP cannot mount a tmpfs here"
fi
tv_done
