// Package engine executes TraceQL queries (internal/traceql) over a
// storage.Reader (internal/storage: the store, or anything keeping its
// read contract). It pushes a superset of each needed spanset filter down to the
// store's native search (traceql.SpansetFilter.Pushdown), evaluated on
// block columns. Metrics queries whose pipeline needs each span alone
// stream the matching spans' columns (storage.Reader.ScanSpans) and aggregate them
// with bounded memory; every other query loads the candidate traces
// (newest time slices first for searches), builds their span trees and
// evaluates the whole query with TraceQL semantics: spanset filters,
// spanset and structural operators, pipelines (aggregate filters, by,
// select, coalesce) and metrics functions. See docs/traceql.md
// ("Execution").
package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/traceql"
)

// Config bounds the work of one query.
type Config struct {
	// MaxCandidates bounds the traces a query loads and evaluates; beyond
	// it the result is marked Truncated.
	MaxCandidates int
	// Workers is the number of traces loaded and evaluated at once.
	Workers int
	// MaxExemplars bounds the exemplars per metrics series.
	MaxExemplars int
	// MaxSeries bounds the series a metrics query builds (compare():
	// ten times as many attribute values); the spans of further series
	// are left out and the result is marked SeriesLimited.
	MaxSeries int
	// MaxSpans, when positive, bounds the spans a metrics query reads
	// from span columns (see Metrics); at the bound the scan stops and
	// the result is marked SpansLimited. Queries that load traces are
	// bounded by MaxCandidates (and by what their Reader loads) instead.
	MaxSpans int
}

// DefaultConfig returns the defaults: 5000 candidates, 2 workers, 10
// exemplars and 1000 series.
func DefaultConfig() Config {
	return Config{MaxCandidates: 5000, Workers: 2, MaxExemplars: 10, MaxSeries: 1000}
}

// Engine executes TraceQL queries over a storage.Reader. It is safe for
// concurrent use. It relies on the Reader's contract: Search and
// SearchPage pages newest first with cursors that neither skip nor repeat
// a trace, FindTrace batches it may keep, and ScanSpans callbacks that run
// concurrently on borrowed spans (copied before they are kept).
type Engine struct {
	src storage.Reader
	cfg Config
	// noPushdown and noSpanScan turn the optimizations off, for tests
	// that compare their results with the plain evaluation.
	noPushdown, noSpanScan bool
}

// New returns an engine over src. Zero fields of cfg take their defaults.
func New(src storage.Reader, cfg Config) *Engine {
	def := DefaultConfig()
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = def.MaxCandidates
	}
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = def.MaxSeries
	}
	if cfg.MaxExemplars < 0 {
		cfg.MaxExemplars = 0
	} else if cfg.MaxExemplars == 0 {
		cfg.MaxExemplars = def.MaxExemplars
	}
	return &Engine{src: src, cfg: cfg}
}

// ErrMetricsQuery is returned by Search for a query that ends in a metrics
// function, and ErrNotMetricsQuery by Metrics for one that does not.
var (
	ErrMetricsQuery    = errors.New("this is a metrics query: run it on the metrics endpoints (query_range, query)")
	ErrNotMetricsQuery = errors.New("not a metrics query: end it with a metrics function such as | rate()")
)

// SearchRequest is one TraceQL search.
type SearchRequest struct {
	Query *traceql.Query
	// Start and End bound the start time of the spans that select
	// candidate traces, in Unix nanoseconds, both inclusive; 0 is
	// unbounded.
	Start, End uint64
	// Limit is the number of traces returned (default 20).
	Limit int
	// SpansPerSpanset bounds the spans returned per spanset (default 3);
	// Spanset.Matched still counts them all.
	SpansPerSpanset int
}

// SearchResult is the answer of Search.
type SearchResult struct {
	// Traces are the matching traces, newest first (by trace start time,
	// then trace ID).
	Traces []Trace
	// Inspected counts the candidate traces loaded and evaluated, and
	// InspectedSpans their spans.
	Inspected, InspectedSpans int
	// Truncated is set when MaxCandidates stopped the search before every
	// candidate was evaluated.
	Truncated bool
}

// Trace is one matching trace: its summary and matched spansets.
type Trace struct {
	TraceID span.TraceID
	// RootServiceName and RootName describe the root span: the earliest
	// without a parent or, when it has not arrived, the earliest whose
	// parent is missing. Both are empty for a trace without spans.
	RootServiceName, RootName string
	// HasRoot reports whether a span without a parent was found.
	HasRoot       bool
	StartUnixNano uint64
	DurationNanos uint64
	// Services counts spans and error spans per service, by span count
	// descending then name.
	Services []ServiceStat
	Spansets []Spanset
}

// ServiceStat counts a service's spans in a trace.
type ServiceStat struct {
	Name                  string
	SpanCount, ErrorCount int
}

// Spanset is a set of matched spans of one trace.
type Spanset struct {
	// Spans are at most SpansPerSpanset spans, in start order.
	Spans []Span
	// Matched is the number of spans in the set.
	Matched int
	// Labels are the set's by() groups and aggregate values.
	Labels []Label
}

