#!/usr/bin/env bash
# bench/run.sh: gouwsgi against uWSGI (Debian's uwsgi + uwsgi-plugin-python3)
# and gunicorn, side by side in one run, on the same apps with 2 workers
# each. Prints a markdown table (median of RUNS wrk runs, servers alternated)
# and the ratios gouwsgi/uWSGI --http. Methodology: bench/README.md.
#
# Environment (defaults in brackets):
#   RUNS [3]          wrk runs per server and case; the table shows medians
#   DURATION [8]      seconds per wrk run
#   THREADS [2]       wrk threads
#   CONNS [64]        connection counts for the hello and Django cases
#   CACHE_CONNS [64 256]  connection counts for the route-cache case
#   SERVERS [gouwsgi uwsgi-http uwsgi-http-keepalive uwsgi-http-socket gunicorn]
#   CASES [hello django]
#   ROUTE_CACHE [1]   0 skips the route-cache case
#   GOUWSGI [bin/gouwsgi]
#   BENCH_OUT [a new /tmp/gouwsgi-bench.* directory]: logs and results.md
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

RUNS=${RUNS:-3}
DURATION=${DURATION:-8}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
CACHE_CONNS=${CACHE_CONNS:-64 256}
SERVERS=${SERVERS:-gouwsgi uwsgi-http uwsgi-http-keepalive uwsgi-http-socket gunicorn}
CASES=${CASES:-hello django}
ROUTE_CACHE=${ROUTE_CACHE:-1}
GOUWSGI=${GOUWSGI:-$root/bin/gouwsgi}
WARMUP=1
# Seconds of load before a server's memory is read (while the load goes on:
# an idle server would look smaller than it is when it works, and gouwsgi
# trims its start-up pages 2 s after start, which a short load would hide).
MEM_LOAD=8
READY_TIMEOUT=30
STOP_TIMEOUT=15
# The reference server in the ratio table.
BASE=uwsgi-http

die() {
	echo "bench: $*" >&2
	exit 1
}

for tool in wrk curl uwsgi gunicorn /usr/bin/python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/deps.sh (or make bench)"
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, got '$DURATION'"
known_servers="gouwsgi uwsgi-http uwsgi-http-keepalive uwsgi-http-socket gunicorn"
for s in $SERVERS; do
	[[ " $known_servers " == *" $s "* ]] || die "unknown server '$s' in SERVERS (known: $known_servers)"
done
for c in $CASES; do
	[[ " hello django " == *" $c "* ]] || die "unknown case '$c' in CASES (known: hello django)"
done

out=${BENCH_OUT:-$(mktemp -d /tmp/gouwsgi-bench.XXXXXX)}
mkdir -p "$out"

notes=()
note() {
	notes+=("$*")
	echo "bench: $*" >&2
}

# --- processes ---------------------------------------------------------------

started=() # every server PID this script started, for the EXIT trap

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tree_pids PID prints PID and all its descendants.
tree_pids() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			queue[1] = root; n = 1
			for (i = 1; i <= n; i++) {
				print queue[i]
				m = split(kids[queue[i]], k, " ")
				for (j = 1; j <= m; j++) queue[++n] = k[j]
			}
		}'
}

# mem_kb PID prints "RSS PSS" in KiB summed over the process tree.
mem_kb() {
	local pid rss=0 pss=0 r p
	for pid in $(tree_pids "$1"); do
		read -r r p < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r + 0, p + 0 }' \
			"/proc/$pid/smaps_rollup" 2>/dev/null || echo "0 0")
		rss=$((rss + r))
		pss=$((pss + p))
	done
	echo "$rss $pss"
}

