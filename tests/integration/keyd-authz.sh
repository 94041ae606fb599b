#!/bin/sh
# keyd-authz: SO_PEERCRED authorization per operation class, by attack: real
# users on no list, on the wrong list, and root when root is not listed; every
# refusal is audited; a SIGHUP reload changes the lists.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-authz
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_need_root
tv_plan 17
RT="$top_builddir/tests/integration/keyd_roundtrip"
S="$T/run/keyd.sock"

UN=$(tv_add_user none) && UV=$(tv_add_user vault) && UA=$(tv_add_user agent) &&
UADM=$(tv_add_user admin) || { echo "Bail out! cannot create test users"; exit 1; }
export TV_VAULT_USERS="$UV" TV_AGENT_USERS="$UA" TV_ADMIN_USERS=root
tv_ok "keyd starts" keyd_setup
# The socket directory stays 0750; the test users reach it through its group.
chgrp "$(id -g "$UN")" "$T/run"
tv_ok "socket directory is 0750" test "$(stat -c %a "$T/run")" = 750
kctl_q create checkout
printf 'sk-authz\n' | kctl apikey-set checkout >/dev/null

audit_has() { grep -q "uid=$(id -u "$1") pid=[0-9]* op=$2 .*result=$3 " "$T/log/keyd-audit.log"; }

tv_as "$UN" "$KEYCTL" -c "$T/tv.conf" list > "$T/out" 2>&1; rc=$?
tv_ok "a peer on no list is refused (exit $rc)" sh -c '[ $0 -eq 1 ] && grep -q "may not LIST" "$1"' $rc "$T/out"
tv_ok "the refusal is audited with its uid, op and EACCES" audit_has "$UN" LIST EACCES
tv_fails "a peer on no list cannot GEN_DEK" tv_as "$UN" "$RT" "$S" checkout 1 gen
tv_ok "...audited" audit_has "$UN" GEN_DEK EACCES
tv_ok "a vault user can GEN_DEK + UNWRAP" tv_as "$UV" "$RT" "$S" checkout 8
tv_fails "a vault user cannot create" tv_as "$UV" "$KEYCTL" -c "$T/tv.conf" create evil
tv_ok "...audited" audit_has "$UV" CREATE EACCES
got=$(tv_as "$UV" env SOCK="$S" "$PY" -c "$KEYD_PY_LIB
print(kd_call({'op': 'APIKEY_GET', 'project': 'checkout'}).get('err'))")
tv_ok "a vault user cannot read the API key ($got)" test "$got" = EACCES
got=$(tv_as "$UA" env SOCK="$S" "$PY" -c "$KEYD_PY_LIB
print(kd_call({'op': 'APIKEY_GET', 'project': 'checkout'})['key'].decode())")
tv_ok "the agent user can read the API key" test "$got" = sk-authz
tv_fails "the agent user cannot GEN_DEK" tv_as "$UA" "$RT" "$S" checkout 1 gen
got=$(keyd_py 'print(kd_call({"op": "APIKEY_GET", "project": "checkout"}).get("err"))')
tv_ok "root is not special: root may not read the API key, not in agent_users ($got)" test "$got" = EACCES

# Reload with root removed from admin_users: root is refused, the new admin is not.
sed -i "s/^admin_users = .*/admin_users = $UADM/" "$T/tv.conf"
kill -HUP "$KEYD_PID"; sleep 0.5
tv_fails "after SIGHUP, root (no longer on admin_users) cannot create" kctl_q create other
tv_ok "...audited as uid 0" audit_has root CREATE EACCES
tv_ok "the new admin can create" tv_as "$UADM" "$KEYCTL" -c "$T/tv.conf" create other
tv_ok "audit chain intact after the refusals" tv_as "$UADM" "$KEYCTL" -c "$T/tv.conf" audit-verify
tv_done
