#!/usr/bin/env bash
# Installs Debian's Chromium (and a basic font) for the browser tests in
# tests/browser/. Idempotent: does nothing when /usr/bin/chromium exists.
# Playwright's own browser download cannot be used (only package registries
# are reachable), so playwright-core drives this system build.
#   tools/chromium.sh
set -euo pipefail

[ -x /usr/bin/chromium ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
  chromium fonts-dejavu-core
