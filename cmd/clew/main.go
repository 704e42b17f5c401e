// Command clew is a distributed tracing system in one binary.
//
//	clew serve     ingest OTLP, store spans, answer queries
//	clew loadgen   send synthetic traces over OTLP
//	clew version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/clew-dev/clew/internal/app"
	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/loadgen"
	"github.com/clew-dev/clew/internal/wal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "clew:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

const usage = `clew is a distributed tracing system.

Usage:
  clew serve [flags]     ingest OTLP, store spans, answer queries (clew serve -h)
  clew loadgen [flags]   send synthetic traces over OTLP (clew loadgen -h)
  clew version           print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: missing command", errUsage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "loadgen":
		return loadgen.Main(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "clew", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

func version() string {
	v := app.Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := config.Default()
	cfgPath := fs.String("config", "", "YAML configuration file (flags given on the command line override it)")
	dataDir := fs.String("data-dir", def.DataDir, "directory for the write-ahead log and blocks")
	grpcAddr := fs.String("otlp-grpc-addr", def.OTLPGRPCAddr, "OTLP/gRPC listen address")
	httpOTLP := fs.String("otlp-http-addr", def.OTLPHTTPAddr, "OTLP/HTTP listen address")
	httpAddr := fs.String("http-addr", def.HTTPAddr, "query API, metrics and health listen address")
	logLevel := fs.String("log-level", def.LogLevel, "debug, info, warn or error")
	logFormat := fs.String("log-format", def.LogFormat, "text or json")
	walSync := fs.String("wal-sync", string(def.Store.WALSync), "write-ahead log durability: group (fsync, group-committed), always (fsync each write) or none")
	retention := fs.Duration("retention", def.Store.Retention, "drop blocks older than this (0 keeps forever)")
	maxDisk := fs.Int64("max-disk-bytes", def.Store.MaxDiskBytes, "drop the oldest blocks beyond this many bytes on disk (0: no limit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg := def
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	override := func(name string, apply func()) {
		if set[name] || *cfgPath == "" {
			apply()
		}
	}
	override("data-dir", func() { cfg.DataDir = *dataDir })
	override("otlp-grpc-addr", func() { cfg.OTLPGRPCAddr = *grpcAddr })
	override("otlp-http-addr", func() { cfg.OTLPHTTPAddr = *httpOTLP })
	override("http-addr", func() { cfg.HTTPAddr = *httpAddr })
	override("log-level", func() { cfg.LogLevel = *logLevel })
	override("log-format", func() { cfg.LogFormat = *logFormat })
	override("wal-sync", func() { cfg.Store.WALSync = wal.SyncPolicy(*walSync) })
	override("retention", func() { cfg.Store.Retention = *retention })
	override("max-disk-bytes", func() { cfg.Store.MaxDiskBytes = *maxDisk })
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return app.Run(ctx, cfg, app.NewLogger(cfg, os.Stderr))
}