# stop PID: SIGINT (uWSGI 2.0 reloads on SIGTERM; SIGINT stops all three
# servers), then SIGKILL whatever of the tree is left after STOP_TIMEOUT.
stop() {
	local pid=$1 pids deadline
	kill -0 "$pid" 2>/dev/null || return 0
	pids=$(tree_pids "$pid")
	kill -INT "$pid" 2>/dev/null || true
	deadline=$((SECONDS + STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.1
	done
	# shellcheck disable=SC2086 # word splitting of the PID list is wanted
	kill -KILL $pids 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${started[@]}"; do
		stop "$pid"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# server_cmd SERVER CASE PORT prints the command line, one word per line, or
# nothing for a combination that is not benchmarked.
server_cmd() {
	local server=$1 case=$2 port=$3 addr="127.0.0.1:$3"
	local -a app
	case $case in
	hello) app=(--wsgi-file "$root/examples/hello/app.py") ;;
	django) app=(--chdir "$root/examples/django" --module mysite.wsgi:application) ;;
	route-cache) app=(--ini "$(route_cache_ini "$server" "$port")") ;;
	*) return 1 ;;
	esac
	local -a cmd
	case $server in
	gouwsgi)
		if [ "$case" = route-cache ]; then
			cmd=("$GOUWSGI" "${app[@]}" --home /usr)
		else
			cmd=("$GOUWSGI" --http "$addr" "${app[@]}" --processes 2 --master --home /usr --disable-logging)
		fi
		;;
	uwsgi-*)
		if [ "$case" = route-cache ]; then
			cmd=(uwsgi --plugin "python3,http,router_cache" "${app[@]}")
		else
			local -a front
			case $server in
			uwsgi-http) front=(--http "$addr") ;;
			uwsgi-http-keepalive) front=(--http "$addr" --http-keepalive) ;;
			uwsgi-http-socket) front=(--http-socket "$addr") ;;
			*) return 1 ;;
			esac
			# Debian's uwsgi loads the http router only as a plugin; without
			# it getopt finds --http ambiguous.
			cmd=(uwsgi --plugin "python3,http" "${front[@]}" "${app[@]}" --processes 2 --master --need-app --disable-logging)
		fi
		;;
	gunicorn)
		case $case in
		hello) app=(--chdir "$root/examples/hello" app:application) ;;
		django) app=(--chdir "$root/examples/django" mysite.wsgi:application) ;;
		*) return 1 ;;
		esac
		cmd=(gunicorn --worker-class sync --workers 2 --bind "$addr" --log-level warning "${app[@]}")
		;;
	*) return 1 ;;
	esac
	printf '%s\n' "${cmd[@]}"
}

# route_cache_ini SERVER PORT writes the seed's route-cache config with this
# run's address, stats socket, absolute chdir and 2 workers (as every other
# case), and prints its path.
route_cache_ini() {
	local ini="$out/$1-route-cache.ini"
	sed -e "s#^chdir = .*#chdir = $root/examples/django#" \
		-e "s#^http = .*#http = 127.0.0.1:$2#" \
		-e "s#^stats = .*#stats = $out/$1-stats.sock#" \
		-e "s#^processes = .*#processes = 2#" \
		"$root/examples/seed-route-cache.ini" >"$ini"
	echo "$ini"
}

# start SERVER CASE PATH: starts the server, waits until PATH answers 2xx and
# sets PID and URL. Returns 1 (with a note) when it does not come up.
start() {
	local server=$1 case=$2 path=$3 port log
	port=$(free_port)
	log="$out/$server-$case.log"
	local -a cmd
	mapfile -t cmd < <(server_cmd "$server" "$case" "$port") || true
	if [ "${#cmd[@]}" -eq 0 ]; then
		return 1
	fi
	if [ "$server" = gouwsgi ] && [ ! -x "$GOUWSGI" ]; then
		note "gouwsgi skipped ($case): $GOUWSGI not built (make build)"
		return 1
	fi
	echo "${cmd[*]}" >"$log"
	# Background jobs of a script ignore SIGINT; give it back so stop() works.
	env --default-signal=INT,QUIT "${cmd[@]}" >>"$log" 2>&1 </dev/null &
	PID=$!
	started+=("$PID")
	URL="http://127.0.0.1:$port$path"
	local deadline=$((SECONDS + READY_TIMEOUT))
	while [ "$SECONDS" -lt "$deadline" ]; do
		if ! kill -0 "$PID" 2>/dev/null; then
			note "$server skipped ($case): exited at start, see $log: $(tail -n 3 "$log" | tr '\n' ' ')"
			return 1
		fi
		curl -fsS -o /dev/null --max-time 2 "$URL" 2>/dev/null && return 0
		sleep 0.2
	done
	note "$server skipped ($case): $URL not answering 2xx after ${READY_TIMEOUT}s, see $log"
	stop "$PID"
	return 1
}

# --- measuring ---------------------------------------------------------------

declare -A rps p50 p99 bad rss pss

