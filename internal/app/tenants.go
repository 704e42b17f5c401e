package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/logs"
	"github.com/clew-dev/clew/internal/logstore"
	"github.com/clew-dev/clew/internal/overrides"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/tenant"
)

// A stack is everything clew keeps for one tenant: its store (write-ahead
// log, heads, blocks under the tenant's prefix of the shared bucket), its
// log store (its own write-ahead log, head, blocks under <tenant>/logs/), its
// span metrics and their history, and its detector. Tenants share nothing
// else that holds data, so one tenant's spans, services, tag values,
// metrics and baselines can never answer another's query.
type stack struct {
	name string
	db   *store.DB
	logs *logstore.DB         // the tenant's log records
	sm   *spanmetrics.Metrics // nil: span metrics off
	det  *detect.Detector     // nil: detection off
	mux  *http.ServeMux       // the span-metrics and detection endpoints over sm and det
}

// close stops the stack: the detector (which reads the others), then the
// span metrics (which write the minutes still in memory), then the store.
func (s *stack) close() error {
	var errs []error
	if s.det != nil {
		errs = append(errs, s.det.Close())
	}
	if s.sm != nil {
		errs = append(errs, s.sm.Close())
	}
	errs = append(errs, s.db.Close(), s.logs.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tenant %s: %w", s.name, err)
	}
	return nil
}

// tenants holds the stack of every tenant, opened on the first request
// that names the tenant (or at start for the tenants found on disk) and
// closed at shutdown. With multitenancy off it holds the one configured
// tenant. It serves the read contract (storage.Reader, storage.Admin) by
// the tenant in each call's context, and appends (ingest.Appender) by the
// tenant the receivers resolved.
type tenants struct {
	cfg   config.Config
	log   *slog.Logger
	reg   prometheus.Registerer
	bkt   objstore.Bucket
	multi bool
	ov    *overrides.Overrides // nil: no per-tenant overrides

	mu     sync.RWMutex
	m      map[string]*stack
	closed bool
	// started is set once the components start: stacks opened later
	// start their detector at once.
	started bool
}

// openTenants opens the shared bucket and the stacks of the tenants that
// already have data (only the configured tenant without multitenancy).
func openTenants(ctx context.Context, cfg config.Config, ov *overrides.Overrides, log *slog.Logger, reg prometheus.Registerer) (*tenants, error) {
	bkt, err := openBucket(cfg.DataDir, log, reg)
	if err != nil {
		return nil, err
	}
	ts := &tenants{cfg: cfg, log: log, reg: reg, bkt: bkt, multi: cfg.Multitenancy, ov: ov, m: map[string]*stack{}}
	names := []string{cfg.Tenant}
	if ts.multi {
		if names, err = ts.onDisk(ctx); err != nil {
			bkt.Close()
			return nil, err
		}
	}
	for _, n := range names {
		if _, err := ts.get(ctx, n); err != nil {
			_ = ts.close()
			return nil, err
		}
	}
	return ts, nil
}

