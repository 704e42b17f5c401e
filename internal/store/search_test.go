package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// fakeSource reports fixed hits, sorted by trace ID as a block does.
type fakeSource struct {
	hits     []storage.Hit
	lo, hi   uint64
	searched atomic.Int32
}

func (f *fakeSource) Search(ctx context.Context, q *search.Query, fn func(storage.Hit) bool) error {
	f.searched.Add(1)
	for _, h := range f.hits {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(h) {
			return nil
		}
	}
	return nil
}

func (f *fakeSource) MatchTrace(ctx context.Context, q *search.Query, id span.TraceID) (storage.Hit, bool, error) {
	for _, h := range f.hits {
		if h.TraceID == id {
			return h, true, nil
		}
	}
	return storage.Hit{}, false, nil
}

func (f *fakeSource) FindTrace(context.Context, span.TraceID, *span.Batch) (bool, error) {
	return false, nil
}
func (f *fakeSource) Services(context.Context) ([]string, error)          { return nil, nil }
func (f *fakeSource) SpanNames(context.Context, string) ([]string, error) { return nil, nil }
func (f *fakeSource) AttrKeys(context.Context, search.Scope) ([]string, error) {
	return nil, nil
}
func (f *fakeSource) AttrValues(context.Context, search.Scope, string, int) ([]span.Value, error) {
	return nil, nil
}
func (f *fakeSource) timeRange() (uint64, uint64) { return f.lo, f.hi }

func TestMergeAndTopK(t *testing.T) {
	h := func(i int, start uint64) storage.Hit {
		return storage.Hit{TraceID: tid(9, i), Start: start, End: start + 1}
	}
	a := &fakeSource{hits: []storage.Hit{h(1, 10), h(2, 30), h(4, 20)}}
	b := &fakeSource{hits: []storage.Hit{h(2, 25), h(3, 40)}}
	var merged []storage.Hit
	if err := mergeSources(context.Background(), []source{a, &fakeSource{}, b}, &search.Query{}, func(h storage.Hit) { merged = append(merged, h) }); err != nil {
		t.Fatal(err)
	}
	if len(merged) != 4 {
		t.Fatalf("merged %d, want 4", len(merged))
	}
	if merged[1].TraceID != tid(9, 2) || merged[1].Start != 25 || merged[1].End != 31 {
		t.Fatalf("merged trace 2 = %+v, want start 25 end 31", merged[1])
	}
	top := newTopK(3, false)
	for _, m := range merged {
		top.offer(m, -1)
	}
	res := top.page(2)
	if len(res.Hits) != 2 || res.Hits[0].TraceID != tid(9, 3) || res.Hits[1].TraceID != tid(9, 2) || res.Next == nil || res.Next.TraceID != tid(9, 2) {
		t.Fatalf("top 2 = %+v next %+v", res.Hits, res.Next)
	}
	rest := newTopK(11, false)
	for _, m := range merged {
		if res.Next.After(m) {
			rest.offer(m, -1)
		}
	}
	if r := rest.page(10); len(r.Hits) != 2 || r.Hits[0].TraceID != tid(9, 4) || r.Hits[1].TraceID != tid(9, 1) || r.Next != nil {
		t.Fatalf("after cursor = %+v", r.Hits)
	}
	// A source out of trace ID order is a bug, reported as an error.
	bad := &fakeSource{hits: []storage.Hit{h(3, 1), h(2, 1)}}
	if err := mergeSources(context.Background(), []source{bad}, &search.Query{}, func(storage.Hit) {}); err == nil {
		t.Fatal("out-of-order source: no error")
	}
}

