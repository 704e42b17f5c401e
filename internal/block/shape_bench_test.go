package block

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// The 1 M span block set of the end-to-end measurement: bench-shaped traces
// compacted into three blocks of 142 k, 513 k and 345 k spans. The needle
// trace is in the middle block.
var (
	shapeSetOnce sync.Once
	shapeSetDir  string
	shapeSetIDs  []span.TraceID
	shapeSetSize int64
	shapeSetErr  error
)

var shapeSetBlocks = []int{142_000, 513_000, 345_000}

func shapeSet(tb testing.TB) (objstore.Bucket, []string) {
	shapeSetOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clew-block-bench")
		if err != nil {
			shapeSetErr = err
			return
		}
		shapeSetDir = dir
		bkt, err := filesystem.NewBucket(dir)
		if err != nil {
			shapeSetErr = err
			return
		}
		g := newBenchShapeGen(42, (shapeSetBlocks[0]+shapeSetBlocks[1]/2)/10)
		for i, n := range shapeSetBlocks {
			b := NewBuilder()
			for done := 0; done < n; done += 1000 {
				b.Append(g.batch(100))
			}
			for t := 0; t < b.ntraces(); t += 997 {
				shapeSetIDs = append(shapeSetIDs, b.traceID(t))
			}
			m, err := b.Write(context.Background(), bkt, fmt.Sprintf("t/%d", i), Meta{ID: fmt.Sprint(i)})
			if err != nil {
				shapeSetErr = err
				return
			}
			shapeSetSize += m.Size
		}
	})
	if shapeSetErr != nil {
		tb.Fatal(shapeSetErr)
	}
	bkt, err := filesystem.NewBucket(shapeSetDir)
	if err != nil {
		tb.Fatal(err)
	}
	return bkt, []string{"t/0", "t/1", "t/2"}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shapeSetDir != "" {
		os.RemoveAll(shapeSetDir)
	}
	os.Exit(code)
}

func openShapeSet(b *testing.B, pc *cache.Cache) []*Reader {
	bkt, dirs := shapeSet(b)
	var rs []*Reader
	for _, d := range dirs {
		r, err := Open(context.Background(), bkt, d, ReaderOptions{Cache: pc})
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

var (
	shapeNeedle = func() *search.Query {
		return &search.Query{Service: "payment", Conds: []search.Cond{{Key: "user.id", Op: search.OpEq, Value: span.StringValue("needle-user-42")}}}
	}
	shapeBroad = func() *search.Query {
		return &search.Query{Service: "frontend", Conds: []search.Cond{{Key: "http.request.method", Op: search.OpEq, Value: span.StringValue("GET")}}}
	}
)

// BenchmarkShape1M runs the end-to-end queries on the 1 M span block set:
// every hit of every block is counted (the store needs the exact count).
func BenchmarkShape1M(b *testing.B) {
	const spans = 1_000_000
	for _, qc := range []struct {
		name string
		q    func() *search.Query
		want int
	}{{"needle", shapeNeedle, 1}, {"broad", shapeBroad, 0}} {
		// cache=16MiB is the store's default page cache: what a server
		// repeating the query holds.
		for _, cached := range []string{"false", "true", "16MiB"} {
			b.Run(fmt.Sprintf("%s/cache=%s", qc.name, cached), func(b *testing.B) {
				var pc *cache.Cache
				switch cached {
				case "true":
					pc = cache.New(512 << 20)
				case "16MiB":
					pc = cache.New(16 << 20)
				}
				rs := openShapeSet(b, pc)
				q := qc.q()
				if err := q.Compile(); err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				hits := 0
				b.ReportAllocs()
				for b.Loop() {
					hits = 0
					for _, r := range rs {
						if err := r.Search(ctx, q, func(storage.Hit) bool { hits++; return true }); err != nil {
							b.Fatal(err)
						}
					}
				}
				if qc.want != 0 && hits != qc.want {
					b.Fatalf("hits = %d, want %d", hits, qc.want)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/query")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/spans, "ns/span")
				b.ReportMetric(float64(hits), "hits")
			})
		}
	}
	b.Run("findtrace/cache=false", func(b *testing.B) {
		rs := openShapeSet(b, nil)
		ctx := context.Background()
		var batch span.Batch
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			batch.Reset()
			id := shapeSetIDs[i%len(shapeSetIDs)]
			i += 7
			for _, r := range rs {
				if _, err := r.FindTrace(ctx, id, &batch); err != nil {
					b.Fatal(err)
				}
			}
			if len(batch.Spans) != 10 {
				b.Fatalf("got %d spans", len(batch.Spans))
			}
		}
	})
	b.Run("size", func(b *testing.B) {
		shapeSet(b)
		for b.Loop() {
		}
		b.ReportMetric(float64(shapeSetSize)/spans, "B/span")
	})
}

// peakHeap runs fn while sampling the heap and returns the peak heap in use
// above the level before fn.
func peakHeap(fn func()) int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapAlloc)
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if v := int64(m.HeapAlloc); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak.Load() - base
}

