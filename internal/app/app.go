// Package app wires clew together: it opens the store, starts the OTLP
// receivers and the query server, and shuts them down in reverse order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/insight"
	"github.com/clew-dev/clew/internal/jaeger"
	"github.com/clew-dev/clew/internal/jaegeringest"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/tempo"
	"github.com/clew-dev/clew/internal/webui"
	"github.com/clew-dev/clew/internal/zipkin"
)

// Version is set at build time with -ldflags "-X .../app.Version=v1.2.3".
var Version = "dev"

// NewLogger returns the slog logger the configuration asks for.
func NewLogger(cfg config.Config, w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// appender adapts the store to the ingest package's contract; a batch the
// store accepted (durable) is then observed by the span metrics (nil when
// disabled).
type appender struct {
	db *store.DB
	sm *spanmetrics.Metrics
}

func (a appender) Append(ctx context.Context, _ string, rec []byte, b *span.Batch) error {
	err := a.db.Append(ctx, rec, b)
	if errors.Is(err, store.ErrOverloaded) || errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("%w: %w", ingest.ErrRetryable, err)
	}
	if err == nil {
		a.sm.Observe(b)
	}
	return err
}

// lockDataDir takes an exclusive lock on the data directory so that two
// processes never share one.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data directory %s: another clew is using it (%w)", dir, err)
	}
	return f, nil
}

// Run starts clew and blocks until ctx is cancelled, then shuts down
// gracefully: it stops taking new spans, finishes in-flight requests (whose
// spans are durable once acknowledged), closes the store and last the query
// server.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()

	if os.Getenv("GOMEMLIMIT") == "" {
		if lim := cfg.MemoryLimit(); lim > 0 {
			debug.SetMemoryLimit(lim)
			log.Info("memory limit set", "bytes", lim)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_build_info", Help: "Always 1; labels say which clew is running.",
		ConstLabels: prometheus.Labels{"version": Version}})
	buildInfo.Set(1)
	reg.MustRegister(buildInfo)

	start := time.Now()
	db, err := openStore(ctx, cfg.Store, cfg.Tenant, cfg.DataDir, log, reg)
	if err != nil {
		return err
	}
	log.Info("store open", "data_dir", cfg.DataDir, "took", time.Since(start))

	// Span metrics and the service graph, with their history beside the
	// blocks and the same retention.
	var sm *spanmetrics.Metrics
	if cfg.SpanMetrics.Enabled {
		sm, err = spanmetrics.Open(cfg.SpanMetrics, spanmetrics.Options{
			Dir:        filepath.Join(cfg.DataDir, "spanmetrics", cfg.Tenant),
			Retention:  cfg.Store.Retention,
			Logger:     log,
			Registerer: reg,
		})
		if err != nil {
			db.Close()
			return fmt.Errorf("open span metrics: %w", err)
		}
		defer sm.Close() // idempotent; the shutdown below closes it first
	}

	core := ingest.NewCore(cfg.Ingest, cfg.Tenant, appender{db, sm}, log, reg) // every receiver goes through it
	recv := ingest.NewReceiver(core)
	var ready atomic.Bool

	// Listen on everything first so that a busy port fails fast.
	lns := map[string]net.Listener{}
	for _, l := range cfg.Listeners() {
		ln, err := Listen(l)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			db.Close()
			return err
		}
		if ln != nil {
			lns[l.Key] = ln
		}
	}
	lnGRPC, lnHTTP, lnQuery := lns[config.KeyOTLPGRPC], lns[config.KeyOTLPHTTP], lns[config.KeyHTTP]
	lnZipkin, lnJaegerGRPC, lnJaegerHTTP := lns[config.KeyZipkin], lns[config.KeyJaegerGRPC], lns[config.KeyJaegerHTTP]

	grpcSrv := recv.NewGRPCServer()
	otlpHTTP := newHTTPServer(recv.HTTPHandler())

	mux := http.NewServeMux()
	// Every query API shares the query limits (cfg.Query).
	napi := api.New(db, db, log)
	napi.SetLimits(cfg.Query)
	napi.Register(mux)
	insight.New(db, insight.Config{}, log).Register(mux)
	spanmetrics.NewHandler(sm, log).Register(mux)
	// Baselines, anomalies and deployments, learned from the span metrics'
	// history and the stored traces; off without span metrics.
	var det *detect.Detector
	if sm != nil && cfg.Detect.Enabled {
		det = detect.New(cfg.Detect, sm, db, detect.Options{Logger: log})
		det.Start()
	}
	detect.NewHandler(det).Register(mux)
	japi := jaeger.New(db, log)
	japi.SetLimits(cfg.Query)
	if sm != nil {
		japi.SetDependencies(jaegerDeps{sm})
	}
	japi.Register(mux, "/jaeger")
	// Jaeger's gRPC QueryService (api_v2 and api_v3) on the same port:
	// gRPC requests go to queryGRPC, the rest to the mux.
	queryGRPC := japi.NewGRPCServer()
	tapi := tempo.New(db, log)
	tapi.SetLimits(cfg.Query)
	tapi.Register(mux, "/tempo")
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	index := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "clew %s\n\nWeb UI: /ui/\nNative query API: /api/v1/\nTempo API (Grafana Tempo data source): /tempo\nJaeger API (Jaeger UI, Grafana Jaeger data source): /jaeger\nMetrics: /metrics\nSee docs/api.md.\n", Version)
	}
	// The web UI under /ui/; / leads to it once it is built (make ui),
	// and the plain-text index stays at /index.txt.
	ui := webui.New()
	ui.Register(mux)
	mux.HandleFunc("GET /index.txt", index)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if ui.Built() {
			http.Redirect(w, r, webui.Prefix, http.StatusFound)
			return
		}
		index(w, r)
	})
	querySrv := newHTTPServer(withGRPC(queryGRPC, mux))
	// The Zipkin v2 API, ingest and query, on its own port as Zipkin
	// serves it; posted spans go through the same appender as OTLP.
	var zipkinSrv *http.Server
	if lnZipkin != nil {
		zmux := http.NewServeMux()
		zapi := zipkin.New(core, db, log)
		if sm != nil {
			zapi.SetDependencies(zipkinDeps{sm})
		}
		zapi.Register(zmux)
		zipkinSrv = newHTTPServer(zmux)
	}
	// The Jaeger collector protocols (api_v2 gRPC and Thrift over HTTP),
	// each on its own port as a Jaeger collector serves them; spans go
	// through the same appender as OTLP.
	var jaegerGRPCSrv *grpc.Server
	var jaegerHTTPSrv *http.Server
	if lnJaegerGRPC != nil || lnJaegerHTTP != nil {
		jrecv := jaegeringest.New(core)
		if lnJaegerGRPC != nil {
			jaegerGRPCSrv = jrecv.NewGRPCServer()
		}
		if lnJaegerHTTP != nil {
			jaegerHTTPSrv = newHTTPServer(jrecv.HTTPHandler())
		}
	}

	errc := make(chan error, 6)
	go func() { errc <- serveErr("OTLP/gRPC", grpcSrv.Serve(lnGRPC)) }()
	go func() { errc <- serveErr("OTLP/HTTP", otlpHTTP.Serve(lnHTTP)) }()
	go func() { errc <- serveErr("query HTTP", querySrv.Serve(lnQuery)) }()
	if zipkinSrv != nil {
		go func() { errc <- serveErr("Zipkin", zipkinSrv.Serve(lnZipkin)) }()
		log.Info("zipkin serving", "zipkin", lnZipkin.Addr().String())
	}
	if jaegerGRPCSrv != nil {
		go func() { errc <- serveErr("Jaeger gRPC", jaegerGRPCSrv.Serve(lnJaegerGRPC)) }()
		log.Info("jaeger gRPC collector serving", "jaeger_grpc", lnJaegerGRPC.Addr().String())
	}
	if jaegerHTTPSrv != nil {
		go func() { errc <- serveErr("Jaeger HTTP", jaegerHTTPSrv.Serve(lnJaegerHTTP)) }()
		log.Info("jaeger HTTP collector serving", "jaeger_http", lnJaegerHTTP.Addr().String())
	}
	ready.Store(true)
	log.Info("clew serving", "version", Version, "otlp_grpc", lnGRPC.Addr().String(), "otlp_http", lnHTTP.Addr().String(), "http", lnQuery.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("server stopped", "err", runErr)
	}
	ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	shutdownGRPC(sctx, grpcSrv)
	if err := otlpHTTP.Shutdown(sctx); err != nil {
		log.Warn("OTLP/HTTP shutdown", "err", err)
	}
	if zipkinSrv != nil {
		if err := zipkinSrv.Shutdown(sctx); err != nil {
			log.Warn("Zipkin shutdown", "err", err)
		}
	}
	if jaegerGRPCSrv != nil {
		shutdownGRPC(sctx, jaegerGRPCSrv)
	}
	if jaegerHTTPSrv != nil {
		if err := jaegerHTTPSrv.Shutdown(sctx); err != nil {
			log.Warn("Jaeger HTTP shutdown", "err", err)
		}
	}
	if det != nil {
		_ = det.Close() // it reads the store and the span metrics
	}
	if err := db.Close(); err != nil {
		log.Error("close store", "err", err)
		runErr = errors.Join(runErr, err)
	}
	if sm != nil {
		// No more batches arrive: write the minutes still in memory.
		if err := sm.Close(); err != nil {
			log.Error("close span metrics", "err", err)
			runErr = errors.Join(runErr, err)
		}
	}
	shutdownGRPC(sctx, queryGRPC)
	if err := querySrv.Shutdown(sctx); err != nil {
		log.Warn("query server shutdown", "err", err)
	}
	log.Info("stopped")
	return runErr
}

