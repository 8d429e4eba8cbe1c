#!/usr/bin/env bash
# The test command: installs what is missing, then runs the Rust and the Elixir test suites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --consumers
echo "==> cargo fmt / clippy / test"
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release
echo "==> mix format / test"
mix format --check-formatted
# maybe_expr: the oracle corpus has a `maybe` fixture; OTP 25 loads it only with the feature on.
# The instrumentation cache of test runs lives in a throwaway directory.
export LIVE_COV_CACHE_DIR="${LIVE_COV_CACHE_DIR:-$(mktemp -d)}"
ERL_FLAGS="${ERL_FLAGS:-} -enable-feature maybe_expr" MIX_ENV=test mix test "$@"
