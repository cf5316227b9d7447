#!/usr/bin/env bash
# bench/failover.sh: the failover benchmark of issue 5. The lord's host dies
# (link down, kill -9) and we measure until the VIP serves HTTP again, for
# uWSGI's Legion (Debian's uwsgi, cmd: hooks moving the VIP) and for gouwsgi,
# side by side in one run, in network-namespace labs of 3 hosts and a client.
# It wraps e2e's TestFailoverBenchmark (methodology in its doc comment) and
# prints a markdown table. Needs root. With the defaults: ~5 minutes for
# uWSGI (measured), plus gouwsgi's 20 trials.
#
# Environment (defaults in brackets):
#   TRIALS [20]       trials per setup (uWSGI legion-freq 1/tolerance 3, gouwsgi)
#   SLOW_TRIALS [3]   trials with uWSGI's default timings (3/15: ~27 s each)
#   SETUPS [uwsgi-default uwsgi-fast gouwsgi]  which setups, in this order
#   GOUWSGI [bin/gouwsgi, rebuilt with the project's tags]  the binary to measure
#   BENCH_OUT [a new /tmp/gouwsgi-failover.* directory]: failover.md, test.log
#
# An interrupted run (Ctrl-C) cannot run the labs' teardown: leftover
# namespaces are named gl<6 hex digits>-* (`ip netns list`).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
export PATH=$PATH:/usr/local/go/bin

die() {
	echo "failover bench: $*" >&2
	exit 1
}

[[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
for tool in go ip iptables arping uwsgi; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/deps.sh (or make deps)"
done
uwsgi --plugin python3,http --help 2>/dev/null | grep -q -- '--legion-lord' ||
	die "uwsgi has no Legion options: install uwsgi and uwsgi-plugin-python3"

TRIALS=${TRIALS:-20}
SLOW_TRIALS=${SLOW_TRIALS:-3}
SETUPS=${SETUPS:-uwsgi-default uwsgi-fast gouwsgi}
build_gouwsgi=0
if [[ -z ${GOUWSGI:-} ]]; then
	GOUWSGI=$root/bin/gouwsgi
	build_gouwsgi=1
fi
[[ $TRIALS =~ ^[1-9][0-9]*$ ]] || die "TRIALS must be a positive integer, got '$TRIALS'"
[[ $SLOW_TRIALS =~ ^[1-9][0-9]*$ ]] || die "SLOW_TRIALS must be a positive integer, got '$SLOW_TRIALS'"

# bin/gouwsgi is rebuilt (a no-op when up to date) so a stale binary is never
# measured; a GOUWSGI given by the caller is used as it is.
if [[ " $SETUPS " == *" gouwsgi "* && $build_gouwsgi == 1 ]]; then
	mkdir -p "$root/bin"
	go build -tags hashicorpmetrics -o "$GOUWSGI" ./cmd/gouwsgi ||
		echo "failover bench: building gouwsgi failed; the test will try once more and report it" >&2
fi

out=${BENCH_OUT:-$(mktemp -d /tmp/gouwsgi-failover.XXXXXX)}
mkdir -p "$out"
rm -f "$out/failover.md"

set +e
GOUWSGI_BENCH=1 GOUWSGI_E2E=1 GOUWSGI_BIN=$GOUWSGI \
	GOUWSGI_BENCH_TRIALS=$TRIALS GOUWSGI_BENCH_SLOW_TRIALS=$SLOW_TRIALS \
	GOUWSGI_BENCH_SETUPS=$SETUPS GOUWSGI_BENCH_OUT=$out/failover.md \
	go test -tags hashicorpmetrics -count=1 -timeout 40m -run '^TestFailoverBenchmark$' -v ./e2e/ \
	>"$out/test.log" 2>&1
status=$?
set -e

# The test's progress lines (and their continuation lines), without the
# file:line prefixes.
awk '/^ +failover_[a-z_]+_test\.go:[0-9]+: / { sub(/^ +failover_[a-z_]+_test\.go:[0-9]+: /, "  "); print; cont = 1; next }
	cont && /^        / { print; next }
	{ cont = 0 }' "$out/test.log"
echo
if [[ -s $out/failover.md ]]; then
	cat "$out/failover.md"
else
	tail -n 40 "$out/test.log"
fi
echo
echo "failover bench: table in $out/failover.md, full log in $out/test.log"
[[ $status == 0 ]] || echo "failover bench: the test failed (exit $status): see the log" >&2
exit "$status"
