// Package detect turns clew's RED history and stored traces into answers:
// baselines per operation (expected latency quantiles, error rate and
// throughput, seasonal when the history is long enough, else a trailing
// window), anomalies (latency, errors, throughput and broken context
// propagation, raised only when significant after a correction for the
// many tests, large enough and persistent), each with its start, severity,
// the operations affected, example traces and a ranked list of culprits,
// and deployments (a new service.version or deployment.* value compared
// with the previous one on the same operations, with a verdict).
//
// A Detector runs one background loop (Start, Close): every Interval it
// reads the recent RED history from span metrics, tests every operation
// against its baseline, groups the symptoms into incidents along the
// service graph, ranks culprits from a sample of anomalous and baseline
// traces (self time on the critical path and error origins, see
// culprit.go), and compares versions (deploy.go). Its answers are served
// under /api/v1/baselines, /api/v1/anomalies and /api/v1/deploys
// (http.go; the shapes are in docs/api.md).
package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storage"
)

// History is the RED history the detector learns from:
// *spanmetrics.Metrics.
type History interface {
	Range(ctx context.Context, match func(spanmetrics.Key) bool, start, end time.Time, step time.Duration) ([]spanmetrics.Series, error)
	Edges(ctx context.Context, start, end time.Time, step time.Duration) ([]spanmetrics.EdgeSeries, error)
}

// Config holds the detector's settings (the detect: section of the
// configuration file). DefaultConfig documents each default; zero fields
// take it.
type Config struct {
	// Enabled runs the detector (it needs span metrics).
	Enabled bool `yaml:"enabled"`
	// Interval is the time between two evaluations (15s).
	Interval time.Duration `yaml:"interval"`
	// Window is the longest recent window tested, in whole minutes (3m).
	// Windows of the last one, two and three minutes (the current minute
	// partly) are tested, so a sharp change shows within an Interval or
	// two.
	Window time.Duration `yaml:"window"`
	// Trailing is the trailing baseline: the time before the tested
	// window whose minutes (except anomalous ones) form the baseline when
	// the history holds no seasonal one (60m).
	Trailing time.Duration `yaml:"trailing"`
	// MinBaseline is the least baseline data, in minutes, an operation
	// needs before it is tested (5m).
	MinBaseline time.Duration `yaml:"min_baseline"`
	// Alpha is the p-value each single test must reach (1e-7). About
	// 100,000 tests run per hour on a few dozen operations, so this keeps
	// chance anomalies below one in a hundred hours before the effect-size
	// floors and the persistence requirement are even applied.
	Alpha float64 `yaml:"alpha"`
	// MinCalls is the least number of calls in a tested window (20).
	MinCalls int `yaml:"min_calls"`
	// MinLatencyDelta and MinLatencyRatio are the smallest latency change
	// reported: a quantile (p50 or p90) must grow by both (10ms, 1.25×);
	// a change in the tail alone (p99) by twice as much.
	MinLatencyDelta time.Duration `yaml:"min_latency_delta"`
	MinLatencyRatio float64       `yaml:"min_latency_ratio"`
	// MinErrors and MinErrorDelta: an error-rate anomaly needs at least
	// MinErrors errors in the window and a rate at least MinErrorDelta
	// above the baseline and at least twice it (5, 0.01).
	MinErrors     int     `yaml:"min_errors"`
	MinErrorDelta float64 `yaml:"min_error_delta"`
	// ThroughputRatio is the smallest throughput change reported, as a
	// factor either way (2).
	ThroughputRatio float64 `yaml:"throughput_ratio"`
	// Persistence is the number of consecutive evaluations a symptom must
	// show in before it is raised (2).
	Persistence int `yaml:"persistence"`
	// TracesPerProbe is the number of anomalous and of baseline traces
	// fetched per probed operation to rank culprits (40).
	TracesPerProbe int `yaml:"traces_per_probe"`
	// MaxTraceSpans: longer traces are cut to this many spans for the
	// culprit ranking (the ranking then says it is partial) (20000).
	MaxTraceSpans int `yaml:"max_trace_spans"`
	// Retention is how long resolved anomalies and deployments are kept
	// (24h).
	Retention time.Duration `yaml:"retention"`
	// DeployLookback is how far back a new version is looked for (24h).
	DeployLookback time.Duration `yaml:"deploy_lookback"`
}