// onDisk lists the tenants with a write-ahead log, span-metrics history
// or blocks in the data directory.
func (ts *tenants) onDisk(ctx context.Context) ([]string, error) {
	var names []string
	for _, d := range []string{"wal", "wal-logs", "spanmetrics"} {
		ents, err := os.ReadDir(filepath.Join(ts.cfg.DataDir, d))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	err := ts.bkt.Iter(ctx, "", func(name string) error {
		if n, ok := cutDir(name); ok {
			names = append(names, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants in the bucket: %w", err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	// A directory that is not a valid tenant ID was not made by a request:
	// leave it alone.
	return slices.DeleteFunc(names, func(n string) bool {
		if err := tenant.Validate(n); err != nil {
			ts.log.Warn("ignoring a directory that is no tenant", "name", n, "err", err)
			return true
		}
		return false
	}), nil
}

func cutDir(name string) (string, bool) {
	if len(name) > 1 && name[len(name)-1] == '/' {
		return name[:len(name)-1], true
	}
	return "", false
}

// get returns the stack of a tenant, opening it on first use.
func (ts *tenants) get(ctx context.Context, name string) (*stack, error) {
	ts.mu.RLock()
	s := ts.m[name]
	ts.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if s := ts.m[name]; s != nil {
		return s, nil
	}
	if ts.closed {
		return nil, fmt.Errorf("tenant %s: %w", name, store.ErrClosed)
	}
	if !ts.multi && name != ts.cfg.Tenant {
		return nil, fmt.Errorf("tenant %q: %w (multitenancy is off; this clew holds %q)", name, storage.ErrUnknownTenant, ts.cfg.Tenant)
	}
	if ts.multi && ts.cfg.MaxTenants > 0 && len(ts.m) >= ts.cfg.MaxTenants {
		return nil, fmt.Errorf("tenant %s: %w: this clew already holds max_tenants (%d) tenants", name, ingest.ErrRetryable, ts.cfg.MaxTenants)
	}
	s, err := ts.open(ctx, name)
	if err != nil {
		return nil, err
	}
	ts.m[name] = s
	if ts.started && s.det != nil {
		s.det.Start()
	}
	return s, nil
}

// open opens a tenant's stack. With multitenancy on, its metrics carry a
// tenant label.
func (ts *tenants) open(ctx context.Context, name string) (*stack, error) {
	cfg, log := ts.cfg, ts.log
	reg := ts.reg
	if ts.multi {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"tenant": name}, reg)
		log = log.With("tenant", name)
	}
	start := time.Now()
	var retention func() time.Duration // the tenant's overrides, read at every run
	smCfg := cfg.SpanMetrics
	if ts.ov != nil {
		retention = func() time.Duration { return ts.ov.For(name).Retention.Std() }
		// Span-metric dimensions and series cap are the tenant's as its
		// stack opens (a reload applies to them at the next start).
		lim := ts.ov.For(name)
		if lim.SpanMetricsDimensions != nil {
			smCfg.Dimensions = lim.SpanMetricsDimensions
		}
		if lim.SpanMetricsMaxSeries > 0 {
			smCfg.MaxSeries = lim.SpanMetricsMaxSeries
		}
	}
	db, err := openTenantStore(ctx, cfg.Store, ts.bkt, name, cfg.DataDir, retention, log, ts.reg)
	if err != nil {
		return nil, err
	}
	ldb, err := openLogStore(ctx, cfg.Store, ts.bkt, name, cfg.DataDir, log, ts.reg)
	if err != nil {
		db.Close()
		return nil, err
	}
	log.Info("store open", "data_dir", cfg.DataDir, "tenant", name, "took", time.Since(start))
	s := &stack{name: name, db: db, logs: ldb, mux: http.NewServeMux()}
	// Span metrics and the service graph, with their history beside the
	// blocks and the same retention.
	if smCfg.Enabled {
		smRetention := cfg.Store.Retention
		if retention != nil {
			if r := retention(); r > 0 {
				smRetention = r
			}
		}
		var onOverflow func(int)
		if ts.ov != nil {
			onOverflow = func(n int) { ts.ov.Hit(name, overrides.SpanMetricsMaxSeries, n) }
		}
		s.sm, err = spanmetrics.Open(smCfg, spanmetrics.Options{
			OnSeriesOverflow: onOverflow,
			Dir:              filepath.Join(cfg.DataDir, "spanmetrics", name),
			Retention:        smRetention,
			Logger:           log,
			Registerer:       reg,
		})
		if err != nil {
			db.Close()
			ldb.Close()
			return nil, fmt.Errorf("open span metrics of tenant %s: %w", name, err)
		}
		// Baselines, anomalies and deployments, learned from the span
		// metrics' history and the stored traces; off without span
		// metrics.
		if cfg.Detect.Enabled {
			s.det = detect.New(cfg.Detect, s.sm, db, detect.Options{Logger: log})
		}
	}
	api.NewSpanMetrics(s.sm, log).Register(s.mux)
	api.NewDetection(s.det).Register(s.mux)
	return s, nil
}

// start starts the detectors of the stacks open so far; later ones start
// when they open.
func (ts *tenants) start() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.started = true
	for _, s := range ts.m {
		if s.det != nil {
			s.det.Start()
		}
	}
}

// close closes every stack and the bucket; later gets fail.
func (ts *tenants) close() error {
	ts.mu.Lock()
	ts.closed = true
	stacks := make([]*stack, 0, len(ts.m))
	for _, s := range ts.m {
		stacks = append(stacks, s)
	}
	ts.mu.Unlock()
	var errs []error
	for _, s := range stacks {
		errs = append(errs, s.close())
	}
	errs = append(errs, ts.bkt.Close())
	return errors.Join(errs...)
}

// of returns the stack of the tenant ctx carries (the configured tenant
// when it carries none).
func (ts *tenants) of(ctx context.Context) (*stack, error) {
	name, ok := storage.TenantFrom(ctx)
	if !ok {
		name = ts.cfg.Tenant
	}
	if strings.Contains(name, storage.TenantSeparator) {
		return nil, fmt.Errorf("%w: tenant %q: a read across tenants covers the traces (search, trace by ID, tags and their values), not span metrics, detection, limits or maintenance: ask one tenant", storage.ErrQueryRefused, name)
	}
	return ts.get(ctx, name)
}

// across returns the Reader over every tenant of a read across tenants
// ("a|b", let through by the tenant resolution only where permitted);
// false for a read of one tenant.
func (ts *tenants) across(ctx context.Context) (storage.Reader, bool) {
	name, ok := storage.TenantFrom(ctx)
	if !ok || !strings.Contains(name, storage.TenantSeparator) {
		return nil, false
	}
	return storage.Federate(ts, storage.SplitTenants(name)), true
}

// Append stores a batch under the tenant the receiver resolved, then
// observes it in that tenant's span metrics.
func (ts *tenants) Append(ctx context.Context, name string, rec []byte, b *span.Batch) error {
	s, err := ts.get(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return fmt.Errorf("%w: %w", ingest.ErrRetryable, err)
		}
		return err
	}
	return appender{s.db, s.sm}.Append(ctx, name, rec, b)
}

// The read contract, by the tenant in the context.

func (ts *tenants) Search(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	if r, ok := ts.across(ctx); ok {
		return r.Search(ctx, q, limit, after)
	}
	s, q, err := ts.searchOf(ctx, q)
	if err != nil {
		return storage.SearchResult{}, err
	}
	return s.db.Search(ctx, q, limit, after)
}

func (ts *tenants) SearchPage(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	if r, ok := ts.across(ctx); ok {
		return r.SearchPage(ctx, q, limit, after)
	}
	s, q, err := ts.searchOf(ctx, q)
	if err != nil {
		return storage.SearchResult{}, err
	}
	return s.db.SearchPage(ctx, q, limit, after)
}

// searchOf returns the stack of the tenant ctx carries and q within the
// tenant's max_search_duration: an open end is bounded by now, an open
// start by the limit (the most recent max_search_duration is searched, as
// the limit allows), and a range longer than the limit is refused with an
// error wrapping storage.ErrQueryRefused.
func (ts *tenants) searchOf(ctx context.Context, q *search.Query) (*stack, *search.Query, error) {
	s, err := ts.of(ctx)
	if err != nil || ts.ov == nil {
		return s, q, err
	}
	start, end, err := ts.boundRange(s.name, q.Start, q.End)
	if err != nil {
		return nil, nil, err
	}
	if start == q.Start && end == q.End {
		return s, q, nil
	}
	b := *q
	b.Start, b.End = start, end
	return s, &b, nil
}

// BoundRange is storage.RangeBounder: the TraceQL engine asks it for a
// request's whole range before splitting it into windows.
func (ts *tenants) BoundRange(ctx context.Context, start, end uint64) (uint64, uint64, error) {
	if ts.ov == nil {
		return start, end, nil
	}
	if name, ok := storage.TenantFrom(ctx); ok && strings.Contains(name, storage.TenantSeparator) {
		// Across tenants: within every tenant's limit.
		lo, hi := start, end
		for _, t := range storage.SplitTenants(name) {
			s, e, err := ts.boundRange(t, start, end)
			if err != nil {
				return 0, 0, err
			}
			lo, hi = max(lo, s), min(hi, e)
			if hi == 0 {
				hi = e
			}
		}
		return lo, hi, nil
	}
	s, err := ts.of(ctx)
	if err != nil {
		return 0, 0, err
	}
	return ts.boundRange(s.name, start, end)
}

// boundRange applies the tenant's max_search_duration to a range in Unix
// nanoseconds (0: open), as searchOf says.
func (ts *tenants) boundRange(tenant string, start, end uint64) (uint64, uint64, error) {
	limit := ts.ov.For(tenant).MaxSearchDuration.Std()
	if limit <= 0 {
		return start, end, nil
	}
	if end == 0 {
		end = uint64(time.Now().UnixNano())
	}
	if start == 0 && end > uint64(limit) {
		start = end - uint64(limit)
	}
	if err := ts.ov.CheckSearchRange(tenant, time.Unix(0, int64(start)), time.Unix(0, int64(end))); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", storage.ErrQueryRefused, err)
	}
	return start, end, nil
}

