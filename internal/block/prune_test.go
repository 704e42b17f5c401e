package block

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// countingBucket records the ranged reads of the data object.
type countingBucket struct {
	objstore.BucketReader
	mu     sync.Mutex
	ranges [][2]int64
}

func (c *countingBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	c.mu.Lock()
	c.ranges = append(c.ranges, [2]int64{off, length})
	c.mu.Unlock()
	return c.BucketReader.GetRange(ctx, name, off, length)
}

func (c *countingBucket) reset() {
	c.mu.Lock()
	c.ranges = nil
	c.mu.Unlock()
}

// groupsRead maps the recorded reads to the row groups whose column pages
// they overlap.
func (c *countingBucket) groupsRead(r *Reader) map[int]bool {
	out := map[int]bool{}
	for _, rg := range c.ranges {
		for gi := range r.groups {
			g := &r.groups[gi]
			lo, hi := g.cols[0].off, g.cols[numCols-1].off+int64(g.cols[numCols-1].size)
			if rg[0] < hi && rg[0]+rg[1] > lo {
				out[gi] = true
			}
		}
	}
	return out
}

// TestPruneNeedle checks that a needle query reads only the row groups that
// hold the needle value, and that span name and service conditions prune
// by the group postings.
func TestPruneNeedle(t *testing.T) {
	ctx := context.Background()
	g := newBenchShapeGen(3, 4321)
	b := NewBuilder()
	for range 60 {
		b.Append(g.batch(100)) // 60 k spans: 8 groups
	}
	bkt := newBucket(t)
	if _, err := b.Write(ctx, bkt, "blk", Meta{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	cb := &countingBucket{BucketReader: bkt}
	r, err := Open(ctx, cb, "blk", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.groups) < 5 {
		t.Fatalf("%d groups, want several", len(r.groups))
	}
	// The groups holding the needle trace.
	needleTrace := g.traceID(4321)
	_, _, _, _ = r.locateTrace(ctx, needleTrace)
	want := map[int]bool{}
	tp, j, ok, err := r.locateTrace(ctx, needleTrace)
	if err != nil || !ok {
		t.Fatalf("locate needle: %v %v", ok, err)
	}
	lo, hi := tp.firstRow[j], tp.firstRow[j]+int64(tp.rows[j])
	for gi, gr := range r.groups {
		if gr.firstRow < hi && gr.firstRow+int64(gr.rows) > lo {
			want[gi] = true
		}
	}
	for _, q := range []*search.Query{
		shapeNeedle(),
		{Conds: []search.Cond{{Scope: search.ScopeSpan, Key: "user.id", Op: search.OpEq, Value: span.StringValue("needle-user-42")}}},
	} {
		if err := q.Compile(); err != nil {
			t.Fatal(err)
		}
		cb.reset()
		var hits []storage.Hit
		if err := r.Search(ctx, q, func(h storage.Hit) bool { hits = append(hits, h); return true }); err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 || hits[0].TraceID != needleTrace {
			t.Fatalf("hits %v, want the needle trace", hits)
		}
		got := cb.groupsRead(r)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("query %+v read groups %v, want %v", *q, got, want)
		}
		// value page + needed columns of the needle groups + trace page
		t.Logf("needle query: %d ranged reads", len(cb.ranges))
	}
	// Absent values and names read no group.
	for _, q := range []*search.Query{
		{Conds: []search.Cond{{Key: "user.id", Op: search.OpEq, Value: span.StringValue("nobody")}}},
		{Service: "payment", Conds: []search.Cond{{Key: "url.path", Op: search.OpEq, Value: span.StringValue("/api/orders/x")}}},
	} {
		_ = q.Compile()
		cb.reset()
		if err := r.Search(ctx, q, func(h storage.Hit) bool { t.Errorf("unexpected hit %v", h); return true }); err != nil {
			t.Fatal(err)
		}
		if got := cb.groupsRead(r); len(got) != 0 {
			t.Errorf("query %+v read groups %v, want none", *q, got)
		}
	}
}

// TestOracleSmallGroups runs the oracle with tiny row groups so that the
// pruning index has many groups to choose from.
func TestOracleSmallGroups(t *testing.T) {
	defer func(n int) { groupRows = n }(groupRows)
	groupRows = 37
	TestOracle(t)
}
