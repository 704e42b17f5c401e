package block

import (
	"context"
	"runtime"
	"testing"
)

// TestLoadSize reports the on-disk bytes per span of the benchmark load, per
// column, and pins an upper bound.
func TestLoadSize(t *testing.T) {
	ctx := context.Background()
	bl := buildLoad(t, 1, 100_000)
	bkt := newBucket(t)
	meta, err := bl.Write(ctx, bkt, "b", Meta{ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, bkt, "b", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cols [numCols]int64
	var raw [numCols]int64
	for _, g := range r.groups {
		for c, ref := range g.cols {
			cols[c] += int64(ref.size)
			raw[c] += int64(ref.raw)
		}
	}
	var tp int64
	for _, p := range r.tpages {
		tp += int64(p.ref.size)
	}
	n := float64(meta.Spans)
	for c := range cols {
		t.Logf("%-8s %6.2f B/span (raw %6.2f)", colNames[c], float64(cols[c])/n, float64(raw[c])/n)
	}
	t.Logf("traceidx %6.2f B/span", float64(tp)/n)
	t.Logf("total    %6.2f B/span (%d spans, %d bytes)", float64(meta.Size)/n, meta.Spans, meta.Size)
	if got := float64(meta.Size) / n; got > 40 {
		t.Errorf("block size %.1f B/span, want <= 40", got)
	}
}

// TestReaderMemory opens a block of 1 M spans of the benchmark load and
// checks the heap the Reader holds before any query.
func TestReaderMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1 M span block")
	}
	ctx := context.Background()
	bkt := newBucket(t)
	func() {
		bl := buildLoad(t, 4, 1_000_000)
		if _, err := bl.Write(ctx, bkt, "big", Meta{ID: "x"}); err != nil {
			t.Fatal(err)
		}
	}()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	r, err := Open(ctx, bkt, "big", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := int64(ms.HeapAlloc) - int64(before)
	t.Logf("reader on %d spans holds %d bytes (%d groups, %d trace pages)", r.Meta().Spans, held, len(r.groups), len(r.tpages))
	if held > 4<<20 {
		t.Errorf("reader holds %d bytes, want < 4 MiB", held)
	}
	runtime.KeepAlive(r)
}
