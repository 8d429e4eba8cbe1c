#!/usr/bin/env bash
# Installs the tools LiveCov's agent tests validate /metrics against:
#   * promtool (Debian `prometheus`)      - `promtool check metrics` lints the exposition text
#   * prometheus_client (PyPI), fallback  - its text parser, when promtool cannot be installed
# Idempotent: anything already present is skipped. Safe to run repeatedly (CI too).
# Exit status 0 when at least one validator is available afterwards.
set -u

log() { printf '[install_agent_tools] %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

have_promtool() { command -v promtool >/dev/null 2>&1; }

PY=""
for cand in python3 python; do
  if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
done
have_pyclient() { [ -n "$PY" ] && "$PY" -c 'import prometheus_client.parser' >/dev/null 2>&1; }

if have_promtool; then
  log "promtool already present: $(command -v promtool)"
elif command -v apt-get >/dev/null 2>&1; then
  log "installing Debian package prometheus (for promtool)"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${LIVE_COV_APT_UPDATED:-}" ]; then
    $SUDO apt-get update -qq || log "apt-get update failed (continuing)"
  fi
  # The package's postinst may try to start a service; with no init that is harmless.
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null ||
    log "WARNING: apt-get install prometheus failed; falling back to prometheus_client"
  # Do not leave a Prometheus server running on :9090 because of the install.
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop prometheus >/dev/null 2>&1 || true; fi
else
  log "apt-get not available; falling back to prometheus_client"
fi

if ! have_promtool; then
  if have_pyclient; then
    log "prometheus_client already present"
  elif [ -n "$PY" ]; then
    log "installing prometheus_client with $PY -m pip"
    "$PY" -m pip install -q prometheus_client ||
      "$PY" -m pip install -q --break-system-packages prometheus_client ||
      log "WARNING: pip install prometheus_client failed"
  else
    log "WARNING: no python3; cannot install prometheus_client"
  fi
fi

if have_promtool; then
  log "ok: promtool -> $(command -v promtool)"
  exit 0
elif have_pyclient; then
  log "ok: prometheus_client ($PY)"
  exit 0
else
  log "missing: promtool and prometheus_client; /metrics validation tests will be skipped"
  exit 1
fi
