#!/bin/sh
# agent-watch-newdirs.sh - no file written into a directory tree made while
# the agent follows is missed: 300 nested trees made (mkdir -p) and written
# at once, files renamed into them from a hidden temporary name, a tree
# built elsewhere and moved in, then renamed, and written after each move;
# then the root directory itself replaced by another one.
# Every record arrives exactly once, without a restart.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent-lib.sh"
tv_init agent-watch-newdirs
[ -x "$AGENT" ] || tv_skip_all "agent not built"
tv_plan 9
agent_conf </dev/null
M="$T/mnt"
N=300
total() { agent_outbox | grep -c record_id; }
agent_start

# Race the watcher: three writers at once, each tree made and written at
# once, two levels deep (a subdirectory made while the agent sets up the
# watch of its parent used to be neither watched nor reported).
writer() {
    i=$1
    while [ $i -le $N ]; do
        mkdir -p "$M/checkout/n$i/a/b"
        agent_event "n-$i" > "$M/checkout/n$i/a/b/t.json"
        agent_event "r-$i" > "$M/checkout/.r$i.json.tmp"
        mv "$M/checkout/.r$i.json.tmp" "$M/checkout/n$i/a/r.json"
        i=$((i + 3))
    done
}
writer 1 & w1=$!
writer 2 & w2=$!
writer 3
wait $w1 $w2
want=$((2 * N))
tv_ok "every file in $N new trees is shipped ($want records)" agent_wait_count $want agent_outbox_ids 30

# A tree made outside the mount, moved in, written, renamed, written again.
mkdir -p "$T/stage/s1/x/y"
agent_event m-1 > "$T/stage/s1/x/one.json"
agent_event m-2 > "$T/stage/s1/x/y/two.json"
mv "$T/stage/s1" "$M/checkout/s1"
tv_ok "files in a tree moved in are shipped" agent_wait_count $((want + 2)) agent_outbox_ids 10
agent_event m-3 > "$M/checkout/s1/x/y/three.json"
tv_ok "a file written into the moved tree is shipped" agent_wait_count $((want + 3)) agent_outbox_ids 10
mv "$M/checkout/s1" "$M/checkout/s2"
agent_event m-4 > "$M/checkout/s2/x/y/four.json"
tv_ok "a file written after the tree was renamed is shipped" agent_wait_count $((want + 4)) agent_outbox_ids 10

# The root itself replaced by another directory (as a remount does).
mv "$M" "$T/mnt.old"
mkdir -p "$M/checkout/z/z2"
agent_event z-1 > "$M/checkout/z/z2/z.json"
tv_ok "the root replaced by another directory: its files are shipped" agent_wait_count $((want + 5)) agent_outbox_ids 10
mkdir "$M/checkout/z3"
agent_event z-2 > "$M/checkout/z3/z.json"
tv_ok "... and the new root is followed" agent_wait_count $((want + 6)) agent_outbox_ids 10
tv_ok "... which is logged" grep -q "$M went away" "$T/agent.log"

sleep 1.5
tv_ok "exactly $((want + 6)) records, none twice" test "$(agent_outbox_ids)-$(total)" = "$((want + 6))-$((want + 6))"
tv_ok "SIGTERM exits 0" agent_stop
tv_done