// Span is a matched span and the attributes the query read or selected.
type Span struct {
	Span  *span.Span
	Attrs []Label
}

// Search runs a TraceQL search: it evaluates the query on candidate traces,
// newest first, until Limit traces match or the candidates run out. It
// returns ErrMetricsQuery for a metrics query; errors of the store
// (including ctx's deadline) are returned as they are.
func (e *Engine) Search(ctx context.Context, req SearchRequest) (*SearchResult, error) {
	p, err := compile(req.Query)
	if err != nil {
		return nil, err
	}
	if p.metrics != nil {
		return nil, ErrMetricsQuery
	}
	if req.Start, req.End, err = e.boundRange(ctx, req.Start, req.End); err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 20
	}
	spss := req.SpansPerSpanset
	if spss <= 0 {
		spss = 3
	}
	res := &SearchResult{}
	var mu sync.Mutex
	byStart := func(a, b Trace) int {
		if c := cmp.Compare(b.StartUnixNano, a.StartUnixNano); c != 0 {
			return c
		}
		return bytes.Compare(a.TraceID[:], b.TraceID[:])
	}
	// Newest time slices first: the newest matches are usually found in
	// the newest blocks, and the store skips the blocks outside a slice.
	st := &scanState{budget: e.cfg.MaxCandidates, seen: map[span.TraceID]struct{}{}}
	for _, w := range searchWindows(req.Start, req.End) {
		found := 0
		err = e.scan(ctx, p, w[0], w[1], res, st, func(t *trace, sets []spanset) bool {
			tr := p.traceResult(t, sets, spss)
			mu.Lock()
			defer mu.Unlock()
			res.Traces = append(res.Traces, tr)
			found++
			return found < limit
		})
		if err != nil {
			return nil, err
		}
		slices.SortFunc(res.Traces, byStart)
		if len(res.Traces) > limit {
			res.Traces = res.Traces[:limit]
		}
		// A trace not found yet has no pushed-down match at or after
		// w[0], so it started before w[0]: with limit traces starting
		// at or after it, no older slice can change the answer.
		if len(res.Traces) == limit && res.Traces[limit-1].StartUnixNano >= w[0] || res.Truncated {
			break
		}
	}
	return res, nil
}

// firstWindow is the width of the newest time slice a search scans.
const firstWindow = 15_000_000_000 // 15 s

// searchWindows splits [start, end] (inclusive, Unix nanoseconds) into
// disjoint slices, newest first, each four times as wide as the one
// before, the first firstWindow wide. An unbounded or short range is one
// slice.
func searchWindows(start, end uint64) [][2]uint64 {
	if start == 0 || end == 0 || end <= start || end-start <= 4*firstWindow {
		return [][2]uint64{{start, end}}
	}
	var out [][2]uint64
	hi, w := end, uint64(firstWindow)
	for {
		if end-start <= w || end-w <= start {
			return append(out, [2]uint64{start, hi})
		}
		lo := end - w
		out = append(out, [2]uint64{lo, hi})
		hi, w = lo-1, w*4
	}
}

// boundRange asks the source, when it bounds search ranges per tenant
// (storage.RangeBounder), for the range to search; once per request,
// before the range is split into windows.
func (e *Engine) boundRange(ctx context.Context, start, end uint64) (uint64, uint64, error) {
	return storage.BoundRange(ctx, e.src, start, end)
}

// scanState is what successive scans of one query share: the candidate
// budget left (MaxCandidates) and the traces already evaluated.
type scanState struct {
	budget int
	seen   map[span.TraceID]struct{}
}

