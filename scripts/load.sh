#!/usr/bin/env bash
# Load run for the README's figures: Switchboard and rtpengine side by side,
# driven by switchboard-bench, all on loopback, release builds.
#   scripts/load.sh                       # default levels
#   LEVELS=250,500,1000 HOLD=10 scripts/load.sh
# Writes load-results/{report.json,latency.svg,table.txt}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
LEVELS="${LEVELS:-100,250,500,750,1000}"
HOLD="${HOLD:-10}"
CPS="${CPS:-200}"
OUT="${OUT:-load-results}"
mkdir -p "$OUT"

cargo build --release --locked -p control-api --bin switchboard -p switchboard-benches --bin switchboard-bench
SB=target/release/switchboard
BENCH=target/release/switchboard-bench

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

SWITCHBOARD_ROUTING__BRIDGE_TO=127.0.0.1:5070 \
SWITCHBOARD_RECORDING__ENABLED=false \
SWITCHBOARD_SIP__INVITE_RATE_PER_SOURCE=0 \
SWITCHBOARD_SIP__TLS_ENABLED=false \
SWITCHBOARD_SERVER__LOG=warn \
  "$SB" > "$OUT/switchboard.log" 2>&1 &
pids+=($!); SB_PID=$!

rtpengine --config-file=none --foreground --log-stderr --table=-1 \
  --interface=127.0.0.1 --listen-ng=127.0.0.1:2223 \
  --port-min=30000 --port-max=40000 > "$OUT/rtpengine.log" 2>&1 &
pids+=($!); RTPE_PID=$!
sleep 1

"$BENCH" --mode both --target 127.0.0.1:5060 --uas-listen 127.0.0.1:5070 --ng 127.0.0.1:2223 \
  --engine-pid "$SB_PID" --rtpengine-pid "$RTPE_PID" \
  --step-calls "$LEVELS" -r "$CPS" -d "$HOLD" --no-stop \
  --json "$OUT/report.json" --plot "$OUT/latency.svg" | tee "$OUT/table.txt"
