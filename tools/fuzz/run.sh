#!/bin/sh
# run.sh FUZZTIME: fuzz every Fuzz target under internal/ for FUZZTIME each.
# -fuzz must match exactly one target in one package, hence the loop.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is busy (go.dev/issue/75804,
# fixed in Go 1.27). That failure names no input. It is tolerated only when no
# failing input was written and the target's corpus then replays cleanly;
# every other failure fails the run.
set -eu
fuzztime=${1:-10s}
go=${GO:-go}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for file in $(grep -rl --include='*_test.go' '^func Fuzz' internal | sort); do
	pkg=./$(dirname "$file")
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "== $name ($pkg, $fuzztime)"
		if $go test -run='^$' -fuzz="^$name\$" -fuzztime="$fuzztime" "$pkg" >"$out" 2>&1; then
			tail -n 3 "$out"
			continue
		fi
		cat "$out"
		if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
			echo "-- $name: coordinator deadline (go.dev/issue/75804), no input failed; replaying its corpus"
			$go test -count=1 -run="^$name\$" "$pkg"
			continue
		fi
		exit 1
	done
done
