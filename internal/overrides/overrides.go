// Package overrides holds the per-tenant limits of a multi-tenant clew and
// the helpers that enforce them.
//
// The limits come from two places, laid over each other: static defaults
// the caller passes to New (from the configuration file), and an
// overrides file reloaded without a restart, in the format of Tempo's
// runtime overrides:
//
//	overrides:
//	  "*":                      # every tenant not listed below
//	    ingestion_rate_spans: 20000
//	  team-a:                   # keys not set here come from "*", then the defaults
//	    ingestion_rate_spans: 100000
//	    max_search_duration: 7d
//
// The file is strict (an unknown key is an error naming the file, line and
// key) and validated; Run polls it and swaps the new limits in atomically,
// and a bad file keeps the previous limits. For, on every request's path,
// is one atomic load and one map lookup.
//
// The enforcement helpers are AllowIngest (per-tenant token buckets of
// spans and bytes per second, golang.org/x/time/rate), StartQuery (queries
// running at once), CheckSearchRange (the longest search) and
// TraceSpanCounter (spans per trace, approximately, in bounded memory).
// The other limits (attribute value size, retention, span-metrics
// dimensions and series) are read with For by the component that applies
// them, which reports what it refused with Hit. Every refusal is counted
// per tenant and limit, in clew_tenant_limit_hits_total and in the answer
// of Handler.
//
// Tenant label cardinality: tenants listed in the file each have their
// own series and state; unlisted tenants too, up to Options.MaxTenants
// (1000 by default). Tenants come from validated configuration or
// headers, but a header is the client's to choose, so beyond that bound
// further unlisted tenants share one state and the tenant label
// "__other__": they are limited together under the "*" limits, and
// memory and series stay bounded whatever the clients send.
package overrides

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clew-dev/clew/internal/storage"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Limit names one enforced limit: the label value of
// clew_tenant_limit_hits_total and the key of Handler's hit counts.
type Limit int

// The limits whose refusals are counted. What one hit is differs: a
// refused request for the ingestion rates, a dropped span for
// MaxSpansPerTrace, a truncated value for MaxAttributeValueBytes, a
// refused query for MaxSearchDuration, MaxConcurrentQueries and
// QueryRate, a span
// folded into the overflow series for SpanMetricsMaxSeries.
const (
	IngestionRateSpans Limit = iota
	IngestionRateBytes
	MaxSpansPerTrace
	MaxAttributeValueBytes
	MaxSearchDuration
	MaxConcurrentQueries
	SpanMetricsMaxSeries
	QueryRate
	numLimits
)

var limitNames = [numLimits]string{
	"ingestion_rate_spans",
	"ingestion_rate_bytes",
	"max_spans_per_trace",
	"max_attribute_value_bytes",
	"max_search_duration",
	"max_concurrent_queries",
	"spanmetrics_max_series",
	"query_rate",
}

// String returns the limit's key in the overrides file.
func (l Limit) String() string {
	if l < 0 || l >= numLimits {
		return fmt.Sprintf("Limit(%d)", int(l))
	}
	return limitNames[l]
}

// ErrLimited is wrapped by every error a helper returns for a request over
// a tenant's limit (a *LimitError), so that the caller answers 429 /
// RESOURCE_EXHAUSTED.
var ErrLimited = errors.New("tenant limit reached")

// LimitError is a refusal: which tenant, which limit, and a message for
// the client naming the limit.
type LimitError struct {
	Tenant string
	Limit  Limit
	Msg    string
}

func (e *LimitError) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, ErrLimited) true.
func (e *LimitError) Unwrap() error { return ErrLimited }

// OtherTenant is the tenant label, in metrics and in Handler's answers,
// of the unlisted tenants beyond Options.MaxTenants.
const OtherTenant = "__other__"

// DefaultInterval is how often Run checks the file unless told otherwise.
const DefaultInterval = 10 * time.Second

// DefaultMaxTenants is the default of Options.MaxTenants.
const DefaultMaxTenants = 1000

// Options are New's optional settings.
type Options struct {
	// Interval is how often Run checks the file (DefaultInterval if 0).
	Interval time.Duration
	// Logger receives reload errors and successes (slog.Default if nil).
	Logger *slog.Logger
	// Now is the clock of the token buckets (time.Now if nil).
	Now func() time.Time
	// MaxTenants bounds the unlisted tenants with their own state and
	// label (DefaultMaxTenants if 0); see the package documentation.
	MaxTenants int
	// DefaultTenant is the tenant of a request to Handler whose context
	// carries none (storage.DefaultTenant if empty).
	DefaultTenant string
}

