package block

import (
	"context"
	"fmt"
	"testing"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// BenchmarkScanSpans streams span columns of the 1 M span block set (see
// BenchmarkShape1M), as the engine's metrics queries do: every span with
// its times and resource, or the error spans, or the spans of one
// attribute value with that attribute.
func BenchmarkScanSpans(b *testing.B) {
	const spans = 1_000_000
	for _, tc := range []struct {
		name string
		q    search.Query
		cols storage.Columns
	}{
		{"all", search.Query{}, storage.Columns{}},
		{"errors", search.Query{Statuses: []span.StatusCode{span.StatusError}}, storage.Columns{}},
		{"GET+attr", search.Query{Conds: []search.Cond{{Scope: search.ScopeSpan, Key: "http.request.method", Op: search.OpEq, Value: span.StringValue("GET"), Elems: true}}},
			storage.Columns{AttrKeys: []string{"http.request.method"}}},
	} {
		for _, cached := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/cache=%v", tc.name, cached), func(b *testing.B) {
				var pc *cache.Cache
				if cached {
					pc = cache.New(512 << 20)
				}
				rs := openShapeSet(b, pc)
				q := tc.q
				if err := q.Compile(); err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				n := 0
				b.ReportAllocs()
				for b.Loop() {
					n = 0
					for _, r := range rs {
						if err := r.ScanSpans(ctx, &q, tc.cols, func(*span.Span) bool { n++; return true }); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/scan")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/spans, "ns/stored-span")
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
				b.ReportMetric(float64(n), "yielded")
			})
		}
	}
}
