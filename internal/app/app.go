// Package app wires clew together: it opens the store, starts the OTLP
// receivers and the query server, and shuts them down in reverse order.
package app

import (
	"context"
	"crypto/tls"
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
	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/jaeger"
	"github.com/clew-dev/clew/internal/jaegeringest"
	"github.com/clew-dev/clew/internal/logapi"
	"github.com/clew-dev/clew/internal/overrides"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/tempo"
	"github.com/clew-dev/clew/internal/tenant"
	"github.com/clew-dev/clew/internal/tlsconfig"
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
// server. The process is a list of components (see component), started in
// order and stopped in reverse.
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
	p := &process{cfg: cfg, log: log, reg: newRegistry()}
	comps, err := p.build(ctx)
	if err != nil {
		return err
	}
	errc := make(chan error, len(comps))
	comps.start(errc)
	p.ready.Store(true)
	log.Info("clew serving", "version", Version, "otlp_grpc", p.addr(config.KeyOTLPGRPC), "otlp_http", p.addr(config.KeyOTLPHTTP), "http", p.addr(config.KeyHTTP))

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("server stopped", "err", runErr)
	}
	p.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	runErr = errors.Join(runErr, comps.stop(sctx, log))
	log.Info("stopped")
	return runErr
}

// A component is one part of the running process: a server on one of the
// listeners, or a part that holds state (the store, the span metrics, the
// detector). Components are built in dependency order, then started in
// list order and stopped in reverse order, so that what takes spans stops
// first and what holds them is closed after, and the query server (with
// /metrics and /readyz) stays up until the end.
type component struct {
	name string
	// start starts background work and returns at once; nil: none.
	start func()
	// serve runs until the component is stopped; nil when it has nothing
	// to run (it was opened when built). Its error ends the process.
	serve func() error
	// stop ends the component within ctx's deadline; nil when there is
	// nothing to stop. An error of a component that holds data (holds) is
	// returned from Run; others are logged.
	stop  func(ctx context.Context) error
	holds bool
}

type components []component

// start starts the components in list order: start runs at once, serve in
// its own goroutine, whose end goes to errc (nil after a normal stop).
func (cs components) start(errc chan<- error) {
	for _, c := range cs {
		if c.start != nil {
			c.start()
		}
		if c.serve != nil {
			go func() { errc <- serveErr(c.name, c.serve()) }()
		}
	}
}

// stop stops the components in reverse order and returns the errors of
// those that hold data.
func (cs components) stop(ctx context.Context, log *slog.Logger) error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		if c.stop == nil {
			continue
		}
		if err := c.stop(ctx); err != nil {
			if c.holds {
				log.Error("close "+c.name, "err", err)
				errs = append(errs, fmt.Errorf("close %s: %w", c.name, err))
			} else {
				log.Warn(c.name+" shutdown", "err", err)
			}
		}
	}
	return errors.Join(errs...)
}

// process holds what the components of one clew share while they are
// built.
type process struct {
	cfg   config.Config
	log   *slog.Logger
	reg   *prometheus.Registry
	ready atomic.Bool
	lns   map[string]net.Listener // by the listener's YAML key; absent when off
	// tenant finds the tenant of every request on every listener.
	tenant *tenant.Resolver
	// overrides holds the per-tenant limits; nil when none is configured.
	overrides *overrides.Overrides

	// queryMux is the query port's mux, whose admin routes the admin
	// listener serves too.
	queryMux http.Handler

	tlsConfs   map[tlsconfig.Server]*tls.Config // by settings, shared by a group's listeners (tls.go)
	tlsMetrics *tlsconfig.Metrics
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_build_info", Help: "Always 1; labels say which clew is running.",
		ConstLabels: prometheus.Labels{"version": Version}})
	buildInfo.Set(1)
	reg.MustRegister(buildInfo)
	return reg
}

func (p *process) addr(key string) string {
	if ln := p.lns[key]; ln != nil {
		return ln.Addr().String()
	}
	return ""
}

