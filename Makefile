# gouwsgi: every target works from a clean clone, as root, on Debian 12 with
# Go installed; `deps` installs the Debian packages the target needs.
# `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

# Project-local tools first (scripts/tools.sh installs them), then Go's usual
# place in case the caller's PATH lacks it.
export PATH := $(CURDIR)/.bin:$(PATH):/usr/local/go/bin

GO ?= go
# raft and raft-boltdb/v2 report to one metrics sink (hashicorp/go-metrics)
# only with this tag; see go.mod's replace.
GOTAGS ?= hashicorpmetrics
GOFLAGS_TAGS := -tags '$(GOTAGS)'
# Extra `go test` flags, e.g. make test TESTFLAGS='-run TestX -v'.
TESTFLAGS ?=
# `make test` runs everything including e2e; it must stay well under CI's
# limits on a 2-core machine.
TEST_TIMEOUT ?= 15m

# e2e tests start real processes: they run only with GOUWSGI_E2E=1 and use
# the binary built here (GOUWSGI_BIN) rather than building their own.
export GOUWSGI_BIN := $(CURDIR)/bin/gouwsgi

.PHONY: help deps build run test test-short test-race e2e lint fmt-check vet \
	check-imports bench bench-failover bench-raft proto proto-lint proto-breaking generate-check proto-check docs clean

help: ## list the targets
	@awk -F':.*## ' '/^[a-z0-9-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

deps: ## install the Debian packages (idempotent, no-op when present)
	@bash scripts/deps.sh

# Static binaries: without cgo no libc is mapped into the master (measured
# 0.6 MiB of its PSS under load). The pure-Go os/user reads /etc/passwd and
# /etc/group for the %U/%G magic variables (names from LDAP & co. stay ids).
build: ## build bin/gouwsgi and bin/gouwsgictl
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_TAGS) -o bin/ ./cmd/...

run: deps build ## serve examples/hello on http://127.0.0.1:9090 (one-node legion)
	@mkdir -p .run/legion
	@echo "gouwsgi: try  curl http://127.0.0.1:9090/  (stats: curl http://127.0.0.1:9191/)"
	exec bin/gouwsgi --ini examples/run.ini

test: deps build lint proto-check ## everything: lint, proto checks, unit tests, e2e (GOUWSGI_E2E=1)
	GOUWSGI_E2E=1 $(GO) test $(GOFLAGS_TAGS) -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...

test-short: ## fast unit tests (no e2e, no multi-node)
	$(GO) test $(GOFLAGS_TAGS) -short $(TESTFLAGS) ./...

test-race: ## unit tests under the race detector (no e2e)
	$(GO) test $(GOFLAGS_TAGS) -race -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...

e2e: deps build ## only the e2e tests (real python, nginx, clusters)
	GOUWSGI_E2E=1 $(GO) test $(GOFLAGS_TAGS) -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./e2e/...

lint: fmt-check vet check-imports ## gofmt, go vet, import rules

# buf is built once into .bin (minutes on a cold Go cache, seconds after).
proto-check: generate-check proto-lint proto-breaking ## generated code current, buf lint, buf breaking against main

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt: these files need gofmt -w:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(GOFLAGS_TAGS) ./...

check-imports: ## node !-> legion/rpc, legion !-> node, cache pure (go list -deps)
	@bash scripts/check-imports.sh

bench: deps ## gouwsgi vs uWSGI vs gunicorn (wrk); see bench/README.md
	@$(MAKE) --no-print-directory build || echo "bench: build failed, bench/run.sh will skip gouwsgi"
	bash bench/run.sh
	bash bench/miss.sh

bench-failover: deps build ## lord failover: gouwsgi vs uWSGI's Legion in network namespaces (root)
	bash bench/failover.sh

bench-raft: ## replicated cache set throughput vs raw raft applies (3 nodes, loopback)
	GOUWSGI_BENCH=1 $(GO) test $(GOFLAGS_TAGS) -count=1 -v -run TestReplicatedSetThroughput ./legion/rcache/

proto: deps ## regenerate proto/ Go code with protoc (pinned plugins in .bin)
	@bash scripts/tools.sh protoc-gen-go protoc-gen-go-grpc
	bash scripts/protogen.sh

proto-lint: ## buf lint of proto/ (installs buf into .bin: slow the first time)
	@bash scripts/tools.sh buf
	buf lint

# The API's wire compatibility with main; BUF_AGAINST compares with
# another ref (e.g. BUF_AGAINST='.git#tag=v1.2.0').
BUF_AGAINST ?= .git\#branch=main
proto-breaking: ## buf breaking of proto/ against main (installs buf into .bin)
	@bash scripts/tools.sh buf
	buf breaking --against '$(BUF_AGAINST)'

# Regenerates into a temporary directory and compares with proto/. The
# header line naming protoc's own version is ignored: it depends on the
# distribution's protoc (or says "unknown" under buf), not on the code.
generate-check: deps ## fail when proto/'s committed Go code differs from `make proto`
	@bash scripts/tools.sh protoc-gen-go protoc-gen-go-grpc
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	bash scripts/protogen.sh "$$tmp"; \
	committed=$$(cd proto && find . -name '*.pb.go' | sort); fresh=$$(cd "$$tmp" && find . -name '*.pb.go' | sort); \
	if [ "$$committed" != "$$fresh" ]; then \
		echo "generate-check: generated files differ from the .proto files (run make proto):"; \
		diff <(echo "$$committed") <(echo "$$fresh") || true; exit 1; \
	fi; \
	for f in $$fresh; do \
		diff -u -I '^// .*protoc  *[^ ]*$$' "proto/$$f" "$$tmp/$$f" || \
			{ echo "generate-check: proto/$${f#./} is stale: run make proto"; exit 1; }; \
	done; \
	echo "generate-check: proto/ matches its .proto files"

docs: ## regenerate docs/options.md from the option table (go generate)
	$(GO) generate $(GOFLAGS_TAGS) ./node/...
	@test -s docs/options.md || { echo "docs: docs/options.md was not generated"; exit 1; }

clean: ## remove build output and run state (keeps the cached tools in .bin)
	rm -rf bin .run
