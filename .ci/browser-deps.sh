#!/usr/bin/env bash
# Debian's Chromium for the browser test (tests/test_browser.py), when it is not there yet.
# Playwright drives it as it is: no browser is downloaded (never `playwright install`).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