# measure SERVER CASE C URL: one wrk run, appended to the samples.
measure() {
	local key="$1|$2|$3" line
	line=$(timeout --kill-after=5 $((DURATION + 30)) \
		wrk -t"$THREADS" -c"$3" -d"${DURATION}s" -s "$root/bench/wrk-report.lua" "$4" 2>&1 |
		grep '^WRK_RESULT' || true)
	if [ -z "$line" ]; then
		note "$1 $2 c=$3: wrk gave no result"
		return 0
	fi
	# Fields as printed by wrk-report.lua.
	local _ n dur q50 q99 econn estatus etimeout
	read -r _ n dur q50 q99 econn _ _ estatus etimeout <<<"$line"
	rps[$key]+=" $(awk -v n="$n" -v d="$dur" 'BEGIN { printf "%.0f", n / (d / 1e6) }')"
	p50[$key]+=" $(awk -v v="$q50" 'BEGIN { printf "%.2f", v / 1000 }')"
	p99[$key]+=" $(awk -v v="$q99" 'BEGIN { printf "%.2f", v / 1000 }')"
	# Read and write errors are left out: uWSGI's --http and --http-socket
	# close every connection after a keep-alive reply, which wrk counts as a
	# read (or write) error.
	bad[$key]=$((${bad[$key]:-0} + estatus + etimeout + econn))
	printf 'bench: %-22s %-12s c=%-4s %8s req/s  p99 %7s ms\n' "$1" "$2" "$3" \
		"${rps[$key]##* }" "${p99[$key]##* }" >&2
}

# record_mem SERVER CASE PID: the median of three readings a second apart.
record_mem() {
	local r p i rs="" ps=""
	for i in 1 2 3; do
		read -r r p < <(mem_kb "$3")
		rs+=" $r"
		ps+=" $p"
		[ "$i" = 3 ] || sleep 1
	done
	rss["$1|$2"]=$(median %.1f <<<"$(awk -v RS=' ' 'NF { printf "%s ", $1 / 1024 }' <<<"$rs")")
	pss["$1|$2"]=$(median %.1f <<<"$(awk -v RS=' ' 'NF { printf "%s ", $1 / 1024 }' <<<"$ps")")
}

warm_up() {
	wrk -t1 -c4 -d"${WARMUP}s" "$1" >/dev/null 2>&1 || true
}