// Overrides are the current limits of every tenant and the state that
// enforces them. Its methods are safe for concurrent use.
type Overrides struct {
	path     string
	defaults Limits
	opts     Options
	log      *slog.Logger

	cur atomic.Pointer[Parsed]

	tenants  sync.Map // tenant name -> *tenantState
	addMu    sync.Mutex
	unlisted atomic.Int64 // unlisted tenants with their own state
	nextIdx  atomic.Uint32
	other    *tenantState

	mu          sync.Mutex // reload state below
	lastID      fileID
	lastRead    time.Time
	lastHash    [sha256.Size]byte
	lastErr     string
	lastSuccess time.Time

	reloads      *prometheus.CounterVec
	lastSuccessG prometheus.Gauge
	hits         *prometheus.CounterVec
}

// fileID is what a poll compares before it reads the file.
type fileID struct {
	mod  time.Time
	size int64
}

// tenantState is the enforcement state of one tenant (or of all the
// tenants beyond MaxTenants).
type tenantState struct {
	name     string // the tenant label
	idx      uint32 // the tenant's number in TraceSpanCounter keys
	hits     [numLimits]atomic.Int64
	counters [numLimits]prometheus.Counter
	running  atomic.Int64 // queries started and not done

	mu      sync.Mutex // guards the buckets
	spans   bucket
	byteBkt bucket
	queries bucket
}

// New returns the limits of defaults overlaid with the overrides file at
// path (none if path is empty), registering its metrics on reg (none if
// nil). A file that cannot be read or parsed is an error: clew does not
// start with limits other than the ones configured. Call Run to pick up
// changes to the file.
func New(defaults Limits, path string, reg prometheus.Registerer, opts Options) (*Overrides, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxTenants <= 0 {
		opts.MaxTenants = DefaultMaxTenants
	}
	if opts.DefaultTenant == "" {
		opts.DefaultTenant = storage.DefaultTenant
	}
	if err := defaults.Validate(); err != nil {
		return nil, fmt.Errorf("overrides defaults: %w", err)
	}
	o := &Overrides{
		path:     path,
		defaults: defaults.clone(),
		opts:     opts,
		log:      opts.Logger,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clew_overrides_reloads_total",
			Help: "Reloads of the overrides file whose content (or error) changed, by result (success, failure: the previous limits stay).",
		}, []string{"result"}),
		lastSuccessG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clew_overrides_last_reload_success_timestamp_seconds",
			Help: "When the overrides file was last loaded successfully (Unix seconds).",
		}),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clew_tenant_limit_hits_total",
			Help: "Refusals by a per-tenant limit: requests (ingestion rates), spans dropped (max_spans_per_trace), values truncated (max_attribute_value_bytes), queries (max_search_duration, max_concurrent_queries), spans folded into overflow series (spanmetrics_max_series). Tenants beyond the tenant bound are counted as __other__.",
		}, []string{"tenant", "limit"}),
	}
	o.reloads.WithLabelValues("success")
	o.reloads.WithLabelValues("failure")
	o.other = o.newState(OtherTenant)
	p := Parsed{Default: o.defaults.clone(), Tenants: map[string]Limits{}}
	o.cur.Store(&p)
	if path != "" {
		if err := o.check(true); err != nil {
			return nil, err
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{o.reloads, o.lastSuccessG, o.hits} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("overrides metrics: %w", err)
			}
		}
	}
	return o, nil
}

// For returns the tenant's limits: its entry in the file, or the "*" entry
// and the defaults. It does not lock and does not allocate.
func (o *Overrides) For(tenant string) Limits {
	p := o.cur.Load()
	if l, ok := p.Tenants[tenant]; ok {
		return l
	}
	return p.Default
}

// Run checks the file every interval until ctx is done, swapping in its
// limits when its content changes and is valid. Without a file it waits
// for ctx.
func (o *Overrides) Run(ctx context.Context) {
	if o.path == "" {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(o.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = o.check(false)
		}
	}
}

// Reload reads the file now, whether or not it looks changed (for a
// SIGHUP, or an admin endpoint), and returns the error that kept the
// previous limits, if any.
func (o *Overrides) Reload() error {
	if o.path == "" {
		return nil
	}
	return o.check(true)
}