func serveErr(name string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("%s server: %w", name, err)
}

// newHTTPServer serves HTTP/1.1 and HTTP/2 without TLS (h2c, as Grafana's
// gRPC clients and OTLP senders with prior knowledge speak it).
func newHTTPServer(h http.Handler) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
	}
}

// withGRPC sends gRPC requests (HTTP/2 with an application/grpc content
// type) to g and every other request to h, so that one port serves both.
func withGRPC(g *grpc.Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			g.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func shutdownGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
	}
}

// Listen opens the listener l describes; an optional listener that is
// off (empty address) gives nil and no error. When the address cannot be
// bound, the error names the listener, the address, the flag and the YAML
// key that move it and, for an optional listener, how to turn it off: the
// message to act on when a second clew on one machine clashes with the
// first on a default port.
func Listen(l config.Listener) (net.Listener, error) {
	if l.Addr == "" && l.Optional {
		return nil, nil
	}
	ln, err := net.Listen("tcp", l.Addr)
	if err == nil {
		return ln, nil
	}
	var hint strings.Builder
	if errors.Is(err, syscall.EADDRINUSE) {
		hint.WriteString(" (another process, perhaps another clew, holds it)")
	}
	fmt.Fprintf(&hint, "; move it with %s HOST:PORT or %s in the config file", l.Flag, l.Key)
	if l.Optional {
		fmt.Fprintf(&hint, ", or turn it off with %s '' (%s: \"\")", l.Flag, l.Key)
	}
	return nil, fmt.Errorf("%s cannot listen on %s: %w%s", l.Name, l.Addr, err, hint.String())
}
