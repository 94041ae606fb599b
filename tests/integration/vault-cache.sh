#!/bin/bash
# vault-cache.sh - what the kernel's caches reveal, to whom and for how long
# (docs/THREAT_MODEL.md "Kernel caches").  Entries and attributes below a
# project directory are cached (here for 2 s: --entry-timeout 2); the
# project's own entry never is, so every path walk into a project is a
# LOOKUP the vault checks:
#   - a non-member gets EACCES for a path a member has just walked;
#   - a member removed by a SIGHUP reload, still holding a directory inside
#     the project (an fd, its cwd), gets EACCES for names below it at once
#     (the reload prunes the project's cached entries);
#   - a non-member handed a directory descriptor by a member can stat names
#     the member looked up, for at most the cache time (then EACCES); it
#     cannot open or create anything; the descriptor itself is the member's
#     (reading the directory through it is reading the member's handle).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-cache
tv_need_root
tv_need_fuse
[ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "vault or keyd not built"
W=$(tv_add_user w) || tv_skip_all "cannot add users"
R=$(tv_add_user r) || tv_skip_all "cannot add users"
O=$(tv_add_user o) || tv_skip_all "cannot add users"
tv_write_conf <<CONF
[project.alpha]
writers = $W
readers = $R
CONF
tv_start_keyd || vault_bail "keyd"
"$KEYCTL" -c "$T/tv.conf" create alpha >/dev/null || vault_bail "create"
"$VAULT" -c "$T/tv.conf" -f --entry-timeout 2 >>"$T/vault.log" 2>&1 &
VAULT_PID=$!
tv_defer "fusermount3 -u -z '$T/mnt' 2>/dev/null; kill $VAULT_PID 2>/dev/null; wait $VAULT_PID 2>/dev/null"
for i in $(seq 200); do mountpoint -q "$T/mnt" && break; sleep 0.05; done
M="$T/mnt"
tv_plan 11

tv_as "$W" mkdir -p "$M/alpha/d"
echo '{"secret":"x"}' | tv_as "$W" tee "$M/alpha/d/t.json" >/dev/null
errno_as() {    # errno_as USER OP PATH
    tv_as "$1" "$PY" -c '
import errno, os, sys
try:
    {"stat": os.stat, "list": os.listdir, "read": lambda p: open(p).read()}[sys.argv[1]](sys.argv[2])
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$2" "$3"
}
tv_ok "a reader stats the file (its entries are now cached)" test "$(errno_as "$R" stat "$M/alpha/d/t.json")" = OK
tv_ok "a non-member stats the same path right after: EACCES" test "$(errno_as "$O" stat "$M/alpha/d/t.json")" = EACCES
tv_ok "... stats the directory: EACCES" test "$(errno_as "$O" stat "$M/alpha/d")" = EACCES
tv_ok "... lists the project: EACCES" test "$(errno_as "$O" list "$M/alpha")" = EACCES
tv_ok "... the denial is audited" grep -q "denied" "$T/log/vault-audit.log"
tv_ok "the reader still reads after the non-member's attempts" test "$(errno_as "$R" read "$M/alpha/d/t.json")" = OK

# a member removed by a reload, holding a directory inside the project
mkdir -m 1777 "$T/sync"
cat > "$T/holder.py" <<'PY'
import errno, os, sys, time
d, sync = sys.argv[1], sys.argv[2]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
os.stat("t.json", dir_fd=fd)                      # cached now
open(sync + "/ready", "w").close()
while not os.path.exists(sync + "/go"):
    time.sleep(0.05)
try:
    os.stat("t.json", dir_fd=fd)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
TV_BG_OUT="$T/holder.out" tv_as_bg "$R" "$PY" "$T/holder.py" "$M/alpha/d" "$T/sync"
hp=$TV_BG_PID
tv_wait_for "$T/sync/ready" 10
sed -i "s|^readers = $R|readers = $W|" "$T/tv.conf"
kill -HUP "$VAULT_PID"
sleep 0.5
touch "$T/sync/go"
for i in $(seq 100); do kill -0 "$hp" 2>/dev/null || break; sleep 0.05; done
tv_ok "a reader removed by a reload, stat relative to its open directory: EACCES at once" \
    test "$(cat "$T/holder.out")" = EACCES
tv_ok "... and by path: EACCES" test "$(errno_as "$R" stat "$M/alpha/d/t.json")" = EACCES

# a non-member handed a directory descriptor by a member
cat > "$T/give.py" <<'PY'
import os, socket, sys, time
path, sock = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
for i in range(100):
    try:
        s.connect(sock); break
    except OSError:
        time.sleep(0.05)
fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
os.stat("t.json", dir_fd=fd)                      # the member's lookup: cached
socket.send_fds(s, [b"x"], [fd])
time.sleep(5)
PY
cat > "$T/take.py" <<'PY'
import errno, os, socket, sys, time
sock = sys.argv[1]
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(sock); os.chmod(sock, 0o777); l.listen(1)
c, _ = l.accept()
_, fds, _, _ = socket.recv_fds(c, 16, 1)
fd = fds[0]
def tryit(f):
    try:
        f(); return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]
out = [tryit(lambda: os.stat("t.json", dir_fd=fd)),
       tryit(lambda: os.close(os.open("t.json", os.O_RDONLY, dir_fd=fd))),
       tryit(lambda: os.listdir(fd)),
       tryit(lambda: os.close(os.open("new", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)))]
time.sleep(3)                                     # past the 2 s cache time
out.append(tryit(lambda: os.stat("t.json", dir_fd=fd)))
print(" ".join(out))
PY
TV_BG_OUT="$T/take.out" tv_as_bg "$O" "$PY" "$T/take.py" "$T/sync/fd.sock"
tp=$TV_BG_PID
sleep 0.3
TV_BG_OUT=/dev/null tv_as_bg "$W" "$PY" "$T/give.py" "$M/alpha/d" "$T/sync/fd.sock"
for i in $(seq 200); do kill -0 "$tp" 2>/dev/null || break; sleep 0.05; done
read -r st op ls cr later < "$T/take.out"
tv_diag "non-member with a member's descriptor: stat $st, open $op, list $ls, create $cr, stat after 3 s $later"
tv_ok "a non-member handed a member's descriptor can stat a name the member looked up, within the cache time" \
    test "$st" = OK
tv_ok "... but not open or create anything (EACCES); the listing it reads is through the member's own handle" \
    test "$op $cr $ls" = "EACCES EACCES OK"
tv_ok "... and once the cache time is over, stat is EACCES too" test "$later" = EACCES
tv_done
