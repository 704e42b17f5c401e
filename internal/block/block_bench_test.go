package block

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// loadBatches returns the benchmark load as batches of 100 traces.
func loadBatches(seed uint64, spans int) []*span.Batch {
	g := newLoadGen(seed)
	var out []*span.Batch
	for n := 0; n < spans; n += 1000 {
		out = append(out, g.batch(100))
	}
	return out
}

func buildLoad(tb testing.TB, seed uint64, spans int) *Builder {
	b := NewBuilder()
	for _, batch := range loadBatches(seed, spans) {
		b.Append(batch)
	}
	return b
}

func BenchmarkBuilderAppend(b *testing.B) {
	batches := loadBatches(1, 200_000)
	// Heap held, measured once outside the timed loop.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	bl := NewBuilder()
	for _, batch := range batches {
		bl.Append(batch)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap := int64(ms.HeapAlloc) - int64(before)
	spans := float64(bl.Len())
	runtime.KeepAlive(bl)
	b.ReportAllocs()
	for b.Loop() {
		bl = NewBuilder()
		for _, batch := range batches {
			bl.Append(batch)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/spans, "ns/span")
	b.ReportMetric(spans*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(heap)/spans, "heapB/span")
	b.ReportMetric(float64(bl.MemSize())/spans, "memsizeB/span")
}

func BenchmarkWrite(b *testing.B) {
	bl := buildLoad(b, 1, 200_000)
	ctx := context.Background()
	b.ReportAllocs()
	var meta Meta
	i := 0
	for b.Loop() {
		bkt := newBucket(b)
		var err error
		meta, err = bl.Write(ctx, bkt, fmt.Sprintf("b/%d", i), Meta{ID: "x"})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	spans := float64(bl.Len())
	b.ReportMetric(spans*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/spans, "ns/span")
	b.ReportMetric(float64(meta.Size)/spans, "B/span")
}

// blockSet writes n blocks of spans each and opens them.
func blockSet(b *testing.B, n, spans int, pc *cache.Cache) (objstore.Bucket, []*Reader, []span.TraceID) {
	ctx := context.Background()
	bkt := newBucket(b)
	var readers []*Reader
	var ids []span.TraceID
	for i := 0; i < n; i++ {
		bl := buildLoad(b, uint64(i+1), spans)
		for t := 0; t < bl.ntraces(); t += 97 {
			ids = append(ids, bl.traceID(t))
		}
		dir := fmt.Sprintf("t/blocks/%d", i)
		if _, err := bl.Write(ctx, bkt, dir, Meta{ID: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
		r, err := Open(ctx, bkt, dir, ReaderOptions{Cache: pc})
		if err != nil {
			b.Fatal(err)
		}
		readers = append(readers, r)
	}
	return bkt, readers, ids
}

func BenchmarkFindTrace(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", cached), func(b *testing.B) {
			var pc *cache.Cache
			if cached {
				pc = cache.New(256 << 20)
			}
			_, readers, ids := blockSet(b, 5, 200_000, pc)
			ctx := context.Background()
			var batch span.Batch
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				batch.Reset()
				id := ids[i%len(ids)]
				i += 7919
				found := false
				for _, r := range readers {
					ok, err := r.FindTrace(ctx, id, &batch)
					if err != nil {
						b.Fatal(err)
					}
					found = found || ok
				}
				if !found {
					b.Fatal("trace not found")
				}
			}
		})
	}
}

func benchSearch(b *testing.B, x querier, spans int, q *search.Query) {
	if err := q.Compile(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	hits := 0
	b.ReportAllocs()
	for b.Loop() {
		hits = 0
		if err := x.Search(ctx, q, func(storage.Hit) bool { hits++; return true }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(spans), "ns/span")
	b.ReportMetric(float64(hits), "hits")
}

var (
	needleQuery = func() *search.Query {
		return &search.Query{Service: "service-03", Conds: []search.Cond{{Scope: search.ScopeSpan, Key: "user.id", Op: search.OpEq, Value: span.StringValue("user-4242")}}}
	}
	broadQuery = func() *search.Query {
		return &search.Query{Conds: []search.Cond{{Scope: search.ScopeSpan, Key: "http.status_code", Op: search.OpGe, Value: span.IntValue(500)}}, MinDuration: 1_000_000}
	}
)

func BenchmarkSearchNeedle(b *testing.B) {
	const spans = 200_000
	b.Run("builder", func(b *testing.B) { benchSearch(b, buildLoad(b, 1, spans), spans, needleQuery()) })
	b.Run("reader", func(b *testing.B) {
		_, rs, _ := blockSet(b, 1, spans, cache.New(256<<20))
		benchSearch(b, rs[0], spans, needleQuery())
	})
}

func BenchmarkSearchBroad(b *testing.B) {
	const spans = 200_000
	b.Run("builder", func(b *testing.B) { benchSearch(b, buildLoad(b, 1, spans), spans, broadQuery()) })
	b.Run("reader", func(b *testing.B) {
		_, rs, _ := blockSet(b, 1, spans, cache.New(256<<20))
		benchSearch(b, rs[0], spans, broadQuery())
	})
	b.Run("reader-nocache", func(b *testing.B) {
		_, rs, _ := blockSet(b, 1, spans, nil)
		benchSearch(b, rs[0], spans, broadQuery())
	})
}

func BenchmarkCompact(b *testing.B) {
	bkt, readers, _ := blockSet(b, 4, 50_000, nil)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	var meta Meta
	for b.Loop() {
		var err error
		meta, err = Compact(ctx, bkt, fmt.Sprintf("t/compacted/%d", i), Meta{ID: "c"}, readers)
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	spans := float64(meta.Spans)
	b.ReportMetric(spans*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/spans, "ns/span")
	b.ReportMetric(float64(meta.Size)/spans, "B/span")
}
