package block

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// Search calls fn once per trace that has a span matching q (q must be
// compiled), until fn returns false. Hits carry the trace's time range over
// all of its spans in b.
func (b *Builder) Search(ctx context.Context, q *search.Query, fn func(storage.Hit) bool) error {
	if b.n == 0 || !timeOverlaps(q, b.minT, b.maxT) {
		return nil
	}
	p, ok := newPlan(q, &b.tab)
	if !ok {
		return nil
	}
	p.prepare(b.segs[0])
	seen := make([]uint64, (b.ntraces()+63)/64)
	for _, c := range b.segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.setRows(c)
		more, err := p.scan(ctx, c, 0, c.n, seen, func(r int) bool {
			t := b.traces.ptr(int(c.trace[r]))
			return fn(storage.Hit{TraceID: t.id, Start: t.min, End: t.max})
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// MatchTrace reports whether trace id has a span in b that matches q (q
// must be compiled) and returns the trace's storage.Hit, as Search would report it.
func (b *Builder) MatchTrace(ctx context.Context, q *search.Query, id span.TraceID) (storage.Hit, bool, error) {
	if b.n == 0 || !timeOverlaps(q, b.minT, b.maxT) {
		return storage.Hit{}, false, nil
	}
	t, ok := b.traceHT.find(&b.traces, id)
	if !ok {
		return storage.Hit{}, false, nil
	}
	p, ok := newPlan(q, &b.tab)
	if !ok {
		return storage.Hit{}, false, nil
	}
	p.prepare(b.segs[0])
	ti := b.traces.ptr(int(t))
	found := false
	for r := ti.first; r >= 0 && !found; {
		c, i := b.seg(r)
		p.setRows(c)
		if _, err := p.scan(ctx, c, i, i+1, nil, func(int) bool { found = true; return false }); err != nil {
			return storage.Hit{}, false, err
		}
		r = c.next[i]
	}
	if !found {
		return storage.Hit{}, false, nil
	}
	return storage.Hit{TraceID: ti.id, Start: ti.min, End: ti.max}, true, nil
}

func timeOverlaps(q *search.Query, minT, maxT uint64) bool {
	if q.Start != 0 && maxT < q.Start {
		return false
	}
	if q.End != 0 && minT > q.End {
		return false
	}
	return true
}

// FindTrace appends deep copies of the spans of trace id to dst, ordered by
// start time, and reports whether there were any.
func (b *Builder) FindTrace(ctx context.Context, id span.TraceID, dst *span.Batch) (bool, error) {
	t, ok := b.traceHT.find(&b.traces, id)
	if !ok {
		return false, nil
	}
	rows := b.traceRows(t, nil)
	var oc originCopier
	for _, r := range rows {
		c, i := b.seg(r)
		if err := c.appendSpan(&b.tab, i, id, &oc, dst); err != nil {
			return false, fmt.Errorf("BUG: materialize head span: %w", err)
		}
	}
	return true, ctx.Err()
}

// traceRows appends the rows of trace t to dst, ordered by start time
// (ties keep arrival order).
func (b *Builder) traceRows(t int32, dst []int32) []int32 {
	for r := b.traces.ptr(int(t)).first; r >= 0; {
		dst = append(dst, r)
		c, i := b.seg(r)
		r = c.next[i]
	}
	start := func(r int32) uint64 { c, i := b.seg(r); return c.start[i] }
	sorted := true
	for k := 1; k < len(dst); k++ {
		if start(dst[k]) < start(dst[k-1]) {
			sorted = false
			break
		}
	}
	if !sorted {
		sort.SliceStable(dst, func(i, j int) bool { return start(dst[i]) < start(dst[j]) })
	}
	return dst
}

// Services returns the sorted service names.
func (b *Builder) Services(ctx context.Context) ([]string, error) { return b.services(), nil }

// SpanNames returns the sorted span names of service, or of all services
// when service is "".
func (b *Builder) SpanNames(ctx context.Context, service string) ([]string, error) {
	return b.spanNames(service), nil
}

// AttrKeys returns the sorted attribute keys seen in scope (ScopeAny: in any
// scope).
func (b *Builder) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	return b.attrKeys(scopeMask(scope)), nil
}

func scopeMask(s search.Scope) uint8 {
	switch s {
	case search.ScopeSpan:
		return keySpan
	case search.ScopeResource:
		return keyResource
	case search.ScopeScope:
		return keyScope
	case search.ScopeEvent:
		return keyEvent
	case search.ScopeLink:
		return keyLink
	}
	return keySpan | keyResource | keyScope | keyEvent | keyLink
}

// AttrValues returns up to limit distinct values of attribute key in scope.
func (b *Builder) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	vs := newValueSet(limit)
	collectTableValues(&b.tab, scope, key, vs)
	if kid, ok := b.tab.keys.lookup(key); ok && !vs.full() {
		for _, c := range b.segs {
			if err := collectChunkValues(ctx, c, &b.tab, scope, kid, vs); err != nil {
				return nil, err
			}
			if vs.full() {
				break
			}
		}
	}
	return vs.result(), nil
}

// valueSet collects distinct values up to a limit.
type valueSet struct {
	limit int
	seen  map[valueKey]struct{}
	vals  []span.Value
	keys  []valueKey
}

type valueKey struct {
	t   span.ValueType
	num uint64
	s   string
}

func newValueSet(limit int) *valueSet {
	return &valueSet{limit: limit, seen: make(map[valueKey]struct{})}
}

func (vs *valueSet) full() bool { return vs.limit <= 0 || len(vs.vals) >= vs.limit }

func (vs *valueSet) add(v span.Value) {
	if vs.full() {
		return
	}
	k := valueKey{t: v.Type, num: v.Num, s: v.Str}
	if v.Type == span.TypeArray || v.Type == span.TypeMap {
		k.s = string(appendValue(nil, v))
	}
	if _, ok := vs.seen[k]; ok {
		return
	}
	vs.seen[k] = struct{}{}
	vs.vals = append(vs.vals, v)
	vs.keys = append(vs.keys, k)
}

// result returns the values ordered by type, then string (or encoded
// array/map), then number bits.
func (vs *valueSet) result() []span.Value {
	idx := make([]int, len(vs.vals))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		a, b := vs.keys[i], vs.keys[j]
		return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.s, b.s), cmp.Compare(a.num, b.num))
	})
	out := make([]span.Value, len(idx))
	for i, j := range idx {
		out[i] = vs.vals[j]
	}
	return out
}

