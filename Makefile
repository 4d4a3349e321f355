# locked-run's build and test entry points. `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

.PHONY: build test deps java check-format vet bench chaos-long fuzz clean

# A static binary (no cgo) starts about 0.7 ms faster: no dynamic loader,
# and os/user and net use their pure-Go code. urfave_cli_no_docs drops the
# man-page generator (and its markdown package's init) that locked-run never
# uses, and -s -w the symbol tables: 21 MiB becomes 14 MiB, and start-up
# another 0.8-1.7 ms faster (BENCHMARKS.md).
build:
	CGO_ENABLED=0 $(GO) build -tags urfave_cli_no_docs -ldflags "-s -w $(LDFLAGS)" -o bin/locked-run ./cmd/locked-run

# deps installs what the tests need: DynamoDB Local (pinned in
# package-lock.json) and a Java runtime to run it.
deps: java node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Java 17 for DynamoDB Local"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@java -version 2>&1 | head -1

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: deps check-format vet
	$(GO) test -race -count=1 -timeout 30m ./...

clean:
	rm -rf bin

# bench prints the figures of BENCHMARKS.md for the binary `make build` makes.
bench: deps
	CGO_ENABLED=0 LOCKED_RUN_TEST_NORACE=1 $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./integration

# chaos-long runs the chaos test for CHAOS_DURATION instead of its CI size.
CHAOS_DURATION ?= 10m
chaos-long: deps
	LOCKED_RUN_CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -race -count=1 -run '^TestChaos$$' -v -timeout 60m ./integration

# fuzz explores each fuzz target for FUZZTIME; their seed corpora run in `make test`.
FUZZTIME ?= 1m
fuzz:
	@for t in FuzzDecodeRecord FuzzAcquireOverItem FuzzValidateKey; do $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./lock || exit 1; done
	@for t in FuzzParseDuration FuzzSplitArgs FuzzShellQuote FuzzExpandShort; do $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./cmd/locked-run || exit 1; done