// A report of a trace already kept merges into its entry.
func TestTopKMergesReports(t *testing.T) {
	top := newTopK(2, true)
	top.offer(storage.Hit{TraceID: tid(1, 1), Start: 50, End: 60}, 0)
	top.offer(storage.Hit{TraceID: tid(1, 2), Start: 40, End: 45}, 0)
	top.offer(storage.Hit{TraceID: tid(1, 1), Start: 30, End: 70}, 1) // now older than trace 2
	got := top.sorted()
	if len(got) != 2 || got[0].hit.TraceID != tid(1, 2) || got[1].hit != (storage.Hit{TraceID: tid(1, 1), Start: 30, End: 70}) || !got[1].from(0) || !got[1].from(1) || got[1].from(2) {
		t.Fatalf("entries %+v", got)
	}
}

// scatterBatch builds the spans of traces [first, first+n) of one round:
// each trace gets 1-3 spans at random times around base, so that a
// trace's spans land in several sources (a round is flushed into a block)
// with starts that move its earliest start between sources.
func scatterBatch(rng *rand.Rand, round, first, n int, base uint64) *span.Batch {
	b := &span.Batch{}
	res := make([]*span.Resource, 3)
	for i := range res {
		res[i] = &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue(fmt.Sprintf("svc-%d", i))}}}
		b.Resources = append(b.Resources, res[i])
	}
	sc := &span.Scope{Name: "test"}
	b.Scopes = append(b.Scopes, sc)
	for i := first; i < first+n; i++ {
		var id span.TraceID
		binary.BigEndian.PutUint64(id[:8], 77)
		binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
		for j := 0; j < 1+rng.IntN(3); j++ {
			var sid span.SpanID
			binary.BigEndian.PutUint64(sid[:], uint64(round)<<40|uint64(i)<<8|uint64(j)+1)
			st := base + uint64(rng.IntN(10_000))*1000
			b.Spans = append(b.Spans, span.Span{
				TraceID: id, SpanID: sid, Name: fmt.Sprintf("op-%d", rng.IntN(3)), Kind: span.KindServer,
				StartUnixNano: st, EndUnixNano: st + uint64(rng.IntN(5000)),
				Resource: res[rng.IntN(3)], Scope: sc,
				Attrs: []span.Attr{{Key: "n", Value: span.IntValue(int64(rng.IntN(4)))}},
			})
		}
	}
	return b
}