// check reloads the file if its size, modification time or content
// changed (or if force). A failure is logged and counted once per content
// or error, not on every poll.
func (o *Overrides) check(force bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	fi, err := os.Stat(o.path)
	if err != nil {
		// Forget the content, so that the same good file put back is
		// loaded again (and clears the error).
		o.lastHash, o.lastID = [sha256.Size]byte{}, fileID{}
		return o.fail(fmt.Errorf("overrides file: %w", err), force)
	}
	id := fileID{mod: fi.ModTime(), size: fi.Size()}
	// The same size and time read more than a second after that time:
	// unchanged. Closer, a write within the file system's time resolution
	// could hide behind the same time, so the content is compared.
	if !force && id.mod.Equal(o.lastID.mod) && id.size == o.lastID.size && o.lastRead.Sub(id.mod) > time.Second {
		return nil
	}
	o.lastRead = time.Now()
	data, err := os.ReadFile(o.path)
	if err != nil {
		o.lastHash, o.lastID = [sha256.Size]byte{}, fileID{}
		return o.fail(fmt.Errorf("overrides file: %w", err), force)
	}
	o.lastID = id
	h := sha256.Sum256(data)
	if !force && h == o.lastHash {
		return nil
	}
	o.lastHash = h
	p, err := Parse(o.path, data, o.defaults)
	if err != nil {
		return o.fail(err, true)
	}
	// Count the reload before publishing it: whoever sees the new limits
	// also sees the reload on /metrics.
	o.lastErr = ""
	o.lastSuccess = o.opts.Now()
	o.reloads.WithLabelValues("success").Inc()
	o.lastSuccessG.Set(float64(o.lastSuccess.UnixNano()) / 1e9)
	o.cur.Store(&p)
	o.log.Info("overrides loaded", "file", o.path, "tenants", len(p.Tenants))
	return nil
}

// fail records a failed reload; an error equal to the last one is counted
// and logged again only if always.
func (o *Overrides) fail(err error, always bool) error {
	if !always && err.Error() == o.lastErr {
		return err
	}
	o.lastErr = err.Error()
	o.reloads.WithLabelValues("failure").Inc()
	o.log.Error("overrides file rejected; the previous limits stay", "file", o.path, "err", err)
	return err
}

// state returns the tenant's enforcement state, creating it if the tenant
// is listed or the unlisted tenants are below the bound, else the shared
// state of the tenants beyond it.
func (o *Overrides) state(tenant string) *tenantState {
	if tenant == OtherTenant {
		return o.other
	}
	if s, ok := o.tenants.Load(tenant); ok {
		return s.(*tenantState)
	}
	_, listed := o.cur.Load().Tenants[tenant]
	if !listed && o.unlisted.Load() >= int64(o.opts.MaxTenants) {
		return o.other
	}
	o.addMu.Lock()
	defer o.addMu.Unlock()
	if s, ok := o.tenants.Load(tenant); ok {
		return s.(*tenantState)
	}
	if !listed {
		if o.unlisted.Load() >= int64(o.opts.MaxTenants) {
			return o.other
		}
		o.unlisted.Add(1)
	}
	s := o.newState(tenant)
	o.tenants.Store(tenant, s)
	return s
}

func (o *Overrides) newState(label string) *tenantState {
	s := &tenantState{name: label, idx: o.nextIdx.Add(1)}
	for l := range numLimits {
		s.counters[l] = o.hits.WithLabelValues(label, l.String())
	}
	return s
}

// Hit counts n refusals of the tenant by limit, for the limits the caller
// enforces itself (attribute value size, span-metrics series).
func (o *Overrides) Hit(tenant string, limit Limit, n int) {
	if n <= 0 || limit < 0 || limit >= numLimits {
		return
	}
	o.state(tenant).hit(limit, n)
}

func (s *tenantState) hit(limit Limit, n int) {
	s.hits[limit].Add(int64(n))
	s.counters[limit].Add(float64(n))
}

// AllowIngest reports whether the tenant may send a request of spans
// spans and bytes bytes now, taking them from its token buckets if so. If
// not, nothing is taken and retryAfter (> 0) is when the request would
// fit, for a Retry-After header or gRPC RetryInfo. A request larger than
// a bucket passes only when that bucket is full, and leaves it in debt
// for the excess, so the average rate still holds. Changed rates apply
// from the next call after a reload; a refusal counts a hit of the limit
// (or both limits) that refused it.
func (o *Overrides) AllowIngest(tenant string, spans, bytes int) (retryAfter time.Duration, ok bool) {
	l := o.For(tenant)
	if l.IngestionRateSpans == 0 && l.IngestionRateBytes == 0 {
		return 0, true
	}
	s := o.state(tenant)
	now := o.opts.Now()
	s.mu.Lock()
	s.spans.configure(now, float64(l.IngestionRateSpans), l.burstSpans())
	s.byteBkt.configure(now, float64(l.IngestionRateBytes), int(min(l.burstBytes(), int64(maxInt))))
	ws := s.spans.wait(now, spans)
	wb := s.byteBkt.wait(now, bytes)
	if ws == 0 && wb == 0 {
		s.spans.take(now, spans)
		s.byteBkt.take(now, bytes)
		s.mu.Unlock()
		return 0, true
	}
	s.mu.Unlock()
	if ws > 0 {
		s.hit(IngestionRateSpans, 1)
	}
	if wb > 0 {
		s.hit(IngestionRateBytes, 1)
	}
	return max(ws, wb), false
}

