package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/block"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// snapshot returns every source a query must read, newest last, and a
// function that releases them.
func (db *DB) snapshot() ([]source, func()) {
	db.mu.Lock()
	blocks := slices.Clone(db.blocks)
	for _, b := range blocks {
		b.acquire()
	}
	srcs := make([]source, 0, len(blocks)+len(db.flushing)+1)
	for _, b := range blocks {
		srcs = append(srcs, b)
	}
	for _, h := range db.flushing {
		srcs = append(srcs, h)
	}
	srcs = append(srcs, db.head)
	db.mu.Unlock()
	return srcs, func() { releaseAll(blocks) }
}

// Cursor marks the last trace of a result page; the next page starts
// strictly after it in result order.
type Cursor struct {
	Start   uint64
	TraceID span.TraceID
}

// SearchResult is one page of matching traces.
type SearchResult struct {
	// Hits are newest first: by trace start time descending, then trace ID
	// ascending.
	Hits []block.Hit
	// Total is the exact number of distinct matching traces.
	Total int
	// Next is set when more hits follow this page.
	Next *Cursor
}

// before reports whether a sorts before b in result order.
func before(a, b block.Hit) bool {
	if a.Start != b.Start {
		return a.Start > b.Start
	}
	return bytes.Compare(a.TraceID[:], b.TraceID[:]) < 0
}

// Search finds the traces with at least one span matching q, across head
// and blocks, in parallel. q must be compiled. limit bounds the page; after,
// when not nil, resumes after a previous page.
func (db *DB) Search(ctx context.Context, q *search.Query, limit int, after *Cursor) (SearchResult, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("search").Observe(time.Since(start).Seconds()) }()
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	srcs, release := db.snapshot()
	defer release()

	perSource := make([][]block.Hit, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, s := range srcs {
		lo, hi := s.timeRange()
		if lo > hi || (q.End != 0 && lo > q.End) || (q.Start != 0 && hi < q.Start) {
			continue
		}
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
			var hits []block.Hit
			errs[i] = s.Search(ctx, q, func(h block.Hit) bool {
				hits = append(hits, h)
				return true
			})
			if !slices.IsSortedFunc(hits, cmpHitID) {
				slices.SortFunc(hits, cmpHitID)
			}
			perSource[i] = hits
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return SearchResult{}, fmt.Errorf("search: %w", err)
		}
	}
	merged := mergeHits(perSource)
	res := SearchResult{Total: len(merged)}
	if limit <= 0 {
		limit = 20
	}
	res.Hits = topHits(merged, limit+1, after)
	if len(res.Hits) > limit {
		res.Hits = res.Hits[:limit]
		last := res.Hits[limit-1]
		res.Next = &Cursor{Start: last.Start, TraceID: last.TraceID}
	}
	return res, nil
}

func cmpHitID(a, b block.Hit) int { return bytes.Compare(a.TraceID[:], b.TraceID[:]) }

