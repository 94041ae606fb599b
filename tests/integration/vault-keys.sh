#!/bin/bash
# vault-keys.sh - key lifecycle seen through the mount: keyd down (open files
# keep working, new opens fail with a clear log line, automatic reconnect),
# rotate + rewrap + retire (old versions can go; files still read; rerun is
# a no-op), and SHRED (closed and open files of the project fail with EIO at
# once, other projects unaffected).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
tv_init vault-keys
VAULT_PROJECTS="alpha beta gamma" vault_setup <<'CONF'
[vault]
dek_cache_seconds = 0

[project.alpha]
writers = root
readers = root

[project.beta]
writers = root
readers = root

[project.gamma]
writers = root
readers = root
CONF
tv_plan 27
A="$M/alpha"
mkdir -m 1777 "$T/sync"
for i in 1 2 3; do vault_write_random "$A/f$i" 9000 $i; done
vault_write_random "$M/beta/keep" 5000 9
vault_remount          # no DEK cached: every open needs keyd

cat > "$T/holder.py" <<'PY'
import errno, os, sys, time
path, sync, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_RDWR)
first = os.pread(fd, 9000, 0)
open(sync + "/ready", "w").write("1")
for r in range(rounds):
    while not os.path.exists("%s/go%d" % (sync, r)):
        time.sleep(0.05)
    try:
        os.pwrite(fd, b"W%d" % r, 100 + r)
        d = os.pread(fd, 9000, 0)
        print("OK" if len(d) == 9000 else "SHORT", flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
    open("%s/done%d" % (sync, r), "w").write("1")
PY
keys_conf() {
    cat <<CONF
[vault]
dek_cache_seconds = $1

[project.alpha]
writers = root
readers = root

[project.beta]
writers = root
readers = root

[project.gamma]
writers = root
readers = root
CONF
}
keys_conf 3 | tv_write_conf
kill -HUP "$VAULT_PID"; sleep 0.3
cat "$A/f3" > /dev/null        # closed now: its DEK stays cached for 3 s
"$PY" "$T/holder.py" "$A/f1" "$T/sync" 1 > "$T/holder.out" 2>&1 &
hp=$!
tv_wait_for "$T/sync/ready" 10
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
tv_ok "keyd down: a file closed within dek_cache_seconds reopens from the cache" test "$(vault_read_errno "$A/f3")" = OK
sleep 4.5
tv_ok "keyd down: after dek_cache_seconds its DEK is gone and the open fails" test "$(vault_read_errno "$A/f3")" = EIO
touch "$T/sync/go0"; tv_wait_for "$T/sync/done0" 10; wait $hp
tv_ok "keyd down: an open file keeps reading and writing" test "$(cat "$T/holder.out")" = OK
tv_ok "keyd down: opening another file fails with EIO" test "$(vault_read_errno "$A/f2")" = EIO
tv_ok "keyd down: the vault log says so clearly" grep -q "keyd unavailable" "$T/vault.log"
rm -f "$T/run/keyd.sock"
tv_start_keyd || vault_bail "keyd restart"
ok=1; for i in $(seq 1 50); do [ "$(vault_read_errno "$A/f2")" = OK ] && { ok=0; break; }; sleep 0.1; done
tv_ok "after keyd returns, opens work again without remounting" test $ok = 0
vault_write_random "$T/expect" 9000 2
tv_ok "the file reads back intact" cmp -s "$T/expect" "$A/f2"
tv_ok "the vault log notes the recovery" grep -q "reachable again" "$T/vault.log"

# rotate, rewrap, retire
"$KEYCTL" -c "$T/tv.conf" rotate alpha >/dev/null || vault_bail "rotate"
vault_write_random "$A/f4" 3000 4     # new file: current version
hdr_versions() {
    "$PY" - "$T/data/alpha" <<'PY'
import os, struct, sys
vs = set()
for root, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    for f in files:
        if f.startswith("."): continue
        vs.add(struct.unpack("<I", open(os.path.join(root, f), "rb").read(28)[24:28])[0])
print(" ".join(str(v) for v in sorted(vs)))
PY
}
tv_ok "after rotate, old files have version 1 and the new one version 2" test "$(hdr_versions)" = "1 2"
"$VAULT" rewrap -c "$T/tv.conf" alpha > "$T/rewrap.out" 2>&1
tv_ok "rewrap re-wraps the 3 old file headers and the name key" grep -q "4 headers re-wrapped (0 upgraded to version 2), 0 errors" "$T/rewrap.out"
tv_ok "every header now has version 2" test "$(hdr_versions)" = 2
# interrupted rewrap: rotate again, kill a run part-way, everything still reads, a rerun finishes
mkdir "$A/many"; for i in $(seq 1 150); do printf 'trace %s\n' $i > "$A/many/t$i.json"; done
"$KEYCTL" -c "$T/tv.conf" rotate alpha >/dev/null || vault_bail "rotate 3"
"$VAULT" rewrap -c "$T/tv.conf" alpha > /dev/null 2>&1 & rp=$!
sleep 0.05; kill -9 $rp 2>/dev/null; wait $rp 2>/dev/null
vault_remount
bad=0; for i in $(seq 1 150); do [ "$(cat "$A/many/t$i.json")" = "trace $i" ] || bad=$((bad + 1)); done
tv_ok "after a rewrap killed part-way every file still reads (versions now: $(hdr_versions))" test $bad = 0
"$VAULT" rewrap -c "$T/tv.conf" alpha > "$T/rewrap3.out" 2>&1
tv_ok "the rerun completes: every header at version 3" test "$(grep -c ', 0 errors' "$T/rewrap3.out") $(hdr_versions)" = "1 3"
rm -rf "$A/many"
"$VAULT" rewrap -c "$T/tv.conf" alpha > "$T/rewrap2.out" 2>&1
tv_ok "a rerun has nothing to do" grep -q "0 headers re-wrapped (0 upgraded to version 2), 0 errors" "$T/rewrap2.out"
"$KEYCTL" -c "$T/tv.conf" retire alpha 3 >/dev/null || vault_bail "retire"
vault_remount
vault_write_random "$T/expect" 9000 3
tv_ok "with versions 1 and 2 retired, re-wrapped files still read" cmp -s "$T/expect" "$A/f3"
tv_ok "and the project's names still decrypt" test "$(ls "$A" | tr '\n' ' ')" = "f1 f2 f3 f4 "
tv_ok "fsck passes after rewrap and retire" sh -c "'$VAULT' fsck -c '$T/tv.conf' >/dev/null 2>&1"

# shred
rm -f "$T/sync"/*
"$PY" "$T/holder.py" "$A/f3" "$T/sync" 1 > "$T/holder.out" 2>&1 &
hp=$!
tv_wait_for "$T/sync/ready" 10
cat "$A/f2" > /dev/null
"$KEYCTL" -c "$T/tv.conf" shred alpha --yes >/dev/null 2>&1 || vault_bail "shred"
sleep 0.5
touch "$T/sync/go0"; tv_wait_for "$T/sync/done0" 10; wait $hp
tv_ok "after SHRED an open file fails with EIO" test "$(cat "$T/holder.out")" = EIO
tv_ok "after SHRED a closed file fails with EIO" test "$(vault_read_errno "$A/f2")" = EIO
tv_ok "after SHRED a just-read (cached) file fails with EIO" test "$(vault_read_errno "$A/f4")" = EIO
tv_fails "after SHRED no file can be created" sh -c "printf x > '$A/new' 2>/dev/null"
vault_write_random "$T/expect" 5000 9
tv_ok "another project is unaffected" cmp -s "$T/expect" "$M/beta/keep"
tv_ok "the shred is in the vault audit log" grep -q '"project":"alpha","op":"shred"' "$T/log/vault-audit.log"

# a SHRED sent while the vault is not subscribed (keyd restarting) still purges
vault_write_random "$M/gamma/g" 9000 5
rm -f "$T/sync"/*
"$PY" "$T/holder.py" "$M/gamma/g" "$T/sync" 1 > "$T/holder.out" 2>&1 &
hp=$!
tv_wait_for "$T/sync/ready" 10
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null; rm -f "$T/run/keyd.sock"
sleep 2
tv_start_keyd || vault_bail "keyd restart"
"$KEYCTL" -c "$T/tv.conf" shred gamma --yes >/dev/null 2>&1 || vault_bail "shred gamma"
sleep 3
touch "$T/sync/go0"; tv_wait_for "$T/sync/done0" 10; wait $hp
tv_ok "SHRED during a keyd restart: the open file fails with EIO" test "$(cat "$T/holder.out")" = EIO
tv_ok "SHRED during a keyd restart: reopening fails with EIO" test "$(vault_read_errno "$M/gamma/g")" = EIO

# a ROTATE sent while the vault is not subscribed: the DEKs it pooled before
# (version 1) must not serve new files, or rewrap + retire would make them
# unreadable for good.  keyd runs for a while with the vault's uid off
# vault_users, so the rotate certainly falls while the vault cannot subscribe.
kek_version() {
    "$PY" -c 'import struct, sys; print(struct.unpack("<I", open(sys.argv[1], "rb").read(28)[24:28])[0])' \
        "$(vault_backing "$1")"
}
restart_keyd() {
    kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null; rm -f "$T/run/keyd.sock"
    tv_start_keyd || vault_bail "keyd restart"
}
vault_write_random "$M/beta/before" 100 1
subs() { grep -c 'op=SUBSCRIBE .*result=ok' "$T/log/keyd-audit.log"; }
cp "$T/tv.conf" "$T/tv.conf.orig"
sed -i "s|^vault_users .*|vault_users = $(id -un nobody)|" "$T/tv.conf"
restart_keyd
"$KEYCTL" -c "$T/tv.conf" rotate beta >/dev/null 2>&1 || vault_bail "rotate beta"
s0=$(subs)
cp "$T/tv.conf.orig" "$T/tv.conf"
restart_keyd
for i in $(seq 100); do [ "$(subs)" -gt "$s0" ] && break; sleep 0.05; done
vault_write_random "$M/beta/after" 100 2
tv_ok "ROTATE while the vault could not subscribe: a file made before has version 1" \
    test "$(kek_version "$M/beta/before")" = 1
tv_ok "... one made after it re-subscribed has version 2, not a pooled version 1" \
    test "$(kek_version "$M/beta/after")" = 2
tv_done
