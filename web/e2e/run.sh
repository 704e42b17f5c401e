#!/usr/bin/env bash
# Browser tests of the web UI against the real clew binary. Builds the
# binary with the UI embedded (make ui must have run: the assets are taken
# from internal/webui/dist), then runs web/e2e/e2e.mjs, which starts
# `clew serve` on loopback ports in a temporary data directory, loads the
# fixtures over OTLP/HTTP and drives chromium with playwright-core.
# Screenshots and metrics.json go to web/e2e/artifacts/.
#
# Environment: CHROMIUM (default /usr/bin/chromium), RENDER_BUDGET_MS
# (default 1000).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

if [ ! -f internal/webui/dist/index.html ]; then
	echo "internal/webui/dist has no built UI: run 'make ui' first" >&2
	exit 1
fi
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
	echo "chromium not found at $chromium: apt-get install -y chromium (or set CHROMIUM)" >&2
	exit 1
fi
if [ ! -d web/node_modules/playwright-core ]; then
	(cd web && npm ci --no-audit --no-fund)
fi

bin="$(mktemp -d)/clew"
trap 'rm -rf "$(dirname "$bin")"' EXIT
echo "== go build (UI embedded)"
go build -o "$bin" ./cmd/clew

artifacts="$root/web/e2e/artifacts"
rm -rf "$artifacts"
mkdir -p "$artifacts"
echo "== browser tests ($("$chromium" --version 2>/dev/null | head -1))"
node web/e2e/e2e.mjs --clew "$bin" --artifacts "$artifacts" --chromium "$chromium"
