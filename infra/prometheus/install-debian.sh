#!/usr/bin/env bash
# Install Debian's prometheus package (prometheus + promtool) when they are missing.
#
# Run by `make test` and `make demo` before they start. It never fails the target: the
# stack runs without Prometheus (`bot4 stack up` says it skipped it), and the promtool
# tests fail on their own with the same advice. apt-get only as root, and `apt-get update`
# only when the install failed first (a fresh machine's empty package lists).
# The package's own service is not wanted (bot4 starts its Prometheus on its own config):
# it is kept from starting and, should it run anyway, stopped and disabled.
set -u

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(promtool)
[ ${#missing[@]} -eq 0 ] && exit 0

advice="install Debian's package: apt-get install -y --no-install-recommends prometheus"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${missing[*]} not installed (bot4 stack up skips Prometheus, the promtool tests fail); as root, $advice" >&2
    exit 0
fi

echo "installing Debian's prometheus package (${missing[*]} missing) ..." >&2
log=$(mktemp)
install_package() {
    # RUNLEVEL=1: invoke-rc.d starts no service (sysvinit); policy-rc.d hosts refuse anyway
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        apt-get install -y --no-install-recommends prometheus >>"$log" 2>&1
}
if ! install_package && ! { apt-get update >>"$log" 2>&1 && install_package; }; then
    echo "note: apt-get could not install prometheus (see $log); $advice" >&2
    exit 0
fi
rm -f "$log"

# The Debian service runs as the `prometheus` user: ours runs as whoever runs bot4.
if pgrep -u prometheus -x prometheus >/dev/null 2>&1; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus.service >/dev/null 2>&1
    else
        service prometheus stop >/dev/null 2>&1 || invoke-rc.d prometheus stop >/dev/null 2>&1
    fi
    if pgrep -u prometheus -x prometheus >/dev/null 2>&1; then
        echo "note: Debian's prometheus service still runs (pgrep -u prometheus -x prometheus); stop it: it is not bot4's" >&2
    fi
fi
echo "installed: $(command -v prometheus) $(command -v promtool)" >&2
exit 0
