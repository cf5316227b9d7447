#!/usr/bin/env bash
# deps.sh installs the Debian packages that `make run`, `make test` and
# `make bench` need. It is idempotent and cheap when everything is present:
# one dpkg-query, no network. Run it as root on Debian 12 (bookworm).
set -euo pipefail

packages=(
	python3 python3-django python3-flask
	nginx-light wrk
	uwsgi uwsgi-plugin-python3 gunicorn
	iproute2 iptables arping tmux procps
	curl openssl protobuf-compiler
)

die() {
	echo "deps.sh: $*" >&2
	exit 1
}

# missing prints the packages dpkg does not report as installed.
missing() {
	local status
	status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
	local p
	for p in "${packages[@]}"; do
		grep -qx "$p installed" <<<"$status" || echo "$p"
	done
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian 12 only"

mapfile -t todo < <(missing)
if [ "${#todo[@]}" -eq 0 ]; then
	exit 0
fi

[ "$(id -u)" -eq 0 ] || die "missing packages (${todo[*]}); run as root to install them"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${todo[*]}"

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (another make target, unattended-upgrades)
# instead of failing on its lock.
apt_opts=(-qq -y -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
log=$(mktemp)
policy=/usr/sbin/policy-rc.d
own_policy=
cleanup() {
	rm -f "$log"
	[ -z "$own_policy" ] || rm -f "$policy"
}
trap cleanup EXIT

# nginx starts its service (on port 80) when installed; the tests run their
# own instances. Keep Debian from starting services, as Docker images do,
# unless the machine already has a policy of its own.
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# scripts/deps.sh: no service starts during its install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi

echo "deps.sh: installing ${todo[*]}" >&2

# An apt-get update costs tens of seconds: skip it while the package lists
# are fresh (under a day old), and retry with one if the install fails.
lists_fresh() {
	[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]
}

update() {
	apt-get "${apt_opts[@]}" update >"$log" 2>&1 || {
		cat "$log" >&2
		die "apt-get update failed"
	}
}

install() {
	apt-get "${apt_opts[@]}" install --no-install-recommends "${todo[@]}" >"$log" 2>&1
}

if ! lists_fresh; then
	update
fi
if ! install; then
	update
	install || {
		cat "$log" >&2
		die "apt-get install failed for: ${todo[*]}"
	}
fi

mapfile -t still < <(missing)
[ "${#still[@]}" -eq 0 ] || die "still missing after install: ${still[*]}"
echo "deps.sh: done" >&2
