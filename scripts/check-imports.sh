#!/usr/bin/env bash
# check-imports.sh enforces the dependency direction of DESIGN.md:
# cmd -> rpc -> (node, legion) -> cache. It reads the full transitive
# dependency set of each layer with `go list -deps`, so an indirect import
# (node -> x -> legion) fails as well, and names the package that imports
# the forbidden one.
set -euo pipefail

cd "$(dirname "$0")/.."
mod=$(go list -m)
status=0

# check PATTERN FORBIDDEN... fails when a package matched by PATTERN depends
# on a FORBIDDEN package or one below it.
check() {
	local pattern=$1
	shift
	local graph
	# -e: a package another helper is editing may not build right now; its
	# imports are still known and still checked.
	graph=$(go list -e -deps -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' "$pattern" 2>/dev/null) || true
	local forbidden
	for forbidden in "$@"; do
		local hits
		hits=$(awk -v f="$forbidden" '
			{ for (i = 2; i <= NF; i++) if ($i == f || index($i, f "/") == 1) print "  " $1 " imports " $i }
		' <<<"$graph")
		if [ -n "$hits" ]; then
			echo "check-imports: $pattern must not depend on $forbidden:" >&2
			echo "$hits" >&2
			status=1
		fi
	done
}

check ./node/... "$mod/legion" "$mod/rpc" "$mod/cmd"
check ./legion/... "$mod/node" "$mod/rpc" "$mod/cmd"
# cache is a pure state machine: legion's FSM drives it, it knows no Raft.
check ./cache/... "$mod/node" "$mod/legion" "$mod/rpc" "$mod/cmd" github.com/hashicorp/raft
check ./rpc/... "$mod/cmd"
check ./proto/... "$mod/node" "$mod/legion" "$mod/cache" "$mod/rpc" "$mod/cmd"
# The CLI is a client of the admin API, never of server internals.
check ./cmd/gouwsgictl/... "$mod/node" "$mod/legion"

[ "$status" -eq 0 ] && echo "check-imports: ok"
exit "$status"