// Validate reports every bad setting at once; zero values are fine (they
// take their defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Interval < 0 || c.Interval > 0 && c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval %s: want at least 1s", c.Interval))
	}
	if c.Window < 0 || c.Window%time.Minute != 0 || c.Window > 30*time.Minute {
		errs = append(errs, fmt.Errorf("window %s: want whole minutes, at most 30m", c.Window))
	}
	if c.Trailing < 0 || c.MinBaseline < 0 || c.Trailing > 0 && c.MinBaseline > c.Trailing {
		errs = append(errs, fmt.Errorf("min_baseline %s must not be longer than trailing %s", c.MinBaseline, c.Trailing))
	}
	if c.Alpha < 0 || c.Alpha >= 1 {
		errs = append(errs, fmt.Errorf("alpha %g: want a p-value between 0 and 1", c.Alpha))
	}
	if c.MinLatencyRatio != 0 && c.MinLatencyRatio < 1 || c.ThroughputRatio != 0 && c.ThroughputRatio < 1 {
		errs = append(errs, errors.New("min_latency_ratio and throughput_ratio are factors of at least 1"))
	}
	if c.MinCalls < 0 || c.MinErrors < 0 || c.Persistence < 0 || c.TracesPerProbe < 0 || c.MaxTraceSpans < 0 || c.MinErrorDelta < 0 {
		errs = append(errs, errors.New("counts and deltas must not be negative"))
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the settings clew runs with.
func DefaultConfig() Config {
	return Config{
		Enabled:         true,
		Interval:        15 * time.Second,
		Window:          3 * time.Minute,
		Trailing:        60 * time.Minute,
		MinBaseline:     5 * time.Minute,
		Alpha:           1e-7,
		MinCalls:        20,
		MinLatencyDelta: 10 * time.Millisecond,
		MinLatencyRatio: 1.25,
		MinErrors:       5,
		MinErrorDelta:   0.01,
		ThroughputRatio: 2,
		Persistence:     2,
		TracesPerProbe:  40,
		MaxTraceSpans:   20000,
		Retention:       24 * time.Hour,
		DeployLookback:  24 * time.Hour,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(dst *time.Duration, v time.Duration) {
		if *dst <= 0 {
			*dst = v
		}
	}
	set(&c.Interval, d.Interval)
	set(&c.Window, d.Window)
	set(&c.Trailing, d.Trailing)
	set(&c.MinBaseline, d.MinBaseline)
	set(&c.MinLatencyDelta, d.MinLatencyDelta)
	set(&c.Retention, d.Retention)
	set(&c.DeployLookback, d.DeployLookback)
	if c.Alpha <= 0 || c.Alpha >= 1 {
		c.Alpha = d.Alpha
	}
	if c.MinCalls <= 0 {
		c.MinCalls = d.MinCalls
	}
	if c.MinLatencyRatio <= 1 {
		c.MinLatencyRatio = d.MinLatencyRatio
	}
	if c.MinErrors <= 0 {
		c.MinErrors = d.MinErrors
	}
	if c.MinErrorDelta <= 0 {
		c.MinErrorDelta = d.MinErrorDelta
	}
	if c.ThroughputRatio <= 1 {
		c.ThroughputRatio = d.ThroughputRatio
	}
	if c.Persistence <= 0 {
		c.Persistence = d.Persistence
	}
	if c.TracesPerProbe <= 0 {
		c.TracesPerProbe = d.TracesPerProbe
	}
	if c.MaxTraceSpans <= 0 {
		c.MaxTraceSpans = d.MaxTraceSpans
	}
	c.Window = max(c.Window.Truncate(time.Minute), time.Minute)
	return c
}

// Options carries what the code, not the user, decides.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Detector evaluates the RED history continuously and keeps the anomalies
// and deployments it found. Its methods are safe for concurrent use.
type Detector struct {
	cfg  Config
	hist History
	// db is where sampled traces and span scans come from; nil turns off
	// culprit ranking from traces, propagation anomalies, deployment.*
	// attributes and new error types.
	db  storage.Reader
	log *slog.Logger
	now func() time.Time

	evalMu sync.Mutex // one evaluation at a time
	// Guarded by evalMu:
	cache    *historyCache
	seasonal *seasonalCache
	prop     *propagation
	symptoms map[symptomKey]*symptomState
	// hostMinutes are the minutes found host-wide slow (see hotMinute).
	hostMinutes map[int64]bool
	deploys     *deployTracker
	lastEdges   []spanmetrics.EdgeSeries

	mu sync.Mutex
	// Guarded by mu:
	incidents   []*incident
	nextID      int
	lastEval    time.Time
	lastErr     error
	excluded    map[string][]interval // service → anomalous intervals, left out of baselines
	deployOut   []Deploy
	baselineOut []Baseline
	hostOut     []time.Time

	startOnce sync.Once
	started   bool // set once by Start, read by Close after startOnce
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a detector over hist and db (nil: no trace sampling and no
// span scans; see Detector.db). Start runs its loop; Evaluate runs one
// evaluation (tests).
func New(cfg Config, hist History, db storage.Reader, opts Options) *Detector {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg = cfg.withDefaults()
	d := &Detector{
		cfg:         cfg,
		hist:        hist,
		db:          db,
		log:         opts.Logger.With("component", "detect"),
		now:         opts.Now,
		cache:       newHistoryCache(),
		seasonal:    &seasonalCache{},
		symptoms:    map[symptomKey]*symptomState{},
		hostMinutes: map[int64]bool{},
		excluded:    map[string][]interval{},
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	d.prop = newPropagation()
	d.deploys = newDeployTracker()
	return d
}

// Start runs the evaluation loop in the background until Close.
func (d *Detector) Start() {
	d.startOnce.Do(func() {
		d.started = true
		go d.loop()
	})
}

// Close stops the loop and waits for it. It is idempotent.
func (d *Detector) Close() error {
	d.closeOnce.Do(func() {
		d.startOnce.Do(func() {}) // a Start after Close does nothing
		close(d.stop)
		if d.started {
			<-d.done
		}
	})
	return nil
}

func (d *Detector) loop() {
	defer close(d.done)
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		if backoff > 0 {
			backoff--
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(2*d.cfg.Interval, 30*time.Second))
		go func() {
			select {
			case <-d.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := d.Evaluate(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("evaluate", "err", err)
			backoff = 3 // skip a few ticks after a failure
		}
	}
}

// Evaluate runs one evaluation at the detector's clock: baselines,
// anomaly tests, incidents and their culprits, propagation and
// deployments.
func (d *Detector) Evaluate(ctx context.Context) error {
	d.evalMu.Lock()
	defer d.evalMu.Unlock()
	now := d.now()
	err := d.evaluate(ctx, now)
	d.mu.Lock()
	d.lastEval, d.lastErr = now, err
	d.mu.Unlock()
	return err
}

func (d *Detector) evaluate(ctx context.Context, now time.Time) error {
	ops, err := d.cache.load(ctx, d.hist, now, max(d.cfg.Window, maxSparseWindow*time.Minute)+d.cfg.Trailing+2*time.Minute)
	if err != nil {
		return fmt.Errorf("read RED history: %w", err)
	}
	if edges, err := d.hist.Edges(ctx, now.Add(-15*time.Minute), now.Add(time.Minute), time.Minute); err == nil {
		d.lastEdges = edges
	}
	seasonal := d.seasonal.get(ctx, d.hist, now, d.log)
	tested := map[opKey]bool{}
	active := d.testAll(ops, seasonal, now, tested)
	d.publishBaselines(ops, seasonal, now)
	var stalls []time.Time
	for m := range d.hostMinutes {
		if m >= unixMinute(now)-60 {
			stalls = append(stalls, minuteTime(m))
		}
	}
	slices.SortFunc(stalls, time.Time.Compare)
	d.mu.Lock()
	d.hostOut = stalls
	d.mu.Unlock()
	if d.db != nil {
		if err := d.prop.update(ctx, d.db, now); err != nil {
			d.log.Warn("scan spans for propagation", "err", err)
		}
		active = append(active, d.prop.test(d.cfg, now, d.excludedFor, tested)...)
	}
	d.track(active, tested, now)
	d.updateIncidents(ctx, ops, now)
	d.evaluateDeploys(ctx, ops, now)
	return nil
}
