#!/bin/bash
# vault-posix.sh - what pjdfstest found beyond what the contract refuses
# (issue 9 item 8): modes are kept exactly as given (mkdir, open(O_CREAT),
# chmod, setgid and sticky bits), a directory's link count counts its
# subdirectories, an open file that was unlinked has link count 0, and a
# file deeper than PATH_MAX in the backing store can be written, appended
# and truncated (its tail journal does not depend on its path).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-posix
W=$(tv_add_user w) || tv_skip_all "cannot add users"
vault_setup <<CONF
[project.alpha]
writers = $W
readers = $W
CONF
tv_plan 14
as_w() { tv_as "$W" "$@"; }
mode() { as_w stat -c %a "$1"; }

cat > "$T/modes.py" <<'PY'
import os, sys
os.umask(0)
d = sys.argv[1]
os.mkdir(d + "/m151", 0o151)
os.mkdir(d + "/m755", 0o755)
os.close(os.open(d + "/f620", os.O_CREAT | os.O_WRONLY, 0o620))
os.close(os.open(d + "/f4777", os.O_CREAT | os.O_WRONLY, 0o4777))
os.close(os.open(d + "/f000", os.O_CREAT | os.O_WRONLY, 0o000))
os.chmod(d + "/m755", 0o3775)
PY
as_w "$PY" "$T/modes.py" "$M/alpha"
tv_ok "mkdir 0151 keeps 0151 (was 0751)" test "$(mode "$M/alpha/m151")" = 151
tv_ok "open(O_CREAT) 0620 keeps 0620 (was 0600)" test "$(mode "$M/alpha/f620")" = 620
tv_ok "open(O_CREAT) 04777 keeps the setuid bit (was 0755)" test "$(mode "$M/alpha/f4777")" = 4777
tv_ok "chmod 03775 of a directory keeps setgid and sticky" test "$(mode "$M/alpha/m755")" = 3775
tv_ok "a file created 0000 is still the vault's to write (the policy decides access)" \
    sh -c "echo data | setpriv --reuid='$W' --regid=\$(id -g '$W') --init-groups -- tee '$M/alpha/f000' >/dev/null &&
           test \"\$(setpriv --reuid='$W' --regid=\$(id -g '$W') --init-groups -- cat '$M/alpha/f000')\" = data"

as_w mkdir -p "$M/alpha/n/a" "$M/alpha/n/b" "$M/alpha/n/c/d"
as_w touch "$M/alpha/n/file"
tv_ok "a directory's link count counts its subdirectories (n: 2 + 3)" \
    test "$(as_w stat -c %h "$M/alpha/n")" = 5
tv_ok "... and a leaf directory's is 2" test "$(as_w stat -c %h "$M/alpha/n/a")" = 2
pn=$(as_w stat -c %h "$M/alpha")
tv_ok "the project directory's link count is 2 + its subdirectories (metadata not counted: $pn)" \
    test "$pn" = $((2 + $(as_w find "$M/alpha" -mindepth 1 -maxdepth 1 -type d | wc -l)))
as_w rmdir "$M/alpha/n/a"
tv_ok "rmdir lowers it" test "$(as_w stat -c %h "$M/alpha/n")" = 4
out=$(as_w "$PY" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"x" * 5000)
a = os.fstat(fd).st_nlink
os.unlink(sys.argv[1])
b = os.fstat(fd).st_nlink
os.write(fd, b"y" * 5000)
c = os.fstat(fd).st_size
print(a, b, c)' "$M/alpha/gone")
tv_ok "fstat of an open file after unlink: nlink 1 then 0, and it stays writable ($out)" \
    test "$out" = "1 0 10000"

# deeper than PATH_MAX in the backing store: 24 levels of 130-character
# names, each a ~196-character backing name
cat > "$T/deep.py" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for i in range(24):
    name = ("%02d" % i) * 65
    os.mkdir(name, 0o755, dir_fd=fd)
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
res = []
try:
    f = os.open("deep.jsonl", os.O_CREAT | os.O_RDWR | os.O_APPEND, 0o644, dir_fd=fd)
    for i in range(3):
        os.write(f, b'{"i":%d,"pad":"%s"}\n' % (i, b"p" * 3000))
    os.ftruncate(f, 5000)
    os.write(f, b"tail\n")
    g = os.open("deep.jsonl", os.O_RDWR, dir_fd=fd)   # pwrite on O_APPEND appends
    os.pwrite(g, b"Z", 100)
    os.close(g)
    data = os.pread(f, 10000, 0)
    res.append("ok" if len(data) == 5005 and data[100:101] == b"Z" and data.endswith(b"tail\n") else "bad")
    os.close(f)
except OSError as e:
    res.append(errno.errorcode[e.errno])
print(" ".join(res))
PY
out=$(as_w "$PY" "$T/deep.py" "$M/alpha")
longest=$(find "$T/data/alpha" -name '*' | awk '{ if (length($0) > m) m = length($0) } END { print m }')
tv_diag "longest backing path: $longest characters"
tv_ok "the backing path is longer than PATH_MAX" test "$longest" -gt 4096
tv_ok "a file there can be written, appended, truncated and overwritten (got: $out)" test "$out" = ok
vault_remount
cat > "$T/deepread.py" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for i in range(24):
    nfd = os.open(("%02d" % i) * 65, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
f = os.open("deep.jsonl", os.O_RDONLY, dir_fd=fd)
print(len(os.read(f, 100000)))
PY
tv_ok "... and reads back after a remount" test "$(as_w "$PY" "$T/deepread.py" "$M/alpha")" = 5005
tv_ok "fsck is clean" sh -c "'$VAULT' fsck -c '$T/tv.conf' alpha >/dev/null 2>&1"
tv_done
