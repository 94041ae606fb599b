#!/bin/sh
# tracevault-retention on a backing store the real vault wrote (vault not
# mounted): encrypted names, long names with their ".~hash.name" side files,
# per-directory ".tvdir" metadata.  Exactly the expired traces go, with their
# side files and the directories they emptied; nothing is orphaned; the vault
# mounts the result again, lists exactly the kept files, reads them, and its
# fsck finds no damage.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init retention-vaultstore
tv_need_root
tv_need_fuse
for b in "$RETENTION" "$KEYD" "$KEYCTL" "$VAULT"; do
    [ -x "$b" ] || tv_skip_all "$(basename "$b") not built"
done
RD=$(tv_add_user rd) || tv_skip_all "cannot add a test user"
tv_write_conf <<CONF
[project.alpha]
writers = root
readers = $RD
retention_days = 30
CONF
bail() {
    echo "Bail out! $*"
    tail -20 "$T/keyd.log" "$T/vault.log" 2>/dev/null | sed 's/^/# /'
    exit 1
}
tv_start_keyd || bail "keyd did not start"
"$KEYCTL" -c "$T/tv.conf" create alpha >/dev/null || bail "keyctl create"
tv_start_vault || bail "the vault did not mount"
tv_plan 12
A="$T/mnt/alpha"
B="$T/data/alpha"

long=$(printf 'L%.0s' $(seq 1 200))          # a 200-character name part
mk() {  # mk AGE_DAYS RELPATH
    mkdir -p "$(dirname "$A/$2")" && printf '{"age":%s}\n' "$1" > "$A/$2" && touch -d "$1 days ago" -- "$A/$2"
}
mk 90 "old.json"
mk 10 "young.json"
mk 90 "$long-old.json"
mk 10 "$long-young.json"
mk 90 "dir-$long/old1.json"
mk 90 "dir-$long/sub/old2.json"
mk 40 "mixed/$long-old.jsonl"
mk 10 "mixed/young.jsonl"

vault_stop() {
    fusermount3 -u "$T/mnt" 2>/dev/null || fusermount3 -u -z "$T/mnt"
    wait "$VAULT_PID" 2>/dev/null
}
vault_stop
sides() { find "$B" -type f -name '.~*.name' | wc -l; }
tv_ok "the vault wrote long-name side files (.~hash.name) and .tvdir metadata" \
    sh -c 'test "$1" -ge 4 && test -f "$2/.tvdir" && test -f "$2/.tvproject"' _ "$(sides)" "$B"
n_before=$(find "$B" -name .tvjournal -prune -o -type f ! -name '.*' -print | wc -l)
tv_ok "8 ciphertext files in the backing store" test "$n_before" -eq 8

"$RETENTION" -c "$T/tv.conf" --no-syslog >"$T/r.out" 2>"$T/r.err"; rc=$?
tv_ok "retention in the backing store exits 0 (got $rc)" test "$rc" -eq 0
[ -s "$T/r.err" ] && sed 's/^/# /' "$T/r.err"
tv_ok "it removed 5 files and 2 directories, via the backing store" \
    grep -q '^project=alpha via=backing retention_days=30 files=5 bytes=[0-9]* dirs=2 errors=0$' "$T/r.out"
tv_ok "3 ciphertext files are left" test "$(find "$B" -name .tvjournal -prune -o -type f ! -name '.*' -print | wc -l)" -eq 3
orphans() {  # side files whose file is gone
    find "$B" -type f -name '.~*.name' | while IFS= read -r s; do
        d=$(dirname "$s"); b=$(basename "$s" .name); b=${b#.}
        [ -e "$d/$b" ] || echo "$s"
    done
}
tv_ok "no orphaned side file" test -z "$(orphans)"
tv_ok "side files left: only that of the one long name kept" test "$(sides)" -eq 1
tv_ok "every directory left still has its .tvdir" \
    sh -c 'find "$1" -type d ! -name .tvjournal | while IFS= read -r d; do test -f "$d/.tvdir" || exit 1; done' _ "$B"

tv_start_vault || bail "the vault did not mount again"
( cd "$A" && find . -mindepth 1 | LC_ALL=C sort ) > "$T/got"
printf '%s\n' ./mixed "./mixed/young.jsonl" "./$long-young.json" ./young.json | LC_ALL=C sort > "$T/want"
tv_ok "remounted, the project lists exactly the kept files and directories" cmp -s "$T/want" "$T/got"
reads() {
    [ "$(tv_as "$RD" cat "$A/young.json")" = '{"age":10}' ] &&
        [ "$(tv_as "$RD" cat "$A/$long-young.json")" = '{"age":10}' ] &&
        [ "$(tv_as "$RD" cat "$A/mixed/young.jsonl")" = '{"age":10}' ]
}
tv_ok "the kept files read back intact (as the reader)" reads
vault_stop
"$VAULT" fsck -c "$T/tv.conf" alpha >"$T/fsck.out" 2>&1; rc=$?
tv_ok "tracevault fsck finds no damage (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/fsck.out"
"$RETENTION" -c "$T/tv.conf" --no-syslog >"$T/r2.out" 2>&1
tv_ok "a second run finds nothing to do" grep -q '^project=alpha via=backing retention_days=30 files=0 bytes=0 dirs=0 errors=0$' "$T/r2.out"
tv_done
