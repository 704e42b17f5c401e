// Package storagetest checks an implementation of storage.Reader against
// the contract written on it: result order, cursor paging without
// duplicates or gaps, exact and lower-bound totals, limits, ownership of
// returned data, ScanSpans' early stop and column selection,
// cancellation, the tenant carried in the context and concurrent use. Any
// implementation (the store, a cluster querier) runs it from its tests
// with Run.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// Open returns a Reader of tenant that holds every span of batches, as
// if each batch had been written in turn. An implementation spreads them
// over the places it reads (for the store: blocks, sealed heads, the
// head), so that traces and duplicate spans cross them.
type Open func(t *testing.T, tenant string, batches []*span.Batch) storage.Reader

const (
	// numTraces is the number of traces of the data set.
	numTraces = 50
	// numBatches is the number of batches they are sent in.
	numBatches = 4
	// base is the first trace's start, in Unix nanoseconds.
	base = uint64(1_700_000_000_000_000_000)
)

// traceID returns trace i's ID: IDs are not in start order.
func traceID(i int) span.TraceID { return span.TraceID{0: 0xc1, 15: byte((i*37)%251 + 1)} }

// traceStart returns trace i's start: traces 2k and 2k+1 start together,
// so that ties are broken by trace ID.
func traceStart(i int) uint64 { return base + uint64(i/2)*1_000_000 }

func service(i int) string { return fmt.Sprintf("svc%d", i%3) }

// Data returns the data set Run stores: numTraces traces of three spans
// (a root and two children) of one service each, the spans of a trace
// spread over the batches, and trace 0's root sent twice (in the first
// and the last batch).
func Data() []*span.Batch {
	batches := make([]*span.Batch, numBatches)
	res := make([]*span.Resource, 3)
	for i := range res {
		res[i] = &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue(service(i))}}}
	}
	for b := range batches {
		batches[b] = &span.Batch{Resources: res}
	}
	for i := range numTraces {
		for j := range 3 {
			s := span.Span{
				TraceID:       traceID(i),
				SpanID:        span.SpanID{0: byte(i), 7: byte(j + 1)},
				Name:          fmt.Sprintf("op%d", j),
				Kind:          span.KindServer,
				StartUnixNano: traceStart(i) + uint64(j)*1000,
				EndUnixNano:   traceStart(i) + uint64(10_000-j*1000),
				Resource:      res[i%3],
				Attrs:         []span.Attr{{Key: "k", Value: span.StringValue(fmt.Sprintf("v%d", i%5))}},
			}
			if j > 0 {
				s.ParentSpanID = span.SpanID{0: byte(i), 7: 1}
			}
			b := (i + j) % numBatches
			batches[b].Spans = append(batches[b].Spans, s)
			if i == 0 && j == 0 {
				batches[numBatches-1].Spans = append(batches[numBatches-1].Spans, s)
			}
		}
	}
	return batches
}

// expected returns the hits of the traces of the data set whose service
// is svc ("": all), in result order.
func expected(svc string) []storage.Hit {
	var out []storage.Hit
	for i := range numTraces {
		if svc == "" || service(i) == svc {
			out = append(out, storage.Hit{TraceID: traceID(i), Start: traceStart(i), End: traceStart(i) + 10_000})
		}
	}
	slices.SortFunc(out, func(a, b storage.Hit) int {
		if storage.Less(a, b) {
			return -1
		}
		return 1
	})
	return out
}

func query(t *testing.T, svc string) *search.Query {
	t.Helper()
	q := &search.Query{Service: svc}
	if err := q.Compile(); err != nil {
		t.Fatal(err)
	}
	return q
}

type pager func(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error)

// pages pages through q with limit and returns every page.
func pages(t *testing.T, p pager, q *search.Query, limit int) []storage.SearchResult {
	t.Helper()
	var out []storage.SearchResult
	var cur *storage.Cursor
	for n := 0; ; n++ {
		if n > numTraces+1 {
			t.Fatalf("paging with limit %d does not end", limit)
		}
		res, err := p(context.Background(), q, limit, cur)
		if err != nil {
			t.Fatalf("page %d (limit %d): %v", n, limit, err)
		}
		out = append(out, res)
		if res.Next == nil {
			return out
		}
		cur = res.Next
	}
}

