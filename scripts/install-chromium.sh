#!/usr/bin/env bash
# Install headless Chromium from Debian when it is missing: tests/test_site.py reads the built
# site in it (driven by Playwright, which uses this binary and downloads no browser).
# Without it the browser tests skip (and fail under CI).
set -euo pipefail

binary=/usr/lib/chromium/chromium
if [ -x "$binary" ] && "$binary" --headless=new --no-sandbox --version >/dev/null 2>&1; then
    exit 0
fi
source "$(dirname "$0")/apt-install.sh"
apt_install "the browser tests" chromium || exit 0
"$binary" --headless=new --no-sandbox --version
