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
	// rowTimes is set (per chunk) when rows must be checked against the
	// time and duration bounds: times, unless a Reader knows that every
	// row of the group lies within them.
	rowTimes bool
	conds    []condPlan
}

type condPlan struct {
	c         *search.Cond
	keyID     uint32
	rowScopes uint8  // keySpan|keyEvent|keyLink to scan on rows
	originHit []bool // per origin: satisfied by the resource or scope

	eqStr bool // OpEq with a string operand: compare string ids
	// onlyStrings: every value of the key on rows, events and links is a string
	onlyStrings bool
	render      bool   // the operand needs scalars rendered as strings
	hint        uint32 // position in the row where the key last matched

	// rowAttrs holds the span attributes scanned (a Builder segment's or a
	// decoded chunk's), unless keyCol is set: then kc, set by the Reader
	// per group, holds only this condition's key.
	rowAttrs *attrList
	keyCol   bool
	kc       *keyCol
	kpos     int // next entry of kc to look at, for rows in ascending order

	// grp evaluates values of the chunk's string dictionary (span
	// attributes of a chunk, events, links); key those of kc's own.
	grp, key valSrc
}

// valSrc is what matching a value needs of the dictionary the value's
// string ids point into: the dictionary, the operand's id in it (string
// equality) and the results of other comparisons by id.
type valSrc struct {
	strs    *strDict
	eqID    uint32
	eqFound bool
	cache   []uint8 // per string id: 0 unknown, 1 match, 2 no match
}

