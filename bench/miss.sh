#!/usr/bin/env bash
# What a cache miss costs: gouwsgi with the seed's cache and cachestore
# rules, every request a miss (a unique query string, so cache lookup + app
# + cachestore),
# against the same config without any route line (uncached), alternating,
# in one run. Prints req/s, p50/p99 and the ratio. Loopback only; every
# server started here is stopped by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-6}
CONNS=${CONNS:-64}
GOUWSGI=${GOUWSGI:-$root/bin/gouwsgi}
# Both configs run the master on the same number of cores, so the ratio is
# the cost of the rules alone: by default a config with cache routes keeps
# every core and one without gets half a core per worker (README), which
# on a small host moves worker-bound throughput on its own.
export GOMAXPROCS=${GOMAXPROCS:-$(nproc)}
[ -x "$GOUWSGI" ] || { echo "miss.sh: $GOUWSGI missing: run make build" >&2; exit 1; }
out=$(mktemp -d /tmp/gouwsgi-miss.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ini NAME PORT ROUTES: the seed's route-cache config for this run, with
# or without its route lines.
ini() {
	local f="$out/$1.ini"
	sed -e "s#^chdir = .*#chdir = $root/examples/django#" -e "s#^http = .*#http = 127.0.0.1:$2#" \
		-e "s#^stats = .*#stats = $out/$1-stats.sock#" -e "s#^processes = .*#processes = 2#" \
		"$root/examples/seed-route-cache.ini" >"$f"
	echo "disable-logging = true" >>"$f"
	# The seed's third rule logs every /feedback request: a cost of its own,
	# not of the cache, so both configs go without it.
	sed -i -e '/^route *=.* log:/d' "$f"
	[ "$3" = 1 ] || sed -i -e '/^route *=/d' "$f"
	echo "$f"
}

declare -A url
for name in cached uncached; do
	port=$(free_port)
	routes=0
	[ "$name" = cached ] && routes=1
	PATH=/usr/bin:$PATH "$GOUWSGI" --ini "$(ini "$name" "$port" "$routes")" --admin "unix://$out/$name-admin.sock" >"$out/$name.log" 2>&1 &
	pids+=($!)
	url[$name]="http://127.0.0.1:$port"
	for _ in $(seq 100); do curl -fs -o /dev/null "${url[$name]}/feedback" && break; sleep 0.2; done
done

declare -A rps
for run in $(seq "$RUNS"); do
	for name in cached uncached; do
		r=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$root/bench/miss.lua" "${url[$name]}" | awk '/Requests\/sec/ {print $2}')
		rps[$name]+="$r "
		echo "miss.sh: run $run $name $r req/s" >&2
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
c=$(echo "${rps[cached]}" | median)
u=$(echo "${rps[uncached]}" | median)
echo "| config | c | req/s (median of $RUNS) |"
echo "|---|---|---|"
echo "| seed route-cache rules, every request a miss | $CONNS | $c |"
echo "| same config without routes (uncached) | $CONNS | $u |"
awk -v c="$c" -v u="$u" 'BEGIN { printf "miss / uncached = %.3f (cost of a miss: %+.1f%%)\n", c/u, (u/c-1)*100 }'
