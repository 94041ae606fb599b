#!/bin/sh
# Man pages: each renders with man -l and groff -ww without a single warning,
# has the standard sections, and documents every long option and command the
# built binary's --help prints (so the pages follow the code).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
tv_init ops-man
command -v man >/dev/null || tv_skip_all "no man"
command -v groff >/dev/null || tv_skip_all "no groff"
tv_plan 24

M="$top_srcdir/docs/man"
PAGES="tracevault.8 tracevault-keyd.8 tracevault-keyctl.8 tracevault-agent.8 tracevault-retention.8 tracevault.conf.5 tracevault-ingest.8"

render() {  # render PAGE: man -l and groff -ww print nothing on stderr
    _e=$(MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null; groff -man -ww -z "$1" 2>&1)
    [ -n "$_e" ] && printf '%s\n' "$_e" | sed 's/^/# /'
    [ -z "$_e" ] && [ "$(MANWIDTH=80 man -l "$1" 2>/dev/null | wc -l)" -gt 20 ]
}
for p in $PAGES; do
    tv_ok "$p renders without warnings" render "$M/$p"
done
# The check itself catches a broken page.
printf '.TH X 8\n.SH NAME\nx \\- y\n.BOGUS\n\\fQ bad\n' > "$T/bad.8"
tv_fails "a page with an undefined macro is caught" render "$T/bad.8"

sections() {  # sections PAGE SECTION...
    _p=$1; shift
    for _s in "$@"; do grep -q "^\.SH \"*$_s" "$_p" || { tv_diag "$_p: no $_s"; return 1; }; done
}
for p in $PAGES; do
    case $p in
        *.5) tv_ok "$p has NAME, SYNOPSIS, DESCRIPTION, SEE ALSO" sections "$M/$p" NAME SYNOPSIS DESCRIPTION "SEE ALSO" ;;
        *) tv_ok "$p has NAME, SYNOPSIS, DESCRIPTION, EXIT STATUS, SEE ALSO" sections "$M/$p" NAME SYNOPSIS DESCRIPTION "EXIT STATUS" "SEE ALSO" ;;
    esac
done

# documents PAGE BINARY [WORD...]: every --long option of BINARY --help, and
# each WORD, appears in PAGE (as groff writes it: \-\-name).
documents() {
    _page=$1; _bin=$2; shift 2
    if [ ! -x "$_bin" ]; then
        tv_diag "$(basename "$_bin") not built: checking the page against the listed words only"
    else
        for _o in $("$_bin" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u); do
            _g=$(printf '%s' "$_o" | sed 's/-/\\\\-/g')
            grep -q -- "$_g" "$_page" || { tv_diag "$_page lacks $_o"; return 1; }
        done
    fi
    for _w in "$@"; do
        _g=$(printf '%s' "$_w" | sed 's/-/\\\\-/g')
        grep -q -- "$_g" "$_page" || { tv_diag "$_page lacks $_w"; return 1; }
    done
}
tv_ok "tracevault-retention(8) documents every option" documents "$M/tracevault-retention.8" "$RETENTION" --dry-run --project
tv_ok "tracevault-keyd(8) documents every option and init" documents "$M/tracevault-keyd.8" "$KEYD" init
tv_ok "tracevault-keyctl(8) documents every command" documents "$M/tracevault-keyctl.8" "$KEYCTL" \
    create rotate retire list shred apikey-set audit-verify --yes \
    ingest-key-create ingest-key-list ingest-key-revoke
tv_ok "tracevault(8) documents every option, fsck and rewrap" documents "$M/tracevault.8" "$VAULT" fsck rewrap --foreground
tv_ok "tracevault-agent(8) documents every option, --once and dump" documents "$M/tracevault-agent.8" "$AGENT" --once dump
tv_ok "tracevault-ingest(8) documents every option and endpoint" documents "$M/tracevault-ingest.8" \
    "$top_builddir/ingest/tracevault-ingest" /v1/traces /opentelemetry/v1/traces /v1/events /healthz
tv_ok "tracevault.conf(5) documents every key of docs/CONFIG.md" sh -c '
    for k in $(sed -n "s/^| [a-z.A-Z]* | \([a-z_.A-Z]*\) |.*/\1/p" "$1"); do
        case $k in key|NAME) continue;; assert.*) k=assert.;; esac
        grep -q "^\.B $k\$\|^\.BI $k" "$2" || { echo "# tracevault.conf.5 lacks $k"; exit 1; }
    done' _ "$top_srcdir/docs/CONFIG.md" "$M/tracevault.conf.5"

# The retention page and --help agree on the exit codes.
tv_ok "tracevault-retention(8) lists exit codes 0, 1, 2 and 3" sh -c '
    for c in 0 1 2 3; do grep -A1 "^\.TP" "$1" | grep -qx "\.B $c" || exit 1; done' _ "$M/tracevault-retention.8"
tv_ok "--help and the page agree that 3 means another run" sh -c '
    "$1" --help | grep -q "3 another run in progress" && grep -q "^Another run holds the lock" "$2"' _ "$RETENTION" "$M/tracevault-retention.8"
tv_done