// Run checks r's contract: open is called once, with Data.
func Run(t *testing.T, tenant string, open Open) {
	r := open(t, tenant, Data())
	t.Run("SearchPaging", func(t *testing.T) { testSearchPaging(t, r) })
	t.Run("SearchPage", func(t *testing.T) { testSearchPage(t, r) })
	t.Run("DefaultLimit", func(t *testing.T) { testDefaultLimit(t, r) })
	t.Run("FindTrace", func(t *testing.T) { testFindTrace(t, r) })
	t.Run("ScanSpans", func(t *testing.T) { testScanSpans(t, r) })
	t.Run("Lists", func(t *testing.T) { testLists(t, r) })
	t.Run("Cancelled", func(t *testing.T) { testCancelled(t, r) })
	t.Run("Tenant", func(t *testing.T) { testTenant(t, r, tenant) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, r) })
}

// testSearchPaging: Search pages are in result order, of limit hits but
// the last, with the exact total on each, and together list every match
// once.
func testSearchPaging(t *testing.T, r storage.Reader) {
	for _, svc := range []string{"", "svc1"} {
		want := expected(svc)
		for _, limit := range []int{1, 7, len(want), 100} {
			ps := pages(t, r.Search, query(t, svc), limit)
			var got []storage.Hit
			for n, p := range ps {
				if p.Total != len(want) || p.TotalIsLowerBound {
					t.Errorf("service %q limit %d page %d: Total %d (lower bound %v), want exactly %d", svc, limit, n, p.Total, p.TotalIsLowerBound, len(want))
				}
				if p.Next != nil && len(p.Hits) != limit {
					t.Errorf("service %q limit %d page %d: %d hits before the last page", svc, limit, n, len(p.Hits))
				}
				if p.Next != nil && (p.Next.Start != p.Hits[len(p.Hits)-1].Start || p.Next.TraceID != p.Hits[len(p.Hits)-1].TraceID) {
					t.Errorf("service %q limit %d page %d: Next %+v is not the page's last hit", svc, limit, n, *p.Next)
				}
				got = append(got, p.Hits...)
			}
			if !slices.Equal(got, want) {
				t.Errorf("service %q limit %d: paged hits\n%v\nwant (in result order, each once)\n%v", svc, limit, got, want)
			}
		}
	}
}

// testSearchPage: SearchPage returns Search's pages (traces, order, Start,
// Next) with a total between the page's and the exact one.
func testSearchPage(t *testing.T, r storage.Reader) {
	for _, svc := range []string{"", "svc2"} {
		q := query(t, svc)
		exact := len(expected(svc))
		for _, limit := range []int{1, 5, 100} {
			var cur *storage.Cursor
			for n := 0; ; n++ {
				if n > numTraces+1 {
					t.Fatalf("service %q: SearchPage paging with limit %d does not end", svc, limit)
				}
				ctx := context.Background()
				p, err := r.SearchPage(ctx, q, limit, cur)
				if err != nil {
					t.Fatal(err)
				}
				s, err := r.Search(ctx, q, limit, cur)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Hits) != len(s.Hits) || (p.Next == nil) != (s.Next == nil) || (p.Next != nil && *p.Next != *s.Next) {
					t.Fatalf("service %q limit %d page %d: SearchPage %+v, Search %+v", svc, limit, n, p, s)
				}
				for i := range p.Hits {
					if p.Hits[i].TraceID != s.Hits[i].TraceID || p.Hits[i].Start != s.Hits[i].Start || p.Hits[i].End > s.Hits[i].End {
						t.Errorf("service %q limit %d page %d hit %d: SearchPage %+v, Search %+v", svc, limit, n, i, p.Hits[i], s.Hits[i])
					}
				}
				low := len(p.Hits)
				if p.Next != nil {
					low++
					if !p.TotalIsLowerBound {
						t.Errorf("service %q limit %d page %d: more pages follow but TotalIsLowerBound is not set", svc, limit, n)
					}
				}
				if p.Total < low || p.Total > exact {
					t.Errorf("service %q limit %d page %d: Total %d, want from %d to %d", svc, limit, n, p.Total, low, exact)
				}
				if p.Next == nil {
					break
				}
				cur = p.Next
			}
		}
	}
}

