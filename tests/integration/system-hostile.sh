#!/bin/bash
# system-hostile.sh - DESIGN §8 "bad input never crashes a daemon or loses
# other data", across the pipeline at once.  Into the running system (keyd,
# the vault, the agent shipping over TLS) go, side by side with good traces:
# malformed, truncated, huge, deeply nested, too-long-string, too-many-events
# JSON documents, invalid UTF-8 (bad bytes, overlong forms), binary files,
# white space, JSON of the wrong shape, the same kinds as JSONL lines (one of
# 5 MiB), hostile names (newlines, a forged log line, 255-byte names,
# Unicode, quotes, format directives, leading dashes) for good and bad
# traces, names and objects the vault must refuse, a trace whose ciphertext
# was tampered with, and hostile frames on keyd's socket (oversized length,
# garbage, lying container counts).
# Afterwards: every good trace is shipped (exact set of event_ids), every
# bad one is a skipped record with its reason, counted per reason in the
# agent's metrics, with a log line naming the file; and every daemon is
# still running and still serving.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
. "$top_srcdir/tests/integration/system-lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
. "$top_srcdir/tests/integration/vault-lib.sh"
tv_init system-hostile
sys_setup alpha beta <<'CONF'
[agent]
max_document_bytes = 4194304
CONF
tv_plan 18
agent_start || sys_bail "the agent did not start"

cat > "$T/gen.py" <<'PY'
import json, os, random, sys
M = sys.argv[1]
A, B = M + "/alpha", M + "/beta"
r = random.Random(7)
good = []
def ev(eid, **kw):
    d = {"event_id": eid, "event_type": "model", "session_id": "s", "start_time": 1763790000000,
         "duration": 5, "config": {"model": "gpt-4o"}, "inputs": {"q": "hi"},
         "outputs": {"content": "ok"}, "metrics": {"prompt_tokens": 1, "completion_tokens": 1}}
    d.update(kw)
    return d
def put(path, data):
    with open(path, "wb") as f:
        f.write(data)
# Good traces under hostile names.
names = ["good 1.json", "-rf good.json", "nl\nname.json", "\u00fcn\u00ef-\u4e2d\u6587-\U0001f680.json",
         "L" * 250 + ".json", "%s%n%x%p.json", "q\"u'o\\te.json", "tab\there.json", " lead.json"]
for i, n in enumerate(names):
    put(os.path.join(A, n), json.dumps(ev("g-name-%d" % i)).encode()); good.append("g-name-%d" % i)
d = os.path.join(A, "dir\nnl", "\u00fcn\u00ef")
os.makedirs(d)
put(os.path.join(d, "x.jsonl"), b"".join(json.dumps(ev("g-dir-%d" % i)).encode() + b"\n" for i in range(3)))
good += ["g-dir-%d" % i for i in range(3)]
put(os.path.join(B, "good.json"), json.dumps([ev("g-arr-0"), ev("g-arr-1")]).encode())
good += ["g-arr-0", "g-arr-1"]
# Bad documents (name -> reason).
bad = {
    "malformed.json": b'{"event_type": "model", "inputs": ]]]}',
    "bad\ntracevault-agent: FORGED log line.json": b'{"event_type": "model", "inputs": ]]]}',
    "truncated.json": b'{"event_type": "model", "inputs": {"q": "cut here',
    "huge.json": json.dumps([ev("huge-%d" % i, inputs={"q": "h" * 100000}) for i in range(50)]).encode(),
    "deep.json": b"[" * 100000 + b"]" * 100000,
    "badutf8.json": b'{"event_type": "model", "inputs": {"q": "\xff\xfe bad"}}',
    "overlong.json": b'{"event_type": "model", "inputs": {"q": "\xc0\xaf"}}',
    "surrogate.json": b'{"event_type": "model", "inputs": {"q": "\xed\xa0\x80"}}',
    "binary.json": b'{"event_type": "mo\x00del"}',
    "random.json": b"\x00" + r.randbytes(65536),
    "space.json": b"  \n\t  \n",
    "shape.json": b'{"foo": [1, 2, 3]}',
    "longstring.json": json.dumps(ev("ls", inputs={"q": "s" * (1536 * 1024)})).encode(),
    "manyevents.json": json.dumps([{"event_type": "model"}] * 10001).encode(),
}
for n, data in bad.items():
    put(os.path.join(A, n), data)
# JSONL: bad lines between good ones.
lines = [json.dumps(ev("g-line-0")).encode(),
         b'{"event_type": "model", "inputs": {',                       # malformed
         b'{"event_type": "model", "q": "\xf8\x88\x80\x80\x80"}',        # invalid_utf8
         b'{"event_type": "model", "q": "' + b"z" * (5 << 20) + b'"}',  # oversized
         b'{"event_type": "\x00"}',                                      # binary
         b"[" * 5000 + b"]" * 5000,                                      # too_deep
         json.dumps(ev("g-line-1")).encode()]
