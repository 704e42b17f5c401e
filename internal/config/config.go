// Package config is the shape of clew's configuration file: it gathers each
// component's Config with its defaults, reads YAML strictly (unknown keys
// are errors) and validates the whole with messages that say what to fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/overrides"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/storeconfig"
	"github.com/clew-dev/clew/internal/tlsconfig"
)

// Config is clew's whole configuration.
type Config struct {
	// DataDir holds the write-ahead log and the blocks.
	DataDir string `yaml:"data_dir"`
	// OTLPGRPCAddr is the OTLP/gRPC listen address.
	OTLPGRPCAddr string `yaml:"otlp_grpc_addr"`
	// OTLPHTTPAddr is the OTLP/HTTP listen address.
	OTLPHTTPAddr string `yaml:"otlp_http_addr"`
	// HTTPAddr serves every query API, /metrics and the health checks.
	HTTPAddr string `yaml:"http_addr"`
	// ZipkinAddr serves the Zipkin v2 API (ingest and query), as a Zipkin
	// server does on 9411. Empty disables it.
	ZipkinAddr string `yaml:"zipkin_addr"`
	// JaegerGRPCAddr serves Jaeger's api_v2 gRPC collector service
	// (PostSpans), as a Jaeger collector does on 14250. Empty disables it.
	JaegerGRPCAddr string `yaml:"jaeger_grpc_addr"`
	// JaegerHTTPAddr serves Jaeger's collector HTTP endpoint (POST
	// /api/traces, Thrift), as a Jaeger collector does on 14268. Empty
	// disables it.
	JaegerHTTPAddr string `yaml:"jaeger_http_addr"`
	// AdminListen, when set, serves the admin endpoints (/api/v1/admin/*)
	// and /debug/pprof/* on this address without credentials: it must be
	// a loopback address (127.0.0.1:3201, [::1]:3201, localhost:3201)
	// unless AdminListenAllowRemote. Empty (the default): off.
	AdminListen string `yaml:"admin_listen"`
	// AdminListenAllowRemote lets AdminListen be a non-loopback address,
	// for an operator who guards it otherwise (a firewall, a pod network
	// no one else reaches): everyone who reaches it may flush, compact,
	// drop data by retention and read profiles.
	AdminListenAllowRemote bool `yaml:"admin_listen_allow_remote"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// Tenant is the tenant every request is stored under when
	// multitenancy is off.
	Tenant string `yaml:"tenant"`
	// Multitenancy takes each request's tenant from its X-Scope-OrgID
	// header (gRPC: x-scope-orgid metadata) and keeps every tenant's data
	// apart; a request without one is refused unless DefaultTenant is set.
	Multitenancy bool `yaml:"multitenancy"`
	// DefaultTenant is the tenant of a request that names none when
	// multitenancy is on; empty refuses such requests (401).
	DefaultTenant string `yaml:"default_tenant"`
	// CrossTenantReads lets a read name several tenants in X-Scope-OrgID
	// ("a|b", as Tempo takes them) when Multitenancy is on; with auth, the
	// credentials must be allowed to read every one.
	CrossTenantReads bool `yaml:"cross_tenant_reads"`
	// MaxTenants bounds the tenants one clew holds (each has its own
	// store, span metrics and detector); a request for a new tenant beyond
	// it is refused as overloaded. 0 is unbounded.
	MaxTenants int `yaml:"max_tenants"`
	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// MemoryLimitBytes is the Go runtime's soft memory limit: the garbage
	// collector works harder as the heap nears it. 0 derives it from the
	// store's budgets (see MemoryLimit); -1 sets none. A GOMEMLIMIT
	// environment variable takes precedence over both.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`

	Ingest ingest.Config      `yaml:"ingest"`
	Store  storeconfig.Config `yaml:"store"`
	// Query bounds each request of the query APIs (native, Tempo, Jaeger).
	Query httpapi.Limits `yaml:"query"`
	// SpanMetrics configures RED metrics, the service graph and their
	// history (kept as long as store.retention keeps traces).
	SpanMetrics spanmetrics.Config `yaml:"spanmetrics"`
	// Detect configures baselines, anomaly and deployment detection (on
	// the span metrics' history).
	Detect detect.Config `yaml:"detect"`
	// TLS puts TLS on the listeners; off (plain text) by default.
	TLS TLS `yaml:"tls"`
	// Auth, when it lists tokens or a JWT key set, requires credentials on
	// every receiver and query API (docs/operations.md, Authentication).
	Auth auth.Config `yaml:"auth"`
	// Overrides are the per-tenant limits: Defaults for every tenant and a
	// File of per-tenant values, reloaded without a restart
	// (docs/operations.md, Per-tenant limits).
	Overrides Overrides `yaml:"overrides"`

	// File is the configuration file these settings were read from (set
	// by clew serve's --config; not a YAML key), "" when none: clew serve
	// reads its auth section again for changes (auth.reload_interval,
	// SIGHUP).
	File string `yaml:"-"`
}

