// Package demo runs `clew demo`: a small shop of instrumented services that
// call each other over real HTTP and gRPC on loopback, a traffic driver, and
// fault scenarios that can be switched on and off while it runs, each of
// which records its ground truth.
//
// Every service instance has its own OpenTelemetry TracerProvider with its
// own resource and exports over OTLP/gRPC, as separate processes would. The
// databases, the cache and the queue are simulated in process but appear as
// CLIENT, PRODUCER and CONSUMER spans with the current semantic conventions.
// docs/demo.md describes the services, their calls and the scenarios.
package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config says where the demo sends its spans and how it behaves.
type Config struct {
	// Endpoint is the OTLP/gRPC receiver, host:port, every service exports to.
	Endpoint string
	// TLS, when set, is the TLS the exporters connect to Endpoint with;
	// nil: plain text.
	TLS *tls.Config
	// Headers are sent with every export (gRPC metadata), e.g.
	// Authorization and X-Scope-OrgID.
	Headers map[string]string
	// Rate is the number of requests per second the traffic driver sends to
	// the gateway.
	Rate float64
	// Scenarios are the fault scenarios enabled at start.
	Scenarios []string
	// ControlAddr is the listen address of the control API (scenarios and
	// ground truth).
	ControlAddr string
	// GroundTruthPath is the file ground-truth records are appended to, as
	// JSON lines; empty keeps them in memory only.
	GroundTruthPath string
	// Environment is every resource's deployment.environment.name.
	Environment string
	// BatchTimeout is how long a finished span waits in its service's batch
	// before it is exported.
	BatchTimeout time.Duration
	// Seed seeds the demo's random sources (arrivals, the request mix,
	// latencies, failures), so that runs with one seed see alike traffic;
	// 0 picks a random seed.
	Seed uint64
	// Logger receives progress and errors; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration `clew demo` starts from.
func DefaultConfig() Config {
	return Config{
		Rate:         20,
		ControlAddr:  "127.0.0.1:3300",
		Environment:  "demo",
		BatchTimeout: time.Second,
	}
}

// maxRate bounds --rate: above it the driver, not the shop, is what gets
// measured on a small machine.
const maxRate = 5000

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if err := ValidateEndpoint(c.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateRate(c.Rate); err != nil {
		errs = append(errs, err)
	}
	for _, name := range c.Scenarios {
		if _, ok := lookupScenario(name); !ok {
			errs = append(errs, unknownScenario(name))
		}
	}
	if _, _, err := net.SplitHostPort(c.ControlAddr); err != nil {
		errs = append(errs, fmt.Errorf("control address %q: want host:port", c.ControlAddr))
	}
	if c.BatchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("batch timeout %v: must be positive", c.BatchTimeout))
	}
	return errors.Join(errs...)
}

// ValidateEndpoint checks that s is host:port with a non-empty host and a
// port from 1 to 65535, the form OTLP/gRPC exporters dial.
func ValidateEndpoint(s string) error {
	if strings.Contains(s, "://") {
		return fmt.Errorf("OTLP endpoint %q: want host:port without a scheme", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("OTLP endpoint %q: want host:port", s)
	}
	if host == "" {
		return fmt.Errorf("OTLP endpoint %q: missing host", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("OTLP endpoint %q: port must be a number from 1 to 65535", s)
	}
	return nil
}

// ValidateRate checks a request rate: positive, finite and at most 5000 per
// second.
func ValidateRate(r float64) error {
	if math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 || r > maxRate {
		return fmt.Errorf("rate %v: must be more than 0 and at most %d requests per second", r, maxRate)
	}
	return nil
}

// ParseScenarios splits a comma-separated list of scenario names and checks
// each. An empty string is an empty list.
func ParseScenarios(s string) ([]string, error) {
	var names []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, ok := lookupScenario(part); !ok {
			return nil, unknownScenario(part)
		}
		names = append(names, part)
	}
	return names, nil
}

// Demo is a running shop. Start creates it; Close stops it.
type Demo struct {
	cfg    Config
	log    *slog.Logger
	faults *faults
	truth  *groundTruth
	shop   *shop
	driver *driver

	control   *http.Server
	controlLn net.Listener

	closeOnce sync.Once
	closeErr  error
}

// Start brings the shop up: it listens on free loopback ports, starts every
// service, the queue consumer, the control API and the traffic driver, and
// enables cfg.Scenarios. It returns once everything is serving.
func Start(ctx context.Context, cfg Config) (*Demo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	truth, err := openGroundTruth(cfg.GroundTruthPath)
	if err != nil {
		return nil, err
	}
	seedRandom(cfg.Seed)
	d := &Demo{cfg: cfg, log: log, faults: &faults{}, truth: truth}

	d.controlLn, err = net.Listen("tcp", cfg.ControlAddr)
	if err != nil {
		truth.close()
		return nil, fmt.Errorf("listen for the demo control API on %s: %w", cfg.ControlAddr, err)
	}
	d.shop, err = newShop(ctx, cfg, d.faults, log)
	if err != nil {
		d.controlLn.Close()
		truth.close()
		return nil, err
	}
	d.control = &http.Server{Handler: d.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.control.Serve(d.controlLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo control API stopped", "err", err)
		}
	}()
	for _, name := range cfg.Scenarios {
		if err := d.SetScenario(name, true); err != nil {
			_ = d.Close(ctx)
			return nil, err
		}
	}
	d.driver = startDriver(d.shop.gatewayURL(), cfg.Rate, log)
	log.Info("demo running", "gateway", d.shop.gatewayURL(), "control", d.ControlAddr(), "rate", cfg.Rate, "endpoint", cfg.Endpoint)
	return d, nil
}

// Run starts the demo, runs it until ctx is done and then stops it.
func Run(ctx context.Context, cfg Config) error {
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return d.Close(sctx)
}

// ControlAddr is the address the control API listens on.
func (d *Demo) ControlAddr() string { return d.controlLn.Addr().String() }

// GatewayURL is the base URL of the shop's entry point.
func (d *Demo) GatewayURL() string { return d.shop.gatewayURL() }

// Services lists the shop's service names.
func (d *Demo) Services() []string { return serviceNames() }

// Stats returns how many requests the driver sent and how many failed.
func (d *Demo) Stats() (sent, failed int64) {
	if d.driver == nil {
		return 0, 0
	}
	return d.driver.sent.Load(), d.driver.failed.Load()
}

// Close stops the traffic, lets in-flight requests finish, ends every active
// scenario (writing its ground truth), and flushes every service's spans to
// the endpoint. ctx bounds the flush.
func (d *Demo) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		if d.driver != nil {
			d.driver.stop()
		}
		var errs []error
		errs = append(errs, d.shop.close(ctx))
		for _, s := range scenarioList {
			if d.faults.on(s.id) {
				errs = append(errs, d.SetScenario(s.Name, false))
			}
		}
		_ = d.control.Close()
		errs = append(errs, d.truth.close())
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}