// reset points v at strs for condition cp.
func (v *valSrc) reset(cp *condPlan, strs *strDict) {
	v.strs = strs
	if cp.eqStr {
		v.eqID, v.eqFound = strs.lookup(cp.c.Value.Str)
	}
	v.cache = v.cache[:0]
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

// prepare sets the per-chunk state of the conditions; a Reader sets each
// keyCol condition's kc before.
func (p *plan) prepare(ch *chunk) {
	for i := range p.conds {
		cp := &p.conds[i]
		cp.grp.reset(cp, ch.strs)
		if cp.kc != nil {
			cp.key.reset(cp, cp.kc.strs)
		}
	}
	p.rowTimes = p.times
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
		if cp.rowScopes&keySpan != 0 && !cp.keyCol {
			m |= 1<<colStrs | 1<<colAttrs // strs for values
		}
		if cp.rowScopes&(keyEvent|keyLink) != 0 {
			m |= 1 << colStrs
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

// rowCursor is where a scan stands in a chunk's sparse event and link
// rows; rows must be matched in ascending order after start.
type rowCursor struct{ ev, ln int }

// start positions the cursor, and the key columns' entry cursors, at row
// lo.
func (p *plan) start(ch *chunk, lo int) rowCursor {
	var c rowCursor
	if lo > 0 {
		c.ev = lowerBound(ch.evRows, uint32(lo))
		c.ln = lowerBound(ch.lnRows, uint32(lo))
	}
	for i := range p.conds {
		if kc := p.conds[i].kc; kc != nil {
			p.conds[i].kpos = kc.firstEntry(lo)
		}
	}
	return c
}

// scan evaluates rows [lo, hi) of ch in order and calls emit for each
// matching row whose trace (ch.trace, indexes into seen) was not yet
// reported; with a nil seen, for every matching row (ch.trace is then not
// read). emit returns false to stop; scan then returns false.
func (p *plan) scan(ctx context.Context, ch *chunk, lo, hi int, seen []uint64, emit func(r int) bool) (bool, error) {
	cur := p.start(ch, lo)
	for r := lo; r < hi; r++ {
		if (r-lo)%ctxCheckRows == 0 && r > lo {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		if seen != nil {
			if t := ch.trace[r]; seen[t>>6]&(1<<(uint(t)&63)) != 0 {
				continue
			}
		}
		if !p.match(ch, r, &cur) {
			continue
		}
		if seen != nil {
			t := ch.trace[r]
			seen[t>>6] |= 1 << (uint(t) & 63)
		}
		if !emit(r) {
			return false, nil
		}
	}
	return true, nil
}

// scanRuns evaluates the rows of a block chunk trace by trace: run i
// (trace i of the group) is runs[i] rows, from row 0. It calls emit with
// the run and its first matching row, and goes on with the next run;
// emit returns false to stop, and scanRuns then returns false.
func (p *plan) scanRuns(ctx context.Context, ch *chunk, runs []uint32, emit func(run, r int) bool) (bool, error) {
	cur := p.start(ch, 0)
	r, next := 0, 0
	for i, n := range runs {
		if r >= next {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			next = r + ctxCheckRows
		}
		end := r + int(n)
		for ; r < end; r++ {
			if p.match(ch, r, &cur) {
				if !emit(i, r) {
					return false, nil
				}
				break
			}
		}
		r = end
	}
	return true, nil
}

// match reports whether row r of ch satisfies the plan. Rows must come in
// ascending order, from the row cur and the key columns were started at.
func (p *plan) match(ch *chunk, r int, cur *rowCursor) bool {
	if p.hasName && ch.name[r] != p.nameID {
		return false
	}
	if p.miscOK != nil && !p.miscOK[ch.misc[r]] {
		return false
	}
	if p.originOK != nil && !p.originOK[ch.origin[r]] {
		return false
	}
	if p.rowTimes {
		q := p.q
		st, en := ch.start[r], ch.endAt(r)
		var d uint64
		if en >= st {
			d = en - st
		}
		if (q.MinDuration != 0 && d < q.MinDuration) || (q.MaxDuration != 0 && d > q.MaxDuration) ||
			(q.Start != 0 && st < q.Start) || (q.End != 0 && st > q.End) {
			return false
		}
	}
	for i := range p.conds {
		cp := &p.conds[i]
		if cp.originHit != nil && cp.originHit[ch.origin[r]] {
			continue
		}
		if cp.rowScopes&keySpan != 0 {
			if cp.kc != nil {
				if cp.matchKeyCol(r) {
					continue
				}
			} else if cp.matchAttrs(cp.rowAttrs, r) {
				continue
			}
		}
		if cp.rowScopes&keyEvent != 0 {
			for cur.ev < len(ch.evRows) && ch.evRows[cur.ev] < uint32(r) {
				cur.ev++
			}
			if e := cur.ev; e < len(ch.evRows) && ch.evRows[e] == uint32(r) && cp.matchAny(&ch.evAttrs, int(ch.evOff[e]), int(ch.evOff[e+1])) {
				continue
			}
		}
		if cp.rowScopes&keyLink != 0 {
			for cur.ln < len(ch.lnRows) && ch.lnRows[cur.ln] < uint32(r) {
				cur.ln++
			}
			if l := cur.ln; l < len(ch.lnRows) && ch.lnRows[l] == uint32(r) && cp.matchAny(&ch.lnAttrs, int(ch.lnOff[l]), int(ch.lnOff[l+1])) {
				continue
			}
		}
		return false
	}
	return true
}

// lowerBound returns the index of the first element of s (ascending) that
// is at least v.
func lowerBound(s []uint32, v uint32) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (cp *condPlan) matchAny(a *attrList, lo, hi int) bool {
	for i := lo; i < hi; i++ {
		if cp.matchAttrs(a, i) {
			return true
		}
	}
	return false
}

// matchAttrs reports whether owner i of a (a row, event or link whose
// string values are ids of the chunk's dictionary) has an attribute of the
// condition's key whose value matches.
func (cp *condPlan) matchAttrs(a *attrList, i int) bool {
	lo, hi := a.off[i], a.off[i+1]
	kts, vals := a.keys(i), a.val[lo:hi]
	// Spans of one shape list their attributes in the same order: try the
	// position where the key was last found first. A hit there is the
	// answer unless the key occurs more than once in the row, so a failed
	// match falls through to the full loop.
	if h := cp.hint; int(h) < len(kts) && kts[h]>>ktKeyShift == cp.keyID && cp.matchVal(&cp.grp, a.nums, kts[h], vals[h]) {
		return true
	}
	for j, kt := range kts {
		if kt>>ktKeyShift != cp.keyID {
			continue
		}
		if cp.matchVal(&cp.grp, a.nums, kt, vals[j]) {
			cp.hint = uint32(j)
			return true
		}
	}
	return false
}

// matchKeyCol reports whether row r has an entry in kc whose value
// matches. Rows must come in ascending order after scan set kpos.
func (cp *condPlan) matchKeyCol(r int) bool {
	kc := cp.kc
	if kc.dense {
		if cp.eqStr && kc.tb.n == 0 && kc.uni == uint32(span.TypeString) {
			return cp.key.eqFound && kc.vals.at(r) == cp.key.eqID // the common case
		}
		return cp.matchVal(&cp.key, kc.nums, kc.kt(r), kc.vals.at(r))
	}
	e := cp.kpos
	for e < kc.m && int(kc.rows.at(e)) < r {
		e++
	}
	cp.kpos = e
	for ; e < kc.m && int(kc.rows.at(e)) == r; e++ {
		if cp.matchVal(&cp.key, kc.nums, kc.kt(e), kc.vals.at(e)) {
			return true
		}
	}
	return false
}

// matchVal evaluates the condition on one value: kt carries its type (and
// ktBig), v the value, a string id of vs's dictionary or a number (an
// index into nums when ktBig is set).
func (cp *condPlan) matchVal(vs *valSrc, nums []uint64, kt, v uint32) bool {
	c := cp.c
	if c.Op == search.OpExists {
		return true
	}
	t := span.ValueType(kt & ktTypeMask)
	switch t {
	case span.TypeString:
		if cp.eqStr {
			return vs.eqFound && v == vs.eqID
		}
		if len(vs.cache) == 0 {
			vs.cache = resize(vs.cache, vs.strs.count())
		}
		if int(v) >= len(vs.cache) {
			return false
		}
		switch vs.cache[v] {
		case 1:
			return true
		case 2:
			return false
		}
		ok := c.MatchValue(span.Value{Type: span.TypeString, Str: vs.strs.str(v)})
		vs.cache[v] = 2
		if ok {
			vs.cache[v] = 1
		}
		return ok
	case span.TypeBool, span.TypeInt, span.TypeDouble:
		num := uint64(v)
		if kt&ktBig != 0 {
			if int(v) >= len(nums) {
				return false
			}
			num = nums[v]
		}
		val := span.Value{Type: t, Num: num}
		if cp.render {
			var buf [40]byte
			return matchRendered(c, renderScalar(buf[:0], val))
		}
		return c.MatchValue(val)
	}
	val, err := valueOf(vs.strs, nums, kt, v)
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
