#!/bin/sh
# Regenerate the Go code of every .proto under proto/ (gouwsgi.admin.v1,
# gouwsgi.cluster.v1, gouwsgi.raft.v1, ...) next to its source, or under
# OUTDIR when given (`make generate-check` compares such a copy with the
# committed code).
# Usage: scripts/protogen.sh [OUTDIR]
# Needs protoc (apt-get install protobuf-compiler) and the pinned plugins
# that scripts/tools.sh installs into .bin (`make proto` does both).
# Generated files are committed so `go build` never needs protoc.
set -eu
cd "$(dirname "$0")/.."
out=${1:-proto}
mkdir -p "$out"
PATH="$PWD/.bin:$PATH"
export PATH
for plugin in protoc-gen-go protoc-gen-go-grpc; do
	command -v "$plugin" >/dev/null 2>&1 || {
		echo "protogen.sh: $plugin not found: run scripts/tools.sh $plugin (make proto does)" >&2
		exit 1
	}
done
# One protoc run per package directory: protoc wants every file of a Go
# package in one invocation.
for dir in $(find proto -name '*.proto' -exec dirname {} \; | sort -u); do
	protoc -I proto \
		--go_out="$out" --go_opt=paths=source_relative \
		--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
		"$dir"/*.proto
done
