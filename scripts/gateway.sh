#!/usr/bin/env sh
# Runs the LiveCov gateway from this checkout:
#   scripts/gateway.sh path/to/gateway.exs [--port N]
# It is `mix live_cov.gateway --config ...` with MIX_ENV=prod (override with MIX_ENV=...).
# An escript is not used: the NIF cannot be loaded from inside an escript archive.
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 path/to/gateway.exs [--port N]" >&2
  exit 64
fi
config=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MIX_ENV="${MIX_ENV:-prod}"
exec mix live_cov.gateway --config "$config" "$@"
