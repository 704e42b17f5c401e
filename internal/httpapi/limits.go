package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// Limits bound the work and the memory of one query request, in every
// query API on the query port (native, Tempo, Jaeger). A request over a
// limit is refused with a 400 that names it when that can be known before
// running it, and otherwise answered in part with a marker the client can
// see (see docs/api.md, "Query limits"). It is the query section of the
// configuration file.
type Limits struct {
	// MaxTracesPerSearch caps the traces one search returns (its limit or
	// page size). The native API refuses a larger limit; the Tempo and
	// Jaeger APIs lower it, as users type any number there.
	MaxTracesPerSearch int `yaml:"max_traces_per_search"`
	// MaxSpansPerQuery bounds the spans one request holds in memory: the
	// traces a search answer loads, or the candidate traces a TraceQL
	// query loads and evaluates. Past it the answer is cut: fewer traces,
	// a partial TraceQL result. It does not bound the spans a metrics
	// query streams from span columns (MaxSpansPerScan).
	MaxSpansPerQuery int `yaml:"max_spans_per_query"`
	// MaxSpansPerScan bounds the spans a TraceQL metrics query reads from
	// span columns (storage.Reader.ScanSpans). Such a scan holds no trace in
	// memory, only its series, so memory does not grow with it, only
	// time; the bound is far larger (and the query timeout bounds the
	// time as well). Past it the result is partial.
	MaxSpansPerScan int `yaml:"max_spans_per_scan"`
	// MaxCandidateTraces bounds the traces a TraceQL query (search or
	// metrics) loads and evaluates; past it the result is partial.
	MaxCandidateTraces int `yaml:"max_candidate_traces"`
	// MaxSeriesPerMetricsQuery bounds the series of a TraceQL metrics
	// query; spans of further series are left out and the result is
	// partial.
	MaxSeriesPerMetricsQuery int `yaml:"max_series_per_metrics_query"`
	// MaxPointsPerSeries bounds the points (range / step) of a metrics
	// series; a range query over it is refused.
	MaxPointsPerSeries int `yaml:"max_points_per_series"`
}

// Ceilings of the limits: what clew's engine can hold per request.
const (
	ceilTracesPerSearch = 10_000
	ceilPointsPerSeries = 11_000
)

// DefaultLimits returns the defaults: 1000 traces per search, 500,000 spans
// loaded per request, 100 million spans streamed by a metrics scan, 5000
// candidate traces, 1000 series and 11,000 points per series.
func DefaultLimits() Limits {
	return Limits{
		MaxTracesPerSearch:       1000,
		MaxSpansPerQuery:         500_000,
		MaxSpansPerScan:          100_000_000,
		MaxCandidateTraces:       5000,
		MaxSeriesPerMetricsQuery: 1000,
		MaxPointsPerSeries:       ceilPointsPerSeries,
	}
}

// Validate reports every limit out of its range.
func (l Limits) Validate() error {
	var errs []error
	check := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("query.%s must be from %d to %d, got %d", name, lo, hi, v))
		}
	}
	check("max_traces_per_search", l.MaxTracesPerSearch, 1, ceilTracesPerSearch)
	check("max_spans_per_query", l.MaxSpansPerQuery, 1000, 1<<30)
	check("max_spans_per_scan", l.MaxSpansPerScan, 1000, math.MaxInt)
	check("max_candidate_traces", l.MaxCandidateTraces, 1, 10_000_000)
	check("max_series_per_metrics_query", l.MaxSeriesPerMetricsQuery, 1, 1_000_000)
	check("max_points_per_series", l.MaxPointsPerSeries, 2, ceilPointsPerSeries)
	return errors.Join(errs...)
}

// OrDefault returns l with every zero or negative field set to its
// default, so that a zero Limits means the defaults.
func (l Limits) OrDefault() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, d *int }{
		{&l.MaxTracesPerSearch, &d.MaxTracesPerSearch},
		{&l.MaxSpansPerQuery, &d.MaxSpansPerQuery},
		{&l.MaxSpansPerScan, &d.MaxSpansPerScan},
		{&l.MaxCandidateTraces, &d.MaxCandidateTraces},
		{&l.MaxSeriesPerMetricsQuery, &d.MaxSeriesPerMetricsQuery},
		{&l.MaxPointsPerSeries, &d.MaxPointsPerSeries},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return l
}

// SpanLimitMessage explains an answer cut by MaxSpansPerQuery: kept of
// asked traces were returned.
func SpanLimitMessage(kept, asked, maxSpans int) string {
	return fmt.Sprintf("partial result: %d of %d traces returned; loading more would pass the limit of %d spans per query (query.max_spans_per_query): lower the limit or narrow the search", kept, asked, maxSpans)
}

// LoadTracesLimited loads the traces ids names as LoadTraces does, in
// order, a window of concurrency traces at a time, and stops before the
// first trace that would take the spans loaded past maxSpans (the first
// trace is always kept, however large). It returns the loaded prefix:
// batches[i] is ids[i]'s trace, nil when not found; len(batches) <
// len(ids) when the limit cut the list. At most maxSpans plus one window
// of traces are held at once.
func LoadTracesLimited(ctx context.Context, db storage.Reader, ids []span.TraceID, concurrency, maxSpans int) ([]*span.Batch, error) {
	concurrency = max(concurrency, 1)
	out := make([]*span.Batch, 0, len(ids))
	total := 0
	for lo := 0; lo < len(ids); lo += concurrency {
		win := ids[lo:min(lo+concurrency, len(ids))]
		bs := make([]*span.Batch, len(win))
		errs := make([]error, len(win))
		var wg sync.WaitGroup
		for i, id := range win {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, found, err := db.FindTrace(ctx, id)
				if err != nil {
					errs[i] = err
				} else if found && len(b.Spans) > 0 {
					bs[i] = b
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b != nil {
				if total > 0 && total+len(b.Spans) > maxSpans {
					return out, nil
				}
				total += len(b.Spans)
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// LoadTraces loads the traces ids names from db, at most concurrency at a
// time, keeping their order. A trace that is not found (deleted by
// retention since the search, or never stored) has a nil batch.
func LoadTraces(ctx context.Context, db storage.Reader, ids []span.TraceID, concurrency int) ([]*span.Batch, error) {
	out := make([]*span.Batch, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			b, found, err := db.FindTrace(ctx, id)
			if err != nil {
				errs[i] = err
				return
			}
			if found && len(b.Spans) > 0 {
				out[i] = b
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
