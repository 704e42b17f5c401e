package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// This file serves clew's trace analysis, under /api/v1 on the query port:
// why one trace is slow compared with its cohort (/explain/{traceID}), the
// critical path of an operation aggregated over many traces
// (/criticalpath), attribute ranking between two selections of spans
// (/attributes/rank) and instrumentation quality per service (/quality).
// It fetches traces from the store (storage.Reader; TraceQL selections
// through internal/engine), bounds the work of each request, and leaves the
// analysis itself to internal/analysis. See docs/api.md, "Trace analysis".

// AnalysisConfig bounds the work of each analysis request.
type AnalysisConfig struct {
	// CohortSize is the default number of cohort traces an explanation
	// compares with (the cohort parameter, at most MaxTraces).
	CohortSize int
	// MaxTraces bounds the traces one request loads: the cohort, the
	// samples of an aggregated critical path or of the quality report, and
	// each selection of an attribute ranking.
	MaxTraces int
	// MaxSpans bounds the spans one request loads, across every trace;
	// past it the answer is partial.
	MaxSpans int
	// Timeout bounds one request; past it the answer is a 504.
	Timeout time.Duration
	// Workers is the number of traces loaded at once.
	Workers int
	// Now is the clock that places a window without an end (time.Now when
	// nil).
	Now func() time.Time
}

// DefaultAnalysisConfig returns the defaults: a cohort of 50 traces, at most 1000
// traces and 500,000 spans per request, 30 s, 2 workers.
func DefaultAnalysisConfig() AnalysisConfig {
	return AnalysisConfig{CohortSize: 50, MaxTraces: 1000, MaxSpans: 500_000, Timeout: 30 * time.Second, Workers: 2}
}

func (c AnalysisConfig) withDefaults() AnalysisConfig {
	d := DefaultAnalysisConfig()
	if c.CohortSize <= 0 {
		c.CohortSize = d.CohortSize
	}
	if c.MaxTraces <= 0 {
		c.MaxTraces = d.MaxTraces
	}
	if c.MaxSpans <= 0 {
		c.MaxSpans = d.MaxSpans
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.CohortSize = min(c.CohortSize, c.MaxTraces)
	return c
}

// Analysis serves the analysis endpoints.
type Analysis struct {
	db  storage.Reader
	cfg AnalysisConfig
	log *slog.Logger
}

// NewAnalysis returns the analysis endpoints over db. Zero fields of cfg
// take their defaults; a nil logger discards logs.
func NewAnalysis(db storage.Reader, cfg AnalysisConfig, logger *slog.Logger) *Analysis {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Analysis{db: db, cfg: cfg.withDefaults(), log: logger.With("component", "analysis")}
}

// Register adds the endpoints to mux.
func (s *Analysis) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/explain/{traceID}", s.explain)
	mux.HandleFunc("GET /api/v1/criticalpath", s.criticalPath)
	mux.HandleFunc("GET /api/v1/attributes/rank", s.rank)
	mux.HandleFunc("GET /api/v1/quality", s.quality)
}

// fail answers a store error: a deadline is 504, a cancelled request 499,
// anything else 500.
func (s *Analysis) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteQueryError(w, r, err, fmt.Sprintf("analysis timed out after %s: narrow the time range or lower limit", s.cfg.Timeout), s.log)
}

// timeRange is a request's [start, end] in Unix nanoseconds.
type timeRange struct {
	start, end uint64
	// explicitEnd is set when the request gave end.
	explicitEnd bool
}

// parseAnalysisRange reads the time parameters (httpapi.ParseRange) with
// the window def when neither start nor since is given.
func parseAnalysisRange(v url.Values, now time.Time, def time.Duration) (timeRange, error) {
	r, err := httpapi.ParseRange(v, now, httpapi.RangeOptions{Default: def})
	if err != nil {
		return timeRange{}, err
	}
	return timeRange{start: r.StartNanos(), end: r.EndNanos(), explicitEnd: r.ExplicitEnd}, nil
}

func rfc3339(ns uint64) string {
	return time.Unix(0, int64(min(ns, math.MaxInt64))).UTC().Format(time.RFC3339Nano)
}

func millis(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}

// loader loads traces for one request within its span budget.
type loader struct {
	db      storage.Reader
	workers int
	left    atomic.Int64
	cut     atomic.Bool
}

func (s *Analysis) newLoader() *loader {
	l := &loader{db: s.db, workers: s.cfg.Workers}
	l.left.Store(int64(s.cfg.MaxSpans))
	return l
}

// searchAndLoad runs q for at most limit traces and loads them within the
// request's span budget; cut reports traces left out because the budget
// ran out.
func (s *Analysis) searchAndLoad(ctx context.Context, q *search.Query, limit int) (res storage.SearchResult, bs []*span.Batch, cut bool, err error) {
	res, err = s.db.Search(ctx, q, limit, nil)
	if err != nil {
		return res, nil, false, err
	}
	ids := make([]span.TraceID, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.TraceID
	}
	l := s.newLoader()
	bs, err = l.load(ctx, ids)
	return res, bs, l.cut.Load(), err
}

// load loads the traces ids, at most workers at a time, in order; a trace
// not found, or not loaded because the span budget ran out, is nil (and
// cut is set for the latter).
func (l *loader) load(ctx context.Context, ids []span.TraceID) ([]*span.Batch, error) {
	out := make([]*span.Batch, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, l.workers)
	var wg sync.WaitGroup
	for i, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		if l.left.Load() <= 0 {
			<-sem
			l.cut.Store(true)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, found, err := l.db.FindTrace(ctx, id)
			if err != nil {
				errs[i] = err
				return
			}
			if found && len(b.Spans) > 0 {
				l.left.Add(-int64(len(b.Spans)))
				out[i] = b
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// trees builds the span trees of the loaded traces, skipping nil ones.
func trees(bs []*span.Batch) []*analysis.Tree {
	out := make([]*analysis.Tree, 0, len(bs))
	for _, b := range bs {
		if b != nil {
			out = append(out, analysis.BuildTree(b))
		}
	}
	return out
}
