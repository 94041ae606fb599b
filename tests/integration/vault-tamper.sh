#!/bin/bash
# vault-tamper.sh - attacks on the backing store: flip a byte, swap two
# blocks, copy a block to another offset, swap same-numbered blocks between
# files, copy a file into another project, truncate at a block boundary,
# truncate to the header, damage a name.  Each read fails with EIO, the
# failure is audited, and fsck names the damaged file by its plaintext path.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-tamper
vault_setup <<'CONF'
[project.alpha]
writers = root
readers = root

[project.beta]
writers = root
readers = root
CONF
cases="flip swap copyblock crossfile crossproject cutblock cuthdr fileid"
tv_plan 24
for c in $cases intact; do vault_write_random "$M/alpha/t-$c" 12000 42; done
vault_write_random "$M/alpha/t-other" 12000 43
vault_write_random "$M/beta/victim" 12000 44
declare -A B
for c in $cases intact other; do B[$c]=$(vault_backing "$M/alpha/t-$c") || vault_bail "no backing for t-$c"; done
BV=$(vault_backing "$M/beta/victim")
mkdir "$M/alpha/named"; printf 'x' > "$M/alpha/named/damaged-name"
mkdir "$M/beta/lostiv"; printf 'y' > "$M/beta/lostiv/f"
vault_umount

cat > "$T/tamper.py" <<'PY'
import sys
HDR, CB = 128, 4136
op, path = sys.argv[1], sys.argv[2]
d = bytearray(open(path, "rb").read())
if op == "flip":
    d[HDR + CB + 100] ^= 0x01
elif op == "swap":
    b0, b1 = d[HDR:HDR + CB], d[HDR + CB:HDR + 2 * CB]
    d[HDR:HDR + CB], d[HDR + CB:HDR + 2 * CB] = b1, b0
elif op == "copyblock":
    d[HDR + CB:HDR + 2 * CB] = d[HDR:HDR + CB]
elif op == "crossfile":
    other = open(sys.argv[3], "rb").read()
    d[HDR + CB:HDR + 2 * CB] = other[HDR + CB:HDR + 2 * CB]
elif op == "crossproject":
    d = bytearray(open(sys.argv[3], "rb").read())
elif op == "cutblock":
    d = d[:HDR + 2 * CB]
elif op == "cuthdr":
    d = d[:HDR]
elif op == "fileid":
    d[8] ^= 0x80
open(path, "wb").write(d)
PY
for c in $cases; do
    case $c in
    crossfile) "$PY" "$T/tamper.py" $c "${B[$c]}" "${B[other]}" ;;
    crossproject) "$PY" "$T/tamper.py" $c "$BV" "${B[$c]}" ;;
    *) "$PY" "$T/tamper.py" $c "${B[$c]}" ;;
    esac
done
# damage the encrypted name of alpha/named/damaged-name: flip one character
for f in "$T"/data/alpha/*/; do
    for e in "$f"*; do
        n=$(basename "$e"); c=${n:5:1}; [ "$c" = A ] && r=B || r=A
        mv "$e" "$f${n:0:5}$r${n:6}"
    done
done
rm "$(find "$T/data/beta" -mindepth 2 -name .tvdir)"
tv_start_vault || vault_bail "remount"
tv_diag "audit lines before reads: $(wc -l < "$T/log/vault-audit.log")"
for c in flip swap copyblock crossfile fileid cutblock cuthdr; do
    tv_ok "tamper $c: read fails with EIO" test "$(vault_read_errno "$M/alpha/t-$c")" = EIO
done
tv_ok "tamper crossproject (alpha's file copied over beta/victim): EIO" test "$(vault_read_errno "$M/beta/victim")" = EIO
vault_write_random "$T/expect" 12000 42
tv_ok "the untouched file reads back intact" cmp -s "$T/expect" "$M/alpha/t-intact"
tv_ok "a name with a flipped character is not listed" test -z "$(ls "$M/alpha/named")"
tv_fails "a directory whose IV was deleted is not silently shown empty" ls "$M/beta/lostiv" 2>/dev/null
tv_ok "integrity failures are in the audit log" grep -q '"op":"integrity","result":"EIO"' "$T/log/vault-audit.log"
"$VAULT" fsck -c "$T/tv.conf" > "$T/fsck.out" 2>&1; rc=$?
tv_ok "fsck exits 1 on damage" test $rc = 1
for c in flip swap copyblock crossfile fileid cutblock cuthdr; do
    grep -q "^alpha/t-$c: damaged" "$T/fsck.out" || tv_diag "fsck did not name t-$c"
done
tv_ok "fsck names every tampered alpha file by its plaintext path" test "$(grep -c '^alpha/t-[a-z]*: damaged' "$T/fsck.out")" = 7
tv_ok "fsck names beta/victim" grep -q '^beta/victim: damaged' "$T/fsck.out"
tv_ok "fsck reports the damaged name by its backing path" grep -q '^alpha/named/<backing .*>: damaged: name fails authentication' "$T/fsck.out"
tv_ok "fsck reports the directory that lost its IV" grep -q '^beta/lostiv: damaged: directory IV missing or damaged' "$T/fsck.out"
tv_ok "fsck does not report the intact files" sh -c "! grep -Eq 't-(intact|other)' '$T/fsck.out'"
tv_fails "fsck of project beta alone fails too" sh -c "'$VAULT' fsck -c '$T/tv.conf' beta >/dev/null 2>&1"
rm -f "$M/alpha"/t-* "$M/beta/victim"
find "$T/data/beta" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -exec rm -rf {} +
tv_fails "a directory holding an undecryptable entry is not empty" rmdir "$M/alpha/named" 2>/dev/null
for f in "$T"/data/alpha/*/; do rm -f "$f"[!.]*; done
rmdir "$M/alpha/named"
tv_ok "after removing the damaged files fsck passes" sh -c "'$VAULT' fsck -c '$T/tv.conf' >/dev/null 2>&1"
printf z > "$M/beta/keep"
vault_umount
mv "$T/data/beta/.tvproject" "$T/tvproject.saved"
tv_start_vault || vault_bail "remount"
tv_fails "a project whose .tvproject was deleted is not given a fresh name key" ls "$M/beta" 2>/dev/null
tv_ok "the vault log says why" grep -q 'beta.*tvproject missing or damaged' "$T/vault.log"
tv_ok "unlinks were audited with the file ID" grep -Eq '"op":"unlink","result":"ok","file_id":"[0-9a-f]{32}"' "$T/log/vault-audit.log"
tv_done
