// Package loadgen sends synthetic traces to an OTLP endpoint over gRPC or
// HTTP. It backs `clew loadgen` and the end-to-end benchmark.
//
// Generation is deterministic: for a given seed, start time and set of flags
// the encoded requests are byte-identical from run to run. A producer
// goroutine encodes requests ahead of the senders into a bounded channel, so
// that generation cost does not throttle sending and memory stays bounded.
// Senders pass the encoded bytes to the transport as they are (a raw gRPC
// codec; no re-marshalling), retry overload errors with exponential backoff
// and jitter, and record the latency of every export call.
//
// Two shapes exist. "bench" is the fixed workload of clew's published
// figures: traces of exactly 10 spans over 4 services, 8 attributes per span.
// "realistic" is a fleet of many services with varying depth, fan-out and
// attribute counts, exception events, links and rare very large traces.
// Exactly one trace per run (chosen by the seed) carries the needle attribute
// user.id="needle-user-<seed>"; --trace-ids-out records it together with a
// broad query and sample trace IDs for the benchmark's read side.
package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/tlsconfig"
)

// Shapes.
const (
	ShapeBench     = "bench"
	ShapeRealistic = "realistic"
)

// Protocols.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// Default endpoints per protocol.
const (
	DefaultGRPCEndpoint = "127.0.0.1:4317"
	DefaultHTTPEndpoint = "127.0.0.1:4318"
)

// Config is the user-facing configuration of a load generation run.
type Config struct {
	// Endpoint is host:port of the OTLP receiver. For HTTP it may also be a
	// full http:// or https:// URL; /v1/traces is appended when the URL has
	// no path.
	Endpoint string
	// Protocol is "grpc" or "http" (protobuf over HTTP).
	Protocol string
	// Spans is the number of spans to send, rounded up to whole traces.
	// Zero means no limit (Duration must then be set).
	Spans int64
	// Rate is the target in spans per second; zero sends as fast as
	// possible.
	Rate float64
	// Duration stops the run after this long; zero means no time limit.
	Duration time.Duration
	// Concurrency is the number of concurrent export calls.
	Concurrency int
	// Batch is the number of spans per request.
	Batch int
	// Shape is "bench" or "realistic".
	Shape string
	// Seed makes generation deterministic.
	Seed uint64
	// Start is the start time of the first trace. Later traces advance from
	// it at the target rate. Main sets it to five seconds ago.
	Start time.Time
	// Services, Operations, Depth, Fanout and Attrs shape realistic traces:
	// the number of services, operations per service, maximum span depth,
	// maximum children per span and maximum attributes per span.
	Services, Operations, Depth, Fanout, Attrs int
	// ErrorRatio is the fraction of spans with an error status.
	ErrorRatio float64
	// RetryMax bounds the time spent retrying one request.
	RetryMax time.Duration
	// TraceIDsOut, when set, receives every delivered trace ID, one in hex
	// per line, and TraceIDsOut+".json" the benchmark queries (see Sidecar).
	TraceIDsOut string
	// ReportJSON, when set, receives the final report as JSON.
	ReportJSON string
	// Quiet suppresses the progress line.
	Quiet bool
	// Conn is TLS and the credentials sent with every request (--tls,
	// --token, --tenant and the rest).
	Conn tlsconfig.ClientFlags

	// retryInitial is the first backoff; tests shorten it.
	retryInitial time.Duration
}

// DefaultConfig returns the defaults of every flag.
func DefaultConfig() Config {
	return Config{
		Endpoint:    DefaultGRPCEndpoint,
		Protocol:    ProtocolGRPC,
		Spans:       1_000_000,
		Concurrency: 4,
		Batch:       500,
		Shape:       ShapeBench,
		Seed:        42,
		Services:    20,
		Operations:  10,
		Depth:       6,
		Fanout:      4,
		Attrs:       30,
		ErrorRatio:  0.01,
		RetryMax:    60 * time.Second,
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case c.Protocol != ProtocolGRPC && c.Protocol != ProtocolHTTP:
		return fmt.Errorf("unknown protocol %q (want grpc or http)", c.Protocol)
	case c.Shape != ShapeBench && c.Shape != ShapeRealistic:
		return fmt.Errorf("unknown shape %q (want bench or realistic)", c.Shape)
	case c.Spans < 0:
		return fmt.Errorf("bad --spans %d: must not be negative", c.Spans)
	case c.Spans == 0 && c.Duration <= 0:
		return errors.New("no stop condition: set --spans or --duration")
	case c.Rate < 0 || c.Rate != c.Rate || c.Rate > 1e9:
		return fmt.Errorf("bad --rate %v: want 0 (unlimited) or a positive number of spans/s", c.Rate)
	case c.Duration < 0:
		return fmt.Errorf("bad --duration %v: must not be negative", c.Duration)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("bad --concurrency %d: want 1 to 1024", c.Concurrency)
	case c.Batch < 1 || c.Batch > 100_000:
		return fmt.Errorf("bad --batch %d: want 1 to 100000", c.Batch)
	case c.Shape == ShapeBench && c.Batch < benchTraceSpans:
		return fmt.Errorf("bad --batch %d: the bench shape needs at least %d spans per request", c.Batch, benchTraceSpans)
	case c.Services < 1 || c.Services > 10_000:
		return fmt.Errorf("bad --services %d: want 1 to 10000", c.Services)
	case c.Operations < 1 || c.Operations > 10_000:
		return fmt.Errorf("bad --operations %d: want 1 to 10000", c.Operations)
	case c.Depth < 1 || c.Depth > 100:
		return fmt.Errorf("bad --depth %d: want 1 to 100", c.Depth)
	case c.Fanout < 1 || c.Fanout > 1000:
		return fmt.Errorf("bad --fanout %d: want 1 to 1000", c.Fanout)
	case c.Attrs < 5 || c.Attrs > 1000:
		return fmt.Errorf("bad --attrs %d: want 5 to 1000", c.Attrs)
	case c.ErrorRatio < 0 || c.ErrorRatio > 1 || c.ErrorRatio != c.ErrorRatio:
		return fmt.Errorf("bad --error-ratio %v: want 0 to 1", c.ErrorRatio)
	case c.RetryMax < 0:
		return fmt.Errorf("bad --retry-max %v: must not be negative", c.RetryMax)
	}
	if _, err := c.target(); err != nil {
		return err
	}
	if err := c.Conn.Validate(); err != nil {
		return err
	}
	if c.Protocol == ProtocolHTTP && strings.HasPrefix(c.Endpoint, "http://") && c.Conn.Enabled() {
		return fmt.Errorf("endpoint %q is plain http but TLS is on: use an https:// URL or host:port", c.Endpoint)
	}
	return nil
}

