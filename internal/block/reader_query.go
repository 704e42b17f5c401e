package block

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// locateTrace finds trace id in the trace index: its first row and row count.
func (r *Reader) locateTrace(ctx context.Context, id span.TraceID) (tp *tracePage, j int, ok bool, err error) {
	if !r.bloom.mayContain(traceHash(id)) {
		return nil, 0, false, nil
	}
	pi := sort.Search(len(r.tpages), func(i int) bool { return bytes.Compare(r.tpages[i].firstID[:], id[:]) > 0 }) - 1
	if pi < 0 {
		return nil, 0, false, nil
	}
	tp, err = r.tracePage(ctx, pi)
	if err != nil {
		return nil, 0, false, err
	}
	j = sort.Search(len(tp.ids), func(i int) bool { return bytes.Compare(tp.ids[i][:], id[:]) >= 0 })
	if j == len(tp.ids) || tp.ids[j] != id {
		return nil, 0, false, nil
	}
	return tp, j, true, nil
}

// FindTrace appends deep copies of the spans of trace id to dst, ordered by
// start time, and reports whether there were any.
func (r *Reader) FindTrace(ctx context.Context, id span.TraceID, dst *span.Batch) (bool, error) {
	if r.closed.Load() {
		return false, errClosed
	}
	tp, j, ok, err := r.locateTrace(ctx, id)
	if err != nil || !ok {
		return false, err
	}
	lo := tp.firstRow[j]
	hi := lo + int64(tp.rows[j])
	gi := sort.Search(len(r.groups), func(i int) bool { return r.groups[i].firstRow > lo }) - 1
	var oc originCopier
	for ; gi < len(r.groups) && r.groups[gi].firstRow < hi; gi++ {
		g := &r.groups[gi]
		ch, err := r.chunk(ctx, gi, allCols)
		if err != nil {
			return false, err
		}
		from := max(lo, g.firstRow) - g.firstRow
		to := min(hi, g.firstRow+int64(g.rows)) - g.firstRow
		for row := from; row < to; row++ {
			if err := ch.appendSpan(&r.tab, int(row), id, &oc, dst); err != nil {
				return false, fmt.Errorf("find trace %s in block %s: %w", id, r.dir, err)
			}
		}
	}
	return true, nil
}