// mergeHits merges per-source hit lists sorted by trace ID into one list of
// distinct traces, each with the earliest start and latest end seen.
func mergeHits(lists [][]block.Hit) []block.Hit {
	nonEmpty := lists[:0:0]
	n := 0
	for _, l := range lists {
		if len(l) > 0 {
			nonEmpty = append(nonEmpty, l)
			n += len(l)
		}
	}
	switch len(nonEmpty) {
	case 0:
		return nil
	case 1:
		return nonEmpty[0]
	}
	out := make([]block.Hit, 0, n)
	pos := make([]int, len(nonEmpty))
	for {
		best := -1
		for i, l := range nonEmpty {
			if pos[i] < len(l) && (best < 0 || cmpHitID(l[pos[i]], nonEmpty[best][pos[best]]) < 0) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		h := nonEmpty[best][pos[best]]
		pos[best]++
		if k := len(out) - 1; k >= 0 && out[k].TraceID == h.TraceID {
			out[k].Start = min(out[k].Start, h.Start)
			out[k].End = max(out[k].End, h.End)
			continue
		}
		out = append(out, h)
	}
}

// topHits returns the first k hits in result order that come after the
// cursor.
func topHits(hits []block.Hit, k int, after *Cursor) []block.Hit {
	var ac block.Hit
	if after != nil {
		ac = block.Hit{Start: after.Start, TraceID: after.TraceID}
	}
	// A bounded max-heap on result order keeps the k best.
	top := make([]block.Hit, 0, k)
	worse := func(i, j int) bool { return before(top[j], top[i]) } // top[0] is the worst kept
	for _, h := range hits {
		if after != nil && !before(ac, h) {
			continue
		}
		if len(top) < k {
			top = append(top, h)
			siftUp(top, len(top)-1, worse)
			continue
		}
		if before(h, top[0]) {
			top[0] = h
			siftDown(top, 0, worse)
		}
	}
	sort.Slice(top, func(i, j int) bool { return before(top[i], top[j]) })
	return top
}

func siftUp(h []block.Hit, i int, less func(i, j int) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(i, p) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []block.Hit, i int, less func(i, j int) bool) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && less(r, l) {
			m = r
		}
		if !less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// FindTrace returns every span of the trace from head and blocks, in start
// order, with exact duplicates (a span sent twice) removed. It reports
// false when no source has the trace.
func (db *DB) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("trace_by_id").Observe(time.Since(start).Seconds()) }()
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	srcs, release := db.snapshot()
	defer release()
	b := &span.Batch{}
	found := false
	for _, s := range srcs {
		ok, err := s.FindTrace(ctx, id, b)
		if err != nil {
			return nil, false, fmt.Errorf("find trace %s: %w", id, err)
		}
		found = found || ok
	}
	if !found {
		return nil, false, nil
	}
	dedupeSpans(b)
	return b, true, nil
}

func dedupeSpans(b *span.Batch) {
	slices.SortStableFunc(b.Spans, func(x, y span.Span) int {
		if c := cmp.Compare(x.StartUnixNano, y.StartUnixNano); c != 0 {
			return c
		}
		return bytes.Compare(x.SpanID[:], y.SpanID[:])
	})
	out := b.Spans[:0]
	for i := range b.Spans {
		s := &b.Spans[i]
		if k := len(out) - 1; k >= 0 && out[k].SpanID == s.SpanID && out[k].StartUnixNano == s.StartUnixNano &&
			out[k].EndUnixNano == s.EndUnixNano && out[k].Name == s.Name {
			continue
		}
		out = append(out, *s)
	}
	clear(b.Spans[len(out):])
	b.Spans = out
}

// Services lists the service names of every source, sorted.
func (db *DB) Services(ctx context.Context) ([]string, error) {
	return db.union(ctx, "services", func(s source) ([]string, error) { return s.Services(ctx) })
}

// SpanNames lists span names, of one service or ("" ) all, sorted.
func (db *DB) SpanNames(ctx context.Context, service string) ([]string, error) {
	return db.union(ctx, "span_names", func(s source) ([]string, error) { return s.SpanNames(ctx, service) })
}

// AttrKeys lists attribute keys of a scope, sorted.
func (db *DB) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	return db.union(ctx, "attr_keys", func(s source) ([]string, error) { return s.AttrKeys(ctx, scope) })
}

func (db *DB) union(ctx context.Context, kind string, f func(source) ([]string, error)) ([]string, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds()) }()
	srcs, release := db.snapshot()
	defer release()
	seen := map[string]struct{}{}
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		names, err := f(s)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			seen[n] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// AttrValues lists up to limit distinct values of an attribute, sorted by
// their string form.
func (db *DB) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("attr_values").Observe(time.Since(start).Seconds()) }()
	srcs, release := db.snapshot()
	defer release()
	type vk struct {
		t span.ValueType
		s string
	}
	seen := map[vk]span.Value{}
	for i := len(srcs) - 1; i >= 0 && len(seen) < limit; i-- { // newest first
		vals, err := srcs[i].AttrValues(ctx, scope, key, limit)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if len(seen) >= limit {
				break
			}
			seen[vk{v.Type, v.AsString()}] = v
		}
	}
	out := make([]span.Value, 0, len(seen))
	for _, v := range seen {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b span.Value) int {
		if c := cmp.Compare(a.AsString(), b.AsString()); c != 0 {
			return c
		}
		return cmp.Compare(a.Type, b.Type)
	})
	return out, nil
}
