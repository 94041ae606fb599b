#!/bin/sh
# keyd-ingest: per-project ingest keys (issue 12, keyd side), by attack.
# A key made by ingest-key-create verifies to its project through the client
# library as the gateway calls it; a wrong secret, an unknown ID, a truncated
# key and 4 KiB of garbage do not; a revoked key fails on the very next
# request; keys survive a restart; SHRED kills them; the token is in no file
# of keyd's, no log and no audit record; only ingest_users may verify and
# only admins may create; failures are audited, aggregated; a keystore of
# format 2 loads and gains ingest keys.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-ingest
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_need_root
tv_plan 46
ING="$top_builddir/tests/integration/keyd_ingest"
S="$T/run/keyd.sock"

UI=$(tv_add_user ingest) && UN=$(tv_add_user none) ||
    { echo "Bail out! cannot create test users"; exit 1; }
tv_write_conf </dev/null
# ingest_users is the gateway's user only; failures summed over 2 s.
sed -i "/^admin_users/a ingest_users = $UI\ningest_denied_interval = 2" "$T/tv.conf"
chgrp "$(id -g "$UI")" "$T/run"
tv_ok "keyd starts with [keyd] ingest_users" tv_start_keyd
chgrp "$(id -g "$UI")" "$T/run"
kctl_q create checkout
kctl_q create billing

# Verify as the gateway would: the key on stdin, exit 0/3/4 (see keyd_ingest.c).
auth() { printf '%s' "$1" | tv_as "${2:-$UI}" "$ING" "$S" auth 2>>"$T/ing.err"; }
auth_rc() { auth "$@" >/dev/null; echo $?; }

K1=$(kctl ingest-key-create checkout 2>"$T/create.err"); rc=$?
tv_ok "ingest-key-create exits 0 with nothing on stderr" sh -c '[ $0 -eq 0 ] && [ ! -s "$1" ]' $rc "$T/create.err"
tv_ok "stdout is the key alone: tvi_<16 hex>_<43 base64url>" \
    sh -c 'printf "%s\n" "$0" | grep -qx "tvi_[0-9a-f]\{16\}_[A-Za-z0-9_-]\{43\}"' "$K1"
ID1=$(printf '%s' "$K1" | cut -c5-20)
SECRET1=$(printf '%s' "$K1" | cut -c22-)
K2=$(kctl ingest-key-create checkout)
KB=$(kctl ingest-key-create billing)
ID2=$(printf '%s' "$K2" | cut -c5-20)
IDB=$(printf '%s' "$KB" | cut -c5-20)
tv_ok "three keys, three different IDs and secrets" \
    sh -c '[ "$0" != "$1" ] && [ "$0" != "$2" ] && [ "$1" != "$2" ]' "$K1" "$K2" "$KB"

kctl ingest-key-list checkout >"$T/list" 2>&1
tv_ok "ingest-key-list shows both IDs, live" \
    sh -c 'grep -q "^$0 created=20[0-9-]*T[0-9:]*Z revoked=no$" "$2" && grep -q "^$1 " "$2" && [ $(wc -l <"$2") -eq 2 ]' "$ID1" "$ID2" "$T/list"
tv_fails "...and never the key's secret" grep -qF "$SECRET1" "$T/list"

