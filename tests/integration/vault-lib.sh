# tests/integration/vault-lib.sh - helpers for the vault's integration tests.
# Source after lib.sh.  vault_setup reads extra INI text (project sections)
# on stdin, starts keyd, creates the projects named in $VAULT_PROJECTS and
# mounts the vault on $M.  All of it is undone at exit by lib.sh's tv_defer.

VAULT_PROJECTS=${VAULT_PROJECTS:-alpha beta}

vault_bail() {
    echo "Bail out! $*"
    for f in "$T/vault.log" "$T/keyd.log"; do
        [ -f "$f" ] && sed 's/^/# /' "$f" | tail -20
    done
    exit 1
}

vault_setup() {
    tv_need_root
    tv_need_fuse
    [ -x "$VAULT" ] && [ -x "$KEYD" ] && [ -x "$KEYCTL" ] || tv_skip_all "vault or keyd not built"
    tv_write_conf
    tv_start_keyd || vault_bail "keyd did not start"
    for p in $VAULT_PROJECTS; do
        "$KEYCTL" -c "$T/tv.conf" create "$p" >/dev/null 2>"$T/create.err" ||
            vault_bail "keyctl create $p: $(cat "$T/create.err")"
    done
    tv_start_vault || vault_bail "vault did not mount"
    M="$T/mnt"
}

# Unmount and wait for the vault process to exit.
vault_umount() {
    fusermount3 -u "$T/mnt" 2>/dev/null || fusermount3 -u -z "$T/mnt" 2>/dev/null
    wait "$VAULT_PID" 2>/dev/null
    return 0
}

vault_remount() {
    vault_umount
    tv_start_vault || vault_bail "vault did not remount"
}

# vault_backing PLAINPATH: print the backing file holding PLAINPATH (found by
# its file ID, read through the mount's xattr and matched against headers).
vault_backing() {
    "$PY" - "$1" "$T/data" <<'PY'
import os, sys
fid = bytes.fromhex(os.getxattr(sys.argv[1], "user.tracevault.file_id").decode())
for root, dirs, files in os.walk(sys.argv[2]):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    for f in files:
        if f.startswith("."):
            continue
        p = os.path.join(root, f)
        with open(p, "rb") as fh:
            if fh.read(24)[8:24] == fid:
                print(p)
                sys.exit(0)
sys.exit(1)
PY
}

# vault_read_errno PATH: print the errno name a full read of PATH ends with
# ("OK" when it succeeds).
vault_read_errno() {
    "$PY" - "$1" <<'PY'
import errno, sys
try:
    with open(sys.argv[1], "rb") as f:
        while f.read(1 << 20):
            pass
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}

# vault_write_random PATH SIZE SEED: write SIZE pseudo-random bytes.
vault_write_random() {
    "$PY" -c 'import random,sys; r=random.Random(int(sys.argv[3])); open(sys.argv[1],"wb").write(bytes(r.getrandbits(8) for _ in range(int(sys.argv[2]))))' "$1" "$2" "$3"
}
