#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 600: the milestone bar).
#   scripts/fuzz.sh 600
# Needs the nightly toolchain (on the machine image) and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
if ! rustup toolchain list | grep -q nightly; then
  echo "fuzz: no nightly toolchain; skipped"
  exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
cd fuzz
for target in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$target"
  echo "== fuzz $target for ${secs}s"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | tail -n 3
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $target failed"; exit 1; }
done
