#!/usr/bin/env bash
# Quick start, command 1: build and run the engine on embedded defaults
# (SIP 127.0.0.1:5060, HTTP :8080, gRPC :50051). Extra arguments go to
# `switchboard` (e.g. --config switchboard.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
exec cargo run --release --locked -p control-api --bin switchboard -- "$@"
