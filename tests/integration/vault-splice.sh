#!/bin/bash
# vault-splice.sh - wrapped DEKs are bound to their file (issue 9 item 6).
# A writer who can also write the backing store copies a victim's file
# header over the header of a file of its own, then asks the vault to seal
# chosen content under the victim's DEK and file ID (to splice those blocks
# into the victim).  The header's MAC binds it to the victim's owner, so the
# vault refuses to write through it (EIO, audited); a copy rewritten as a
# version-1 header (no owner, no MAC) does not open at all (keyd wrapped the
# victim's DEK for its file ID only); the victim is untouched, fsck names
# the forged file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-splice
V=$(tv_add_user v) || tv_skip_all "cannot add users"
A=$(tv_add_user a) || tv_skip_all "cannot add users"
R=$(tv_add_user r) || tv_skip_all "cannot add users"
VAULT_PROJECTS=alpha vault_setup <<CONF
[project.alpha]
writers = $V, $A
readers = $R
CONF
tv_plan 8
P="$M/alpha"
fid_of() { tv_as "$R" getfattr --only-values -n user.tracevault.file_id "$1" 2>/dev/null; }
backing_of() {       # the backing file whose header holds file ID $1
    "$PY" - "$T/data/alpha" "$1" <<'PY'
import os, sys
want = bytes.fromhex(sys.argv[2])
for root, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    for f in files:
        p = os.path.join(root, f)
        if not f.startswith(".") and open(p, "rb").read(24)[8:24] == want:
            print(p)
PY
}
errno_as() {     # errno_as USER OP PATH
    tv_as "$1" "$PY" -c '
import errno, os, sys
try:
    if sys.argv[1] == "write":
        fd = os.open(sys.argv[2], os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"{\"forged\":true}\n")
        os.close(fd)
    else:
        open(sys.argv[2], "rb").read()
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$2" "$3"
}

echo '{"victim":"genuine"}' | tv_as "$V" tee "$P/victim.json" >/dev/null
echo '{"mine":1}' | tv_as "$A" tee "$P/mine.json" >/dev/null
vb=$(backing_of "$(fid_of "$P/victim.json")")
ab=$(backing_of "$(fid_of "$P/mine.json")")
[ -n "$vb" ] && [ -n "$ab" ] || vault_bail "backing files not found"
cp "$vb" "$T/victim.before"
vault_umount
# the attacker, with write access to the backing store: the victim's header
# over its own file's
dd if="$vb" of="$ab" bs=128 count=1 conv=notrunc status=none
cp "$ab" "$T/forged.before"
tv_start_vault || vault_bail "remount"
tv_ok "the attacker's file now carries the victim's header (its file ID)" \
    test "$(fid_of "$P/mine.json")" = "$(fid_of "$P/victim.json")"
tv_ok "writing through it to have the vault seal chosen content: EIO" \
    test "$(errno_as "$A" write "$P/mine.json")" = EIO
tv_ok "... audited as an integrity failure" grep -q 'header made for another file' "$T/log/vault-audit.log"
tv_ok "... and nothing was sealed into the attacker's file" cmp -s "$ab" "$T/forged.before"
vault_umount
# downgrade: the copy rewritten as a version-1 header (no owner, no MAC)
printf '\001\000' | dd of="$ab" bs=1 seek=4 conv=notrunc status=none
dd if=/dev/zero of="$ab" bs=1 seek=100 count=28 conv=notrunc status=none
tv_start_vault || vault_bail "remount"
tv_ok "the same header rewritten as version 1 does not open: EIO" \
    test "$(errno_as "$A" write "$P/mine.json")" = EIO
tv_ok "the victim is untouched" cmp -s "$vb" "$T/victim.before"
tv_ok "... and reads back" test "$(tv_as "$R" cat "$P/victim.json")" = '{"victim":"genuine"}'
vault_umount
"$VAULT" fsck -c "$T/tv.conf" alpha > "$T/fsck" 2>&1
tv_ok "fsck names the forged file, not the victim" \
    sh -c "grep -q '^alpha/mine.json: damaged' '$T/fsck' && ! grep -q 'victim.json: damaged' '$T/fsck'"
tv_done
