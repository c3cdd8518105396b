#!/usr/bin/env bash
# Installs the system packages Switchboard needs, idempotently.
#   scripts/deps.sh build   -> what `cargo build` needs (protoc for the gRPC protos, cmake for libopus)
#   scripts/deps.sh test    -> the build packages plus the real test peers
set -euo pipefail

want=(protobuf-compiler libprotobuf-dev cmake)
if [ "${1:-build}" = "test" ]; then
  want+=(sip-tester espeak-ng sox rtpengine-daemon baresip kamailio)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
