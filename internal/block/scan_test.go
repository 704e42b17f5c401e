package block

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// scanner is the span scan Builder and Reader share.
type scanner interface {
	ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error
}

var (
	_ scanner = (*Builder)(nil)
	_ scanner = (*Reader)(nil)
)

// projected returns s as ScanSpans with cols yields it.
func projected(s span.Span, cols storage.Columns) span.Span {
	if !cols.Parent {
		s.ParentSpanID = span.SpanID{}
	}
	if !cols.Text {
		s.StatusMessage, s.TraceState = "", ""
	}
	if !cols.Attrs {
		var keep []span.Attr
		for _, a := range s.Attrs {
			if slices.Contains(cols.AttrKeys, a.Key) {
				keep = append(keep, a)
			}
		}
		s.Attrs = keep
	}
	if !cols.Events {
		s.Events = nil
	}
	if !cols.Links {
		s.Links = nil
	}
	if s.Resource == nil {
		s.Resource = &span.Resource{}
	}
	if s.Scope == nil {
		s.Scope = &span.Scope{}
	}
	return s
}

// spanString renders a span for comparison (pointers followed).
func spanString(s *span.Span, full bool) string {
	c := *s
	if len(c.Attrs) == 0 {
		c.Attrs = nil
	}
	if !full {
		c.Attrs = slices.Clone(c.Attrs)
		slices.SortStableFunc(c.Attrs, func(a, b span.Attr) int { return strings.Compare(a.Key, b.Key) })
	}
	res, sc := *c.Resource, *c.Scope
	c.Resource, c.Scope = nil, nil
	return fmt.Sprintf("%+v|%+v|%+v", c, res, sc)
}

func checkScan(t *testing.T, name string, x scanner, o *oracle, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	colSets := []storage.Columns{
		{},
		{Parent: true, Text: true, Attrs: true, Events: true, Links: true},
		{AttrKeys: []string{randKeys[0], randKeys[2], "missing.key"}, Text: true},
	}
	for i := 0; i < 150; i++ {
		q := randQuery(r)
		for k := range q.Conds {
			q.Conds[k].Elems = r.IntN(2) == 0
		}
		if err := q.Compile(); err != nil {
			continue
		}
		cols := colSets[i%len(colSets)]
		var want []string
		for k := range o.spans {
			if q.MatchSpan(&o.spans[k]) {
				s := projected(o.spans[k], cols)
				want = append(want, spanString(&s, cols.Attrs))
			}
		}
		var got []string
		err := x.ScanSpans(context.Background(), q, cols, func(s *span.Span) bool {
			got = append(got, spanString(s, cols.Attrs))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !reflect.DeepEqual(got, want) {
			for j := range min(len(got), len(want)) {
				if got[j] != want[j] {
					t.Fatalf("%s: query %d %+v cols %+v: span %d\n got %s\nwant %s", name, i, *q, cols, j, got[j], want[j])
				}
			}
			t.Fatalf("%s: query %d %+v: got %d spans, want %d", name, i, *q, len(got), len(want))
		}
	}
	// fn returning false stops the scan.
	n := 0
	if err := x.ScanSpans(context.Background(), &search.Query{}, storage.Columns{}, func(*span.Span) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Errorf("%s: stopped scan: %d spans, %v", name, n, err)
	}
}

func TestScanSpans(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := context.Background()
			g := newRandGen(seed)
			o := &oracle{}
			b := NewBuilder()
			for i := 0; i < 30; i++ {
				batch := g.batch(1 + g.rnd.IntN(300))
				o.add(batch)
				b.Append(batch)
			}
			checkScan(t, "builder", b, o, seed)
			bkt := newBucket(t)
			if _, err := b.Write(ctx, bkt, "t/blocks/a", Meta{ID: "a", Tenant: "t"}); err != nil {
				t.Fatal(err)
			}
			r, err := Open(ctx, bkt, "t/blocks/a", ReaderOptions{Cache: cache.New(64 << 20)})
			if err != nil {
				t.Fatal(err)
			}
			checkScan(t, "reader", r, o, seed)
		})
	}
}
