#!/usr/bin/env bash
# Install the headless browser the report's test opens metrics/report.html in
# (tests/report/test_report_browser.py): Debian's `chromium` package. Run through
# `make install-browser`. Nothing to do when `chromium` is on PATH already.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no chromium on PATH and no apt-get to install it; install" \
         "Chromium with your system's package manager (the test looks for 'chromium')" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get"
# a fresh machine may have no package lists yet: read them only when the install needs them
$APT install -y -q chromium || { $APT update -q && $APT install -y -q chromium; }
