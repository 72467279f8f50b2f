#!/usr/bin/env bash
# Installs what `make bench` needs beyond the build tools, once, and skips
# what is already there:
#   wrk         the load generator (Debian package; Lua scripting gives each
#               signup request a new email)
#   matplotlib  for the PNG chart, pinned, in a virtualenv under .tools/
#   cryptography  AES-GCM for bench/hooks/dashboard.py (100,000 encrypted
#               fan addresses), pinned, in the same virtualenv
# Prints nothing when everything is present.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MATPLOTLIB_VERSION=3.10.8
CRYPTOGRAPHY_VERSION=50.0.2
VENV=.tools/bench-venv

log() { printf 'bench-tools: %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian package)"
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  if ! $sudo apt-get install -y --no-install-recommends wrk >&2; then
    $sudo apt-get update >&2
    $sudo apt-get install -y --no-install-recommends wrk >&2 || {
      log "could not install wrk; install it yourself (apt-get install wrk) and re-run"
      exit 1
    }
  fi
fi

if ! "$VENV/bin/python" -c "import matplotlib, sys; sys.exit(matplotlib.__version__ != '$MATPLOTLIB_VERSION')" 2>/dev/null; then
  log "installing matplotlib $MATPLOTLIB_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "matplotlib==$MATPLOTLIB_VERSION" >&2
fi

if ! "$VENV/bin/python" -c "import cryptography, sys; sys.exit(cryptography.__version__ != '$CRYPTOGRAPHY_VERSION')" 2>/dev/null; then
  log "installing cryptography $CRYPTOGRAPHY_VERSION into $VENV"
  [[ -x $VENV/bin/pip ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cryptography==$CRYPTOGRAPHY_VERSION" >&2
fi
