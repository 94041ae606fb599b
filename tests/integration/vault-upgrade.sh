#!/bin/bash
# vault-upgrade.sh - a vault made by tracevault 0.1.0 (tests/data/vault-v1:
# keystore v1, file headers of version 1, whose DEKs are wrapped for no one
# file) under today's keyd and vault: the files read back; fsck counts the
# version-1 headers; `tracevault fsck --rewrap` upgrades each to version 2
# (its DEK re-wrapped in keyd for the file's ID, the owner and header MAC
# added) and every file still reads, can be appended to, and fsck is clean.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-upgrade
tv_need_root
tv_need_fuse
[ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "vault or keyd not built"
FIX="$top_srcdir/tests/data/vault-v1"
tv_write_conf <<'CONF'
[project.old]
writers = root
readers = root
CONF
cp -a "$FIX/etc/master.key" "$T/etc/" && cp -a "$FIX/lib/." "$T/lib/" &&
    cp -a "$FIX/log/keyd-audit.log" "$T/log/" && cp -a "$FIX/data/." "$T/data/" ||
    vault_bail "cannot copy the fixture"
chmod 0400 "$T/etc/master.key"
# git keeps only the execute bit: a clone checks the fixture out 0644/0755,
# and keyd refuses a keystore others may read. Give it the modes it had.
chmod -R u+w,go-rwx "$T/lib" "$T/log" "$T/data"
tv_start_keyd || vault_bail "keyd did not start on the old keystore"
tv_start_vault || vault_bail "vault did not mount the old backing store"
M="$T/mnt/old"
tv_plan 9
sums() { (cd "$M" && sha256sum a.json dir/b.jsonl big.bin); }
expect="e346432021b04179518d9614f3560ccd71354a4ee101ddcb893d6959a9d6301c  a.json
9ecf0438998be78f6723a50efffda5fee09c06c03401e6b81e26b2fb98341097  dir/b.jsonl
f6122de34ccc595dbbb2aa3abcf5617f7f8ef6d760b213f1129f927832328393  big.bin"
tv_ok "the old files read back" test "$(sums)" = "$expect"
"$VAULT" fsck -c "$T/tv.conf" old > "$T/fsck1" 2>&1; rc=$?
tv_ok "fsck passes (exit $rc) and counts 3 version-1 headers" \
    sh -c "test $rc = 0 && grep -q '3 files have a version-1 header' '$T/fsck1'"
echo '{"a":2}' >> "$M/a.json"
tv_ok "an old file can be appended to" test "$(cat "$M/a.json")" = "$(printf '{"a":1}\n{"a":2}')"
vault_umount
"$VAULT" fsck --rewrap -c "$T/tv.conf" old > "$T/fsck2" 2>&1; rc=$?
sed 's/^/# /' "$T/fsck2"
tv_ok "fsck --rewrap upgrades the 3 headers and passes (exit $rc)" \
    sh -c "test $rc = 0 && grep -q '(3 upgraded to version 2)' '$T/fsck2' && ! grep -q 'version-1 header' '$T/fsck2'"
hv=$(find "$T/data/old" -name .tvjournal -prune -o -type f ! -name '.*' -print |
     while read -r f; do od -An -tu2 -j4 -N2 "$f"; done | tr -d ' ' | sort -u | tr '\n' ' ')
tv_ok "every backing header is version 2 now ($hv)" test "$hv" = "2 "
tv_start_vault || vault_bail "vault did not remount"
tv_ok "the files read back after the upgrade" \
    test "$(cd "$M" && sha256sum dir/b.jsonl big.bin)" = "$(echo "$expect" | tail -2)"
echo '{"a":3}' >> "$M/a.json"
tv_ok "an upgraded file can be appended to" test "$(tail -1 "$M/a.json")" = '{"a":3}'
tv_ok "a second --rewrap has nothing to do" \
    sh -c "'$VAULT' fsck --rewrap -c '$T/tv.conf' old | grep -q '0 headers re-wrapped'"
tv_ok "fsck is clean" sh -c "'$VAULT' fsck -c '$T/tv.conf' old | grep -q ' 0 damaged, 0 errors'"
tv_done
