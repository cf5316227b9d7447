#!/usr/bin/env bash
# tools.sh installs pinned Go tools into the project-local ./.bin (never into
# GOPATH/bin), so every machine generates code with the same versions.
# Usage: scripts/tools.sh TOOL...   (TOOL: protoc-gen-go protoc-gen-go-grpc buf)
# A tool already at its pinned version is left alone; a run with everything
# in place costs one `go version -m` per tool.
set -euo pipefail

cd "$(dirname "$0")/.."
bindir="$PWD/.bin"

die() {
	echo "tools.sh: $*" >&2
	exit 1
}

# pkg prints the install path and pinned version of a known tool. The
# protoc-gen-go version matches google.golang.org/protobuf in go.mod so the
# generated code and the runtime agree.
pkg() {
	case "$1" in
	protoc-gen-go) echo "google.golang.org/protobuf/cmd/protoc-gen-go v1.36.12" ;;
	protoc-gen-go-grpc) echo "google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.0" ;;
	# buf builds in ~4 minutes on a cold cache: only `make proto-lint`
	# asks for it.
	buf) echo "github.com/bufbuild/buf/cmd/buf v1.75.0" ;;
	*) return 1 ;;
	esac
}

[ "$#" -gt 0 ] || die "usage: scripts/tools.sh protoc-gen-go|protoc-gen-go-grpc|buf ..."
command -v go >/dev/null 2>&1 || die "go not found on PATH"
mkdir -p "$bindir"

for tool in "$@"; do
	spec=$(pkg "$tool") || die "unknown tool $tool (known: protoc-gen-go protoc-gen-go-grpc buf)"
	read -r path version <<<"$spec"
	have=$(go version -m "$bindir/$tool" 2>/dev/null | awk '$1 == "mod" { print $3; exit }' || true)
	[ "$have" = "$version" ] && continue
	echo "tools.sh: installing $tool $version into .bin" >&2
	GOBIN="$bindir" GOFLAGS=-buildvcs=false go install "$path@$version" ||
		die "go install $path@$version failed"
done
