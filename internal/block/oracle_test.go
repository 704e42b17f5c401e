package block

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// querier is the query surface Builder and Reader share.
type querier interface {
	Search(ctx context.Context, q *search.Query, fn func(storage.Hit) bool) error
	MatchTrace(ctx context.Context, q *search.Query, id span.TraceID) (storage.Hit, bool, error)
	FindTrace(ctx context.Context, id span.TraceID, dst *span.Batch) (bool, error)
	Services(ctx context.Context) ([]string, error)
	SpanNames(ctx context.Context, service string) ([]string, error)
	AttrKeys(ctx context.Context, scope search.Scope) ([]string, error)
	AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error)
}

var (
	_ querier = (*Builder)(nil)
	_ querier = (*Reader)(nil)
)

func newBucket(t testing.TB) objstore.Bucket {
	bkt, err := filesystem.NewBucket(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bkt
}

// oracle holds the input spans, the reference for every query.
type oracle struct {
	spans   []span.Span
	all     map[span.TraceID]storage.Hit
	byTrace map[span.TraceID][]int
}

func (o *oracle) add(b *span.Batch) {
	if o.all == nil {
		o.all = map[span.TraceID]storage.Hit{}
		o.byTrace = map[span.TraceID][]int{}
	}
	for _, s := range b.Spans {
		h, ok := o.all[s.TraceID]
		if !ok {
			h = storage.Hit{TraceID: s.TraceID, Start: s.StartUnixNano, End: s.EndUnixNano}
		}
		h.Start = min(h.Start, s.StartUnixNano)
		h.End = max(h.End, s.EndUnixNano)
		o.all[s.TraceID] = h
		o.byTrace[s.TraceID] = append(o.byTrace[s.TraceID], len(o.spans))
		o.spans = append(o.spans, s)
	}
}

func (o *oracle) search(q *search.Query) map[span.TraceID]storage.Hit {
	all := o.all
	out := map[span.TraceID]storage.Hit{}
	for i := range o.spans {
		if q.MatchSpan(&o.spans[i]) {
			out[o.spans[i].TraceID] = all[o.spans[i].TraceID]
		}
	}
	return out
}

func (o *oracle) trace(id span.TraceID, dedup bool) []span.Span {
	var out []span.Span
	seen := map[spanKey]bool{}
	for _, i := range o.byTrace[id] {
		s := o.spans[i]
		k := spanKey{s.SpanID, s.StartUnixNano, s.EndUnixNano, s.Name}
		if dedup && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	return out
}

func (o *oracle) ids() []span.TraceID {
	var out []span.TraceID
	for id := range o.byTrace {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b span.TraceID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func randQuery(r *rand.Rand) *search.Query {
	q := &search.Query{}
	if r.IntN(4) == 0 {
		q.Service = fmt.Sprintf("svc-%d", r.IntN(7))
	}
	if r.IntN(4) == 0 {
		q.SpanName = fmt.Sprintf("op-%d", r.IntN(9))
	}
	if r.IntN(5) == 0 {
		q.Kinds = []span.Kind{span.Kind(r.IntN(6)), span.Kind(r.IntN(6))}
	}
	if r.IntN(5) == 0 {
		q.Statuses = []span.StatusCode{span.StatusCode(r.IntN(3))}
	}
	if r.IntN(5) == 0 {
		q.MinDuration = uint64(r.IntN(2_000_000))
	}
	if r.IntN(5) == 0 {
		q.MaxDuration = q.MinDuration + uint64(r.IntN(2_000_000))
	}
	if r.IntN(6) == 0 {
		q.Start = 1_700_000_000_000_000_000 + uint64(r.IntN(1_000_000))*1000
	}
	if r.IntN(6) == 0 {
		q.End = max(q.Start, 1_700_000_000_000_000_000+uint64(r.IntN(1_000_000))*1000)
	}
	for n := r.IntN(3); n > 0; n-- {
		c := search.Cond{Scope: search.Scope(r.IntN(6)), Key: randKeys[r.IntN(len(randKeys))], Op: search.Op(r.IntN(9))}
		if r.IntN(8) == 0 {
			c.Key = "missing.key"
		}
		switch c.Op {
		case search.OpRegex, search.OpNotRegex:
			c.Value = span.StringValue([]string{"GET|POST", "a.*", "[0-9]+", "true", ".*users.*", "-?[0-9.]+"}[r.IntN(6)])
		default:
			switch r.IntN(4) {
			case 0, 1:
				c.Value = span.StringValue(randStrings[r.IntN(len(randStrings))])
			case 2:
				c.Value = span.IntValue([]int64{0, 12, 200, 404, -3}[r.IntN(5)])
			case 3:
				c.Value = []span.Value{span.DoubleValue(1.5), span.BoolValue(true), span.BoolValue(false)}[r.IntN(3)]
			}
		}
		q.Conds = append(q.Conds, c)
	}
	return q
}

func collectHits(t *testing.T, x querier, q *search.Query) map[span.TraceID]storage.Hit {
	t.Helper()
	got := map[span.TraceID]storage.Hit{}
	err := x.Search(context.Background(), q, func(h storage.Hit) bool {
		if _, dup := got[h.TraceID]; dup {
			t.Errorf("trace %s reported twice", h.TraceID)
		}
		got[h.TraceID] = h
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sortSpans(s []span.Span) {
	slices.SortStableFunc(s, func(a, b span.Span) int {
		return cmp.Or(cmp.Compare(a.StartUnixNano, b.StartUnixNano), bytes.Compare(a.SpanID[:], b.SpanID[:]),
			cmp.Compare(a.EndUnixNano, b.EndUnixNano), cmp.Compare(a.Name, b.Name))
	})
}

// normSpans replaces nil resources and scopes by empty ones, as the stores do.
func normSpans(s []span.Span) []span.Span {
	out := slices.Clone(s)
	for i := range out {
		if out[i].Resource == nil {
			out[i].Resource = &span.Resource{}
		}
		if out[i].Scope == nil {
			out[i].Scope = &span.Scope{}
		}
	}
	return out
}

func checkQuerier(t *testing.T, name string, x querier, o *oracle, dedup bool, seed uint64) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < 400; i++ {
		q := randQuery(r)
		if err := q.Compile(); err != nil {
			continue
		}
		want := o.search(q)
		got := collectHits(t, x, q)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: query %d %+v: got %d hits, want %d", name, i, *q, len(got), len(want))
		}
		// MatchTrace agrees with Search on some traces, matching or not.
		ids := o.ids()
		for k := 0; k < 8; k++ {
			id := ids[r.IntN(len(ids))]
			if k == 7 {
				id = span.TraceID{0xff, 2} // absent
			}
			h, ok, err := x.MatchTrace(ctx, q, id)
			if err != nil {
				t.Fatalf("%s: MatchTrace: %v", name, err)
			}
			wh, wok := want[id]
			if ok != wok || ok && h != wh {
				t.Fatalf("%s: query %d %+v: MatchTrace(%s) = %+v, %v; want %+v, %v", name, i, *q, id, h, ok, wh, wok)
			}
		}
	}
	for _, id := range o.ids() {
		var b span.Batch
		ok, err := x.FindTrace(ctx, id, &b)
		if err != nil || !ok {
			t.Fatalf("%s: FindTrace(%s) = %v, %v", name, id, ok, err)
		}
		want := normSpans(o.trace(id, dedup))
		sortSpans(want)
		got := b.Spans
		sortSpans(got)
		if !reflect.DeepEqual(got, want) {
			for j := range min(len(got), len(want)) {
				if !reflect.DeepEqual(got[j], want[j]) {
					t.Fatalf("%s: FindTrace(%s) span %d:\n got %+v\nwant %+v", name, id, j, got[j], want[j])
				}
			}
			t.Fatalf("%s: FindTrace(%s): got %d spans, want %d", name, id, len(got), len(want))
		}
	}
	var b span.Batch
	if ok, err := x.FindTrace(ctx, span.TraceID{0xff, 1}, &b); ok || err != nil {
		t.Fatalf("%s: FindTrace(absent) = %v, %v", name, ok, err)
	}
}

func checkLabels(t *testing.T, a, b querier) {
	t.Helper()
	ctx := context.Background()
	sa, _ := a.Services(ctx)
	sb, _ := b.Services(ctx)
	if !reflect.DeepEqual(sa, sb) {
		t.Errorf("Services: %v vs %v", sa, sb)
	}
	for _, svc := range append([]string{""}, sa...) {
		na, _ := a.SpanNames(ctx, svc)
		nb, _ := b.SpanNames(ctx, svc)
		if !reflect.DeepEqual(na, nb) {
			t.Errorf("SpanNames(%q): %v vs %v", svc, na, nb)
		}
	}
	for sc := search.ScopeAny; sc <= search.ScopeLink; sc++ {
		ka, _ := a.AttrKeys(ctx, sc)
		kb, _ := b.AttrKeys(ctx, sc)
		if !reflect.DeepEqual(ka, kb) {
			t.Errorf("AttrKeys(%s): %v vs %v", sc, ka, kb)
		}
		for _, k := range ka {
			va, err := a.AttrValues(ctx, sc, k, 1000)
			if err != nil {
				t.Fatal(err)
			}
			vb, err := b.AttrValues(ctx, sc, k, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(va, vb) {
				t.Errorf("AttrValues(%s, %s): %d vs %d values differ", sc, k, len(va), len(vb))
			}
		}
	}
}

func TestOracle(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := context.Background()
			g := newRandGen(seed)
			o := &oracle{}
			b := NewBuilder()
			parts := []*Builder{NewBuilder(), NewBuilder(), NewBuilder()}
			for i := 0; i < 60; i++ {
				batch := g.batch(1 + g.rnd.IntN(300))
				o.add(batch)
				b.Append(batch)
				parts[i%3].Append(batch)
				if i%7 == 0 { // the same batch delivered twice to another part
					parts[(i+1)%3].Append(batch)
				}
			}
			checkQuerier(t, "builder", b, o, false, seed)

			root := t.TempDir()
			bkt, err := filesystem.NewBucket(root)
			if err != nil {
				t.Fatal(err)
			}
			meta, err := b.Write(ctx, bkt, "t/blocks/a", Meta{ID: "a", Tenant: "t"})
			if err != nil {
				t.Fatal(err)
			}
			if meta.Spans != int64(len(o.spans)) || meta.Traces != int64(len(o.ids())) {
				t.Fatalf("meta spans %d traces %d, want %d %d", meta.Spans, meta.Traces, len(o.spans), len(o.ids()))
			}
			r, err := Open(ctx, bkt, "t/blocks/a", ReaderOptions{Cache: cache.New(64 << 20), LocalRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			if r.data == nil {
				t.Fatal("reader with LocalRoot does not read the local file")
			}
			checkQuerier(t, "reader", r, o, false, seed)
			checkLabels(t, b, r)

			// compaction of three overlapping parts
			var inputs []*Reader
			for i, p := range parts {
				dir := fmt.Sprintf("t/blocks/p%d", i)
				if _, err := p.Write(ctx, bkt, dir, Meta{ID: fmt.Sprintf("p%d", i), CreatedAt: int64(i), WALSegmentEnd: i}); err != nil {
					t.Fatal(err)
				}
				pr, err := Open(ctx, bkt, dir, ReaderOptions{})
				if err != nil {
					t.Fatal(err)
				}
				inputs = append(inputs, pr)
			}
			cm, err := Compact(ctx, bkt, "t/blocks/c", Meta{ID: "c", Level: 1}, inputs)
			if err != nil {
				t.Fatal(err)
			}
			if cm.CreatedAt != 2 || cm.WALSegmentEnd != 2 || len(cm.Sources) != 3 {
				t.Fatalf("compacted meta %+v", cm)
			}
			cr, err := Open(ctx, bkt, "t/blocks/c", ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkQuerier(t, "compacted", cr, o, true, seed)
			checkLabels(t, b, cr)
		})
	}
}