// build opens the store and the span metrics, listens on every address
// (so that a busy port fails before anything runs) and builds the
// components in their start order. On an error, what was opened is closed.
func (p *process) build(ctx context.Context) (_ components, err error) {
	cfg, log := p.cfg, p.log
	var opened components // closed in reverse on an error
	defer func() {
		if err != nil {
			for _, ln := range p.lns {
				ln.Close()
			}
			_ = opened.stop(context.Background(), log)
		}
	}()

	// Per-tenant limits and overrides (the receivers, the searches, the
	// stores' retention and span metrics apply them), shown to each tenant
	// with its hits at GET /api/v1/limits.
	if cfg.Overrides.Enabled() {
		ov, err := overrides.New(cfg.Overrides.Defaults, cfg.Overrides.File, p.reg, overrides.Options{
			Interval: time.Duration(cfg.Overrides.ReloadInterval), Logger: log, MaxTenants: cfg.MaxTenants, DefaultTenant: cfg.Tenant})
		if err != nil {
			return nil, fmt.Errorf("overrides: %w", err)
		}
		p.overrides = ov
	}
	ts, err := openTenants(ctx, cfg, p.overrides, log, p.reg)
	if err != nil {
		return nil, err
	}
	// The stores, span metrics and detectors of every tenant, closed once
	// no more batches arrive (span metrics write the minutes still in
	// memory).
	tenantsC := component{name: "tenants", start: ts.start, stop: func(context.Context) error { return ts.close() }, holds: true}
	opened = append(opened, tenantsC)

	p.lns = map[string]net.Listener{}
	for _, l := range cfg.Listeners() {
		ln, err := p.listen(l) // with TLS where configured (tls.go)
		if err != nil {
			return nil, err
		}
		if ln != nil {
			p.lns[l.Key] = ln
		}
	}
	if err := p.listenAdmin(); err != nil { // admin.go
		return nil, err
	}

	core := ingest.NewCore(cfg.Ingest, cfg.Tenant, ts, log, p.reg) // every receiver goes through it
	tcfg := tenant.Config{Multi: cfg.Multitenancy, Single: cfg.Tenant, Default: cfg.DefaultTenant, CrossTenantReads: cfg.CrossTenantReads}
	var authC component // the key set's refresh; nothing to stop without auth
	if cfg.Auth.Enabled() {
		a, err := auth.New(cfg.Auth, log, p.reg)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		authC = component{name: "auth", stop: func(context.Context) error { return a.Close() }}
		if cfg.File != "" { // tokens follow the file (authreload.go)
			authC = p.reloadAuth(authC, a)
		}
		opened = append(opened, authC)
		tcfg.Auth = authorizer{a}
	}
	p.tenant = tenant.NewResolver(tcfg, p.reg)
	// Per-tenant limits: the receivers refuse a tenant over its rate and
	// its traces' span count, and cap its attribute values.
	if p.overrides != nil {
		core.SetLimiter(newIngestLimiter(p.overrides))
	}

	// Start order: authentication first (stopped last: every server checks
	// credentials until it stops), the query server (stopped after the
	// rest), then what holds data, and the receivers (stopped first).
	cs := components{authC, p.queryServer(ts), tenantsC}
	if p.lns[config.KeyAdminListen] != nil {
		cs = append(cs, p.adminServer(p.queryMux))
	}
	if p.overrides != nil {
		octx, stop := context.WithCancel(context.Background())
		cs = append(cs, component{name: "overrides", start: func() {
			go p.overrides.Run(octx)
			go reloadOnHUP(octx, log, p.overrides)
		}, stop: func(context.Context) error { stop(); return nil }})
	}
	cs = append(cs, p.receivers(core, ts)...)
	return cs, nil
}

