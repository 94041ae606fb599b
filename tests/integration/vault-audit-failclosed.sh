#!/bin/bash
# vault-audit-failclosed.sh - the vault's audit log fails closed (DESIGN §5):
# with the log's filesystem full, an open, a create, a mkdir, an unlink and a
# rename fail with EIO and change nothing (no handle, no new file, nothing
# removed or moved); once there is room again, everything works and is
# recorded.  The log lives on a tiny tmpfs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-audit-failclosed
tv_need_root
tv_need_fuse
W=$(tv_add_user w) || tv_skip_all "cannot add users"
mkdir -p "$T/alog"
mount -t tmpfs -o size=64k tmpfs "$T/alog" || tv_skip_all "cannot mount a tmpfs"
tv_defer "umount -l '$T/alog'"
VAULT_PROJECTS=alpha vault_setup <<CONF
[project.alpha]
writers = $W
readers = $W
CONF
sed -i "s|^audit_log   = $T/log/vault-audit.log|audit_log   = $T/alog/vault-audit.log|" "$T/tv.conf"
vault_remount
tv_plan 14
as_w() { tv_as "$W" "$@"; }
errno_of() { as_w "$PY" -c '
import errno, os, sys
op, a = sys.argv[1], sys.argv[2:]
try:
    if op == "open": os.close(os.open(a[0], os.O_RDONLY))
    elif op == "create": os.close(os.open(a[0], os.O_CREAT | os.O_WRONLY, 0o644))
    elif op == "mkdir": os.mkdir(a[0])
    elif op == "unlink": os.unlink(a[0])
    elif op == "rename": os.rename(a[0], a[1])
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$@"; }

echo '{"keep":1}' | as_w tee "$M/alpha/keep.json" >/dev/null
as_w mkdir "$M/alpha/d"
tv_ok "the audit log is where the test put it" test -s "$T/alog/vault-audit.log"
# fill the log's filesystem; the log's last page may still take a few
# records: open until one cannot be recorded
dd if=/dev/zero of="$T/alog/filler" bs=1k count=200 status=none 2>/dev/null
n=0
while [ "$(errno_of open "$M/alpha/keep.json")" = OK ] && [ $n -lt 200 ]; do n=$((n + 1)); done
tv_diag "$n opens were still recorded in the log's last page"
tv_ok "open fails with EIO when its record cannot be written" test "$(errno_of open "$M/alpha/keep.json")" = EIO
tv_ok "create fails with EIO" test "$(errno_of create "$M/alpha/new.json")" = EIO
tv_ok "... and leaves no file" test "$(as_w ls "$M/alpha" | tr '\n' ' ')" = "d keep.json "
tv_ok "mkdir fails with EIO" test "$(errno_of mkdir "$M/alpha/e")" = EIO
tv_ok "unlink fails with EIO" test "$(errno_of unlink "$M/alpha/keep.json")" = EIO
tv_ok "rename fails with EIO" test "$(errno_of rename "$M/alpha/keep.json" "$M/alpha/moved.json")" = EIO
tv_ok "nothing changed: the listing is the same" test "$(as_w ls "$M/alpha" | tr '\n' ' ')" = "d keep.json "
tv_ok "the vault is still mounted" mountpoint -q "$M"
rm -f "$T/alog/filler"
tv_ok "with room again: open works" test "$(errno_of open "$M/alpha/keep.json")" = OK
tv_ok "create works" test "$(errno_of create "$M/alpha/new.json")" = OK
tv_ok "rename works" test "$(errno_of rename "$M/alpha/new.json" "$M/alpha/moved.json")" = OK
tv_ok "unlink works" test "$(errno_of unlink "$M/alpha/moved.json")" = OK
tv_ok "and all of it is recorded" sh -c "grep -c 'unlink' '$T/alog/vault-audit.log' | grep -qx 1 &&
    grep -c 'rename' '$T/alog/vault-audit.log' | grep -qx 1"
tv_done