// scan pages through the candidate traces newest first, loads and
// evaluates them with the configured workers, and calls emit (possibly
// concurrently) for each trace with matching spansets until emit returns
// false, the candidates run out, or MaxCandidates is reached. st, when
// not nil, carries the budget and the traces evaluated by earlier scans
// of the same query (which it skips).
func (e *Engine) scan(ctx context.Context, p *program, start, end uint64, res *SearchResult, st *scanState, emit func(*trace, []spanset) bool) error {
	if st == nil {
		st = &scanState{budget: e.cfg.MaxCandidates}
	}
	queries := plan(p.q)
	if e.noPushdown {
		queries = []search.Query{{}}
	}
	for i := range queries {
		queries[i].Start, queries[i].End = start, end
		if err := queries[i].Compile(); err != nil {
			return fmt.Errorf("pushdown: %w", err)
		}
	}
	var truncated bool
	next := e.candidates(ctx, queries, &st.budget, &truncated)
	var stop bool
	var mu sync.Mutex
	for !stop {
		ids, more, err := next()
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		errs := make([]error, len(ids))
		sem := make(chan struct{}, e.cfg.Workers)
		var wg sync.WaitGroup
		for k, id := range ids {
			mu.Lock()
			done := stop
			mu.Unlock()
			if done {
				break
			}
			if st.seen != nil {
				if _, ok := st.seen[id]; ok {
					continue
				}
				st.seen[id] = struct{}{}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				// A bug in evaluation must fail this query, not the process.
				defer func() {
					if r := recover(); r != nil {
						errs[k] = fmt.Errorf("BUG: evaluating trace %s: %v", id, r)
					}
				}()
				b, ok, err := e.src.FindTrace(ctx, id)
				if err != nil {
					errs[k] = err
					return
				}
				if !ok || len(b.Spans) == 0 {
					return
				}
				t := newTrace(id, b.Spans)
				sets := p.run(t)
				mu.Lock()
				res.Inspected++
				res.InspectedSpans += len(b.Spans)
				mu.Unlock()
				if len(sets) > 0 && !emit(t, sets) {
					mu.Lock()
					stop = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if !more {
			break
		}
	}
	res.Truncated = res.Truncated || truncated && !stop
	return ctx.Err()
}

// candidates returns an iterator over candidate trace IDs, newest first,
// in chunks; more is false with the last chunk. With one search query it
// pages through the store lazily; with several (an || of filters) it
// gathers every query's candidates up front. Either way it stops at
// MaxCandidates (*remaining, shared by the scans of one query) and then
// sets *truncated if more candidates remained.
func (e *Engine) candidates(ctx context.Context, queries []search.Query, remaining *int, truncated *bool) func() ([]span.TraceID, bool, error) {
	if len(queries) == 1 {
		var cur *storage.Cursor
		page := 100
		done := false
		return func() ([]span.TraceID, bool, error) {
			if done || *remaining <= 0 {
				return nil, false, nil
			}
			n := min(page, *remaining)
			page = 1000
			r, err := e.src.SearchPage(ctx, &queries[0], n, cur)
			if err != nil {
				return nil, false, err
			}
			ids := make([]span.TraceID, len(r.Hits))
			for i, h := range r.Hits {
				ids[i] = h.TraceID
			}
			*remaining -= len(ids)
			cur = r.Next
			done = r.Next == nil
			if !done && *remaining <= 0 {
				*truncated = true
			}
			return ids, !done && *remaining > 0, nil
		}
	}
	type hit struct {
		id    span.TraceID
		start uint64
	}
	var all []hit
	seen := map[span.TraceID]bool{}
	gathered := false
	return func() ([]span.TraceID, bool, error) {
		if gathered {
			return nil, false, nil
		}
		gathered = true
		for i := range queries {
			var cur *storage.Cursor
			for {
				r, err := e.src.SearchPage(ctx, &queries[i], 1000, cur)
				if err != nil {
					return nil, false, err
				}
				for _, h := range r.Hits {
					if !seen[h.TraceID] {
						seen[h.TraceID] = true
						all = append(all, hit{h.TraceID, h.Start})
					}
				}
				if r.Next == nil || len(all) >= 4*max(*remaining, 0) {
					break
				}
				cur = r.Next
			}
		}
		slices.SortFunc(all, func(a, b hit) int {
			if c := cmp.Compare(b.start, a.start); c != 0 {
				return c
			}
			return bytes.Compare(a.id[:], b.id[:])
		})
		if len(all) > max(*remaining, 0) {
			*truncated = true
			all = all[:max(*remaining, 0)]
		}
		*remaining -= len(all)
		ids := make([]span.TraceID, len(all))
		for i, h := range all {
			ids[i] = h.id
		}
		return ids, false, nil
	}
}

// traceResult builds the answer for one matching trace.
func (p *program) traceResult(t *trace, sets []spanset, spss int) Trace {
	tr := Trace{TraceID: t.id, StartUnixNano: t.start, DurationNanos: t.end - min(t.start, t.end)}
	if t.root >= 0 {
		r := &t.spans[t.root]
		tr.RootName = r.Name
		tr.RootServiceName = r.Resource.ServiceName()
		tr.HasRoot = r.ParentSpanID.IsZero()
	}
	for i := range t.spans {
		s := &t.spans[i]
		name := s.Resource.ServiceName()
		k := slices.IndexFunc(tr.Services, func(x ServiceStat) bool { return x.Name == name })
		if k < 0 {
			tr.Services = append(tr.Services, ServiceStat{Name: name})
			k = len(tr.Services) - 1
		}
		tr.Services[k].SpanCount++
		if s.StatusCode == span.StatusError {
			tr.Services[k].ErrorCount++
		}
	}
	slices.SortFunc(tr.Services, func(a, b ServiceStat) int {
		if c := cmp.Compare(b.SpanCount, a.SpanCount); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for _, ss := range sets {
		out := Spanset{Matched: len(ss.spans), Labels: ss.labels}
		for _, i := range ss.spans[:min(len(ss.spans), spss)] {
			out.Spans = append(out.Spans, Span{Span: &t.spans[i], Attrs: p.spanAttrs(t, int(i))})
		}
		tr.Spansets = append(tr.Spansets, out)
	}
	return tr
}

// spanAttrs returns the fields the query reads or selects that span i has.
func (p *program) spanAttrs(t *trace, i int) []Label {
	var out []Label
	for _, f := range p.out {
		if v := p.eval(t, i, f.expr); !v.Nil() {
			out = append(out, Label{Key: f.key, Value: v})
		}
	}
	return out
}