// testDefaultLimit: a limit of zero or less asks for 20.
func testDefaultLimit(t *testing.T, r storage.Reader) {
	for _, limit := range []int{0, -3} {
		res, err := r.Search(context.Background(), query(t, ""), limit, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 20 || res.Next == nil {
			t.Errorf("Search(limit %d) = %d hits, Next %v; want 20 and a cursor", limit, len(res.Hits), res.Next)
		}
	}
}

// testFindTrace: whole traces in start order without the duplicate; a
// missing trace is (nil, false, nil); the batch is the caller's.
func testFindTrace(t *testing.T, r storage.Reader) {
	ctx := context.Background()
	for _, i := range []int{0, 1, numTraces - 1} {
		b, ok, err := r.FindTrace(ctx, traceID(i))
		if err != nil || !ok {
			t.Fatalf("FindTrace(trace %d) = %v, %v", i, ok, err)
		}
		if len(b.Spans) != 3 {
			t.Errorf("trace %d: %d spans, want 3 (the duplicate removed)", i, len(b.Spans))
		}
		if !slices.IsSortedFunc(b.Spans, func(x, y span.Span) int { return int(x.StartUnixNano) - int(y.StartUnixNano) }) {
			t.Errorf("trace %d: spans not in start order", i)
		}
		// The caller may modify what it got.
		for k := range b.Spans {
			b.Spans[k].Name = "changed"
			b.Spans[k].Resource.Attrs[0].Value = span.StringValue("changed")
			b.Spans[k].Attrs[0].Key = "changed"
		}
		again, _, err := r.FindTrace(ctx, traceID(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range again.Spans {
			if s.Name == "changed" || s.Attrs[0].Key == "changed" || s.Resource.Attrs[0].Value.Str != service(i) {
				t.Fatalf("trace %d: a change to a returned batch reached the Reader", i)
			}
		}
	}
	b, ok, err := r.FindTrace(ctx, span.TraceID{1})
	if b != nil || ok || err != nil {
		t.Errorf("FindTrace(missing) = %v, %v, %v; want nil, false, nil", b, ok, err)
	}
}

// testScanSpans: every matching span, the duplicate at most twice;
// columns filled in only when asked; an early stop returns nil.
func testScanSpans(t *testing.T, r storage.Reader) {
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[span.SpanID]int{}
	parents := 0
	err := r.ScanSpans(ctx, query(t, "svc0"), storage.Columns{Parent: true}, func(s *span.Span) bool {
		mu.Lock()
		defer mu.Unlock()
		seen[s.SpanID]++
		if !s.ParentSpanID.IsZero() {
			parents++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 3 * len(expected("svc0"))
	if len(seen) != want || parents < 2*len(expected("svc0")) {
		t.Errorf("ScanSpans(svc0, Parent) saw %d distinct spans (%d with parents), want %d (%d)", len(seen), parents, want, 2*len(expected("svc0")))
	}
	for id, n := range seen {
		if n > 2 || (n == 2 && id != (span.SpanID{0: 0, 7: 1})) {
			t.Errorf("span %s yielded %d times", id, n)
		}
	}
	err = r.ScanSpans(ctx, query(t, ""), storage.Columns{}, func(s *span.Span) bool {
		if !s.ParentSpanID.IsZero() || len(s.Attrs) != 0 {
			t.Errorf("span %s: columns filled in that were not asked for", s.SpanID)
			return false
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	err = r.ScanSpans(ctx, query(t, ""), storage.Columns{}, func(*span.Span) bool { return calls.Add(1) < 5 })
	if err != nil {
		t.Errorf("ScanSpans stopped by fn = %v, want nil", err)
	}
	if n := calls.Load(); n < 5 || n >= int64(3*numTraces) {
		t.Errorf("ScanSpans stopped by fn after %d calls, want from 5 to fewer than every span", n)
	}
}

// testLists: distinct and sorted; AttrValues bounded by its limit.
func testLists(t *testing.T, r storage.Reader) {
	ctx := context.Background()
	svcs, err := r.Services(ctx)
	if err != nil || !slices.Equal(svcs, []string{"svc0", "svc1", "svc2"}) {
		t.Errorf("Services = %v, %v", svcs, err)
	}
	names, err := r.SpanNames(ctx, "")
	if err != nil || !slices.Equal(names, []string{"op0", "op1", "op2"}) {
		t.Errorf("SpanNames = %v, %v", names, err)
	}
	keys, err := r.AttrKeys(ctx, search.ScopeSpan)
	if err != nil || !slices.Equal(keys, []string{"k"}) {
		t.Errorf("AttrKeys(span) = %v, %v", keys, err)
	}
	for _, c := range []struct {
		limit int
		want  int
	}{{0, 0}, {3, 3}, {100, 5}} {
		vals, err := r.AttrValues(ctx, search.ScopeSpan, "k", c.limit)
		if err != nil || len(vals) != c.want {
			t.Errorf("AttrValues(k, %d) = %v, %v; want %d values", c.limit, vals, err, c.want)
		}
		if !slices.IsSortedFunc(vals, func(a, b span.Value) int {
			if a.AsString() < b.AsString() {
				return -1
			}
			return 1
		}) {
			t.Errorf("AttrValues(k, %d) = %v, not sorted", c.limit, vals)
		}
	}
}

// calls runs every Reader method with ctx and returns their errors, by
// name.
func calls(t *testing.T, ctx context.Context, r storage.Reader) map[string]error {
	q := query(t, "")
	errs := map[string]error{}
	_, errs["Search"] = r.Search(ctx, q, 10, nil)
	_, errs["SearchPage"] = r.SearchPage(ctx, q, 10, nil)
	_, _, errs["FindTrace"] = r.FindTrace(ctx, span.TraceID{1})
	errs["ScanSpans"] = r.ScanSpans(ctx, q, storage.Columns{}, func(*span.Span) bool { return true })
	_, errs["Services"] = r.Services(ctx)
	_, errs["SpanNames"] = r.SpanNames(ctx, "")
	_, errs["AttrKeys"] = r.AttrKeys(ctx, search.ScopeAny)
	_, errs["AttrValues"] = r.AttrValues(ctx, search.ScopeSpan, "k", 10)
	return errs
}

// testCancelled: a call on a done context returns an error wrapping
// ctx.Err().
func testCancelled(t *testing.T, r storage.Reader) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, err := range calls(t, ctx, r) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a cancelled context = %v, want an error wrapping context.Canceled", name, err)
		}
	}
}

// testTenant: the tenant in the context is the Reader's (or none) or the
// call fails with ErrUnknownTenant.
func testTenant(t *testing.T, r storage.Reader, tenant string) {
	for name, err := range calls(t, storage.WithTenant(context.Background(), tenant), r) {
		if err != nil {
			t.Errorf("%s for tenant %q = %v", name, tenant, err)
		}
	}
	for name, err := range calls(t, storage.WithTenant(context.Background(), tenant+"-other"), r) {
		if !errors.Is(err, storage.ErrUnknownTenant) {
			t.Errorf("%s for another tenant = %v, want an error wrapping ErrUnknownTenant", name, err)
		}
	}
}

// testConcurrent: concurrent calls give the answers of sequential ones.
func testConcurrent(t *testing.T, r storage.Reader) {
	want := expected("")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			res, err := r.Search(ctx, query(t, ""), 10, &storage.Cursor{Start: want[g].Start, TraceID: want[g].TraceID})
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.Equal(res.Hits, want[g+1:g+11]) {
				t.Errorf("goroutine %d: concurrent page differs from the expected one", g)
			}
			if _, ok, err := r.FindTrace(ctx, traceID(g)); !ok || err != nil {
				t.Errorf("goroutine %d: FindTrace = %v, %v", g, ok, err)
			}
		}()
	}
	wg.Wait()
}
