package block

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// Search calls fn once per trace that has a span matching q (q must be
// compiled), until fn returns false. Hits carry the trace's time range over
// all of its spans in b.
func (b *Builder) Search(ctx context.Context, q *search.Query, fn func(Hit) bool) error {
	if b.ch.n == 0 || !timeOverlaps(q, b.minT, b.maxT) {
		return nil
	}
	p, ok := newPlan(q, &b.tab)
	if !ok {
		return nil
	}
	p.prepare(&b.ch)
	seen := make([]uint64, (len(b.tIDs)+63)/64)
	_, err := p.scan(ctx, &b.ch, seen, func(r int) bool {
		t := b.ch.trace[r]
		return fn(Hit{TraceID: b.tIDs[t], Start: b.tMin[t], End: b.tMax[t]})
	})
	return err
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
	t, ok := b.traceMap[id]
	if !ok {
		return false, nil
	}
	var rows []int32
	for r := b.tFirst[t]; r >= 0; r = b.next[r] {
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return b.ch.start[rows[i]] < b.ch.start[rows[j]] })
	var oc originCopier
	for _, r := range rows {
		if err := b.ch.appendSpan(&b.tab, int(r), id, &oc, dst); err != nil {
			return false, fmt.Errorf("BUG: materialize head span: %w", err)
		}
	}
	return true, ctx.Err()
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
		if err := collectChunkValues(ctx, &b.ch, &b.tab, scope, kid, vs); err != nil {
			return nil, err
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
		for j, kt := range a.kt {
			if j%(16*ctxCheckRows) == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if kt>>ktKeyShift != kid {
				continue
			}
			v, err := ch.value(a, kt, a.val[j])
			if err != nil {
				return err
			}
			vs.add(v)
			if vs.full() {
				return nil
			}
		}
	}
	return nil
}
