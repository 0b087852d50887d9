#!/usr/bin/env bash
# install-missing.sh PKG...: installs the Debian packages of the list that are
# missing, and nothing else. The tests need daemons such as FRR, BIRD,
# keepalived, nginx and prometheus only as programs they start themselves
# inside network namespaces, so a package installed here must not start or
# enable its own service on the host (people run the tests on real
# directors): a policy-rc.d that refuses every start is in place while apt
# runs (unless the host has its own), and the services of the packages this
# run installed are disabled again afterwards. Packages already installed are
# not touched.
set -euo pipefail
missing=()
for p in "$@"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "installing: ${missing[*]} (their services are neither started nor enabled)"
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# vigil test dependencies are being installed: start no service\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# deb-systemd-helper enabled the new packages' units (they would start at
# the next boot): take that back, for the packages installed just now only.
if command -v deb-systemd-helper >/dev/null 2>&1; then
	for p in "${missing[@]}"; do
		units=$(dpkg -L "$p" 2>/dev/null | grep -E '^/(usr/)?lib/systemd/system/[^/]+\.(service|socket|timer)$' || true)
		for unit in $units; do
			deb-systemd-helper disable "$(basename "$unit")" >/dev/null 2>&1 || true
		done
	done
fi