func (ts *tenants) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	if r, ok := ts.across(ctx); ok {
		return r.FindTrace(ctx, id)
	}
	s, err := ts.of(ctx)
	if err != nil {
		return nil, false, err
	}
	return s.db.FindTrace(ctx, id)
}

func (ts *tenants) ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error {
	if r, ok := ts.across(ctx); ok {
		return r.ScanSpans(ctx, q, cols, fn)
	}
	s, q, err := ts.searchOf(ctx, q)
	if err != nil {
		return err
	}
	return s.db.ScanSpans(ctx, q, cols, fn)
}

func (ts *tenants) Services(ctx context.Context) ([]string, error) {
	if r, ok := ts.across(ctx); ok {
		return r.Services(ctx)
	}
	s, err := ts.of(ctx)
	if err != nil {
		return nil, err
	}
	return s.db.Services(ctx)
}

func (ts *tenants) SpanNames(ctx context.Context, service string) ([]string, error) {
	if r, ok := ts.across(ctx); ok {
		return r.SpanNames(ctx, service)
	}
	s, err := ts.of(ctx)
	if err != nil {
		return nil, err
	}
	return s.db.SpanNames(ctx, service)
}

func (ts *tenants) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	if r, ok := ts.across(ctx); ok {
		return r.AttrKeys(ctx, scope)
	}
	s, err := ts.of(ctx)
	if err != nil {
		return nil, err
	}
	return s.db.AttrKeys(ctx, scope)
}

