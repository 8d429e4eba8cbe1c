#!/usr/bin/env bash
# The README's demo: starts examples/demo_app (an HTTP service on OTP's :inets), instruments
# it while it runs, sends it traffic, prints the per-file coverage table and writes the HTML
# report (its path is printed), then stops coverage. Works on a fresh machine: it first runs
# scripts/setup.sh (Erlang/Elixir from apt when missing, then the NIF build).
#   scripts/demo.sh              # setup + demo
#   scripts/demo.sh --no-setup   # demo only
# Environment: DEMO_APP_PORT (default 0: any free port), LIVE_COV_DEMO_OUT (report directory,
# default live_cov_out/demo), MIX_ENV (default dev), MIX_BUILD_PATH (optional).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--no-setup" ]; then
  scripts/setup.sh
fi

export MIX_ENV="${MIX_ENV:-dev}"
export DEMO_APP_PORT="${DEMO_APP_PORT:-0}"
export LIVE_COV_DEMO_OUT="${LIVE_COV_DEMO_OUT:-$PWD/live_cov_out/demo}"

echo "==> building and starting examples/demo_app (mix run)"
cd examples/demo_app
exec mix run ../demo.exs