put(os.path.join(B, "mixed.jsonl"), b"\n".join(lines) + b"\n")
good += ["g-line-0", "g-line-1"]
# Not traces: a binary blob, an editor backup; both ignored.
put(os.path.join(B, "blob.bin"), r.randbytes(100000))
put(os.path.join(B, "good.json~"), b"garbage")
open(sys.argv[2], "w").write("\n".join(good) + "\n")
PY
"$PY" "$T/gen.py" "$M" "$T/good.txt" 2> "$T/gen.err" || { sed 's/^/# /' "$T/gen.err"; sys_bail "could not write the inputs"; }
# reason -> count: 13 alpha documents (+1 random binary), 5 beta JSONL lines.
cat > "$T/want" <<'EOF'
binary 3
empty 1
invalid_utf8 4
malformed 2
oversized 2
string_too_long 1
too_deep 2
too_many_events 1
truncated 2
unrecognized 1
EOF
nskip=$(awk '{ s += $2 } END { print s }' "$T/want")

# The vault refuses what it must, and lives.
_refused() {
    _got=$("$PY" - "$M" <<'PY'
import errno, os, sys
M = sys.argv[1]
ops = [lambda: open(M + "/alpha/" + "x" * 256 + ".json", "w"),
       lambda: os.symlink("/etc/passwd", M + "/alpha/link.json"),
       lambda: os.mkfifo(M + "/alpha/fifo.json"),
       lambda: os.link(M + "/alpha/good 1.json", M + "/alpha/hard.json"),
       lambda: os.rename(M + "/beta/good.json", M + "/alpha/moved.json")]
out = []
for op in ops:
    try:
        op(); out.append("OK")
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(" ".join(out))
PY
)
    [ "$_got" = "ENAMETOOLONG EPERM EPERM EPERM EXDEV" ] || { tv_diag "got: $_got"; return 1; }
}
tv_ok "the vault refuses a 256-byte name, a symlink, a FIFO, a hard link, a cross-project rename" _refused

# Hostile frames on keyd's socket.
keyd_py '
import struct
def raw(b):
    s = kd_conn()
    try:
        s.sendall(b)
        s.recv(100)
    except OSError:
        pass
    s.close()
raw(struct.pack(">I", 0xFFFFFFFF) + b"A" * 1000)                 # oversized length
raw(struct.pack(">I", 200000) + b"\x00" * 1000)                    # over the 128 KiB cap
raw(struct.pack(">I", 16) + b"\xdf\xff\xff\xff\xff" + b"\x00" * 11) # map claiming 4G entries
raw(struct.pack(">I", 8) + b"\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1")    # never-used msgpack bytes
raw(struct.pack(">I", 6) + b"\x81\xa2op\xa3GEN")                   # truncated body
r = kd_call({"op": "NO_SUCH_OP", "project": "alpha"})
print(r)
' > "$T/keyd-attack.out" 2>&1
tv_ok "keyd answered an unknown op with EOPNOTSUPP after the hostile frames" \
    grep -q "'err': 'EOPNOTSUPP'" "$T/keyd-attack.out"
tv_ok "keyd audited each hostile frame with its error (2 EMSGSIZE, 3 EPROTO)" sh -c "
    test \$(grep -c ' op=? project=- .*result=EMSGSIZE ' '$T/log/keyd-audit.log') -eq 2 &&
    test \$(grep -c ' op=? project=- .*result=EPROTO ' '$T/log/keyd-audit.log') -eq 3"
tv_ok "keyd still serves: keyctl list" sh -c "'$KEYCTL' -c '$T/tv.conf' list > /dev/null"