// Search calls fn once per trace that has a span matching q (q must be
// compiled), in trace ID order, until fn returns false.
func (r *Reader) Search(ctx context.Context, q *search.Query, fn func(storage.Hit) bool) error {
	if r.closed.Load() {
		return errClosed
	}
	if r.spans == 0 || !timeOverlaps(q, r.meta.MinTime, r.meta.MaxTime) {
		return nil
	}
	p, ok := newPlan(q, &r.tab)
	if !ok {
		return nil
	}
	mask := p.searchMask()
	cand, err := r.candidateGroups(ctx, p)
	if err != nil {
		return err
	}
	sc := searchScratches.Get().(*searchScratch)
	defer searchScratches.Put(sc)
	var ferr error
	var memo tpMemo
	lastOrd := int64(-1)
	for gi := range r.groups {
		if err := ctx.Err(); err != nil {
			return err
		}
		if cand != nil && cand[gi/64]&(1<<(gi%64)) == 0 {
			continue
		}
		g := &r.groups[gi]
		if !groupMayMatch(q, g) {
			continue
		}
		ch, err := r.searchChunk(ctx, gi, p, mask, sc)
		if err != nil {
			return err
		}
		if ch == nil {
			continue
		}
		more, err := p.scanRuns(ctx, ch, sc.runs, func(run, _ int) bool {
			ord := g.firstTrace + int64(run)
			if ord == lastOrd { // a trace split over groups: reported already
				return true
			}
			lastOrd = ord
			h, err := r.hit(ctx, ord, &memo)
			if err != nil {
				ferr = err
				return false
			}
			return fn(h)
		})
		if ferr != nil {
			return ferr
		}
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// MatchTrace reports whether trace id has a span in the block that
// matches q (q must be compiled) and returns the trace's storage.Hit, as Search
// would report it. A trace the bloom filter rules out costs no read.
func (r *Reader) MatchTrace(ctx context.Context, q *search.Query, id span.TraceID) (storage.Hit, bool, error) {
	if r.closed.Load() {
		return storage.Hit{}, false, errClosed
	}
	if r.spans == 0 || !timeOverlaps(q, r.meta.MinTime, r.meta.MaxTime) {
		return storage.Hit{}, false, nil
	}
	tp, j, ok, err := r.locateTrace(ctx, id)
	if err != nil || !ok {
		return storage.Hit{}, false, err
	}
	p, ok := newPlan(q, &r.tab)
	if !ok {
		return storage.Hit{}, false, nil
	}
	mask := p.searchMask()
	sc := searchScratches.Get().(*searchScratch)
	defer searchScratches.Put(sc)
	lo := tp.firstRow[j]
	hi := lo + int64(tp.rows[j])
	gi := sort.Search(len(r.groups), func(i int) bool { return r.groups[i].firstRow > lo }) - 1
	for ; gi >= 0 && gi < len(r.groups) && r.groups[gi].firstRow < hi; gi++ {
		g := &r.groups[gi]
		if !groupMayMatch(q, g) {
			continue
		}
		ch, err := r.searchChunk(ctx, gi, p, mask, sc)
		if err != nil {
			return storage.Hit{}, false, err
		}
		if ch == nil {
			continue
		}
		from := max(lo, g.firstRow) - g.firstRow
		to := min(hi, g.firstRow+int64(g.rows)) - g.firstRow
		found := false
		if _, err := p.scan(ctx, ch, int(from), int(to), nil, func(int) bool { found = true; return false }); err != nil {
			return storage.Hit{}, false, err
		}
		if found {
			return storage.Hit{TraceID: id, Start: tp.minStart[j], End: tp.maxEnd[j]}, true, nil
		}
	}
	return storage.Hit{}, false, nil
}

// tpMemo remembers the last trace page a search used.
type tpMemo struct {
	idx int
	tp  *tracePage
}

// hit returns the storage.Hit of trace ordinal ord.
func (r *Reader) hit(ctx context.Context, ord int64, memo *tpMemo) (storage.Hit, error) {
	if tp := memo.tp; tp != nil {
		if j := ord - r.tpages[memo.idx].firstOrd; j >= 0 && j < int64(len(tp.ids)) {
			return storage.Hit{TraceID: tp.ids[j], Start: tp.minStart[j], End: tp.maxEnd[j]}, nil
		}
	}
	pi := sort.Search(len(r.tpages), func(i int) bool { return r.tpages[i].firstOrd > ord }) - 1
	if pi < 0 {
		return storage.Hit{}, fmt.Errorf("BUG: trace ordinal %d before the first page", ord)
	}
	tp := memo.tp
	if tp == nil || memo.idx != pi {
		var err error
		if tp, err = r.tracePage(ctx, pi); err != nil {
			return storage.Hit{}, err
		}
		memo.idx, memo.tp = pi, tp
	}
	j := int(ord - r.tpages[pi].firstOrd)
	if j >= len(tp.ids) {
		return storage.Hit{}, &CorruptionError{Object: r.dir, Offset: r.tpages[pi].ref.off, Err: fmt.Errorf("trace ordinal %d out of range", ord)}
	}
	return storage.Hit{TraceID: tp.ids[j], Start: tp.minStart[j], End: tp.maxEnd[j]}, nil
}

// groupMayMatch prunes a row group by its start and duration bounds.
func groupMayMatch(q *search.Query, g *groupInfo) bool {
	if q.Start != 0 && g.maxStart < q.Start {
		return false
	}
	if q.End != 0 && g.minStart > q.End {
		return false
	}
	if q.MinDuration != 0 && g.maxDur < q.MinDuration {
		return false
	}
	if q.MaxDuration != 0 && g.minDur > q.MaxDuration {
		return false
	}
	return true
}

// skipByDict reports whether a string equality condition that only string
// values of span, event or link attributes can satisfy has an operand absent
// from the chunk's string dictionary, so no row of the chunk can match.
func (p *plan) skipByDict(ch *chunk) bool {
	for i := range p.conds {
		cp := &p.conds[i]
		if !cp.eqStr || cp.originHit != nil || !cp.onlyStrings {
			continue
		}
		found := false
		if cp.rowScopes&keySpan != 0 {
			if cp.kc != nil {
				found = cp.key.eqFound
			} else {
				found = cp.grp.eqFound
			}
		}
		if cp.rowScopes&(keyEvent|keyLink) != 0 && cp.grp.eqFound {
			found = true
		}
		if !found {
			return true
		}
	}
	return false
}

// Services returns the sorted service names of the block.
func (r *Reader) Services(ctx context.Context) ([]string, error) {
	return append([]string{}, r.meta.Services...), nil
}

// SpanNames returns the sorted span names of service, or of all services
// when service is "".
func (r *Reader) SpanNames(ctx context.Context, service string) ([]string, error) {
	if service != "" {
		return append([]string{}, r.meta.SpanNames[service]...), nil
	}
	var all []string
	for _, v := range r.meta.SpanNames {
		all = append(all, v...)
	}
	return append([]string{}, sortedUnique(all)...), nil
}

// AttrKeys returns the sorted attribute keys of scope (ScopeAny: all).
func (r *Reader) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	mask := scopeMask(scope)
	out := []string{}
	for id, m := range r.tab.keyScopes {
		if m&mask != 0 {
			out = append(out, r.tab.keys.str(uint32(id)))
		}
	}
	return sortedUnique(out), nil
}

// AttrValues returns up to limit distinct values of attribute key in scope.
// Span, event and link values are found by scanning the attribute columns.
func (r *Reader) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	if r.closed.Load() {
		return nil, errClosed
	}
	vs := newValueSet(limit)
	collectTableValues(&r.tab, scope, key, vs)
	kid, ok := r.tab.keys.lookup(key)
	if !ok || vs.full() {
		return vs.result(), nil
	}
	ks := uint8(0)
	if int(kid) < len(r.tab.keyScopes) {
		ks = r.tab.keyScopes[kid]
	}
	var mask colMask = 1 << colStrs
	if (scope == search.ScopeAny || scope == search.ScopeSpan) && ks&keySpan != 0 {
		mask |= 1 << colAttrs
	}
	if (scope == search.ScopeAny || scope == search.ScopeEvent) && ks&keyEvent != 0 {
		mask |= 1 << colEvents
	}
	if (scope == search.ScopeAny || scope == search.ScopeLink) && ks&keyLink != 0 {
		mask |= 1 << colLinks
	}
	if mask == 1<<colStrs {
		return vs.result(), nil
	}
	for gi := range r.groups {
		ch, err := r.chunk(ctx, gi, mask)
		if err != nil {
			return nil, err
		}
		if ch.attrs.off == nil {
			ch.attrs.off = []uint32{0}
		}
		if ch.evAttrs.off == nil {
			ch.evAttrs.off = []uint32{0}
		}
		if ch.lnAttrs.off == nil {
			ch.lnAttrs.off = []uint32{0}
		}
		if err := collectChunkValues(ctx, ch, &r.tab, scope, kid, vs); err != nil {
			return nil, err
		}
		if vs.full() {
			break
		}
	}
	return vs.result(), nil
}