// TLS is the TLS of each group of listeners.
type TLS struct {
	// Ingest is the TLS of every receiver listener: OTLP/gRPC, OTLP/HTTP,
	// Zipkin, Jaeger gRPC and Jaeger HTTP. It may verify client
	// certificates (mTLS).
	Ingest tlsconfig.Server `yaml:"ingest"`
	// Query is the TLS of the query port (every query API, gRPC and HTTP,
	// the web UI, /metrics and the health checks).
	Query tlsconfig.Server `yaml:"query"`
}

// ListenerTLS returns the TLS of the listener with the given key (one of
// the Key constants): the query settings for http_addr, the ingest
// settings for the others.
func (c *Config) ListenerTLS(key string) tlsconfig.Server {
	if key == KeyHTTP {
		return c.TLS.Query
	}
	return c.TLS.Ingest
}

// Overrides configures the per-tenant limits.
type Overrides struct {
	// File is the overrides file (Tempo's runtime-overrides shape); empty:
	// none.
	File string `yaml:"file"`
	// Defaults apply to every tenant the file does not override.
	Defaults overrides.Limits `yaml:"defaults"`
	// ReloadInterval is how often the file is checked for changes.
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Enabled reports whether any per-tenant limit is configured.
func (o Overrides) Enabled() bool {
	return o.File != "" || !reflect.DeepEqual(o.Defaults, overrides.Limits{})
}

// Duration is a time.Duration that reads "30s" from YAML.
type Duration = yamlDuration

// Default returns the configuration clew runs with when given none.
func Default() Config {
	return Config{
		DataDir:         "./clew-data",
		OTLPGRPCAddr:    ":4317",
		OTLPHTTPAddr:    ":4318",
		HTTPAddr:        ":3200",
		ZipkinAddr:      ":9411",
		JaegerGRPCAddr:  ":14250",
		JaegerHTTPAddr:  ":14268",
		LogLevel:        "info",
		LogFormat:       "text",
		Tenant:          "single-tenant",
		MaxTenants:      1000,
		ShutdownTimeout: yamlDuration(30e9),
		Ingest:          ingest.DefaultConfig(),
		Store:           storeconfig.DefaultConfig(),
		Query:           httpapi.DefaultLimits(),
		SpanMetrics:     spanmetrics.DefaultConfig(),
		Detect:          detect.DefaultConfig(),
	}
}

// Load reads a YAML file over the defaults. Unknown keys are errors.
func Load(path string) (Config, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("parse config %s: %w", path, err)
	}
	return cfg, nil
}

// MemoryLimit returns the soft memory limit to set, or -1 for none. The
// automatic limit is twice what the store's budgets hold (the growing head,
// the sealed heads waiting to be written, the page cache) plus 32 MiB for
// requests in flight, compaction and the rest of the process. It is a
// backstop, not a target: set tighter, the collector runs far more often
// when spans are large (measured: 5x the CPU per span at 48 MiB on the
// realistic load).
func (c *Config) MemoryLimit() int64 {
	switch {
	case c.MemoryLimitBytes > 0:
		return c.MemoryLimitBytes
	case c.MemoryLimitBytes < 0:
		return -1
	}
	return 2*(int64(c.Store.MaxPendingFlushes+1)*c.Store.MaxHeadBytes+c.Store.PageCacheBytes) + 32<<20
}