func (ts *tenants) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	if r, ok := ts.across(ctx); ok {
		return r.AttrValues(ctx, scope, key, limit)
	}
	s, err := ts.of(ctx)
	if err != nil {
		return nil, err
	}
	return s.db.AttrValues(ctx, scope, key, limit)
}

// Flush writes the tenant's heads of spans and of log records as blocks.
func (ts *tenants) Flush(ctx context.Context) error {
	s, err := ts.of(ctx)
	if err != nil {
		return err
	}
	return errors.Join(s.db.Flush(ctx), s.logs.Flush(ctx))
}

// AppendLogs stores log records under the tenant the receiver resolved
// (ingest.LogsAppender).
func (ts *tenants) AppendLogs(ctx context.Context, name string, b *logs.Batch) error {
	s, err := ts.get(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return fmt.Errorf("%w: %w", ingest.ErrRetryable, err)
		}
		return err
	}
	err = s.logs.Append(ctx, b)
	if errors.Is(err, logstore.ErrOverloaded) || errors.Is(err, logstore.ErrClosed) {
		return fmt.Errorf("%w: %w", ingest.ErrRetryable, err)
	}
	return err
}

// SearchLogs searches the log records of the tenant in ctx (logs.Reader).
func (ts *tenants) SearchLogs(ctx context.Context, q *logs.Query, limit int, after logs.Cursor) (logs.Page, error) {
	s, err := ts.of(ctx)
	if err != nil {
		return logs.Page{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, ts.cfg.Store.QueryTimeout)
	defer cancel()
	return s.logs.SearchLogs(ctx, q, limit, after)
}

// LogResources lists the resources of the log records of the tenant in
// ctx (logs.Reader).
func (ts *tenants) LogResources(ctx context.Context, start, end int64) ([][]logs.KV, error) {
	s, err := ts.of(ctx)
	if err != nil {
		return nil, err
	}
	return s.logs.LogResources(ctx, start, end)
}

// LogStats reports what the log store of the tenant in ctx holds.
func (ts *tenants) LogStats(ctx context.Context) logs.Stats {
	s, err := ts.of(ctx)
	if err != nil {
		return logs.Stats{}
	}
	return s.logs.LogStats(ctx)
}

// Compact compacts the tenant's blocks of spans, then of log records.
func (ts *tenants) Compact(ctx context.Context) {
	if s, err := ts.of(ctx); err == nil {
		s.db.Compact(ctx)
		s.logs.Compact(ctx)
	}
}

// RunRetention applies retention to the tenant's spans and log records.
func (ts *tenants) RunRetention(ctx context.Context) {
	if s, err := ts.of(ctx); err == nil {
		s.db.RunRetention(ctx)
		s.logs.RunRetention(ctx)
	}
}

func (ts *tenants) Stats(ctx context.Context) storage.Stats {
	s, err := ts.of(ctx)
	if err != nil {
		return storage.Stats{}
	}
	return s.db.Stats(ctx)
}

// ServeHTTP serves the span-metrics and detection endpoints of the
// request's tenant.
func (ts *tenants) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, err := ts.of(r.Context())
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, storage.ErrQueryRefused) {
			code = http.StatusBadRequest
		}
		httpapi.WriteError(w, code, err.Error())
		return
	}
	s.mux.ServeHTTP(w, r)
}