# Tampered ciphertext: a byte flipped in the backing file before the trace
# is renamed into place must give EIO (audited), never garbage shipped.
agent_event g-tampered > "$M/alpha/tamper.json.part"
fid=$("$PY" -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.tracevault.file_id").decode())' "$M/alpha/tamper.json.part")
bf=$(vault_backing "$M/alpha/tamper.json.part") || sys_bail "no backing file for the tampered trace"
"$PY" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(200); b = f.read(1); f.seek(200); f.write(bytes([b[0] ^ 1]))' "$bf"
mv "$M/alpha/tamper.json.part" "$M/alpha/tamper.json"

# Good traces written after all that still flow.
agent_event g-after-0 > "$M/alpha/after.json"
agent_event g-after-1 >> "$M/beta/after.jsonl"
printf 'g-after-0\ng-after-1\n' >> "$T/good.txt"
ngood=$(grep -c '' "$T/good.txt")
tv_diag "$ngood good traces, $nskip bad ones"
tv_ok "the upstream received all $((ngood + nskip)) records" agent_wait_count $((ngood + nskip)) sys_records 40
sleep 1
tv_ok "every good trace shipped, exactly once, nothing else" "$PY" - "$T/up/records.jsonl" "$T/good.txt" "$AGENT" "$T/tv.conf" <<'PY'
import json, subprocess, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
want = sorted(open(sys.argv[2]).read().split())
# Event ids leave only as keyed hashes, one key per project.
hmap = {}
for proj in ("alpha", "beta"):
    out = subprocess.run([sys.argv[3], "-c", sys.argv[4], "hash", proj, "event"] + want,
                         capture_output=True, text=True, check=True).stdout.split()
    hmap.update({(proj, h): e for e, h in zip(want, out)})
got = sorted(hmap.get((r["project"], r.get("event_hash")), "?") for r in recs if "skip_reason" not in r)
print("# %d good records, %d expected; missing %s, extra %s" % (len(got), len(want),
      sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
sys.exit(0 if got == want else 1)
PY
tv_ok "every bad one is a skipped record with the right reason" sh -c "
    \"$PY\" -c 'import json,sys,collections
c = collections.Counter(json.loads(l).get(\"skip_reason\") for l in open(sys.argv[1]))
c.pop(None, None)
print(\"\\n\".join(\"%s %d\" % kv for kv in sorted(c.items())))' '$T/up/records.jsonl' > '$T/got' &&
    diff '$T/want' '$T/got' | sed 's/^/# /'; cmp -s '$T/want' '$T/got'"
# The log names files by their vault file ID, never by name (names are
# content): an operator finds one with its user.tracevault.file_id xattr.
file_id() { "$PY" -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.tracevault.file_id").decode())' "$1"; }
_logged() {
    for n in malformed truncated huge deep badutf8 overlong surrogate binary random space shape \
             longstring manyevents; do
        _f=$(file_id "$M/alpha/$n.json") || { tv_diag "no file id for $n.json"; return 1; }
        grep -q "project \"alpha\": file $_f: .*skipped .*: " "$T/agent.log" ||
            { tv_diag "no log line for $n.json (file $_f)"; return 1; }
    done
    _f=$(file_id "$M/beta/mixed.jsonl")
    [ "$(grep -c "project \"beta\": file $_f: offset [0-9]*: skipped" "$T/agent.log")" -eq 5 ] ||
        { tv_diag "not 5 log lines for mixed.jsonl"; return 1; }
}
tv_ok "a log line names each skipped file by its file ID (and the offset of each bad JSONL line)" _logged
tv_ok "the name with a newline (a forged log line) never reaches the agent's log" \
    sh -c "! grep -q 'FORGED' '$T/agent.log'"
tv_ok "the tampered trace: an integrity record in the vault's audit log, a log line from the agent" sh -c "
    grep -q '\"op\":\"integrity\",\"result\":\"EIO\",\"file_id\":\"$fid\"' '$T/log/vault-audit.log' &&
    grep -q 'file $fid: .*Input/output error' '$T/agent.log'"
tv_ok "no trace file or directory name is in the agent's log" \
    sh -c "! grep -E 'alpha/|beta/|\\.json' '$T/agent.log'"
tv_ok "no daemon crashed: keyd, the vault, the agent and the upstream are running" \
    sys_alive "$KEYD_PID" "$VAULT_PID" "$AGENT_PID" "$UP_PID"
tv_ok "the mount still serves reads (a good trace with a hostile name)" \
    grep -q '"g-name-2"' "$M/alpha/nl
name.json"
"$VAULT" fsck -c "$T/tv.conf" > "$T/fsck.out" 2>&1; rc=$?
tv_ok "fsck finds exactly the tampered file, by its name (exit $rc)" sh -c \
    "test $rc -ne 0 && grep -q 'alpha/tamper.json' '$T/fsck.out' && grep -q ', 1 damaged' '$T/fsck.out'"
tv_ok "keyd's audit chain verifies (hostile frames were audited, not fatal)" \
    sh -c "'$KEYCTL' -c '$T/tv.conf' audit-verify > /dev/null"
tv_ok "the agent stops cleanly (exit 0)" agent_stop
# The metrics file is final once the agent has exited.
_metrics() {
    while read -r reason n; do
        m=$(awk -v k="tracevault_agent_skipped_total{reason=\"$reason\"}" '$1 == k { print $2 }' "$T/agent/metrics.prom")
        [ "$m" = "$n" ] || { tv_diag "skipped_total{reason=$reason} = $m, want $n"; return 1; }
    done < "$T/want"
}
tv_ok "the agent's metrics count each skip by reason" _metrics
tv_ok "the agent's queue is empty (nothing dead-lettered, nothing stuck)" \
    sh -c "test $(agent_metric queue_depth) -eq 0 && test $(agent_metric records_dead_lettered_total) -eq 0"
tv_done
