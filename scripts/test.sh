#!/usr/bin/env bash
# The test command: installs what is missing, then runs the Rust and the Elixir test suites.
#   scripts/test.sh [mix test args]         # on this machine's Erlang/OTP + Elixir
#   scripts/test.sh --all [mix test args]   # on every supported runtime (scripts/matrix.sh all)
set -euo pipefail
cd "$(dirname "$0")/.."
all=0
if [ "${1:-}" = "--all" ]; then
  all=1
  shift
fi
scripts/setup.sh --consumers
echo "==> cargo fmt / clippy / test"
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --all-targets --features live_cov_nif/test-nifs -- -D warnings
cargo test --release
echo "==> mix format"
mix format --check-formatted
if [ "$all" = 1 ]; then
  # Each runtime: mix compile --warnings-as-errors, then mix test (a table closes the run).
  exec scripts/matrix.sh all -- "$@"
fi
echo "==> mix test"
# maybe_expr: the oracle corpus has a `maybe` fixture; OTP 25 loads it only with the feature on.
# The instrumentation cache of test runs lives in a throwaway directory.
export LIVE_COV_CACHE_DIR="${LIVE_COV_CACHE_DIR:-$(mktemp -d)}"
ERL_FLAGS="${ERL_FLAGS:-} -enable-feature maybe_expr" MIX_ENV=test mix test "$@"
