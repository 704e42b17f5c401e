// Command benchrun is clew's end-to-end benchmark, run by `make bench`. For
// each workload shape it starts `clew serve` on loopback ports (pinned to CPU
// 0 with taskset when possible), drives it with `clew loadgen` (pinned to CPU
// 1), flushes the head into a block and then measures:
//
//   - accepted spans per second, from the load generator's report;
//   - server CPU seconds per million spans, during ingest and including the
//     flush and a settle period for background work (from /proc/PID/stat);
//   - peak RSS (VmHWM from /proc/PID/status);
//   - bytes on disk per span, for blocks alone and for the whole data dir;
//   - latency of trace-by-ID lookups, a needle search matching one trace and
//     a broad search returning 20 full traces.
//
// It verifies that every accepted trace is stored and that the queries
// return what was sent, prints one Markdown table per shape and writes them
// to --out. Any failed check makes it exit non-zero.
//
// Usage:
//
//	go run ./tools/benchrun [--spans 1000000] [--shapes bench,realistic] [--out .bench/results.md] [--clew BIN] [--keep]
//	    [--tenancy] [--telemetrygen BIN --shapes telemetrygen [--tg-rate 10000] [--tg-workers 4]]
//
// The telemetrygen shape drives the server with the OpenTelemetry
// Collector's telemetrygen (a generator clew's authors did not write; build
// it from the Go module proxy with `go install
// github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0`):
// 10-span traces over OTLP/HTTP at a fixed rate, every span it generated
// counted as accepted by the server and stored, trace IDs sampled from
// the store over the run's time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{opts: opts, stdout: stdout, stderr: stderr, args: args}
	return b.run(ctx)
}
