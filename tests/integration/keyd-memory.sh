#!/bin/sh
# keyd-memory: no plaintext DEK stays behind in keyd's memory once its reply
# is sent.  Clients take batches of DEKs (GEN_DEK 1..1024, UNWRAP of 64),
# then, as root, every readable mapping of keyd (/proc/PID/mem) is searched
# for every DEK they received.  Replies built in a growing malloc'd buffer
# (msgpack_sbuffer) left copies in freed heap memory; in guarded, wiped
# buffers none is found.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-memory
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_need_root
tv_plan 5

tv_ok "keyd starts" keyd_setup
kctl_q create p
# Control: a key keyd does keep (the API key, in guarded memory) must be
# found by the same scan, or the scan proves nothing.
echo "sk-MEMSCAN-CONTROL-$$-0123456789abcdef" | kctl_q apikey-set p
printf 'sk-MEMSCAN-CONTROL-%s-0123456789abcdef' $$ | od -An -tx1 | tr -d ' \n' > "$T/control"
OUT="$T/deks" keyd_py '
import os
deks = []
s = kd_conn()
idle = []
for n in (1, 7, 64, 1024, 300, 1024, 512):
    r = kd_call({"op": "GEN_DEK", "project": "p", "n": n}, s)
    assert r["ok"], r
    deks += [r["deks"][i:i + 32] for i in range(0, len(r["deks"]), 32)]
    w = r["wrapped"][:64 * 72]
    # Other clients with a partial frame pending: their buffers are made
    # after the reply, so memory freed by the reply is not simply returned.
    for i in range(8):
        c = kd_conn()
        c.sendall(b"\x00\x00\x10\x00" + b"\x81" * 100)
        idle.append(c)
u = kd_call({"op": "UNWRAP", "project": "p", "version": 1, "wrapped": w}, s)
assert u["ok"], u
deks += [u["dek"][i:i + 32] for i in range(0, len(u["dek"]), 32)]
s.close()
open(os.environ["OUT"], "w").write("\n".join(d.hex() for d in deks) + "\n")
' > "$T/client.out" 2>&1
n=$(cat "$T/deks" 2>/dev/null | wc -l)
tv_ok "clients received $n DEKs (GEN_DEK 1, 7, 64, 1024, 300, 1024, 512; UNWRAP 64)" test "$n" -eq 2996
[ "$n" -eq 2996 ] || tv_diag "$(cat "$T/client.out")"
sleep 0.3
"$PY" - "$KEYD_PID" "$T/deks" "$T/control" > "$T/scan.out" 2>&1 <<'PY'
import sys
pid, path = sys.argv[1], sys.argv[2]
deks = [bytes.fromhex(l.strip()) for l in open(path) if l.strip()]
control = bytes.fromhex(open(sys.argv[3]).read().strip())
found, scanned, seen_control = set(), 0, 0
mem = open("/proc/%s/mem" % pid, "rb", 0)
for line in open("/proc/%s/maps" % pid):
    f = line.split()
    if "r" not in f[1] or (len(f) > 5 and f[5] in ("[vvar]", "[vsyscall]")):
        continue
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    # keyd's own memory is a few MiB.  Mappings of more than 64 MiB are the
    # shadow AddressSanitizer reserves (--enable-sanitizers: terabytes of
    # NORESERVE pages that hold shadow bytes, never program data).
    if hi - lo > 64 << 20:
        continue
    try:
        mem.seek(lo)
        data = mem.read(hi - lo)
    except OSError:
        continue
    scanned += len(data)
    seen_control += control in data
    for d in deks:
        if d in data:
            found.add(d)
print(len(found), scanned, seen_control)
PY
read -r found scanned control < "$T/scan.out"
tv_ok "keyd's readable memory ($((scanned / 1024)) KiB) was scanned" test "${scanned:-0}" -gt 100000
tv_ok "control: the scan finds the API key keyd keeps" test "${control:-0}" -ge 1
tv_ok "no DEK a client received is left in it (found ${found:-?})" test "${found:-1}" = 0
tv_done