// BenchmarkShapeWriteCompact reports the peak heap of writing a 250 k span
// Builder and of compacting four such blocks, and the Builder's heap.
func BenchmarkShapeWriteCompact(b *testing.B) {
	ctx := context.Background()
	const n = 250_000
	g := newBenchShapeGen(7, -1)
	var batches [][]*span.Batch
	for range 4 {
		var bs []*span.Batch
		for done := 0; done < n; done += 1000 {
			bs = append(bs, g.batch(100))
		}
		batches = append(batches, bs)
	}
	b.Run("builder", func(b *testing.B) {
		var bl *Builder
		// Heap held by the finished Builder: HeapInuse (spans of pages in
		// use, fragmentation included) after a GC, before and after.
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		bl = NewBuilder()
		for _, batch := range batches[0] {
			bl.Append(batch)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		inuse := int64(m1.HeapInuse) - int64(m0.HeapInuse)
		runtime.KeepAlive(bl)
		bl = nil
		heap := peakHeap(func() {
			bl = NewBuilder()
			for _, batch := range batches[0] {
				bl.Append(batch)
			}
		})
		for b.Loop() {
			bl = NewBuilder()
			for _, batch := range batches[0] {
				bl.Append(batch)
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(heap)/n, "peakB/span")
		b.ReportMetric(float64(inuse)/n, "inuseB/span")
		b.ReportMetric(float64(bl.MemSize())/n, "memsizeB/span")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/span")
	})
	bkt := newBucket(b)
	var builders []*Builder
	for i := range 4 {
		bl := NewBuilder()
		for _, batch := range batches[i] {
			bl.Append(batch)
		}
		builders = append(builders, bl)
	}
	b.Run("write", func(b *testing.B) {
		k := 0
		var heap int64
		var meta Meta
		b.ReportAllocs()
		for b.Loop() {
			heap = max(heap, peakHeap(func() {
				var err error
				meta, err = builders[0].Write(ctx, bkt, fmt.Sprintf("w/%d", k), Meta{})
				if err != nil {
					b.Fatal(err)
				}
			}))
			k++
		}
		b.ReportMetric(float64(heap)/(1<<20), "peakMB")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/span")
		b.ReportMetric(float64(meta.Size)/n, "B/span")
	})
	var inputs []*Reader
	for i, bl := range builders {
		dir := fmt.Sprintf("in/%d", i)
		if _, err := bl.Write(ctx, bkt, dir, Meta{ID: dir}); err != nil {
			b.Fatal(err)
		}
		r, err := Open(ctx, bkt, dir, ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, r)
	}
	builders = nil
	b.Run("compact", func(b *testing.B) {
		k := 0
		var heap int64
		var meta Meta
		b.ReportAllocs()
		for b.Loop() {
			heap = max(heap, peakHeap(func() {
				var err error
				meta, err = Compact(ctx, bkt, fmt.Sprintf("c/%d", k), Meta{}, inputs)
				if err != nil {
					b.Fatal(err)
				}
			}))
			k++
		}
		b.ReportMetric(float64(heap)/(1<<20), "peakMB")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(4*n), "ns/span")
		b.ReportMetric(float64(meta.Size)/(4*n), "B/span")
	})
}
