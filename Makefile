# clew developer targets. `make check` runs before each change is proposed;
# `make bench` runs the end-to-end benchmark (see tools/benchrun).

GO       ?= go
FUZZTIME ?= 20s

.PHONY: all build test vet lint fmt fuzz bench gobench check ui ui-test

all: check build

build:
	$(GO) build -o bin/clew ./cmd/clew

test:
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

# lint runs staticcheck, pinned as a tool in go.mod (staticcheck.conf).
lint:
	$(GO) tool staticcheck ./...

# fmt fails when a file is not gofmt-formatted; it does not rewrite files.
fmt:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# fuzz runs every Fuzz target under internal/ for FUZZTIME each
# (tools/fuzz/run.sh says how a Go 1.26 coordinator race is told apart from a
# failing input).
fuzz:
	GO=$(GO) sh tools/fuzz/run.sh $(FUZZTIME)

bench:
	$(GO) run ./tools/benchrun --out .bench/results.md

gobench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 ./internal/...

check: fmt vet lint test

# ui builds the web UI (web/: Node 20.19+ and npm) into internal/webui/dist,
# which go build embeds; without it the binary serves a placeholder page
# that says how to build the UI. See docs/ui.md.
ui:
	cd web && npm ci --no-audit --no-fund && npm run build
	find internal/webui/dist -mindepth 1 ! -name .gitkeep -delete
	cp -R web/dist/. internal/webui/dist/

# ui-test runs the UI's unit tests and its browser tests against a real
# clew (needs chromium; web/e2e/run.sh builds the binary with the UI).
ui-test: ui
	cd web && npm test
	bash web/e2e/run.sh