// spanMetricsOf returns the span metrics of the tenant ctx carries.
func (ts *tenants) spanMetricsOf(ctx context.Context) (*spanmetrics.Metrics, error) {
	s, err := ts.of(ctx)
	if err != nil {
		return nil, err
	}
	return s.sm, nil
}

// authorizer checks credentials for the tenant resolution
// (tenant.Authorizer) with the configured tokens and key set.
type authorizer struct{ a *auth.Authenticator }

func (z authorizer) Authorize(ctx context.Context, authorization, requested string, need tenant.Need) (string, error) {
	right := auth.Read
	switch need {
	case tenant.NeedWrite:
		right = auth.Write
	case tenant.NeedAdmin:
		right = auth.Admin
	}
	_, t, err := z.a.Check(ctx, authorization, requested, right)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, auth.ErrForbidden):
		return "", fmt.Errorf("%w: %w", tenant.ErrForbidden, err)
	default:
		return "", fmt.Errorf("%w: %w", tenant.ErrUnauthenticated, err)
	}
}

// limitQueries admits each tenant's query requests within its query_rate
// and up to its max_concurrent_queries (overrides), refusing the others
// with 429 and Retry-After. Only
// requests that resolved a tenant (the query APIs) are counted: health,
// metrics and the UI's files pass. ov nil: no limit.
func limitQueries(ov *overrides.Overrides, h http.Handler) http.Handler {
	if ov == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := storage.TenantFrom(r.Context())
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		// A read across tenants takes a token and a place of each.
		for _, name := range storage.SplitTenants(t) {
			if wait, ok := ov.AllowQuery(name); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(max(int((wait+time.Second-1)/time.Second), 1)))
				httpapi.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("tenant %q is over its query rate (query_rate); retry in %s", name, wait.Round(time.Millisecond)))
				return
			}
			done, err := ov.StartQuery(name)
			if err != nil {
				w.Header().Set("Retry-After", "1")
				httpapi.WriteError(w, http.StatusTooManyRequests, err.Error())
				return
			}
			defer done()
		}
		h.ServeHTTP(w, r)
	})
}