// queryServer serves every query API, the web UI, /metrics, the health
// endpoints and pprof on the query port, with Jaeger's gRPC QueryService
// (api_v2 and api_v3) on the same listener.
func (p *process) queryServer(ts *tenants) component {
	cfg, log := p.cfg, p.log
	mux := http.NewServeMux()
	// Every query API shares the query limits (cfg.Query) and reads the
	// tenant of the request (ts dispatches by the context's tenant).
	napi := api.New(ts, ts, log)
	napi.SetLimits(cfg.Query)
	napi.Register(mux)
	api.NewAnalysis(ts, api.AnalysisConfig{}, log).Register(mux)
	lapi := logapi.New(ts, log)
	lapi.Register(mux)
	lapi.RegisterLoki(mux) // Grafana's Loki data source, under /loki
	// Span metrics and detection are per tenant: ts serves them from the
	// tenant's own stack.
	for _, route := range tenantRoutes {
		mux.Handle(route, ts)
	}
	japi := jaeger.New(ts, log)
	japi.SetLimits(cfg.Query)
	if cfg.SpanMetrics.Enabled {
		japi.SetDependencies(jaegerDeps{ts})
	}
	japi.Register(mux, "/jaeger")
	// gRPC requests go to queryGRPC, the rest to the mux.
	queryGRPC := japi.NewGRPCServer(p.tenant.GRPC(tenant.NeedRead)...)
	tapi := tempo.New(ts, log)
	tapi.SetLimits(cfg.Query)
	tapi.Register(mux, "/tempo")
	if p.overrides != nil {
		mux.Handle("GET /api/v1/limits", p.overrides.Handler())
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{Registry: p.reg, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.ready.Load() {
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
		_, _ = fmt.Fprintf(w, "clew %s\n\nWeb UI: /ui/\nNative query API: /api/v1/\nTempo API (Grafana Tempo data source): /tempo\nJaeger API (Jaeger UI, Grafana Jaeger data source): /jaeger\nLogs: /api/v1/logs; Loki API (Grafana Loki data source): /loki\nMetrics: /metrics\nSee docs/api.md.\n", Version)
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
	p.queryMux = mux // also served by the admin listener (admin.go)
	srv := newHTTPServer(withGRPC(queryGRPC, p.tenant.HTTP(queryNeed, p.closePublicAdmin(limitQueries(p.overrides, mux)))))
	ln := p.lns[config.KeyHTTP]
	return component{name: "query HTTP", serve: func() error { return srv.Serve(ln) }, stop: func(ctx context.Context) error {
		shutdownGRPC(ctx, queryGRPC)
		return srv.Shutdown(ctx)
	}}
}

// receivers are the span receivers on their listeners: OTLP gRPC and
// HTTP, and, where their addresses are set, Zipkin (ingest and its query
// API, on its own port as Zipkin serves it) and the Jaeger collector
// protocols (api_v2 gRPC and Thrift over HTTP); every one goes through
// the same receiver core.
func (p *process) receivers(core *ingest.Core, ts *tenants) components {
	recv := ingest.NewReceiver(core)
	recv.SetLogs(ts) // OTLP logs on the same ports
	write := func(*http.Request) (tenant.Need, bool) { return tenant.NeedWrite, true }
	cs := components{
		p.grpcServer("OTLP/gRPC", config.KeyOTLPGRPC, recv.NewGRPCServer(p.tenant.GRPC(tenant.NeedWrite)...)),
		p.httpServer("OTLP/HTTP", config.KeyOTLPHTTP, p.tenant.HTTP(write, recv.HTTPHandler())),
	}
	if p.lns[config.KeyZipkin] != nil {
		zmux := http.NewServeMux()
		zapi := zipkin.New(core, ts, p.log)
		if p.cfg.SpanMetrics.Enabled {
			zapi.SetDependencies(zipkinDeps{ts})
		}
		zapi.Register(zmux)
		cs = append(cs, p.httpServer("Zipkin", config.KeyZipkin, p.tenant.HTTP(zipkinNeed, zmux)))
	}
	if p.lns[config.KeyJaegerGRPC] != nil || p.lns[config.KeyJaegerHTTP] != nil {
		jrecv := jaegeringest.New(core)
		if p.lns[config.KeyJaegerGRPC] != nil {
			cs = append(cs, p.grpcServer("Jaeger gRPC", config.KeyJaegerGRPC, jrecv.NewGRPCServer(p.tenant.GRPC(tenant.NeedWrite)...)))
		}
		if p.lns[config.KeyJaegerHTTP] != nil {
			cs = append(cs, p.httpServer("Jaeger HTTP", config.KeyJaegerHTTP, p.tenant.HTTP(write, jrecv.HTTPHandler())))
		}
	}
	return cs
}

// tenantRoutes are the query routes served from each tenant's own stack
// (its span metrics and detector; see stack).
var tenantRoutes = []string{
	"GET /api/v1/servicegraph", "GET /api/v1/red",
	"GET /api/v1/baselines", "GET /api/v1/anomalies", "GET /api/v1/deploys",
}

// queryNeed classifies a request on the query port: the health checks,
// /metrics and the web UI's files are open to all (the UI's API calls are
// not), maintenance and profiles need the admin right, and every other
// route reads a tenant's data.
func queryNeed(r *http.Request) (tenant.Need, bool) {
	path := r.URL.Path
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/" || path == "/index.txt" ||
		path == strings.TrimSuffix(webui.Prefix, "/") || strings.HasPrefix(path, webui.Prefix):
		return 0, false
	case strings.HasPrefix(path, "/api/v1/admin/") || strings.HasPrefix(path, "/debug/pprof") ||
		(path == "/api/v1/limits" && r.URL.Query().Get("all") != ""):
		return tenant.NeedAdmin, true
	}
	return tenant.NeedRead, true
}

// zipkinNeed classifies a request on the Zipkin port: POST sends spans,
// the rest is Zipkin's query API.
func zipkinNeed(r *http.Request) (tenant.Need, bool) {
	if r.Method == http.MethodPost {
		return tenant.NeedWrite, true
	}
	return tenant.NeedRead, true
}

func (p *process) httpServer(name, key string, h http.Handler) component {
	srv, ln := newHTTPServer(h), p.lns[key]
	return component{name: name, start: p.logServing(name, ln), serve: func() error { return srv.Serve(ln) }, stop: srv.Shutdown}
}

func (p *process) grpcServer(name, key string, srv *grpc.Server) component {
	ln := p.lns[key]
	return component{name: name, start: p.logServing(name, ln), serve: func() error { return srv.Serve(ln) },
		stop: func(ctx context.Context) error { shutdownGRPC(ctx, srv); return nil }}
}

func (p *process) logServing(name string, ln net.Listener) func() {
	return func() { p.log.Info(name+" serving", "addr", ln.Addr().String()) }
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