// TestSearchPageMatchesSearch pages through random queries with Search
// and with SearchPage over blocks, a head and traces spread over several
// of them, and checks that both return the same pages (hits with their
// starts, cursors), and that Search's total is the number paged.
func TestSearchPageMatchesSearch(t *testing.T) {
	for _, layout := range []string{"overlapping", "partitioned"} {
		t.Run(layout, func(t *testing.T) {
			db := openTestDB(t, t.TempDir(), testConfig(), newClock())
			defer db.Close()
			rng := rand.New(rand.NewPCG(5, 6))
			base := uint64(db.clock.Now().UnixNano())
			for round := 0; round < 6; round++ {
				first, n := 0, 120
				b := base
				if layout == "partitioned" {
					// rounds mostly disjoint in time and traces, with a
					// few traces crossing from one round to the next
					first, b = round*100, base+uint64(round)*10_000_000
				}
				db.appendBatch(t, scatterBatch(rng, round, first, n, b))
				if round < 5 {
					if err := db.Flush(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			queries := []search.Query{
				{},
				{Service: "svc-1"},
				{Conds: []search.Cond{{Key: "n", Op: search.OpEq, Value: span.IntValue(2)}}},
				{SpanName: "op-0", Service: "svc-2"},
				{Start: base + 20_000_000, End: base + 45_000_000},
				{Start: base + 3_000_000, Conds: []search.Cond{{Key: "n", Op: search.OpGe, Value: span.IntValue(1)}}},
			}
			for qi := range queries {
				q := &queries[qi]
				if err := q.Compile(); err != nil {
					t.Fatal(err)
				}
				for _, limit := range []int{1, 7, 40, 1000} {
					var cur *storage.Cursor
					paged := 0
					for page := 0; ; page++ {
						want, err := db.Search(context.Background(), q, limit, cur)
						if err != nil {
							t.Fatal(err)
						}
						got, err := db.SearchPage(context.Background(), q, limit, cur)
						if err != nil {
							t.Fatal(err)
						}
						if !sameHits(got.Hits, want.Hits) || !reflect.DeepEqual(got.Next, want.Next) {
							t.Fatalf("query %d limit %d page %d: SearchPage\n %+v next %+v\nSearch\n %+v next %+v", qi, limit, page, got.Hits, got.Next, want.Hits, want.Next)
						}
						if got.TotalIsLowerBound != (got.Next != nil) || got.Total < len(got.Hits) {
							t.Fatalf("SearchPage total %d (lower bound %v) for %d hits", got.Total, got.TotalIsLowerBound, len(got.Hits))
						}
						if page == 0 {
							defer func(total int) {
								if paged != total {
									t.Errorf("query %d limit %d: paged %d traces, total %d", qi, limit, paged, total)
								}
							}(want.Total)
						}
						paged += len(want.Hits)
						if want.Next == nil {
							break
						}
						cur = want.Next
					}
				}
			}
		})
	}
}

// sameHits compares pages by trace and start (SearchPage's End may leave
// out sources it did not read).
func sameHits(a, b []storage.Hit) bool {
	return slices.EqualFunc(a, b, func(x, y storage.Hit) bool { return x.TraceID == y.TraceID && x.Start == y.Start })
}

// TestSearchPageStopsEarly checks that a page found in the newest sources
// does not read the older ones, and that a trace also matching in an
// older source takes its earlier start there (and leaves the page it
// seemed to belong to).
func TestSearchPageStopsEarly(t *testing.T) {
	h := func(i int, start uint64) storage.Hit {
		return storage.Hit{TraceID: tid(4, i), Start: start, End: start + 5}
	}
	sorted := func(hs ...storage.Hit) []storage.Hit { slices.SortFunc(hs, cmpHitID); return hs }
	newest := &fakeSource{lo: 300, hi: 400, hits: sorted(h(1, 390), h(2, 380), h(8, 375), h(3, 370), h(4, 305))}
	middle := &fakeSource{lo: 200, hi: 299, hits: sorted(h(5, 290), h(6, 280), h(3, 250))} // trace 3 started earlier
	oldest := &fakeSource{lo: 0, hi: 199, hits: sorted(h(7, 100))}
	srcs := []source{oldest, middle, newest} // as a snapshot lists them
	q := &search.Query{}
	defer func(w int) { pageWorkers = w }(pageWorkers)
	pageWorkers = 1 // deterministic: one source after the other

	res, ok, err := searchPage(context.Background(), srcs, q, 2, nil)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !sameHits(res.Hits, []storage.Hit{h(1, 390), h(2, 380)}) || res.Next == nil || !res.TotalIsLowerBound || res.Total != 3 {
		t.Fatalf("page 1: %+v next %+v total %d", res.Hits, res.Next, res.Total)
	}
	if oldest.searched.Load() != 0 || middle.searched.Load() != 0 {
		t.Fatalf("older sources read: middle %d, oldest %d", middle.searched.Load(), oldest.searched.Load())
	}
	// Page 2: trace 3 (370 in the newest source) starts at 250 (middle):
	// trace 4 (305) comes before it.
	res, ok, err = searchPage(context.Background(), srcs, q, 2, res.Next)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !sameHits(res.Hits, []storage.Hit{h(8, 375), h(4, 305)}) || res.Next == nil {
		t.Fatalf("page 2: %+v next %+v", res.Hits, res.Next)
	}
	res, _, _ = searchPage(context.Background(), srcs, q, 10, res.Next)
	if !sameHits(res.Hits, []storage.Hit{h(5, 290), h(6, 280), h(3, 250), h(7, 100)}) || res.Next != nil || res.TotalIsLowerBound || res.Total != 4 {
		t.Fatalf("page 3: %+v next %+v total %d", res.Hits, res.Next, res.Total)
	}
}
