#!/usr/bin/env bash
# Sustained call-setup rate with SIPp's built-in uac against the engine
# (which answers, plays its prompt and records every call).
#   scripts/sipp-load.sh 400     # 400 calls/s for 10 s, 2 s per call
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-400}"
bash scripts/deps.sh test
cargo build --release --locked -p control-api --bin switchboard
work=$(mktemp -d)
trap 'kill $SB 2>/dev/null || true; rm -rf "$work"' EXIT
( cd "$work" && SWITCHBOARD_SIP__PORT=5199 SWITCHBOARD_HTTP__PORT=8199 SWITCHBOARD_GRPC__PORT=50199 \
  SWITCHBOARD_SIP__INVITE_RATE_PER_SOURCE=0 SWITCHBOARD_SIP__TLS_ENABLED=false SWITCHBOARD_SERVER__LOG=warn \
  exec "$OLDPWD/target/release/switchboard" ) > "$work/engine.log" 2>&1 &
SB=$!
sleep 1
( cd "$work" && sipp 127.0.0.1:5199 -sn uac -i 127.0.0.1 -mi 127.0.0.1 -p 5198 \
  -r "$RATE" -m $((RATE * 10)) -d 2000 -l $((RATE * 5)) -nostdin -timeout 90s \
  -trace_stat -stf stat.csv >/dev/null 2>&1 ) || echo "sipp reported failures"
python3 - "$work/stat.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
d = dict(zip(rows[0], rows[-1]))
print("calls created {} successful {} failed {} retransmissions {}".format(
    d['TotalCallCreated'], d['SuccessfulCall(C)'], d['FailedCall(C)'], d['Retransmissions(C)']))
PY