const maxInt = int(^uint(0) >> 1)

// bucket is one token bucket; a nil limiter is no limit.
type bucket struct {
	lim   *rate.Limiter
	rate  float64
	burst int
}

// configure sets the rate and burst, keeping the tokens when they change.
func (b *bucket) configure(now time.Time, r float64, burst int) {
	switch {
	case r <= 0:
		b.lim = nil
	case b.lim == nil:
		b.lim = rate.NewLimiter(rate.Limit(r), burst) // starts full
	case r != b.rate || burst != b.burst:
		b.lim.SetLimitAt(now, rate.Limit(r))
		b.lim.SetBurstAt(now, burst)
	}
	b.rate, b.burst = r, burst
}

// wait is how long until n tokens (the whole bucket, for n larger than
// it) are there; 0 if they are now.
func (b *bucket) wait(now time.Time, n int) time.Duration {
	if b.lim == nil || n <= 0 {
		return 0
	}
	need := float64(min(n, b.burst))
	have := b.lim.TokensAt(now)
	if have >= need {
		return 0
	}
	d := time.Duration((need - have) / b.rate * float64(time.Second))
	return max(d, time.Millisecond)
}

// take removes n tokens, in reservations of at most the burst (what the
// limiter accepts), going into debt for what the bucket does not hold.
func (b *bucket) take(now time.Time, n int) {
	if b.lim == nil {
		return
	}
	for n > 0 {
		c := min(n, b.burst)
		b.lim.ReserveN(now, c)
		n -= c
	}
}

// AllowQuery reports whether the tenant may make a query request now
// under its query_rate, taking one token if so; when not, it counts a hit
// and retryAfter is when a token will be there.
func (o *Overrides) AllowQuery(tenant string) (retryAfter time.Duration, ok bool) {
	l := o.For(tenant)
	if l.QueryRate == 0 {
		return 0, true
	}
	s := o.state(tenant)
	now := o.opts.Now()
	s.mu.Lock()
	s.queries.configure(now, float64(l.QueryRate), l.queryBurst())
	w := s.queries.wait(now, 1)
	if w == 0 {
		s.queries.take(now, 1)
	}
	s.mu.Unlock()
	if w > 0 {
		s.hit(QueryRate, 1)
		return w, false
	}
	return 0, true
}

// StartQuery admits a query of the tenant if fewer than its
// max_concurrent_queries run; done, which must be called once the query
// ends (more calls do nothing), frees the place. Queries are counted even
// without a limit, so that a limit set by a reload applies to those
// already running. A refusal is a *LimitError wrapping ErrLimited.
func (o *Overrides) StartQuery(tenant string) (done func(), err error) {
	s := o.state(tenant)
	limit := int64(o.For(tenant).MaxConcurrentQueries)
	if n := s.running.Add(1); limit > 0 && n > limit {
		s.running.Add(-1)
		s.hit(MaxConcurrentQueries, 1)
		return nil, &LimitError{Tenant: tenant, Limit: MaxConcurrentQueries,
			Msg: fmt.Sprintf("tenant %q already runs %d queries, its limit (max_concurrent_queries); retry when one ends", tenant, limit)}
	}
	var ended atomic.Bool
	return func() {
		if ended.CompareAndSwap(false, true) {
			s.running.Add(-1)
		}
	}, nil
}

// CheckSearchRange refuses a search of the tenant from start to end (the
// range as resolved, with defaults applied) longer than its
// max_search_duration, with a *LimitError wrapping ErrLimited.
func (o *Overrides) CheckSearchRange(tenant string, start, end time.Time) error {
	limit := o.For(tenant).MaxSearchDuration.Std()
	if limit <= 0 {
		return nil
	}
	if d := end.Sub(start); d > limit {
		o.state(tenant).hit(MaxSearchDuration, 1)
		return &LimitError{Tenant: tenant, Limit: MaxSearchDuration,
			Msg: fmt.Sprintf("the search covers %s, longer than tenant %q's max_search_duration of %s; narrow the time range", d, tenant, limit)}
	}
	return nil
}

// reloadStatus is when the file was last loaded and the error that kept
// the previous limits since, if any.
func (o *Overrides) reloadStatus() (last time.Time, errMsg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastSuccess, o.lastErr
}
