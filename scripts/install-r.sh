#!/usr/bin/env bash
# Install R and its nnet package from Debian when they are missing.
# helpers.nnet is tested against R itself; without R those tests skip (and fail under CI).
set -euo pipefail

if Rscript -e 'library(nnet)' >/dev/null 2>&1; then
    exit 0
fi
packages=(r-base-core r-cran-nnet)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    sudo_cmd=()
elif command -v sudo >/dev/null && command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
else
    echo "R with nnet not found and cannot install it here; the R comparison tests will skip."
    echo "Install it yourself, e.g.: sudo apt-get install ${packages[*]}"
    exit 0
fi
echo "Installing ${packages[*]} (Debian packages) ..."
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
Rscript -e 'library(nnet); cat(R.version.string, "with nnet", format(packageVersion("nnet")), "\n")'
