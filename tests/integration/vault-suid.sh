#!/bin/bash
# vault-suid.sh - the vault clears setuid/setgid bits itself (it asks the
# kernel for FUSE_HANDLE_KILLPRIV_V2, vault/fuseio.h): checked against what
# Linux's own file system does with the same calls in the test's directory,
# for a writer without CAP_FSETID and for root; and the point of it, that
# appending to an open file costs one FUSE request per write, not a
# security.capability GETXATTR before each one (counted in the libfuse debug
# log of a second vault started with -d).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-suid
W=$(tv_add_user w) || tv_skip_all "cannot add users"
VAULT_PROJECTS=alpha
vault_setup <<CONF
[project.alpha]
writers = $W, root
readers = $W, root
CONF
tv_plan 6

cat > "$T/suid.py" <<'PY'
import os, sys
d = sys.argv[1]
os.umask(0)
def mode(p):
    return oct(os.stat(p).st_mode & 0o7777)
out = []
# (name, mode set after the file is written, what is done next)
for name, m, act in [("w-suid", 0o4755, "append"), ("w-sgid-gx", 0o2755, "append"),
                     ("w-sgid-nogx", 0o2745, "append"), ("w-both", 0o6755, "pwrite"),
                     ("t-suid", 0o4755, "truncate"), ("ft-suid", 0o4755, "ftruncate"),
                     ("o-suid", 0o4755, "otrunc"), ("o-nosuid", 0o755, "otrunc"),
                     ("r-suid", 0o4755, "read")]:
    p = os.path.join(d, name)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"x" * 100)
    os.close(fd)
    os.chmod(p, m)
    if act == "append":
        fd = os.open(p, os.O_WRONLY | os.O_APPEND); os.write(fd, b"y"); os.close(fd)
    elif act == "pwrite":
        fd = os.open(p, os.O_WRONLY); os.pwrite(fd, b"z", 10); os.close(fd)
    elif act == "truncate":
        os.truncate(p, 10)
    elif act == "ftruncate":
        fd = os.open(p, os.O_WRONLY); os.ftruncate(fd, 10); os.close(fd)
    elif act == "otrunc":
        os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
    else:
        fd = os.open(p, os.O_RDONLY); os.read(fd, 10); os.close(fd)
    out.append("%s:%s" % (name, mode(p)))
print(" ".join(out))
PY
mkdir -p "$T/ref-w" "$T/ref-root" "$M/alpha/w"
chmod 0777 "$T/ref-w"
ref_w=$(tv_as "$W" "$PY" "$T/suid.py" "$T/ref-w")
got_w=$(tv_as "$W" "$PY" "$T/suid.py" "$M/alpha/w")
want_w="w-suid:0o755 w-sgid-gx:0o755 w-sgid-nogx:0o2745 w-both:0o755 t-suid:0o755 ft-suid:0o755 o-suid:0o755 o-nosuid:0o755 r-suid:0o4755"
tv_diag "Linux, writer without CAP_FSETID: $ref_w"
tv_diag "vault, same writer:              $got_w"
tv_ok "a writer's write, truncate, ftruncate and open(O_TRUNC) clear setuid (and group-executable setgid) as Linux does" \
    test "$got_w" = "$ref_w" -a "$got_w" = "$want_w"
ref_r=$("$PY" "$T/suid.py" "$T/ref-root")
got_r=$("$PY" "$T/suid.py" "$M/alpha")
tv_diag "Linux, root: $ref_r"
tv_diag "vault, root: $got_r"
tv_ok "root (CAP_FSETID) keeps them, as on Linux" test "$got_r" = "$ref_r"
tv_ok "... which is: nothing cleared" test "$got_r" = "w-suid:0o4755 w-sgid-gx:0o2755 w-sgid-nogx:0o2745 w-both:0o6755 t-suid:0o4755 ft-suid:0o4755 o-suid:0o4755 o-nosuid:0o755 r-suid:0o4755"

# requests per append: a second vault on its own backing store, libfuse's
# debug log on
mkdir -p "$T/d-backing" "$T/d-mnt"
install -m 0666 /dev/null "$T/debug.log"     # the writer marks where its appends start
"$VAULT" -c "$T/tv.conf" -d "$T/d-backing" "$T/d-mnt" 2>>"$T/debug.log" &
DP=$!
tv_defer "fusermount3 -u -z '$T/d-mnt' 2>/dev/null; kill $DP 2>/dev/null"
for _ in $(seq 100); do mountpoint -q "$T/d-mnt" && break; sleep 0.05; done
mountpoint -q "$T/d-mnt" || vault_bail "the -d vault did not mount"
mkdir -p "$T/d-mnt/alpha/w"
tv_as "$W" "$PY" - "$T/d-mnt/alpha/w/log.jsonl" "$T/debug.log" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
os.write(fd, b'{"warm":1}\n')
time.sleep(0.2)
with open(sys.argv[2], "a") as log:
    log.write("=== MARK ===\n")
for i in range(200):
    os.write(fd, b'{"i":%d}\n' % i)
os.close(fd)
PY
sleep 0.3
after=$(sed -n '/=== MARK ===/,$p' "$T/debug.log")
writes=$(grep -c 'opcode: WRITE' <<<"$after")
getx=$(grep -c 'opcode: GETXATTR' <<<"$after")
tv_diag "200 appends on one descriptor: $writes WRITE, $getx GETXATTR requests"
tv_ok "each append is one WRITE request" test "$writes" -eq 200
tv_ok "... and no security.capability GETXATTR before it (it was one per write)" test "$getx" -eq 0
tv_ok "the lines are all there" \
    test "$(wc -l < "$T/d-mnt/alpha/w/log.jsonl")" -eq 201
tv_done
