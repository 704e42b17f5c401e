package block

import (
	"context"
	"sync"
	"testing"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// TestConcurrentQueries runs searches and trace lookups on a Builder while
// it is being written, and on a cached Reader, from several goroutines.
func TestConcurrentQueries(t *testing.T) {
	ctx := context.Background()
	g := newRandGen(9)
	b := NewBuilder()
	for i := 0; i < 10; i++ {
		b.Append(g.batch(200))
	}
	bkt := newBucket(t)
	var wg sync.WaitGroup
	queries := func(x querier) {
		defer wg.Done()
		q := &search.Query{Conds: []search.Cond{{Key: "http.method", Op: search.OpRegex, Value: span.StringValue("G.*")}}}
		if err := q.Compile(); err != nil {
			t.Error(err)
			return
		}
		for i := 0; i < 20; i++ {
			var ids []span.TraceID
			if err := x.Search(ctx, q, func(h storage.Hit) bool { ids = append(ids, h.TraceID); return true }); err != nil {
				t.Error(err)
				return
			}
			for _, id := range ids[:min(len(ids), 20)] {
				var out span.Batch
				if ok, err := x.FindTrace(ctx, id, &out); !ok || err != nil {
					t.Errorf("FindTrace(%s) = %v, %v", id, ok, err)
					return
				}
			}
		}
	}
	wg.Add(3)
	go queries(b)
	go queries(b)
	go func() {
		defer wg.Done()
		if _, err := b.Write(ctx, bkt, "blk", Meta{ID: "a"}); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	r, err := Open(ctx, bkt, "blk", ReaderOptions{Cache: cache.New(1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(4)
	for i := 0; i < 4; i++ {
		go queries(r)
	}
	wg.Wait()
}

// TestContextCanceled checks that queries honour cancellation.
func TestContextCanceled(t *testing.T) {
	b := buildLoad(t, 3, 20_000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := &search.Query{MinDuration: 1}
	_ = q.Compile()
	if err := b.Search(ctx, q, func(storage.Hit) bool { return true }); err == nil {
		t.Fatal("Builder.Search: want context error")
	}
	bkt := newBucket(t)
	if _, err := b.Write(context.Background(), bkt, "blk", Meta{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), bkt, "blk", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Search(ctx, q, func(storage.Hit) bool { return true }); err == nil {
		t.Fatal("Reader.Search: want context error")
	}
}
