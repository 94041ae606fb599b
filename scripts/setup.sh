#!/bin/sh
# Install every build, run and test dependency of TraceVault on Debian 12.
#
# Idempotent: packages already present are not reinstalled and nothing is printed
# when all is there.  Runs apt-get update only when something is missing.
# Usage: scripts/setup.sh [--no-peers]
#   --no-peers  skip the optional side-by-side benchmark peers and ClickHouse.
set -eu

BUILD="build-essential autoconf automake libtool pkg-config clang llvm
 libfuse3-dev fuse3 libsodium-dev libcurl4-openssl-dev libmsgpack-dev
 libinotifytools0-dev libjansson-dev libsqlite3-dev sqlite3 libpcre2-dev
 libinih-dev libsystemd-dev libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler
 zlib1g-dev"
TEST="python3 python3-msgpack openssl util-linux attr procps psmisc
 systemd man-db groff-base curl xxd"
PEERS="gocryptfs securefs bindfs clickhouse-server clickhouse-client hyperfine"

want="$BUILD $TEST"
case "${1:-}" in
    --no-peers) ;;
    "") want="$want $PEERS" ;;
    *) echo "usage: $0 [--no-peers]" >&2; exit 2 ;;
esac

# Node and npm drive the real instrumentation libraries of the agent's
# conformance test (tests/conformance): the machine's if it has them, else
# Debian's.  The test installs its pinned packages itself (npm ci).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    want="$want nodejs npm"
fi

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "setup: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