// Validate checks every setting and reports all problems at once.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir (--data-dir) must not be empty"))
	}
	for _, a := range []struct{ name, flag, v string }{
		{"otlp_grpc_addr", "--otlp-grpc-addr", c.OTLPGRPCAddr},
		{"otlp_http_addr", "--otlp-http-addr", c.OTLPHTTPAddr},
		{"http_addr", "--http-addr", c.HTTPAddr},
	} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s) %q is not host:port (e.g. :3200 or 127.0.0.1:3200): %v", a.name, a.flag, a.v, err))
		}
	}
	if c.OTLPGRPCAddr == c.OTLPHTTPAddr || c.OTLPGRPCAddr == c.HTTPAddr || c.OTLPHTTPAddr == c.HTTPAddr {
		errs = append(errs, fmt.Errorf("otlp_grpc_addr, otlp_http_addr and http_addr must differ (got %q, %q, %q)", c.OTLPGRPCAddr, c.OTLPHTTPAddr, c.HTTPAddr))
	}
	if c.ZipkinAddr != "" {
		if _, _, err := net.SplitHostPort(c.ZipkinAddr); err != nil {
			errs = append(errs, fmt.Errorf("zipkin_addr (--zipkin-addr) %q is not host:port (e.g. :9411), or empty to disable: %v", c.ZipkinAddr, err))
		} else if c.ZipkinAddr == c.OTLPGRPCAddr || c.ZipkinAddr == c.OTLPHTTPAddr || c.ZipkinAddr == c.HTTPAddr {
			errs = append(errs, fmt.Errorf("zipkin_addr %q must differ from otlp_grpc_addr, otlp_http_addr and http_addr", c.ZipkinAddr))
		}
	}
	for _, a := range []struct{ name, flag, v, eg string }{
		{"jaeger_grpc_addr", "--jaeger-grpc-addr", c.JaegerGRPCAddr, ":14250"},
		{"jaeger_http_addr", "--jaeger-http-addr", c.JaegerHTTPAddr, ":14268"},
	} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s) %q is not host:port (e.g. %s), or empty to disable: %v", a.name, a.flag, a.v, a.eg, err))
		} else if a.v == c.OTLPGRPCAddr || a.v == c.OTLPHTTPAddr || a.v == c.HTTPAddr || a.v == c.ZipkinAddr {
			errs = append(errs, fmt.Errorf("%s %q must differ from otlp_grpc_addr, otlp_http_addr, http_addr and zipkin_addr", a.name, a.v))
		}
	}
	errs = append(errs, c.validateAdminListen()...)
	if c.JaegerGRPCAddr != "" && c.JaegerGRPCAddr == c.JaegerHTTPAddr {
		errs = append(errs, fmt.Errorf("jaeger_grpc_addr and jaeger_http_addr must differ (both %q)", c.JaegerGRPCAddr))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level (--log-level) %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format (--log-format) %q: want text or json", c.LogFormat))
	}
	if err := storage.ValidateTenant(c.Tenant); err != nil {
		errs = append(errs, fmt.Errorf("tenant: %w", err))
	}
	if c.DefaultTenant != "" {
		if err := storage.ValidateTenant(c.DefaultTenant); err != nil {
			errs = append(errs, fmt.Errorf("default_tenant (--default-tenant): %w", err))
		} else if !c.Multitenancy {
			errs = append(errs, errors.New("default_tenant (--default-tenant) is for multitenancy: set multitenancy: true (--multitenancy), or use tenant without it"))
		}
	}
	if c.CrossTenantReads && !c.Multitenancy {
		errs = append(errs, errors.New("cross_tenant_reads is for multitenancy: set multitenancy: true (--multitenancy)"))
	}
	if err := c.Overrides.Defaults.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("overrides.defaults: %w", err))
	}
	if c.Overrides.ReloadInterval < 0 {
		errs = append(errs, errors.New("overrides.reload_interval must not be negative"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("auth: %w", err))
	}
	if c.MaxTenants < 0 {
		errs = append(errs, fmt.Errorf("max_tenants must not be negative, got %d", c.MaxTenants))
	}
	if c.MemoryLimitBytes < -1 || (c.MemoryLimitBytes > 0 && c.MemoryLimitBytes < 16<<20) {
		errs = append(errs, fmt.Errorf("memory_limit_bytes must be -1 (none), 0 (automatic) or at least 16 MiB, got %d", c.MemoryLimitBytes))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown_timeout must be positive"))
	}
	if c.Ingest.MaxRequestBytes <= 0 || c.Ingest.MaxDecompressedBytes < c.Ingest.MaxRequestBytes {
		errs = append(errs, fmt.Errorf("ingest.max_request_bytes must be positive and at most ingest.max_decompressed_bytes (got %d and %d)", c.Ingest.MaxRequestBytes, c.Ingest.MaxDecompressedBytes))
	}
	if c.Ingest.MaxInflightBytes < c.Ingest.MaxDecompressedBytes {
		errs = append(errs, fmt.Errorf("ingest.max_inflight_bytes (%d) must be at least ingest.max_decompressed_bytes (%d)", c.Ingest.MaxInflightBytes, c.Ingest.MaxDecompressedBytes))
	}
	if c.Ingest.RetryAfter <= 0 {
		errs = append(errs, errors.New("ingest.retry_after must be positive"))
	}
	if err := c.Store.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	if err := c.SpanMetrics.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("spanmetrics: %w", err))
	}
	if err := c.Detect.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("detect: %w", err))
	}
	if err := c.Query.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.TLS.validate()...)
	return errors.Join(errs...)
}