# rotate N WORD... prints the words rotated left by N, so that no server is
# always the first (or last) one measured in a round.
rotate() {
	local n=$1
	shift
	local -a a=("$@")
	local i
	for ((i = 0; i < ${#a[@]}; i++)); do
		echo "${a[(i + n) % ${#a[@]}]}"
	done
}

# bench_case CASE PATH CONN...: starts every server for CASE, runs the rounds
# alternating servers and stops them; then starts each one alone again to
# read its memory after a short load.
bench_case() {
	local case=$1 path=$2
	shift 2
	local -a up=()
	local -A pid_of url_of
	local server run c
	for server in $SERVERS; do
		[ "$case" = route-cache ] && [ "$server" != gouwsgi ] && [ "$server" != "$BASE" ] && continue
		start "$server" "$case" "$path" || continue
		if [ "$case" = route-cache ] && ! serves_from_cache "$URL"; then
			note "$server skipped (route-cache): two GETs of /feedback differ, so no cache hits (routes not supported yet?), see $out/$server-$case.log"
			stop "$PID"
			continue
		fi
		up+=("$server")
		pid_of[$server]=$PID
		url_of[$server]=$URL
		warm_up "$URL"
	done
	[ "${#up[@]}" -gt 0 ] || return 0
	for ((run = 0; run < RUNS; run++)); do
		for server in $(rotate "$run" "${up[@]}"); do
			for c in "$@"; do
				measure "$server" "$case" "$c" "${url_of[$server]}"
			done
		done
	done
	for server in "${up[@]}"; do
		stop "${pid_of[$server]}"
	done
	# Memory alone: PSS splits a shared page among every process mapping it,
	# so another server running beside it (same libpython) would lower it.
	local loader
	for server in "${up[@]}"; do
		start "$server" "$case" "$path" || continue
		wrk -t"$THREADS" -c"$1" -d"$((MEM_LOAD + 4))s" "$URL" >/dev/null 2>&1 &
		loader=$!
		sleep "$MEM_LOAD"
		record_mem "$server" "$case" "$PID"
		wait "$loader" || true
		stop "$PID"
	done
}

# serves_from_cache URL: the view's body names its call count and PID, so
# equal bodies mean the second one came from the cache.
serves_from_cache() {
	local a b
	a=$(curl -fsS --max-time 5 "$1") || return 1
	b=$(curl -fsS --max-time 5 "$1") || return 1
	[ "$a" = "$b" ]
}

# --- report ------------------------------------------------------------------

# median [FORMAT] reads space-separated samples; FORMAT defaults to %.2f.
median() {
	tr ' ' '\n' | awk 'NF' | sort -g | awk -v f="${1:-%.2f}\n" '
		{ v[NR] = $1 }
		END {
			if (NR == 0) exit
			printf f, NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

range() {
	tr ' ' '\n' | awk 'NF' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf " [%s–%s]", lo, hi }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

case_label() {
	case $1 in
	hello) echo "hello" ;;
	django) echo "Django /" ;;
	route-cache) echo "Django /feedback, route-cache hits" ;;
	esac
}

report() {
	local -a cases=()
	local case server c key conns
	for case in $CASES; do cases+=("$case"); done
	[ "$ROUTE_CACHE" = 1 ] && cases+=(route-cache)

	echo "## gouwsgi benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores)"
	echo
	echo "wrk -t$THREADS -d${DURATION}s on loopback, $RUNS runs per row alternating servers:"
	echo "median [min–max] req/s, median latency. RSS/PSS: sum over the server's"
	echo "process tree, running alone, median of 3 readings after ${MEM_LOAD}s of load. errors: non-2xx, timeouts,"
	echo "connect errors (summed over the runs). Load average (1/5/15 min) at the start:"
	echo "$load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg); above ~2, other work shared the cores."
	echo
	echo "| server | case | c | req/s | p50 ms | p99 ms | RSS MiB | PSS MiB | errors |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for case in "${cases[@]}"; do
		conns=$CONNS
		[ "$case" = route-cache ] && conns=$CACHE_CONNS
		for c in $conns; do
			for server in $SERVERS; do
				key="$server|$case|$c"
				[ -n "${rps[$key]:-}" ] || continue
				printf '| %s | %s | %s | %s%s | %s | %s | %s | %s | %s |\n' \
					"$server" "$(case_label "$case")" "$c" \
					"$(median %.0f <<<"${rps[$key]}")" "$(range <<<"${rps[$key]}")" \
					"$(median <<<"${p50[$key]}")" "$(median <<<"${p99[$key]}")" \
					"${rss[$server|$case]:-?}" "${pss[$server|$case]:-?}" "${bad[$key]:-0}"
			done
		done
	done
	echo
	echo "Ratio gouwsgi / uWSGI --http (req/s: higher is better; p99, RSS, PSS: lower is better)"
	echo
	echo "| case | c | req/s | p99 | RSS | PSS |"
	echo "|---|---|---|---|---|---|"
	local g b
	for case in "${cases[@]}"; do
		conns=$CONNS
		[ "$case" = route-cache ] && conns=$CACHE_CONNS
		for c in $conns; do
			g="gouwsgi|$case|$c"
			b="$BASE|$case|$c"
			printf '| %s | %s | %s | %s | %s | %s |\n' "$(case_label "$case")" "$c" \
				"$(ratio "$(median <<<"${rps[$g]:-}")" "$(median <<<"${rps[$b]:-}")")" \
				"$(ratio "$(median <<<"${p99[$g]:-}")" "$(median <<<"${p99[$b]:-}")")" \
				"$(ratio "${rss[gouwsgi|$case]:-}" "${rss[$BASE|$case]:-}")" \
				"$(ratio "${pss[gouwsgi|$case]:-}" "${pss[$BASE|$case]:-}")"
		done
	done
	if [ "${#notes[@]}" -gt 0 ]; then
		echo
		echo "Notes:"
		local n
		for n in "${notes[@]}"; do echo "- $n"; done
	fi
}

# --- main --------------------------------------------------------------------

echo "bench: logs in $out" >&2
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
read -ra conns <<<"$CONNS"
read -ra cache_conns <<<"$CACHE_CONNS"
for case in $CASES; do
	bench_case "$case" / "${conns[@]}"
done
if [ "$ROUTE_CACHE" = 1 ]; then
	bench_case route-cache /feedback "${cache_conns[@]}"
fi
report | tee "$out/results.md"
echo "bench: table saved to $out/results.md" >&2
