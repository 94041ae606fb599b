#!/bin/sh
# agent-user.sh - the agent as a dedicated unprivileged user, as deployed: it
# reads through the vault only where it is a listed project reader, gets its
# pseudonym key from keyd as an agent_users member (no local fallback key),
# and a project that does not list it is refused by the vault.  Then the
# converse: as a user that keyd does not list in agent_users, no key, so
# nothing is read or shipped for a project with identifiers to hash.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-user
tv_need_root
tv_need_fuse
[ -x "$AGENT" ] && [ -x "$VAULT" ] && [ -x "$KEYD" ] || tv_skip_all "agent, vault or keyd not built"
tv_plan 7
AG=$(tv_add_user ag) || tv_skip_all "cannot add a user"
NOKEY=$(tv_add_user nk) || tv_skip_all "cannot add a user"
TV_AGENT_USERS="$AG" AGENT_VAULT=1 AGENT_PSEUDONYM_KEYS=keyd agent_conf <<CONF
[project.shop]
writers = root
readers = $AG, $NOKEY
CONF
sed -i "s/^readers = root$/readers = root, $AG/" "$T/tv.conf"      # checkout, billing
tv_start_keyd || { echo "Bail out! keyd"; exit 1; }
for p in checkout billing shop; do "$KEYCTL" -c "$T/tv.conf" create $p >/dev/null; done
chmod 0751 "$T/run"                # the agent user reaches the socket; keyd checks the peer
tv_start_vault || { echo "Bail out! vault did not mount"; exit 1; }
chmod 0644 "$T/tv.conf"
mkdir -p "$T/agent-ag" "$T/outbox-ag"
chown "$AG" "$T/agent-ag" "$T/outbox-ag"
sed -i -e "s|^state_dir .*|state_dir   = $T/agent-ag|" -e "s|^upstream .*|upstream    = file://$T/outbox-ag|" "$T/tv.conf"
M="$T/mnt"
agent_event u-1 sess-u > "$M/checkout/a.json"
agent_event u-2 sess-u > "$M/shop/b.json"

tv_ok "the agent runs as $AG and exits 0 with --once" tv_as "$AG" "$AGENT" -c "$T/tv.conf" --once
out() { find "$T/outbox-ag" -name '*.msgpack' -exec "$AGENT" dump {} \; ; }
tv_ok "both projects' records shipped" test "$(out | grep -c record_id)" -eq 2
tv_ok "session hashes use keyd's pseudonym key (no local key)" \
    sh -c "! find '$T/outbox-ag' -name '*.msgpack' -exec '$AGENT' dump {} \; | grep -q '\"key_version\":\"local-' &&
           ! ls '$T/agent-ag' | grep -q pseudonym"
tv_ok "root, not a reader of shop, is refused by the vault" sh -c "! cat '$M/shop/b.json' >/dev/null 2>&1"

# A user the vault lets read shop but keyd does not list as an agent.
mkdir -p "$T/agent-nk" "$T/outbox-nk"
chown "$NOKEY" "$T/agent-nk" "$T/outbox-nk"
sed -e "s|^state_dir .*|state_dir   = $T/agent-nk|" -e "s|^upstream .*|upstream    = file://$T/outbox-nk|" \
    -e "s/^readers = root, $AG$/readers = root/" "$T/tv.conf" > "$T/nk.conf"
chmod 0644 "$T/nk.conf"
TV_BG_OUT="$T/nk.log" tv_as_bg "$NOKEY" "$AGENT" -c "$T/nk.conf"
NKPID=$TV_BG_PID
sleep 2
tv_ok "without keyd's consent no record is shipped" test -z "$(find "$T/outbox-nk" -name '*.msgpack')"
tv_ok "... and the agent says why, and waits" sh -c "grep -q 'project \"shop\": keyd' '$T/nk.log' && kill -0 $NKPID"
kill $NKPID; wait $NKPID 2>/dev/null
tv_ok "keyd audited the refusal" \
    grep -q "uid=$(id -u "$NOKEY") .*op=PSEUDONYM_KEY project=shop .*result=EACCES" "$T/log/keyd-audit.log"
tv_done
