package store

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// BenchmarkSearch runs a broad search (one service, one attribute value:
// about a third of the traces) over 400 k spans in five time-ordered
// blocks and a head, with the default page cache: Search (exact total)
// and SearchPage (no total: the newest sources only). It reports the
// time per query and the heap allocated per query.
func BenchmarkSearch(b *testing.B) {
	const rounds, traces, spansPerTrace = 6, 8000, 8
	dir := b.TempDir()
	bkt, err := filesystem.NewBucket(filepath.Join(dir, "blocks"))
	if err != nil {
		b.Fatal(err)
	}
	clock := newClock()
	cfg := testConfig()
	db, err := Open(context.Background(), cfg, Options{Tenant: "t1", WALDir: filepath.Join(dir, "wal"), Bucket: bkt, Registerer: prometheus.NewRegistry(), Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := uint64(clock.Now().UnixNano())
	for r := range rounds {
		batch := makeBatch(uint64(100+r), 0, traces, spansPerTrace, now+uint64(r)*uint64(traces)*1000)
		for i := range batch.Spans {
			s := &batch.Spans[i]
			method := "GET"
			if i%3 != 0 {
				method = "POST"
			}
			s.Attrs = append(s.Attrs, span.Attr{Key: "http.request.method", Value: span.StringValue(method)})
		}
		if err := db.Append(context.Background(), nil, batch); err != nil {
			b.Fatal(err)
		}
		if r < rounds-1 {
			if err := db.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	q := &search.Query{Service: "svc-1", Conds: []search.Cond{{Key: "http.request.method", Op: search.OpEq, Value: span.StringValue("GET")}}}
	if err := q.Compile(); err != nil {
		b.Fatal(err)
	}
	spans := float64(rounds * traces * spansPerTrace)
	for _, mode := range []string{"exact", "page"} {
		b.Run(mode, func(b *testing.B) {
			search := db.Search
			if mode == "page" {
				search = db.SearchPage
			}
			b.ReportAllocs()
			runtime.GC()
			var total int
			for b.Loop() {
				res, err := search(context.Background(), q, 20, nil)
				if err != nil || len(res.Hits) != 20 {
					b.Fatal(err, len(res.Hits))
				}
				total = res.Total
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/query")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/spans, "ns/span")
			b.ReportMetric(float64(total), "total")
		})
	}
}
