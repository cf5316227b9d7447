#!/bin/sh
# Regenerate the Go code under proto/ from the .proto files next to it.
# Needs protoc (apt-get install protobuf-compiler) and, on PATH (or in
# $(go env GOPATH)/bin):
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
# Generated files are committed so `go build` never needs protoc.
set -eu
cd "$(dirname "$0")/.."
PATH="$(go env GOPATH)/bin:$PATH"
export PATH
for dir in proto/gouwsgi/raft/v1 proto/gouwsgi/cluster/v1; do
	protoc -I proto \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		"$dir"/*.proto
done
