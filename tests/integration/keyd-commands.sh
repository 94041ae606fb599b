#!/bin/sh
# keyd-commands: every tracevault-keyctl command as written in DESIGN §3, the
# agent's operations, retire/shred semantics (wrapped DEKs stop unwrapping,
# subscribers hear about it at once), usage errors and a clean SIGTERM exit.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-commands
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_plan 37
RT="$top_builddir/tests/integration/keyd_roundtrip"
S="$T/run/keyd.sock"

tv_ok "keyd starts" keyd_setup
# --help / --version / usage errors.
tv_ok "keyctl --help exits 0" sh -c '"$0" --help | grep -q "shred P --yes"' "$KEYCTL"
tv_ok "keyctl --version prints NAME (tracevault) VERSION" sh -c '"$0" --version | grep -Eq "^tracevault-keyctl \(tracevault\) [0-9]"' "$KEYCTL"
tv_ok "keyd --version" sh -c '"$0" --version | grep -Eq "^tracevault-keyd \(tracevault\) [0-9]"' "$KEYD"
kctl frobnicate >/dev/null 2>&1; rc=$?
tv_ok "unknown command exits 2 (got $rc)" test $rc -eq 2
kctl shred >/dev/null 2>&1; rc=$?
tv_ok "missing argument exits 2 (got $rc)" test $rc -eq 2
kctl create 'a/b' >/dev/null 2>&1; rc=$?
tv_ok "invalid project name exits 2 (got $rc)" test $rc -eq 2
"$KEYCTL" -c "$T/nonexistent.conf" list >/dev/null 2>&1; rc=$?
tv_ok "missing config exits 1 (got $rc)" test $rc -eq 1

# create / rotate / list.
tv_ok "create checkout" kctl_q create checkout
tv_ok "create prints version 1" grep -q "key version 1" "$T/kctl.out"
"$RT" "$S" checkout 4 gen > "$T/v1.wrapped"
tv_ok "rotate checkout" kctl_q rotate checkout
tv_ok "rotate prints version 2" grep -q "new key version 2" "$T/kctl.out"
"$RT" "$S" checkout 4 gen > "$T/v2.wrapped"
tv_ok "new DEKs are wrapped under version 2" sh -c '! grep -qv "^2 " "$0"' "$T/v2.wrapped"
tv_ok "version 1 DEKs still unwrap after rotate" sh -c '"$0" "$1" checkout 0 unwrap < "$2"' "$RT" "$S" "$T/v1.wrapped"
"$RT" "$S" checkout 0 rewrap < "$T/v1.wrapped" > "$T/rewrapped"
tv_ok "REWRAP moves version 1 DEKs to version 2" sh -c '[ $(grep -c "^2 " "$0") -eq 4 ] && "$1" "$2" checkout 0 unwrap < "$0"' "$T/rewrapped" "$RT" "$S"
kctl list > "$T/list" 2>&1
tv_ok "list: checkout current=2 with versions 1 and 2 active" grep -qx 'checkout current=2 apikey=no versions=1:active,2:active' "$T/list"

# retire.
kctl retire checkout 3 >/dev/null 2>&1; rc=$?
tv_ok "retire above the current version fails (exit 1, got $rc)" test $rc -eq 1
kctl retire checkout x >/dev/null 2>&1; rc=$?
tv_ok "retire with a non-numeric version exits 2 (got $rc)" test $rc -eq 2
keyd_py '
s = kd_conn(); print(kd_call({"op": "SUBSCRIBE"}, s)["ok"], flush=True)
for i in range(2):
    e = kd_recv(s); print(e["event"], e["project"], e["version"], flush=True)
' > "$T/events" 2>&1 &
SUBPID=$!
tv_defer "kill $SUBPID 2>/dev/null"
tv_wait_for "$T/events" 5; sleep 0.3
tv_ok "retire checkout 2" kctl_q retire checkout 2
out=$("$RT" "$S" checkout 0 unwrap < "$T/v1.wrapped")
tv_ok "retired version 1 no longer unwraps: EKEYEXPIRED (got $(echo $out | cut -c1-40))" test "$(echo $out)" = "EKEYEXPIRED EKEYEXPIRED EKEYEXPIRED EKEYEXPIRED"
tv_ok "version 2 still unwraps" sh -c '"$0" "$1" checkout 0 unwrap < "$2"' "$RT" "$S" "$T/v2.wrapped"
kctl list > "$T/list" 2>&1
tv_ok "list shows 1:retired" grep -qx 'checkout current=2 apikey=no versions=1:retired,2:active' "$T/list"

# API key and pseudonym key (agent side).
tv_ok "apikey-set reads the key from stdin" sh -c 'printf "sk-CANARY-7f3a\n" | "$0" -c "$1" apikey-set checkout >/dev/null' "$KEYCTL" "$T/tv.conf"
tv_fails "apikey-set with empty stdin fails" sh -c '"$0" -c "$1" apikey-set checkout </dev/null 2>/dev/null' "$KEYCTL" "$T/tv.conf"
got=$(keyd_py 'r = kd_call({"op": "APIKEY_GET", "project": "checkout"}); print(r["key"].decode())')
tv_ok "APIKEY_GET returns the key without the newline (got $got)" test "$got" = "sk-CANARY-7f3a"
got=$(keyd_py 'r = kd_call({"op": "PSEUDONYM_KEY", "project": "checkout"}); print(len(r["key"]))')
tv_ok "PSEUDONYM_KEY returns 32 bytes" test "$got" = 32
tv_fails "the API key is not in the keystore, audit log or keyd log in clear" grep -rq "sk-CANARY-7f3a" "$T/lib" "$T/log" "$T/keyd.log"

# shred.
kctl shred checkout >/dev/null 2>&1; rc=$?
tv_ok "shred without --yes exits 2 and does nothing (got $rc)" sh -c '[ $0 -eq 2 ] && "$1" "$2" checkout 0 unwrap < "$3"' $rc "$RT" "$S" "$T/v2.wrapped"
tv_ok "shred checkout --yes" kctl_q shred checkout --yes
sleep 0.3
tv_ok "subscriber received RETIRE and SHRED events" sh -c 'grep -qx "RETIRE checkout 2" "$0" && grep -qx "SHRED checkout 0" "$0"' "$T/events"
out=$("$RT" "$S" checkout 0 unwrap < "$T/v2.wrapped")
tv_ok "after SHRED wrapped DEKs no longer unwrap: EKEYREVOKED" test "$(echo $out)" = "EKEYREVOKED EKEYREVOKED EKEYREVOKED EKEYREVOKED"
tv_fails "GEN_DEK on a shredded project fails" "$RT" "$S" checkout 1 gen
got=$(keyd_py 'print(kd_call({"op": "APIKEY_GET", "project": "checkout"})["err"])')
tv_ok "API key gone after SHRED ($got)" test "$got" = EKEYREVOKED
kctl list > "$T/list" 2>&1
tv_ok "list shows the project shredded" grep -qx 'checkout current=0 apikey=no shredded versions=1:shredded,2:shredded' "$T/list"

# audit-verify and a clean stop.
tv_ok "audit-verify passes" kctl_q audit-verify
tv_ok "keyd exits 0 on SIGTERM" keyd_stop
tv_ok "socket removed at exit" test ! -e "$S"
tv_done
