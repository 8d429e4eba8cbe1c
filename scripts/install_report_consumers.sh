#!/usr/bin/env bash
# Installs the third-party consumers LiveCov's report tests validate against:
#   * genhtml (Debian `lcov`)      - must accept our LCOV output without warnings
#   * chromium (Debian `chromium`) - headless, opens our HTML report
#   * pycobertura (PyPI)           - parses our Cobertura XML
#   * erlang-xmerl (Debian)        - :xmerl, used by the Cobertura round-trip tests
# Idempotent: anything already present is skipped. Safe to run repeatedly (CI too).
set -u

log() { printf '[install_report_consumers] %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

missing_apt=()
if ! erl -noshell -eval 'case code:which(xmerl_scan) of non_existing -> halt(1); _ -> halt(0) end.' >/dev/null 2>&1; then
  missing_apt+=(erlang-xmerl)
fi
command -v genhtml >/dev/null 2>&1 || missing_apt+=(lcov)
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  missing_apt+=(chromium)
fi

status=0
if [ ${#missing_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${missing_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || log "apt-get update failed (continuing)"
    if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing_apt[@]}"; then
      log "WARNING: apt-get install ${missing_apt[*]} failed"
      status=1
    fi
  else
    log "WARNING: apt-get not available; cannot install ${missing_apt[*]}"
    status=1
  fi
else
  log "genhtml, chromium and xmerl already present"
fi

PY=""
for cand in python3 python; do
  if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
done

if [ -n "$PY" ]; then
  if "$PY" -c 'import pycobertura' >/dev/null 2>&1 && command -v pycobertura >/dev/null 2>&1; then
    log "pycobertura already present"
  else
    log "installing pycobertura with $PY -m pip"
    if ! "$PY" -m pip install -q pycobertura; then
      # Debian's externally-managed python refuses plain pip installs.
      "$PY" -m pip install -q --break-system-packages pycobertura || {
        log "WARNING: pip install pycobertura failed"
        status=1
      }
    fi
  fi
else
  log "WARNING: no python3; cannot install pycobertura"
  status=1
fi

export PATH="$PATH:/usr/local/bin:$HOME/.local/bin"
for tool in genhtml chromium pycobertura; do
  if command -v "$tool" >/dev/null 2>&1; then
    log "ok: $tool -> $(command -v "$tool")"
  else
    log "missing: $tool"
  fi
done
exit $status
