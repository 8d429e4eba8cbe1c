#!/usr/bin/env bash
# Installs what LiveCov needs on a fresh Debian machine that has Rust: Erlang/OTP and Elixir
# from Debian's packages (skipped when `elixir` and `erl` already work), then builds the NIF.
#   scripts/setup.sh              # toolchain + build
#   scripts/setup.sh --consumers  # also the report consumers the tests use (lcov, chromium, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

apt_install() {
  if [ -z "${LIVE_COV_APT_UPDATED:-}" ]; then
    $SUDO apt-get update -qq
    export LIVE_COV_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

need_erlang=0
command -v erl >/dev/null 2>&1 || need_erlang=1
command -v elixir >/dev/null 2>&1 || need_erlang=1
# cover's source and the other OTP pieces the tests use.
[ -f /usr/lib/erlang/lib/tools-*/src/cover.erl ] 2>/dev/null || need_erlang=1
ls /usr/lib/erlang/lib/ | grep -q "^inets-" || need_erlang=1
ls /usr/lib/erlang/lib/ | grep -q "^xmerl-" || need_erlang=1
if [ "$need_erlang" = 1 ]; then
  echo "==> installing Erlang/OTP and Elixir from Debian"
  apt_install elixir erlang-dev erlang-tools erlang-inets erlang-src erlang-eunit \
    erlang-syntax-tools erlang-parsetools erlang-runtime-tools erlang-xmerl
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: LiveCov's NIF is Rust. Install Rust (rustup) and run again." >&2
  exit 1
fi

if [ "${1:-}" = "--consumers" ] && [ -x scripts/install_report_consumers.sh ]; then
  echo "==> installing test consumers (lcov, chromium, pycobertura, promtool)"
  scripts/install_report_consumers.sh || echo "WARNING: some report consumers could not be installed; their tests will say so and skip" >&2
  scripts/install_agent_tools.sh || echo "WARNING: promtool/prometheus_client could not be installed; the metrics tests will say so and skip" >&2
fi

export MIX_ENV="${MIX_ENV:-dev}"
echo "==> building LiveCov (cargo + mix)"
mix compile
