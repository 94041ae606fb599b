#!/bin/sh
# keyd-basic: init, start, create, GEN_DEK (single and batched) + UNWRAP round
# trip through the client library (tests/integration/keyd_roundtrip), and the
# refusals that must hold from the first day.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/keyd-lib.sh"
tv_init keyd-basic
[ -x "$KEYD" ] || tv_skip_all "keyd not built"
tv_plan 12

tv_ok "keyd init creates the master key, keystore and audit log" keyd_setup
tv_ok "master key is mode 0400" test "$(stat -c %a "$T/etc/master.key")" = 400
tv_ok "keystore is mode 0600" test "$(stat -c %a "$T/lib/keys")" = 600
tv_fails "init refuses to overwrite an existing master key" "$KEYD" -c "$T/tv.conf" init
tv_ok "keyctl create checkout" kctl_q create checkout
tv_fails "keyctl create of an existing project fails" kctl_q create checkout
RT="$top_builddir/tests/integration/keyd_roundtrip"
tv_ok "GEN_DEK 1 + UNWRAP round trip via libkeydclient" "$RT" "$T/run/keyd.sock" checkout 1
tv_ok "GEN_DEK 1024 (batch) + UNWRAP of every DEK" "$RT" "$T/run/keyd.sock" checkout 1024
tv_fails "GEN_DEK for an unknown project fails" "$RT" "$T/run/keyd.sock" nosuch 1
kctl list > "$T/list.out" 2>&1
tv_ok "list shows checkout at version 1" grep -q '^checkout current=1 apikey=no versions=1:active$' "$T/list.out"
tv_ok "audit-verify passes" kctl_q audit-verify
tv_fails "no key bytes in the audit log (it is plain text, one record per line)" \
    grep -qv '^seq=[0-9]* gen=[0-9]* time=[-0-9T:.Z]* uid=[0-9]* pid=[0-9]* op=[A-Z_?]* project=[-A-Za-z0-9._]* version=[0-9]* n=[0-9]* result=[A-Za-z]* mac=[0-9a-f]\{64\}$' "$T/log/keyd-audit.log"
tv_done