func collectTableValues(t *tables, scope search.Scope, key string, vs *valueSet) {
	if scope == search.ScopeAny || scope == search.ScopeResource {
		for i := range t.resources {
			for _, a := range t.resources[i].Attrs {
				if a.Key == key {
					vs.add(cloneValue(a.Value))
				}
			}
		}
	}
	if scope == search.ScopeAny || scope == search.ScopeScope {
		for i := range t.scopes {
			for _, a := range t.scopes[i].Attrs {
				if a.Key == key {
					vs.add(cloneValue(a.Value))
				}
			}
		}
	}
}

func collectChunkValues(ctx context.Context, ch *chunk, t *tables, scope search.Scope, kid uint32, vs *valueSet) error {
	lists := []*attrList{}
	if scope == search.ScopeAny || scope == search.ScopeSpan {
		lists = append(lists, &ch.attrs)
	}
	if scope == search.ScopeAny || scope == search.ScopeEvent {
		lists = append(lists, &ch.evAttrs)
	}
	if scope == search.ScopeAny || scope == search.ScopeLink {
		lists = append(lists, &ch.lnAttrs)
	}
	for _, a := range lists {
		for i := 0; i+1 < len(a.off); i++ {
			if i%ctxCheckRows == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			vals := a.val[a.off[i]:a.off[i+1]]
			for j, kt := range a.keys(i) {
				if kt>>ktKeyShift != kid {
					continue
				}
				v, err := ch.value(a, kt, vals[j])
				if err != nil {
					return err
				}
				vs.add(v)
				if vs.full() {
					return nil
				}
			}
		}
	}
	return nil
}
