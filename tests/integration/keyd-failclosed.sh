#!/bin/sh
# keyd-failclosed: when the audit log cannot be written, keyd fails closed.
# The log is made immutable (chattr +i: even root's writes fail with EPERM):
#  - a key change whose record cannot be flushed stops keyd; the keystore
#    already holds the change and its record, which the next start restores;
#  - ordinary requests get EIO and no key bytes; the log, once a write failed
#    and could not be cut back, stays refused until keyd restarts;
#  - after a restart on a writable log everything verifies.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-failclosed
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_need_root
L="$T/log/keyd-audit.log"
touch "$T/probe" && chattr +i "$T/probe" 2>/dev/null || tv_skip_all "chattr +i not supported on $T"
chattr -i "$T/probe"
tv_plan 12
RT="$top_builddir/tests/integration/keyd_roundtrip"
S="$T/run/keyd.sock"
tv_defer "chattr -i '$L'"

tv_ok "keyd starts" keyd_setup
kctl_q create p
"$RT" "$S" p 2 gen > "$T/v1.wrapped"

chattr +i "$L"
kctl rotate p >/dev/null 2>&1; rc=$?
wait "$KEYD_PID" 2>/dev/null; krc=$?
KEYD_PID=
tv_ok "a ROTATE whose record cannot be written fails (keyctl exit $rc)" test $rc -eq 1
tv_ok "...and keyd stops rather than carry on unaudited (exit $krc)" test $krc -eq 1
tv_ok "...saying why" grep -q "cannot write after a key change; stopping" "$T/keyd.log"
chattr -i "$L"
tv_ok "keyd restarts on a writable log" keyd_restart
tv_ok "...restoring the ROTATE record from the keystore" sh -c 'grep -q "restored record" "$0" && tail -1 "$1" | grep -q "op=ROTATE project=p version=2 .*result=ok"' "$T/keyd.log" "$L"
tv_ok "...and the chain verifies" kctl_q audit-verify

chattr +i "$L"
"$RT" "$S" p 1 gen > "$T/gen.out" 2>"$T/gen.err"; rc=$?
tv_ok "GEN_DEK with an unwritable log fails with EIO and prints no DEK" sh -c '[ $0 -ne 0 ] && grep -q "Input/output error" "$1" && [ ! -s "$2" ]' $rc "$T/gen.err" "$T/gen.out"
out=$("$RT" "$S" p 0 unwrap < "$T/v1.wrapped")
tv_ok "UNWRAP with an unwritable log fails with EIO (got $(echo $out))" test "$(echo $out)" = "EIO EIO"
chattr -i "$L"
tv_fails "the log stays refused after a failed write could not be cut back (fail closed)" "$RT" "$S" p 1 gen
keyd_stop
restart_and_gen() { keyd_restart && "$RT" "$S" p 4; }
tv_ok "after a restart requests work again" restart_and_gen
tv_ok "the chain verifies: no record of the failed requests, no hole" kctl_q audit-verify
tv_done