tv_ok "the key verifies to its project and ID" test "$(auth "$K1")" = "checkout $ID1"
tv_ok "another project's key verifies to that project" test "$(auth "$KB")" = "billing $IDB"
# Flip the secret's last character (stays base64url: same shape, wrong value).
last=$(printf '%s' "$K1" | cut -c64)
[ "$last" = A ] && sub=B || sub=A
WRONG=$(printf '%s' "$K1" | cut -c1-63)$sub
tv_ok "a wrong secret is refused (EACCES, exit 3)" test "$(auth_rc "$WRONG")" = 3
UNKNOWN=tvi_0123456789abcdef_$SECRET1
[ "$ID1" = 0123456789abcdef ] && UNKNOWN=tvi_fedcba9876543210_$SECRET1
tv_ok "an unknown ID with a real secret is refused" test "$(auth_rc "$UNKNOWN")" = 3
SWAP=tvi_${ID2}_$SECRET1
tv_ok "one key's ID with another key's secret is refused" test "$(auth_rc "$SWAP")" = 3
tv_ok "a truncated key is refused" test "$(auth_rc "$(printf '%s' "$K1" | cut -c1-63)")" = 3
tv_ok "the key with a byte appended is refused" test "$(auth_rc "${K1}x")" = 3
tv_ok "the key in upper case is refused" test "$(auth_rc "$(printf '%s' "$K1" | tr a-z A-Z)")" = 3
GARBAGE=$(head -c 3072 /dev/urandom | base64 -w0 | cut -c1-4096)
tv_ok "4 KiB of garbage is refused" test "$(auth_rc "$GARBAGE")" = 3
tv_ok "an empty key is refused" test "$(auth_rc "")" = 3
got=$(tv_as "$UI" env SOCK="$S" "$PY" -c "$KEYD_PY_LIB
import random
r = [kd_call({'op': 'INGEST_AUTH', 'key': bytes(random.getrandbits(8) for _ in range(4096))}).get('err'),
     kd_call({'op': 'INGEST_AUTH', 'key': '$K1' + '\0'}).get('err'),
     kd_call({'op': 'INGEST_AUTH', 'key': 12345}).get('err'),
     kd_call({'op': 'INGEST_AUTH', 'project': 'billing', 'key': '$K1'}).get('project')]
print(' '.join(map(str, r)))")
tv_ok "raw protocol: binary garbage and a NUL-suffixed key are EKEYREJECTED, a non-string key EINVAL, a stray project ignored ($got)" \
    test "$got" = "EKEYREJECTED EKEYREJECTED EINVAL checkout"

# Authorization: only ingest_users verify; only admins manage.
tv_ok "a user on no list cannot call INGEST_AUTH (EPERM, exit 4: not a wrong key)" test "$(auth_rc "$K1" "$UN")" = 4
tv_ok "root, an admin but not in ingest_users, cannot either" sh -c 'printf "%s" "$0" | "$1" "$2" auth >/dev/null 2>&1; [ $? -eq 4 ]' "$K1" "$ING" "$S"
tv_ok "...both refusals audited as EACCES with their uid" \
    sh -c 'grep -q "uid=$(id -u "$0") pid=[0-9]* op=INGEST_AUTH .*result=EACCES " "$1" && grep -q "uid=0 pid=[0-9]* op=INGEST_AUTH .*result=EACCES " "$1"' "$UN" "$T/log/keyd-audit.log"
tv_fails "the ingest user cannot create keys" tv_as "$UI" "$KEYCTL" -c "$T/tv.conf" ingest-key-create checkout
tv_fails "...nor list or revoke them" sh -c 'setpriv --reuid="$0" --regid="$(id -g "$0")" --init-groups -- "$1" -c "$2" ingest-key-list checkout ||
    setpriv --reuid="$0" --regid="$(id -g "$0")" --init-groups -- "$1" -c "$2" ingest-key-revoke checkout "$3"' "$UI" "$KEYCTL" "$T/tv.conf" "$ID1"
tv_ok "the key still verifies after those attempts" test "$(auth "$K1")" = "checkout $ID1"

# Revocation is immediate: the very next request fails.
kctl ingest-key-revoke checkout "$ID1" >"$T/revoke.out" 2>&1; rc=$?
tv_ok "ingest-key-revoke exits 0" test $rc -eq 0
tv_ok "the revoked key fails on the next request" test "$(auth_rc "$K1")" = 3
tv_ok "the other key of the project still verifies" test "$(auth "$K2")" = "checkout $ID2"
kctl ingest-key-list checkout >"$T/list2"
tv_ok "ingest-key-list: revoked with a time" grep -q "^$ID1 created=[^ ]* revoked=20[0-9-]*T[0-9:]*Z$" "$T/list2"
kctl ingest-key-revoke checkout "$IDB" >"$T/out" 2>&1; rc=$?
tv_ok "revoking another project's key ID fails, naming it (exit $rc)" \
    sh -c '[ $0 -eq 1 ] && grep -q "no ingest key $1" "$2"' $rc "$IDB" "$T/out"
kctl ingest-key-revoke checkout NOTANID >"$T/out" 2>&1; rc=$?
tv_ok "a malformed ID is a usage error (exit $rc)" test $rc -eq 2

# Survives a restart: live keys verify, revoked keys stay revoked.
keyd_stop
tv_ok "keyd restarts" keyd_restart
tv_ok "after the restart the live key verifies" test "$(auth "$K2")" = "checkout $ID2"
tv_ok "...and the revoked one is still refused" test "$(auth_rc "$K1")" = 3

# SHRED removes the project's keys.
kctl_q shred billing --yes
tv_ok "after SHRED the project's key is refused" test "$(auth_rc "$KB")" = 3
tv_fails "...and ingest-key-list of it fails" kctl_q ingest-key-list billing
tv_fails "...and no key can be made for it" kctl_q ingest-key-create billing

# Audit: create/revoke carry the ID, successes are counted not recorded,
# failures are summed: the records' n add up to every refused verification.
A="$T/log/keyd-audit.log"
tv_ok "create and revoke are audited with the key's ID" \
    sh -c 'grep -q "op=INGEST_KEY_CREATE project=checkout .* key=$0 result=ok" "$2" && grep -q "op=INGEST_KEY_REVOKE project=checkout .* key=$0 result=ok" "$2" && grep -q "op=INGEST_KEY_CREATE project=billing .* key=$1 result=ok" "$2"' "$ID1" "$IDB" "$A"
tv_fails "no successful INGEST_AUTH has a record of its own" grep -q "op=INGEST_AUTH .*result=ok" "$A"
sleep 2.2
before=$(grep "op=INGEST_AUTH .*result=EKEYREJECTED" "$A" | sed 's/.* n=\([0-9]*\) .*/\1/' | awk '{s+=$1} END {print s+0}')
recs_before=$(grep -c "op=INGEST_AUTH .*result=EKEYREJECTED" "$A")
# Ten failures in one process, so they fall in one interval however busy
# the machine is.
tv_as "$UI" env SOCK="$S" "$PY" -c "$KEYD_PY_LIB
s = kd_conn()
assert all(kd_call({'op': 'INGEST_AUTH', 'key': '$WRONG'}, s).get('err') == 'EKEYREJECTED' for _ in range(10))"
recs_now=$(grep -c "op=INGEST_AUTH .*result=EKEYREJECTED" "$A")
sleep 2.5                # no request after this: the summary comes from keyd's own timer
after=$(grep "op=INGEST_AUTH .*result=EKEYREJECTED" "$A" | sed 's/.* n=\([0-9]*\) .*/\1/' | awk '{s+=$1} END {print s+0}')
recs_after=$(grep -c "op=INGEST_AUTH .*result=EKEYREJECTED" "$A")
tv_ok "10 failures in one interval: one record at once, one summary later, n summing to 10 (records $recs_before/$recs_now/$recs_after, n $before -> $after)" \
    sh -c '[ $(($1 - $0)) -eq 10 ] && [ $(($3 - $2)) -eq 1 ] && [ $(($4 - $3)) -eq 1 ]' "$before" "$after" "$recs_before" "$recs_now" "$recs_after"
tv_ok "a failed verification of a known key names its ID and project" \
    grep -q "op=INGEST_AUTH project=checkout .* n=1 key=$ID1 result=EKEYREJECTED" "$A"
tv_ok "audit chain intact" kctl_q audit-verify

# The canary: the tokens and their secrets are nowhere in keyd's files.
keyd_stop
hits=0
for k in "$K1" "$K2" "$KB" "$SECRET1" "$(printf '%s' "$K2" | cut -c22-)" "$(printf '%s' "$KB" | cut -c22-)"; do
    grep -rlaF -- "$k" "$T/lib" "$T/log" "$T/etc" "$T/run" "$T/keyd.log" "$T/ing.err" "$T/create.err" "$T/list" "$T/list2" >>"$T/hits" 2>/dev/null && hits=1
done
printf 'x%sx' "$K2" >"$T/control"
tv_ok "control: the search finds a planted token" grep -qaF -- "$K2" "$T/control"
tv_ok "no token or secret in the keystore, audit log, keyd's log or any output but create's" test $hits -eq 0

# Format 2 keystore (before ingest keys) loads, keeps its keys, gains ingest keys.
V2="$top_srcdir/tests/data/keyd-v2"
mkdir -p "$T/v2/run" "$T/v2/lib" "$T/v2/log" "$T/v2/etc" && chmod 0750 "$T/v2/run"
cp "$V2/keys" "$V2/keys.seal" "$T/v2/lib/" && cp "$V2/keyd-audit.log" "$V2/keyd-audit.log.head" "$T/v2/log/" &&
    cp "$V2/master.key" "$T/v2/etc/" && chmod 0600 "$T/v2/lib/"* "$T/v2/log/"* && chmod 0400 "$T/v2/etc/master.key"
sed -e "s|$T/run|$T/v2/run|; s|$T/lib|$T/v2/lib|; s|$T/etc|$T/v2/etc|; s|$T/log/keyd|$T/v2/log/keyd|" "$T/tv.conf" >"$T/v2.conf"
cp "$T/v2.conf" "$T/tv.conf"
S="$T/v2/run/keyd.sock"
chgrp "$(id -g "$UI")" "$T/v2/run"
"$KEYD" -c "$T/tv.conf" >>"$T/keyd.log" 2>&1 &
KEYD_PID=$!
tv_defer "kill $KEYD_PID 2>/dev/null; wait $KEYD_PID 2>/dev/null"
tv_wait_for "$S" 10
KV=$(kctl ingest-key-create old)
tv_ok "a format-2 keystore loads and takes an ingest key" \
    sh -c 'printf "%s\n" "$0" | grep -qx "tvi_[0-9a-f]\{16\}_[A-Za-z0-9_-]\{43\}"' "$KV"
keyd_stop
tv_ok "...and is written back as format 3" test "$(head -c5 "$T/v2/lib/keys" | od -An -c | tr -d ' ')" = 'TVKS003'
"$KEYD" -c "$T/tv.conf" >>"$T/keyd.log" 2>&1 &
KEYD_PID=$!
tv_defer "kill $KEYD_PID 2>/dev/null; wait $KEYD_PID 2>/dev/null"
tv_wait_for "$S" 10
tv_ok "after a restart the key verifies to project old" test "$(auth "$KV" | cut -d' ' -f1)" = old
got=$(SOCK="$S" "$PY" -c "$KEYD_PY_LIB
print(kd_call({'op': 'LIST'})['projects'][0]['apikey'])")
tv_ok "the old project's API key is still there" test "$got" = True
tv_done
