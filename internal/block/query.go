package block

import (
	"context"
	"math"
	"strconv"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// ctxCheckRows is how many rows a scan processes between context checks.
const ctxCheckRows = 4096

// plan is a query resolved against one set of tables: names and keys turned
// into ids, kind/status and resource/scope conditions turned into bitmaps
// over the misc and origin tables.
type plan struct {
	q        *search.Query
	t        *tables
	hasName  bool
	nameID   uint32
	miscOK   []bool // nil: every misc entry passes
	originOK []bool // nil: every origin passes
	times    bool   // duration or start bounds present
	conds    []condPlan
}

type condPlan struct {
	c         *search.Cond
	keyID     uint32
	rowScopes uint8  // keySpan|keyEvent|keyLink to scan on rows
	originHit []bool // per origin: satisfied by the resource or scope

	// per chunk
	eqStr   bool // OpEq with a string operand: compare string ids
	eqID    uint32
	eqFound bool
	// onlyStrings: every value of the key on rows, events and links is a string
	onlyStrings bool
	render      bool   // the operand needs scalars rendered as strings
	hint        uint32 // position in the row where the key last matched
	// rowAttrs holds the span attributes scanned: the chunk's, or (keyCol)
	// a column of only this condition's key, set by the Reader per group.
	rowAttrs *attrList
	keyCol   bool
	cache    []uint8
}

// newPlan resolves q against t. It returns false when no row of t can match.
func newPlan(q *search.Query, t *tables) (*plan, bool) {
	p := &plan{q: q, t: t}
	if q.SpanName != "" {
		id, ok := t.names.lookup(q.SpanName)
		if !ok {
			return nil, false
		}
		p.hasName, p.nameID = true, id
	}
	if len(q.Kinds) > 0 || len(q.Statuses) > 0 {
		p.miscOK = make([]bool, len(t.misc))
		any := false
		for i, m := range t.misc {
			ok := (len(q.Kinds) == 0 || containsKind(q.Kinds, m.kind)) && (len(q.Statuses) == 0 || containsStatus(q.Statuses, m.status))
			p.miscOK[i] = ok
			any = any || ok
		}
		if !any {
			return nil, false
		}
	}
	if q.Service != "" {
		p.originOK = make([]bool, len(t.origins))
		any := false
		for i, o := range t.origins {
			ok := t.services[o.res] == q.Service
			p.originOK[i] = ok
			any = any || ok
		}
		if !any {
			return nil, false
		}
	}
	p.times = q.MinDuration != 0 || q.MaxDuration != 0 || q.Start != 0 || q.End != 0
	p.conds = make([]condPlan, len(q.Conds))
	for i := range q.Conds {
		c := &q.Conds[i]
		cp := &p.conds[i]
		cp.c = c
		cp.eqStr = c.Op == search.OpEq && c.Value.Type == span.TypeString
		cp.render = c.Op == search.OpRegex || c.Op == search.OpNotRegex || c.Value.Type == span.TypeString
		if id, ok := t.keys.lookup(c.Key); ok {
			cp.keyID = id
			var ks uint8
			if int(id) < len(t.keyScopes) {
				ks = t.keyScopes[id]
				cp.onlyStrings = t.keyTypes[id] == 1<<span.TypeString
			}
			switch c.Scope {
			case search.ScopeAny:
				cp.rowScopes = ks & (keySpan | keyEvent | keyLink)
			case search.ScopeSpan:
				cp.rowScopes = ks & keySpan
			case search.ScopeEvent:
				cp.rowScopes = ks & keyEvent
			case search.ScopeLink:
				cp.rowScopes = ks & keyLink
			}
		}
		anyOrigin := false
		if c.Scope == search.ScopeAny || c.Scope == search.ScopeResource || c.Scope == search.ScopeScope {
			resHit := make([]int8, len(t.resources))
			scHit := make([]int8, len(t.scopes))
			cp.originHit = make([]bool, len(t.origins))
			for oi, o := range t.origins {
				hit := false
				if c.Scope != search.ScopeScope {
					if resHit[o.res] == 0 {
						resHit[o.res] = boolInt8(lookAttrs(c, t.resources[o.res].Attrs))
					}
					hit = resHit[o.res] > 0
				}
				if !hit && c.Scope != search.ScopeResource {
					if scHit[o.scope] == 0 {
						scHit[o.scope] = boolInt8(lookAttrs(c, t.scopes[o.scope].Attrs))
					}
					hit = scHit[o.scope] > 0
				}
				cp.originHit[oi] = hit
				anyOrigin = anyOrigin || hit
			}
			if !anyOrigin {
				cp.originHit = nil
			}
		}
		if !anyOrigin && cp.rowScopes == 0 {
			return nil, false
		}
	}
	return p, true
}

func boolInt8(b bool) int8 {
	if b {
		return 1
	}
	return -1
}

func lookAttrs(c *search.Cond, attrs []span.Attr) bool {
	for i := range attrs {
		if attrs[i].Key == c.Key && c.MatchValue(attrs[i].Value) {
			return true
		}
	}
	return false
}

func containsKind(l []span.Kind, k span.Kind) bool {
	for _, x := range l {
		if x == k {
			return true
		}
	}
	return false
}

func containsStatus(l []span.StatusCode, k span.StatusCode) bool {
	for _, x := range l {
		if x == k {
			return true
		}
	}
	return false
}

// prepare sets the per-chunk state of the conditions.
func (p *plan) prepare(ch *chunk) {
	for i := range p.conds {
		cp := &p.conds[i]
		if cp.eqStr {
			cp.eqID, cp.eqFound = ch.strs.lookup(cp.c.Value.Str)
		}
		cp.cache = cp.cache[:0]
	}
	p.setRows(ch)
}

// setRows points the conditions that scan the chunk's own span attributes
// at ch (a Builder scans its segments with one prepared plan).
func (p *plan) setRows(ch *chunk) {
	for i := range p.conds {
		cp := &p.conds[i]
		if cp.rowAttrs == nil || !cp.keyCol {
			cp.rowAttrs = &ch.attrs
		}
	}
}

// needs reports which columns the plan reads.
func (p *plan) needs() colMask {
	m := colMask(1 << colRuns)
	if p.hasName {
		m |= 1 << colName
	}
	if p.miscOK != nil {
		m |= 1 << colMisc
	}
	if p.originOK != nil {
		m |= 1 << colOrigin
	}
	if p.times {
		m |= 1 << colTimes
	}
	for i := range p.conds {
		cp := &p.conds[i]
		if cp.originHit != nil {
			m |= 1 << colOrigin
		}
		if cp.rowScopes != 0 {
			m |= 1<<colStrs | 1<<colAttrs // strs for values
		}
		if cp.rowScopes&keyEvent != 0 {
			m |= 1 << colEvents
		}
		if cp.rowScopes&keyLink != 0 {
			m |= 1 << colLinks
		}
	}
	return m
}

// scan evaluates rows [0, ch.n) and calls emit for each matching row whose
// trace (ch.trace, indexes into seen) was not yet reported. emit returns
// false to stop; scan then returns false.
func (p *plan) scan(ctx context.Context, ch *chunk, seen []uint64, emit func(r int) bool) (bool, error) {
	q := p.q
	evPos, lnPos := 0, 0
	for r := 0; r < ch.n; r++ {
		if r%ctxCheckRows == 0 && r > 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		t := ch.trace[r]
		if seen[t>>6]&(1<<(uint(t)&63)) != 0 {
			continue
		}
		if p.hasName && ch.name[r] != p.nameID {
			continue
		}
		if p.miscOK != nil && !p.miscOK[ch.misc[r]] {
			continue
		}
		if p.originOK != nil && !p.originOK[ch.origin[r]] {
			continue
		}
		if p.times {
			st, en := ch.start[r], ch.endAt(r)
			var d uint64
			if en >= st {
				d = en - st
			}
			if (q.MinDuration != 0 && d < q.MinDuration) || (q.MaxDuration != 0 && d > q.MaxDuration) ||
				(q.Start != 0 && st < q.Start) || (q.End != 0 && st > q.End) {
				continue
			}
		}
		ok := true
		for i := range p.conds {
			cp := &p.conds[i]
			if cp.originHit != nil && cp.originHit[ch.origin[r]] {
				continue
			}
			if cp.rowScopes&keySpan != 0 && cp.matchAttrs(ch, cp.rowAttrs, r) {
				continue
			}
			if cp.rowScopes&keyEvent != 0 {
				for evPos < len(ch.evRows) && ch.evRows[evPos] < uint32(r) {
					evPos++
				}
				if evPos < len(ch.evRows) && ch.evRows[evPos] == uint32(r) && cp.matchAny(ch, &ch.evAttrs, int(ch.evOff[evPos]), int(ch.evOff[evPos+1])) {
					continue
				}
			}
			if cp.rowScopes&keyLink != 0 {
				for lnPos < len(ch.lnRows) && ch.lnRows[lnPos] < uint32(r) {
					lnPos++
				}
				if lnPos < len(ch.lnRows) && ch.lnRows[lnPos] == uint32(r) && cp.matchAny(ch, &ch.lnAttrs, int(ch.lnOff[lnPos]), int(ch.lnOff[lnPos+1])) {
					continue
				}
			}
			ok = false
			break
		}
		if !ok {
			continue
		}
		seen[t>>6] |= 1 << (uint(t) & 63)
		if !emit(r) {
			return false, nil
		}
	}
	return true, nil
}

func (cp *condPlan) matchAny(ch *chunk, a *attrList, lo, hi int) bool {
	for i := lo; i < hi; i++ {
		if cp.matchAttrs(ch, a, i) {
			return true
		}
	}
	return false
}

func (cp *condPlan) matchAttrs(ch *chunk, a *attrList, i int) bool {
	lo, hi := a.off[i], a.off[i+1]
	kts, vals := a.keys(i), a.val[lo:hi]
	// Spans of one shape list their attributes in the same order: try the
	// position where the key was last found first. A hit there is the
	// answer unless the key occurs more than once in the row, so a failed
	// match falls through to the full loop.
	if h := cp.hint; int(h) < len(kts) && kts[h]>>ktKeyShift == cp.keyID && cp.matchVal(ch, a, kts[h], vals[h]) {
		return true
	}
	for j, kt := range kts {
		if kt>>ktKeyShift != cp.keyID {
			continue
		}
		if cp.matchVal(ch, a, kt, vals[j]) {
			cp.hint = uint32(j)
			return true
		}
	}
	return false
}

func (cp *condPlan) matchVal(ch *chunk, a *attrList, kt, v uint32) bool {
	c := cp.c
	if c.Op == search.OpExists {
		return true
	}
	t := span.ValueType(kt & ktTypeMask)
	switch t {
	case span.TypeString:
		if cp.eqStr {
			return cp.eqFound && v == cp.eqID
		}
		if cp.cache == nil || len(cp.cache) == 0 {
			n := ch.strs.count()
			if cap(cp.cache) >= n {
				cp.cache = cp.cache[:n]
				clear(cp.cache)
			} else {
				cp.cache = make([]uint8, n)
			}
		}
		if int(v) >= len(cp.cache) {
			return false
		}
		switch cp.cache[v] {
		case 1:
			return true
		case 2:
			return false
		}
		ok := c.MatchValue(span.Value{Type: span.TypeString, Str: ch.strs.str(v)})
		cp.cache[v] = 2
		if ok {
			cp.cache[v] = 1
		}
		return ok
	case span.TypeBool, span.TypeInt, span.TypeDouble:
		num := uint64(v)
		if kt&ktBig != 0 {
			num = a.nums[v]
		}
		val := span.Value{Type: t, Num: num}
		if cp.render {
			var buf [40]byte
			return matchRendered(c, renderScalar(buf[:0], val))
		}
		return c.MatchValue(val)
	}
	val, err := ch.value(a, kt, v)
	if err != nil {
		return false
	}
	return c.MatchValue(val)
}

// renderScalar appends v as Value.AsString renders a bool, int or double.
func renderScalar(dst []byte, v span.Value) []byte {
	switch v.Type {
	case span.TypeBool:
		return strconv.AppendBool(dst, v.Num != 0)
	case span.TypeInt:
		return strconv.AppendInt(dst, int64(v.Num), 10)
	case span.TypeDouble:
		return strconv.AppendFloat(dst, math.Float64frombits(v.Num), 'g', -1, 64)
	}
	return dst
}

// matchRendered evaluates a regex condition or a string-operand comparison
// on a rendered value, as Cond.MatchValue does, without allocating.
func matchRendered(c *search.Cond, s []byte) bool {
	switch c.Op {
	case search.OpRegex:
		return c.Re.Match(s)
	case search.OpNotRegex:
		return !c.Re.Match(s)
	}
	cmp := compareBytesString(s, c.Value.Str)
	switch c.Op {
	case search.OpEq:
		return cmp == 0
	case search.OpNe:
		return cmp != 0
	case search.OpGt:
		return cmp > 0
	case search.OpGe:
		return cmp >= 0
	case search.OpLt:
		return cmp < 0
	case search.OpLe:
		return cmp <= 0
	}
	return false
}

func compareBytesString(a []byte, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}