// target returns the gRPC target (host:port) or the HTTP URL to post to.
func (c *Config) target() (string, error) {
	ep := c.Endpoint
	if c.Protocol == ProtocolHTTP && (strings.HasPrefix(ep, "http://") || strings.HasPrefix(ep, "https://")) {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("parse endpoint %q: want host:port or an http(s) URL", ep)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1/traces"
		}
		return u.String(), nil
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return "", fmt.Errorf("parse endpoint %q: want host:port: %w", ep, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("parse endpoint %q: bad port %q", ep, port)
	}
	if host == "" {
		return "", fmt.Errorf("parse endpoint %q: empty host", ep)
	}
	if c.Protocol == ProtocolHTTP {
		scheme := "http://"
		if c.Conn.Enabled() {
			scheme = "https://"
		}
		return scheme + ep + "/v1/traces", nil
	}
	return ep, nil
}

// realisticOnly lists the flags that only the realistic shape reads.
var realisticOnly = []string{"services", "operations", "depth", "fanout", "attrs"}

// Main parses args as the flags of `clew loadgen`, runs the load and prints
// the report to stdout and progress to stderr. It returns an error for bad
// flags (flag.ErrHelp for -h), when the run cannot start, and when spans
// could not be delivered.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: clew loadgen [flags]\n\nSends synthetic traces to an OTLP endpoint.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "OTLP receiver host:port (default "+DefaultGRPCEndpoint+" for grpc, "+DefaultHTTPEndpoint+" for http)")
	fs.StringVar(&cfg.Protocol, "protocol", cfg.Protocol, "transport: grpc or http (protobuf POST to /v1/traces)")
	fs.Int64Var(&cfg.Spans, "spans", cfg.Spans, "total spans to send, rounded up to whole traces (0 = until --duration)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "target spans per second (0 = as fast as possible)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "stop after this long (0 = no time limit)")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent export calls")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "spans per request")
	fs.StringVar(&cfg.Shape, "shape", cfg.Shape, "workload: bench or realistic")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed; the same seed sends the same traces")
	start := fs.String("start", "", "start time of the first trace, RFC 3339 (default 5s ago)")
	fs.IntVar(&cfg.Services, "services", cfg.Services, "realistic: number of services")
	fs.IntVar(&cfg.Operations, "operations", cfg.Operations, "realistic: operations per service")
	fs.IntVar(&cfg.Depth, "depth", cfg.Depth, "realistic: maximum span depth")
	fs.IntVar(&cfg.Fanout, "fanout", cfg.Fanout, "realistic: maximum children per span")
	fs.IntVar(&cfg.Attrs, "attrs", cfg.Attrs, "realistic: maximum attributes per span (at least 5)")
	fs.Float64Var(&cfg.ErrorRatio, "error-ratio", cfg.ErrorRatio, "fraction of spans with an error status")
	fs.DurationVar(&cfg.RetryMax, "retry-max", cfg.RetryMax, "give up retrying a request after this long")
	fs.StringVar(&cfg.TraceIDsOut, "trace-ids-out", "", "write delivered trace IDs to `FILE` and benchmark queries to FILE.json")
	fs.StringVar(&cfg.ReportJSON, "report-json", "", "write the final report as JSON to `FILE`")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "no progress line")
	cfg.Conn.Register(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("parse flags: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.Shape == ShapeBench {
		for _, name := range realisticOnly {
			if set[name] {
				return fmt.Errorf("parse flags: --%s applies only to --shape realistic", name)
			}
		}
	}
	if set["duration"] && !set["spans"] {
		cfg.Spans = 0 // --duration alone runs until the time is up
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultGRPCEndpoint
		if cfg.Protocol == ProtocolHTTP {
			cfg.Endpoint = DefaultHTTPEndpoint
		}
	}
	cfg.Start = time.Now().Add(-5 * time.Second)
	if *start != "" {
		t, err := time.Parse(time.RFC3339Nano, *start)
		if err != nil {
			return fmt.Errorf("parse --start: %w", err)
		}
		cfg.Start = t
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	rep, err := Run(ctx, cfg, stderr)
	if rep != nil {
		rep.WriteText(stdout)
		if cfg.ReportJSON != "" {
			if werr := rep.WriteJSONFile(cfg.ReportJSON); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		return err
	}
	if rep.FailedSpans > 0 {
		return fmt.Errorf("deliver spans: %d of %d spans failed", rep.FailedSpans, rep.SentSpans)
	}
	return nil
}
