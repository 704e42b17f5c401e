package store

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

func TestScanSpansAcrossSources(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testConfig(), newClock())
	defer db.Close()
	now := uint64(db.clock.Now().UnixNano())
	for round := 0; round < 3; round++ {
		db.appendBatch(t, makeBatch(3, round*40, 40, 2, now))
		if round < 2 {
			if err := db.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		q    search.Query
		want int64
	}{
		{search.Query{}, 240},
		{search.Query{Service: "svc-1"}, 80},
		{search.Query{Conds: []search.Cond{{Scope: search.ScopeSpan, Key: "idx", Op: search.OpLt, Value: span.IntValue(10), Elems: true}}}, 10},
		{search.Query{Service: "nope"}, 0},
	} {
		q := tc.q
		if err := q.Compile(); err != nil {
			t.Fatal(err)
		}
		var n atomic.Int64
		err := db.ScanSpans(context.Background(), &q, storage.Columns{AttrKeys: []string{"idx"}}, func(s *span.Span) bool {
			if !q.MatchSpan(s) {
				t.Errorf("%+v: yielded span %s does not match", q, s.SpanID)
			}
			n.Add(1)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if n.Load() != tc.want {
			t.Errorf("ScanSpans(%+v) yielded %d spans, want %d", q, n.Load(), tc.want)
		}
	}
	// Stopping early ends every source's scan.
	var n atomic.Int64
	q := &search.Query{}
	if err := db.ScanSpans(context.Background(), q, storage.Columns{}, func(*span.Span) bool { return n.Add(1) < 5 }); err != nil {
		t.Fatal(err)
	}
	if n.Load() > 5+2*1024 {
		t.Errorf("stopped scan yielded %d spans", n.Load())
	}
}
