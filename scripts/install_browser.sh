#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (tests/test_widgets_browser.py drives it with playwright).
# Idempotent and quiet: does nothing when /usr/bin/chromium exists; runs `apt-get update` only when an
# install is needed. Never downloads a playwright browser build. Without apt-get (the browser test then
# skips itself) or without root/sudo it explains and exits 0, so `make install` still installs the rest.
set -euo pipefail

CHROMIUM="${SEEDS_CHROMIUM:-/usr/bin/chromium}"  # override only to test this script

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: apt-get not available; install chromium yourself to run the browser tests" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_browser: chromium is missing; as root run: apt-get install -y chromium" >&2
        exit 0
    fi
fi
echo "install_browser: installing Debian chromium (apt-get) for the browser tests"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
test -x "$CHROMIUM"