// validateAdminListen checks admin_listen: host:port, another address than
// the other listeners', and loopback unless admin_listen_allow_remote.
func (c *Config) validateAdminListen() []error {
	if c.AdminListen == "" {
		if c.AdminListenAllowRemote {
			return []error{errors.New("admin_listen_allow_remote (--admin-listen-allow-remote) is set but admin_listen (--admin-listen) is empty")}
		}
		return nil
	}
	host, _, err := net.SplitHostPort(c.AdminListen)
	if err != nil {
		return []error{fmt.Errorf("admin_listen (--admin-listen) %q is not host:port (e.g. 127.0.0.1:3201), or empty to disable: %v", c.AdminListen, err)}
	}
	for _, other := range []string{c.OTLPGRPCAddr, c.OTLPHTTPAddr, c.HTTPAddr, c.ZipkinAddr, c.JaegerGRPCAddr, c.JaegerHTTPAddr} {
		if other == c.AdminListen {
			return []error{fmt.Errorf("admin_listen %q must differ from the other listen addresses", c.AdminListen)}
		}
	}
	if !c.AdminListenAllowRemote && !IsLoopback(host) {
		return []error{fmt.Errorf("admin_listen (--admin-listen) %q is not a loopback address: it serves flush, compact, retention and /debug/pprof without credentials, so it binds to 127.0.0.1, [::1] or localhost; to bind it elsewhere on purpose, also set admin_listen_allow_remote: true (--admin-listen-allow-remote)", c.AdminListen)}
	}
	return nil
}

// IsLoopback reports whether host (of a listen address) binds to the
// loopback interface only: "localhost" or a loopback IP. An empty host
// binds every interface and is not.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (t *TLS) validate() []error {
	var errs []error
	for _, g := range []struct {
		name, flags string
		s           tlsconfig.Server
	}{
		{"tls.ingest", "--tls-cert-file, --tls-key-file, --tls-client-ca-file", t.Ingest},
		{"tls.query", "--tls-cert-file, --tls-key-file", t.Query},
	} {
		if err := g.s.Validate(); err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("%s.%w (flags %s)", g.name, e, g.flags))
			}
		}
	}
	if t.Query.ClientCAFile != "" || t.Query.RequireClientCert {
		errs = append(errs, errors.New("tls.query: client certificates (client_ca_file, require_client_cert) are for tls.ingest only: the query port also answers health probes and metrics scrapers; put an authenticating proxy in front of it instead"))
	}
	return errs
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Listener is one address clew listens on, with the names that set it.
type Listener struct {
	// Name says what listens there, e.g. "Zipkin receiver".
	Name string
	// Addr is the host:port; empty when an optional listener is off.
	Addr string
	// Flag and Key are the command-line flag and the YAML key that set
	// Addr.
	Flag, Key string
	// Optional listeners are turned off by an empty address.
	Optional bool
}

// Listener keys, as Listeners names them.
const (
	KeyOTLPGRPC   = "otlp_grpc_addr"
	KeyOTLPHTTP   = "otlp_http_addr"
	KeyHTTP       = "http_addr"
	KeyZipkin     = "zipkin_addr"
	KeyJaegerGRPC = "jaeger_grpc_addr"
	KeyJaegerHTTP = "jaeger_http_addr"
	// KeyAdminListen is the admin listener's, which Listeners does not
	// list (it has no TLS; see AdminListen).
	KeyAdminListen = "admin_listen"
)

// Listeners lists every address clew serve listens on, in the order it
// opens them, with the flag and YAML key of each.
func (c *Config) Listeners() []Listener {
	return []Listener{
		{"OTLP/gRPC receiver", c.OTLPGRPCAddr, "--otlp-grpc-addr", KeyOTLPGRPC, false},
		{"OTLP/HTTP receiver", c.OTLPHTTPAddr, "--otlp-http-addr", KeyOTLPHTTP, false},
		{"query API", c.HTTPAddr, "--http-addr", KeyHTTP, false},
		{"Zipkin receiver", c.ZipkinAddr, "--zipkin-addr", KeyZipkin, true},
		{"Jaeger gRPC receiver", c.JaegerGRPCAddr, "--jaeger-grpc-addr", KeyJaegerGRPC, true},
		{"Jaeger HTTP receiver", c.JaegerHTTPAddr, "--jaeger-http-addr", KeyJaegerHTTP, true},
	}
}
