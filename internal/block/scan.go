package block

import (
	"context"
	"fmt"
	"sort"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// spanProj builds the spans ScanSpans yields from rows of one set of
// tables.
type spanProj struct {
	t     *tables
	cols  *storage.Columns
	names []string // lazily filled: span name by id
	named []bool
	keys  map[uint32]bool // AttrKeys as key ids
	s     span.Span
	attrs []span.Attr
}

func newSpanProj(t *tables, cols *storage.Columns) *spanProj {
	p := &spanProj{t: t, cols: cols, names: make([]string, t.names.count()), named: make([]bool, t.names.count())}
	if !cols.Attrs && len(cols.AttrKeys) > 0 {
		p.keys = make(map[uint32]bool, len(cols.AttrKeys))
		for _, k := range cols.AttrKeys {
			if id, ok := t.keys.lookup(k); ok {
				p.keys[id] = true
			}
		}
	}
	return p
}

// keyIDs returns the ids of the requested attribute keys present in the
// tables.
func (p *spanProj) keyIDs() []uint32 {
	out := make([]uint32, 0, len(p.keys))
	for id := range p.keys {
		out = append(out, id)
	}
	return out
}

func (p *spanProj) name(id uint32) string {
	if !p.named[id] {
		p.names[id] = p.t.names.str(id)
		p.named[id] = true
	}
	return p.names[id]
}

// mask returns the columns the projection reads.
func (p *spanProj) mask() colMask {
	m := colMask(1<<colRuns | 1<<colSpanID | 1<<colTimes | 1<<colName | 1<<colMisc | 1<<colOrigin)
	if p.cols.Text || p.cols.Attrs || len(p.keys) > 0 || p.cols.Events || p.cols.Links {
		m |= 1 << colStrs // the values of these live in the group's strings
	}
	if p.cols.Parent {
		m |= 1 << colParent
	}
	if p.cols.Text {
		m |= 1 << colText
	}
	if p.cols.Attrs {
		m |= 1 << colAttrs
	}
	if p.cols.Events {
		m |= 1 << colEvents
	}
	if p.cols.Links {
		m |= 1 << colLinks
	}
	return m
}

// build fills p.s from row r of ch. keyLists, when not nil, holds the
// requested attribute keys' entries of ch (block chunks); otherwise the
// requested keys are picked from ch.attrs.
func (p *spanProj) build(ch *chunk, r int, tid span.TraceID, keyLists []*attrList) (*span.Span, error) {
	t := p.t
	if int(ch.name[r]) >= len(p.names) || int(ch.misc[r]) >= len(t.misc) || int(ch.origin[r]) >= len(t.origins) {
		return nil, fmt.Errorf("row %d: id out of range", r)
	}
	m := &t.misc[ch.misc[r]]
	o := t.origins[ch.origin[r]]
	s := &p.s
	*s = span.Span{
		TraceID:       tid,
		SpanID:        ch.spanID[r],
		Name:          p.name(ch.name[r]),
		Kind:          m.kind,
		Flags:         m.flags,
		StartUnixNano: ch.start[r],
		EndUnixNano:   ch.endAt(r),
		DroppedAttrs:  m.dAttrs,
		DroppedEvents: m.dEvents,
		DroppedLinks:  m.dLinks,
		StatusCode:    m.status,
		Resource:      &t.resources[o.res],
		Scope:         &t.scopes[o.scope],
	}
	if p.cols.Parent {
		s.ParentSpanID = ch.parent[r]
	}
	if p.cols.Text {
		state, msg := m.state, m.msg
		if ch.state != nil {
			state, msg = ch.state[r], ch.msg[r]
		}
		if int(state) >= ch.strs.count() || int(msg) >= ch.strs.count() {
			return nil, fmt.Errorf("row %d: string id out of range", r)
		}
		s.TraceState, s.StatusMessage = ch.strs.str(state), ch.strs.str(msg)
	}
	var err error
	switch {
	case p.cols.Attrs:
		s.Attrs, err = ch.attrSlice(t, &ch.attrs, r)
	case keyLists != nil:
		p.attrs = p.attrs[:0]
		for _, a := range keyLists {
			if err = p.appendAttrs(ch, a, r, false); err != nil {
				break
			}
		}
		s.Attrs = p.attrs
	case len(p.keys) > 0:
		p.attrs = p.attrs[:0]
		err = p.appendAttrs(ch, &ch.attrs, r, true)
		s.Attrs = p.attrs
	}
	if err != nil {
		return nil, err
	}
	if p.cols.Events {
		if lo, hi := sparseRange(ch.evRows, ch.evOff, r); hi > lo {
			s.Events = make([]span.Event, 0, hi-lo)
			for e := lo; e < hi; e++ {
				ev := span.Event{TimeUnixNano: ch.evTime[e], Name: ch.strs.str(ch.evName[e]), DroppedAttrs: ch.evDrop[e]}
				if ev.Attrs, err = ch.attrSlice(t, &ch.evAttrs, e); err != nil {
					return nil, err
				}
				s.Events = append(s.Events, ev)
			}
		}
	}
	if p.cols.Links {
		if lo, hi := sparseRange(ch.lnRows, ch.lnOff, r); hi > lo {
			s.Links = make([]span.Link, 0, hi-lo)
			for e := lo; e < hi; e++ {
				l := span.Link{TraceID: ch.lnTrace[e], SpanID: ch.lnSpan[e], TraceState: ch.strs.str(ch.lnState[e]), Flags: ch.lnFlags[e], DroppedAttrs: ch.lnDrop[e]}
				if l.Attrs, err = ch.attrSlice(t, &ch.lnAttrs, e); err != nil {
					return nil, err
				}
				s.Links = append(s.Links, l)
			}
		}
	}
	return s, nil
}

// appendAttrs appends the attributes of owner i of a to p.attrs, only
// those of the requested keys when filter is set.
func (p *spanProj) appendAttrs(ch *chunk, a *attrList, i int, filter bool) error {
	if i+1 >= len(a.off) {
		return nil
	}
	lo, hi := a.off[i], a.off[i+1]
	if lo == hi {
		return nil
	}
	kts, vals := a.keys(i), a.val[lo:hi]
	for j, kt := range kts {
		key := kt >> ktKeyShift
		if filter && !p.keys[key] {
			continue
		}
		if int(key) >= p.t.keys.count() {
			return fmt.Errorf("attribute key id %d out of range", key)
		}
		v, err := ch.value(a, kt, vals[j])
		if err != nil {
			return err
		}
		p.attrs = append(p.attrs, span.Attr{Key: p.t.keys.str(key), Value: v})
	}
	return nil
}

// ScanSpans calls fn for every span of the block that matches q (q must
// be compiled), in storage order, until fn returns false. The span holds
// what cols asks for; it and everything it references belong to the
// block and are valid only during the call: fn must not modify them and
// must copy what it keeps.
func (r *Reader) ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error {
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
	proj := newSpanProj(&r.tab, &cols)
	// Span attribute conditions and projected keys read a column of their
	// key only (as Search does), unless every attribute is asked for.
	mask := p.searchMask() | 1<<colTimes | proj.mask()
	if !cols.Attrs && mask&(1<<colEvents|1<<colLinks) == 0 {
		mask &^= 1 << colAttrs
	}
	var keyIDs []uint32
	if !cols.Attrs {
		keyIDs = proj.keyIDs()
	}
	cand, err := r.candidateGroups(ctx, p)
	if err != nil {
		return err
	}
	var ids traceIDs
	ids.r, ids.idx = r, -1
	lastOrd := int64(-1)
	var lastID span.TraceID
	keyLists := make([]*attrList, len(keyIDs))
	sc := searchScratches.Get().(*searchScratch)
	defer searchScratches.Put(sc)
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
		ch, err := r.chunk(ctx, gi, mask)
		if err != nil {
			return err
		}
		for i := range p.conds {
			cp := &p.conds[i]
			if cp.keyCol {
				if cp.kc, err = r.keyColumn(ctx, gi, cp.keyID, sc); err != nil {
					return err
				}
			}
		}
		p.prepare(ch)
		if p.skipByDict(ch) {
			continue
		}
		for k, id := range keyIDs {
			if keyLists[k], err = r.keyAttrs(ctx, gi, id); err != nil {
				return err
			}
		}
		var lists []*attrList
		if !cols.Attrs {
			lists = keyLists
		}
		var ferr error
		more, err := p.scan(ctx, ch, 0, ch.n, nil, func(row int) bool {
			ord := g.firstTrace + int64(ch.trace[row])
			if ord != lastOrd {
				id, err := ids.id(ctx, ord)
				if err != nil {
					ferr = err
					return false
				}
				lastOrd, lastID = ord, id
			}
			s, err := proj.build(ch, row, lastID, lists)
			if err != nil {
				ferr = &CorruptionError{Object: r.dir, Offset: g.cols[0].off, Err: fmt.Errorf("group %d: %w", gi, err)}
				return false
			}
			return fn(s)
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

// ScanSpans calls fn for every span of b that matches q (q must be
// compiled), in arrival order, until fn returns false. The span holds
// what cols asks for; it and everything it references belong to b and
// are valid only during the call: fn must not modify them and must copy
// what it keeps.
func (b *Builder) ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error {
	if b.n == 0 || !timeOverlaps(q, b.minT, b.maxT) {
		return nil
	}
	p, ok := newPlan(q, &b.tab)
	if !ok {
		return nil
	}
	proj := newSpanProj(&b.tab, &cols)
	p.prepare(b.segs[0])
	for _, c := range b.segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.setRows(c)
		var ferr error
		more, err := p.scan(ctx, c, 0, c.n, nil, func(r int) bool {
			s, err := proj.build(c, r, b.traces.ptr(int(c.trace[r])).id, nil)
			if err != nil {
				ferr = fmt.Errorf("BUG: project head span: %w", err)
				return false
			}
			return fn(s)
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

// traceIDs resolves trace ordinals to IDs for a scan in ordinal order: it
// takes a trace page from the cache when there, else decodes it into its
// own reused memory without caching it, so that a scan of a whole block
// does not evict the pages other queries use.
type traceIDs struct {
	r   *Reader
	idx int
	tp  *tracePage
	own tracePage
	sc  traceScratch
}

func (x *traceIDs) id(ctx context.Context, ord int64) (span.TraceID, error) {
	r := x.r
	pi := sort.Search(len(r.tpages), func(i int) bool { return r.tpages[i].firstOrd > ord }) - 1
	if pi < 0 {
		return span.TraceID{}, fmt.Errorf("BUG: trace ordinal %d before the first page", ord)
	}
	if pi != x.idx {
		if v, ok := r.cache.Get(cache.Key{Dir: r.dir, Kind: kindTracePage, Idx: int32(pi)}); ok {
			x.tp = v.(*tracePage)
		} else {
			tp, err := r.tracePageInto(ctx, pi, &x.own, &x.sc)
			if err != nil {
				return span.TraceID{}, err
			}
			x.tp = tp
		}
		x.idx = pi
	}
	j := int(ord - r.tpages[pi].firstOrd)
	if j >= len(x.tp.ids) {
		return span.TraceID{}, &CorruptionError{Object: r.dir, Offset: r.tpages[pi].ref.off, Err: fmt.Errorf("trace ordinal %d out of range", ord)}
	}
	return x.tp.ids[j], nil
}
