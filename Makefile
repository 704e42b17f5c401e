# clew developer targets. `make check` runs before each change is proposed;
# `make bench` runs the end-to-end benchmark (see tools/benchrun).

GO       ?= go
FUZZTIME ?= 20s

.PHONY: all build test vet fmt fuzz bench gobench check ui ui-test

all: check build

build:
	$(GO) build -o bin/clew ./cmd/clew

test:
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

# fmt fails when a file is not gofmt-formatted; it does not rewrite files.
fmt:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# fuzz runs every Fuzz target under internal/ for FUZZTIME each. -fuzz must
# match exactly one target in one package, hence the loop.
fuzz:
	@set -e; \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' internal | sort); do \
		pkg=./$$(dirname $$file); \
		for name in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$file | sed 's/^func //'); do \
			echo "== $$name ($$pkg, $(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

bench:
	$(GO) run ./tools/benchrun --out .bench/results.md

gobench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 ./internal/...

check: fmt vet test

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
