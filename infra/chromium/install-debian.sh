#!/usr/bin/env bash
# Install Debian's chromium package when it is missing: the operations console's browser
# tests (tests/bot4/console/) drive it headless through Playwright, with its executable
# path set, so Playwright never downloads a browser.
#
# Run by `make test` before pytest. It never fails the target: the console tests fail on
# their own with the same advice. apt-get only as root, and `apt-get update` only when the
# install failed first (a fresh machine's empty package lists).
set -u

command -v chromium >/dev/null 2>&1 && exit 0

advice="install Debian's package: apt-get install -y --no-install-recommends chromium"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: chromium not installed (the console's browser tests fail); as root, $advice" >&2
    exit 0
fi

echo "installing Debian's chromium package ..." >&2
log=$(mktemp)
install_package() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >>"$log" 2>&1
}
if ! install_package && ! { apt-get update >>"$log" 2>&1 && install_package; }; then
    echo "note: apt-get could not install chromium (see $log); $advice" >&2
    exit 0
fi
rm -f "$log"
echo "installed: $(command -v chromium)" >&2
exit 0
