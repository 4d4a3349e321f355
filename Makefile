# locked-run's build and test entry points. `make test` is what CI runs.
GO      ?= go
# VERSION is the release tag when HEAD has one behind it (git describe),
# else the version of CHANGELOG.md's latest release section. COMMIT and
# DATE are the commit's hash and time (UTC), not the build's, so that two
# builds of one commit are the same bytes; goreleaser stamps the same three.
BASE_VERSION := v0.1.0
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo $(BASE_VERSION))
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

.PHONY: build man completions test deps java image-tools check-format vet cross release-snapshot image bench bench-paired bench-notemplate bench-line chaos-long fuzz clean

# A static binary (no cgo) starts about 0.7 ms faster: no dynamic loader,
# and os/user and net use their pure-Go code. urfave_cli_no_docs drops the
# man-page generator (and its markdown package's init) that locked-run never
# uses, and -s -w the symbol tables: 21 MiB becomes 13 MiB, and start-up
# another 0.8-1.7 ms faster (BENCHMARKS.md).
build:
	CGO_ENABLED=0 $(GO) build -tags urfave_cli_no_docs -ldflags "-s -w $(LDFLAGS)" -o bin/locked-run ./cmd/locked-run

# man writes bin/locked-run.1 and completions bin/completions/*, from the
# same option definitions as --help, with a generator build of the command
# (-tags locked_run_gendocs, cmd/locked-run/gendocs.go): the binary `make
# build` makes has no generator in it.
GENDOCS := $(GO) run -tags locked_run_gendocs -ldflags "$(LDFLAGS)" ./cmd/locked-run
man:
	@mkdir -p bin
	$(GENDOCS) man $(shell echo $(DATE) | cut -c1-10) > bin/locked-run.1

completions:
	@mkdir -p bin/completions
	$(GENDOCS) completion bash > bin/completions/locked-run.bash
	$(GENDOCS) completion zsh > bin/completions/_locked-run
	$(GENDOCS) completion fish > bin/completions/locked-run.fish

# release-snapshot builds the release (.goreleaser.yaml) into dist/ without
# a tag or publishing anything: archives for linux and darwin on amd64 and
# arm64, and checksums.txt. goreleaser is pinned and built through the Go
# module proxy (the first run compiles it, a few minutes); v2.15.x is the
# newest that builds with Go 1.26.
# goreleaser reads the commit only when the clone has a remote; a clone
# without one gets the project's URL for this run.
GORELEASER ?= $(GO) run github.com/goreleaser/goreleaser/v2@v2.15.1
NO_REMOTE  := $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=https://github.com/locked-run/locked-run.git)
release-snapshot:
	$(NO_REMOTE) LOCKED_RUN_VERSION=$(VERSION) $(GORELEASER) release --snapshot --clean
	@cd dist && ls -l *.tar.gz checksums.txt && cat checksums.txt

# image builds the container image (Dockerfile) from the binary make build
# makes, with podman, or docker when there is no podman. The build context
# is bin/image-root: the binary, this host's CA bundle, a passwd and group
# with the unprivileged user 65532 ("nonroot", as distroless), and /tmp.
IMAGE     ?= locked-run:$(VERSION)
CONTAINER ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null || echo podman)
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
image: build
	rm -rf bin/image-root
	mkdir -p bin/image-root/usr/local/bin bin/image-root/etc/ssl/certs bin/image-root/tmp
	chmod 1777 bin/image-root/tmp
	install -m 0755 bin/locked-run bin/image-root/usr/local/bin/locked-run
	install -m 0644 $(CA_BUNDLE) bin/image-root/etc/ssl/certs/ca-certificates.crt
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' > bin/image-root/etc/passwd
	printf 'root:x:0:\nnonroot:x:65532:\n' > bin/image-root/etc/group
	$(CONTAINER) build -f Dockerfile -t $(IMAGE) bin/image-root

# deps installs what the tests need: DynamoDB Local (pinned in
# package-lock.json) and a Java runtime to run it.
deps: java image-tools node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Java 17 for DynamoDB Local"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@java -version 2>&1 | head -1

