#!/usr/bin/env bash
# Quick start, command 2: every test. Installs the real peers (SIPp, espeak-ng,
# sox), checks formatting and lints, runs unit and end-to-end tests, and
# smoke-runs each fuzz target when a nightly toolchain is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== unit and end-to-end tests"
# The end-to-end tests start the real binary; build it first.
cargo build --locked -p control-api --bin switchboard
# Each e2e test runs an engine and a SIPp call; two at a time suits 2 cores.
cargo test --locked --workspace --no-fail-fast -- --test-threads=2

echo "== benches compile"
cargo bench --locked -p switchboard-benches --no-run

if [ "${SWITCHBOARD_SKIP_FUZZ:-0}" != "1" ]; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
