// Command clew is a distributed tracing system in one binary.
//
//	clew serve     ingest OTLP, store spans, answer queries
//	clew explain   explain why a trace is slow
//	clew anomalies list the anomalies a running clew found, with culprits
//	clew deploys   list new versions and their regression verdicts
//	clew loadgen   send synthetic traces over OTLP
//	clew demo      run an instrumented demo shop with injectable faults
//	clew token     make a token for authentication, or hash one
//	clew version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/clew-dev/clew/internal/app"
	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/demo"
	"github.com/clew-dev/clew/internal/loadgen"
	"github.com/clew-dev/clew/internal/querycli"
	"github.com/clew-dev/clew/internal/tlsconfig"
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
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) || errors.Is(err, auth.ErrUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

const usage = `clew is a distributed tracing system.

Usage:
  clew serve [flags]     ingest OTLP, store spans, answer queries (clew serve -h)
  clew query [flags] Q   run a TraceQL query on a running clew (clew query -h)
  clew explain ID        explain why a trace is slow, against similar traces (clew explain -h)
  clew anomalies         anomalies a running clew found, with ranked culprits (clew anomalies -h)
  clew deploys           new versions and their regression verdicts (clew deploys -h)
  clew loadgen [flags]   send synthetic traces over OTLP (clew loadgen -h)
  clew demo [flags]      run an instrumented shop with injectable faults (clew demo -h)
  clew token new|hash    make a token for authentication, or hash one from stdin
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
	case "query":
		return querycli.Main(ctx, args[1:], stdout, stderr)
	case "explain":
		return querycli.ExplainMain(ctx, args[1:], stdout, stderr)
	case "loadgen":
		return loadgen.Main(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "anomalies":
		return querycli.AnomaliesMain(ctx, args[1:], stdout, stderr)
	case "deploys":
		return querycli.DeploysMain(ctx, args[1:], stdout, stderr)
	case "token":
		return auth.TokenMain(args[1:], stdout, os.Stdin)
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
	build := serveFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg, err := build()
	if err != nil {
		return err
	}
	return app.Run(ctx, cfg, app.NewLogger(cfg, os.Stderr))
}

// serveFlags defines the flags of clew serve on fs and returns a function
// that, once fs is parsed, builds and validates the configuration they
// describe. clew demo calls it too, so its embedded clew takes the same
// flags, but without the TLS ones (withTLS false): there --tls-cert-file
// and --tls-key-file are the demo's client certificate for --otlp-endpoint.
func serveFlags(fs *flag.FlagSet, withTLS bool) func() (config.Config, error) {
	def := config.Default()
	cfgPath := fs.String("config", "", "YAML configuration file (flags given on the command line override it)")
	dataDir := fs.String("data-dir", def.DataDir, "directory for the write-ahead log and blocks")
	grpcAddr := fs.String("otlp-grpc-addr", def.OTLPGRPCAddr, "OTLP/gRPC listen address")
	httpOTLP := fs.String("otlp-http-addr", def.OTLPHTTPAddr, "OTLP/HTTP listen address")
	httpAddr := fs.String("http-addr", def.HTTPAddr, "query API, metrics and health listen address")
	zipkinAddr := fs.String("zipkin-addr", def.ZipkinAddr, "Zipkin v2 API (ingest and query) listen address; empty disables it")
	jaegerGRPCAddr := fs.String("jaeger-grpc-addr", def.JaegerGRPCAddr, "Jaeger api_v2 gRPC collector (PostSpans) listen address; empty disables it")
	jaegerHTTPAddr := fs.String("jaeger-http-addr", def.JaegerHTTPAddr, "Jaeger collector HTTP (POST /api/traces, Thrift) listen address; empty disables it")
	adminListen := fs.String("admin-listen", def.AdminListen, "serve the admin endpoints (/api/v1/admin/*) and /debug/pprof/* without credentials on this loopback address, e.g. 127.0.0.1:3201; empty disables it")
	adminRemote := fs.Bool("admin-listen-allow-remote", def.AdminListenAllowRemote, "let --admin-listen bind a non-loopback address (whoever reaches it may flush, compact and read profiles)")
	logLevel := fs.String("log-level", def.LogLevel, "debug, info, warn or error")
	logFormat := fs.String("log-format", def.LogFormat, "text or json")
	walSync := fs.String("wal-sync", string(def.Store.WALSync), "write-ahead log durability: group (fsync, group-committed), always (fsync each write) or none")
	retention := fs.Duration("retention", def.Store.Retention, "drop blocks older than this (0 keeps forever)")
	maxDisk := fs.Int64("max-disk-bytes", def.Store.MaxDiskBytes, "drop the oldest blocks beyond this many bytes on disk (0: no limit)")
	multi := fs.Bool("multitenancy", def.Multitenancy, "take each request's tenant from its X-Scope-OrgID header and keep tenants apart")
	defTenant := fs.String("default-tenant", def.DefaultTenant, "with --multitenancy: the tenant of requests that name none (empty refuses them)")
	var tlsCert, tlsKey, tlsClientCA *string
	if withTLS {
		tlsCert = fs.String("tls-cert-file", "", "serve TLS on every listener with this PEM certificate `file` (reloaded when it changes; tls.ingest.cert_file and tls.query.cert_file)")
		tlsKey = fs.String("tls-key-file", "", "the PEM private key `file` of --tls-cert-file")
		tlsClientCA = fs.String("tls-client-ca-file", "", "verify client certificates on the ingest listeners with the CAs in this PEM `file` (mTLS; tls.ingest.client_ca_file)")
	}
	return func() (config.Config, error) {
		cfg := def
		if *cfgPath != "" {
			var err error
			if cfg, err = config.Load(*cfgPath); err != nil {
				return cfg, err
			}
			cfg.File = *cfgPath // clew serve reloads its auth section
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
		override("zipkin-addr", func() { cfg.ZipkinAddr = *zipkinAddr })
		override("jaeger-grpc-addr", func() { cfg.JaegerGRPCAddr = *jaegerGRPCAddr })
		override("jaeger-http-addr", func() { cfg.JaegerHTTPAddr = *jaegerHTTPAddr })
		override("admin-listen", func() { cfg.AdminListen = *adminListen })
		override("admin-listen-allow-remote", func() { cfg.AdminListenAllowRemote = *adminRemote })
		override("log-level", func() { cfg.LogLevel = *logLevel })
		override("log-format", func() { cfg.LogFormat = *logFormat })
		override("wal-sync", func() { cfg.Store.WALSync = wal.SyncPolicy(*walSync) })
		override("retention", func() { cfg.Store.Retention = *retention })
		override("max-disk-bytes", func() { cfg.Store.MaxDiskBytes = *maxDisk })
		override("multitenancy", func() { cfg.Multitenancy = *multi })
		override("default-tenant", func() { cfg.DefaultTenant = *defTenant })
		if withTLS {
			// Unlike the others, unset TLS flags leave the file's settings.
			if set["tls-cert-file"] {
				cfg.TLS.Ingest.CertFile, cfg.TLS.Query.CertFile = *tlsCert, *tlsCert
			}
			if set["tls-key-file"] {
				cfg.TLS.Ingest.KeyFile, cfg.TLS.Query.KeyFile = *tlsKey, *tlsKey
			}
			if set["tls-client-ca-file"] {
				cfg.TLS.Ingest.ClientCAFile = *tlsClientCA
			}
		}
		if err := cfg.Validate(); err != nil {
			return cfg, fmt.Errorf("invalid configuration:\n%w", err)
		}
		return cfg, nil
	}
}

// runDemo is clew demo: the instrumented shop of internal/demo, exporting
// to an embedded clew (started with the serve flags) or, with
// --otlp-endpoint, to another receiver.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	build := serveFlags(fs, false)
	var conn tlsconfig.ClientFlags
	conn.Register(fs, true)
	ddef := demo.DefaultConfig()
	scenarios := fs.String("scenario", "", "fault scenarios to enable at start, comma-separated: "+strings.Join(demo.ScenarioNames(), ", "))
	rate := fs.Float64("rate", ddef.Rate, "requests per second the traffic driver sends to the shop")
	controlAddr := fs.String("control-addr", ddef.ControlAddr, "listen address of the demo control API (scenarios and ground truth)")
	endpoint := fs.String("otlp-endpoint", "", "export to this OTLP/gRPC host:port instead of starting an embedded clew")
	truthPath := fs.String("ground-truth", "", "append ground-truth JSON lines to this file (default <data-dir>/demo/ground-truth.jsonl)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	seed := fs.Uint64("seed", 0, "seed of the demo's random traffic and faults, for runs alike across seeds (0: random)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: demo takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg, err := build()
	if err != nil {
		return err
	}
	dcfg := ddef
	dcfg.Rate = *rate
	dcfg.ControlAddr = *controlAddr
	dcfg.Seed = *seed
	if dcfg.Scenarios, err = demo.ParseScenarios(*scenarios); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	embedded := *endpoint == ""
	dcfg.Endpoint = *endpoint
	if err := conn.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	switch {
	case embedded && conn.Set():
		return fmt.Errorf("%w: --tls, --tls-*, --token and --tenant apply to --otlp-endpoint (the embedded clew is reached in plain text)", errUsage)
	case embedded && (cfg.TLS.Ingest.Enabled() || cfg.TLS.Query.Enabled()):
		return fmt.Errorf("%w: the embedded clew of clew demo runs without TLS: remove tls: from the configuration file, or run clew serve and point --otlp-endpoint at it", errUsage)
	case !embedded:
		if dcfg.TLS, err = conn.TLSConfig(); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		dcfg.Headers = conn.Headers()
	}
	if embedded {
		if dcfg.Endpoint, err = loopbackAddr(cfg.OTLPGRPCAddr); err != nil {
			return fmt.Errorf("%w: --otlp-grpc-addr: %w", errUsage, err)
		}
		if _, err := loopbackAddr(cfg.HTTPAddr); err != nil {
			return fmt.Errorf("%w: --http-addr: %w", errUsage, err)
		}
		// Fail fast on a busy port: otherwise the readiness check below
		// could be answered by whichever clew already holds it.
		for _, l := range cfg.Listeners() {
			ln, err := app.Listen(l)
			if err != nil {
				return fmt.Errorf("embedded clew: %w (another clew running? use --otlp-endpoint to export to it)", err)
			}
			if ln != nil {
				ln.Close()
			}
		}
	}
	dcfg.GroundTruthPath = *truthPath
	if dcfg.GroundTruthPath == "" {
		dcfg.GroundTruthPath = filepath.Join(cfg.DataDir, "demo", "ground-truth.jsonl")
	}
	if err := dcfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *duration < 0 {
		return fmt.Errorf("%w: --duration must not be negative", errUsage)
	}
	log := app.NewLogger(cfg, os.Stderr)
	dcfg.Logger = log
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	// The embedded clew outlives the shop, so that it receives the spans
	// the services flush when they stop.
	appCtx, stopApp := context.WithCancel(context.Background())
	defer stopApp()
	appDone := make(chan error, 1)
	queryURL := ""
	if embedded {
		go func() { appDone <- app.Run(appCtx, cfg, log) }()
		host, _ := loopbackAddr(cfg.HTTPAddr)
		queryURL = "http://" + host
		if err := waitReady(ctx, queryURL+"/readyz", appDone); err != nil {
			return err
		}
	}
	d, err := demo.Start(ctx, dcfg)
	if err != nil {
		stopApp()
		if embedded {
			<-appDone
		}
		return err
	}
	control := "http://" + d.ControlAddr()
	fmt.Fprintf(stdout, "clew demo: %d services, %g requests/s, exporting to %s\n", len(d.Services()), dcfg.Rate, dcfg.Endpoint)
	if embedded {
		fmt.Fprintf(stdout, "  open %s/api/v1/services\n", queryURL)
		fmt.Fprintf(stdout, "  errors: %s/api/v1/search?status=error&since=15m\n", queryURL)
	}
	fmt.Fprintf(stdout, "  shop:         %s/api/products\n", d.GatewayURL())
	fmt.Fprintf(stdout, "  scenarios:    %s/scenarios (curl -X POST '%s/scenarios/%s?enable=true')\n", control, control, demo.ScenarioNames()[0])
	fmt.Fprintf(stdout, "  ground truth: %s/ground-truth and %s\n", control, dcfg.GroundTruthPath)
	if len(dcfg.Scenarios) > 0 {
		fmt.Fprintf(stdout, "  enabled:      %s\n", strings.Join(dcfg.Scenarios, ", "))
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-appDone:
		if runErr == nil {
			runErr = errors.New("embedded clew stopped")
		}
		embedded = false // already stopped
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Close(sctx); err != nil {
		log.Warn("demo shutdown", "err", err)
	}
	if embedded {
		stopApp()
		runErr = <-appDone
	}
	return runErr
}

// loopbackAddr turns a listen address into one to dial on this machine:
// an empty or unspecified host becomes 127.0.0.1. A port of 0 is refused:
// the demo could not know which port the listener got.
func loopbackAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%q: want host:port", listen)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("%q: clew demo needs a fixed port", listen)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// waitReady polls url until it answers 200, the embedded clew fails, or
// 30 seconds pass.
func waitReady(ctx context.Context, url string, appDone <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-appDone:
			if err == nil {
				err = errors.New("embedded clew stopped before it was ready")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded clew not ready at %s after 30s", url)
		}
	}
}