# image-tools installs podman, which packaging/image_test.go builds and runs
# the container image with, and runc (crun refuses hosts with hybrid cgroups);
# and the programs the tests drive as users have them: less (the pager of the
# differential pty tests), zsh and fish (their completions are parsed), man
# (the man page is rendered) and bash-completion. One apt-get for whatever
# is missing.
IMAGE_TOOLS := podman:podman runc:runc less:less zsh:zsh fish:fish man:man-db groff:groff-base
image-tools:
	@missing=""; for t in $(IMAGE_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	  [ -f /usr/share/bash-completion/bash_completion ] || missing="$$missing bash-completion"; \
	  if [ -n "$$missing" ]; then echo "installing$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags locked_run_gendocs ./cmd/locked-run

# cross builds locked-run and vets every package (tests included) for each
# supported platform, as part of `make test`. Nothing here can run macOS:
# this is how the darwin code is checked. On darwin, integration/ is left
# out of the vet: its tests drive the binary through Linux's /proc and
# pseudo-terminal ioctls and run on Linux only (the tests of runner/ and
# signals/ say so with a linux build constraint). The vet of a target
# reuses what its build compiled (the build cache), so each target costs
# about one compile of the module and its dependencies for that GOOS/GOARCH.
CROSS_TARGETS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
CROSS_BUILD   ?= ./cmd/locked-run
CROSS_VET     ?= ./...
CROSS_LINUX_ONLY ?= /integration
cross:
	@set -e; for t in $(CROSS_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; echo "== $$os/$$arch"; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -tags urfave_cli_no_docs -o /dev/null $(CROSS_BUILD); \
	  pkgs='$(CROSS_VET)'; \
	  if [ $$os != linux ]; then pkgs=$$(GOOS=$$os $(GO) list $(CROSS_VET) | grep -v '$(CROSS_LINUX_ONLY)$$'); fi; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) vet $$pkgs; \
	done

# The runner's tests run a second time without cgo: a static build (what
# `make build` makes) forks its guardian without the C library's thread
# state to keep (runner/guardian_linux_amd64.go), a cgo build with it.
test: deps check-format vet cross
	$(GO) test -race -count=1 -timeout 30m ./...
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 10m ./runner

clean:
	rm -rf bin

# bench prints the figures of BENCHMARKS.md for the binary `make build` makes.
bench: deps
	CGO_ENABLED=0 LOCKED_RUN_TEST_NORACE=1 $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./integration

# bench-paired prints the start-up and per-run figures only (BenchmarkPaired,
# about a minute): each run paired with `flock f true`, CPU time, package
# initialisation, start to first connection, the time to each milestone of
# a run (timeline), holder and waiter RSS.
# BENCH_BINARIES="name=path,..." adds other builds (an older commit's) to
# compare under the same load; BENCH_PEERS="name=command args;..." pairs
# other lock tools (built by you) the same way, in the rounds of `-t T --
# true`, after creating BENCH_PEER_TABLES="table:key,..." (BENCHMARKS.md).
bench-paired: deps
	LOCKED_RUN_TEST_NORACE=1 LOCKED_RUN_BENCH_PAIRS="$(BENCH_PAIRS)" LOCKED_RUN_BENCH_BINARIES="$(BENCH_BINARIES)" LOCKED_RUN_BENCH_PEERS="$(BENCH_PEERS)" LOCKED_RUN_BENCH_PEER_TABLES="$(BENCH_PEER_TABLES)" $(GO) test -count=1 -run '^$$' -bench '^BenchmarkPaired$$' -benchtime 1x -timeout 10m ./integration

# bench-notemplate is bench-paired with one more build: locked-run against a
# copy of urfave/cli whose help printer does not use text/template (it
# prints "help"). text/template looks methods up by name through reflection,
# and a binary that can do that keeps every exported method of every type it
# holds in an interface, whether called or not: those of the STS, SSO and
# sign-in clients the AWS credential chain makes (lock.SDKClient keeps the
# DynamoDB client's out of reach). The build is for measuring what that
# costs (BENCHMARKS.md, "Third pass" and "Fourth pass"), made in
# NOTEMPLATE_DIR with its own go.mod (-modfile); nothing in the tree changes.
NOTEMPLATE_DIR ?= /tmp/locked-run-notemplate
comma := ,
bench-notemplate: deps
	rm -rf $(NOTEMPLATE_DIR) && mkdir -p $(NOTEMPLATE_DIR)
	$(GO) mod download github.com/urfave/cli/v2
	cp -r "$$($(GO) list -m -f '{{.Dir}}' github.com/urfave/cli/v2)" $(NOTEMPLATE_DIR)/cli && chmod -R u+w $(NOTEMPLATE_DIR)/cli
	perl -0pi -e 's/(func printHelpCustom\([^\n]*\{\n).*?\n\}\n/$$1\tfmt.Fprintln(out, "help")\n}\n/s; s/\n\t"text\/(tabwriter|template)"//g' $(NOTEMPLATE_DIR)/cli/help.go
	perl -pi -e 's/t, err := template.New\(name\).Parse\(FishCompletionTemplate\)/var t *template.Template; err := fmt.Errorf("no fish")/' $(NOTEMPLATE_DIR)/cli/fish.go
	cp go.mod go.sum $(NOTEMPLATE_DIR)/
	$(GO) mod edit -modfile=$(NOTEMPLATE_DIR)/go.mod -replace github.com/urfave/cli/v2=$(NOTEMPLATE_DIR)/cli
	CGO_ENABLED=0 $(GO) build -modfile=$(NOTEMPLATE_DIR)/go.mod -tags urfave_cli_no_docs -ldflags "-s -w" -o $(NOTEMPLATE_DIR)/locked-run ./cmd/locked-run
	CGO_ENABLED=0 $(GO) build -modfile=$(NOTEMPLATE_DIR)/go.mod -tags urfave_cli_no_docs -o $(NOTEMPLATE_DIR)/locked-run.symbols ./cmd/locked-run
	@if $(GO) tool nm $(NOTEMPLATE_DIR)/locked-run.symbols | grep -q 'text/template.(\*state).evalField'; then echo "text/template's execution is still linked"; exit 1; fi
	ls -l $(NOTEMPLATE_DIR)/locked-run
	$(MAKE) bench-paired BENCH_BINARIES="no-text-template=$(NOTEMPLATE_DIR)/locked-run$(if $(BENCH_BINARIES),$(comma)$(BENCH_BINARIES))"

# bench-line prints issue 12's figures only (BenchmarkLineContended and
# BenchmarkLineWaitCost, about 5 minutes): 8 processes x 5 sections of
# `sleep 0.05` against flock(1) in paired rounds (LOCKED_RUN_BENCH_ROUNDS,
# default 5) with the handoffs served in order, and the requests per minute
# of 1, 10 and 50 waiters over LOCKED_RUN_BENCH_WINDOW (default 30s) with
# the head's time to acquire after a release.
bench-line: deps
	CGO_ENABLED=0 LOCKED_RUN_TEST_NORACE=1 $(GO) test -count=1 -run '^$$' -bench '^BenchmarkLine' -benchtime 1x -timeout 20m ./integration

# chaos-long runs the chaos test for CHAOS_DURATION instead of its CI size.
CHAOS_DURATION ?= 10m
chaos-long: deps
	LOCKED_RUN_CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -race -count=1 -run '^TestChaos$$' -v -timeout 60m ./integration

# fuzz explores each fuzz target for FUZZTIME; their seed corpora run in `make test`.
FUZZTIME ?= 1m
fuzz:
	@for t in FuzzDecodeRecord FuzzAcquireOverItem FuzzValidateKey; do $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./lock || exit 1; done
	@for t in FuzzParseDuration FuzzSplitArgs FuzzShellQuote FuzzExpandShort; do $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./cmd/locked-run || exit 1; done
