#!/usr/bin/env bash
# Install R and its nnet package from Debian when they are missing.
# helpers.nnet is tested against R itself; without R those tests skip (and fail under CI).
set -euo pipefail

if Rscript -e 'library(nnet)' >/dev/null 2>&1; then
    exit 0
fi
source "$(dirname "$0")/apt-install.sh"
apt_install "the R comparison tests" r-base-core r-cran-nnet || exit 0
Rscript -e 'library(nnet); cat(R.version.string, "with nnet", format(packageVersion("nnet")), "\n")'
