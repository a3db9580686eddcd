#!/usr/bin/env bash
# Install headless Chromium from Debian when it is missing: tests/test_site.py reads the built
# site in it (driven by Playwright, which uses this binary and downloads no browser).
# Without it the browser tests skip (and fail under CI).
set -euo pipefail

binary=/usr/lib/chromium/chromium
if [ -x "$binary" ] && "$binary" --headless=new --no-sandbox --version >/dev/null 2>&1; then
    exit 0
fi
packages=(chromium)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    sudo_cmd=()
elif command -v sudo >/dev/null && command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
else
    echo "Chromium not found at $binary and cannot install it here; the browser tests will skip."
    echo "Install it yourself, e.g.: sudo apt-get install ${packages[*]}"
    exit 0
fi
echo "Installing ${packages[*]} (Debian package) ..."
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
"$binary" --headless=new --no-sandbox --version
