package block

import (
	"errors"
	"math"

	"github.com/clew-dev/clew/internal/span"
)

// Compaction copies rows from decoded row groups of its inputs straight into
// a Builder, remapping dictionary ids instead of materializing span.Span
// values: no per-span allocation. Remaps are valid for one Builder
// generation (reset empties the Builder's dictionaries) and, for page
// strings, for one decoded chunk.

// idMap maps ids of one source dictionary to Builder ids, stamped by
// generation so that clearing is free.
type idMap struct {
	stamp []uint32
	val   []uint32
}

func (m *idMap) get(id int, gen uint32) (uint32, bool) {
	if id < len(m.stamp) && m.stamp[id] == gen {
		return m.val[id], true
	}
	return 0, false
}

func (m *idMap) set(id int, gen, v uint32) {
	if id >= len(m.stamp) {
		n := max(id+1, 2*len(m.stamp), 64)
		m.stamp = append(m.stamp, make([]uint32, n-len(m.stamp))...)
		m.val = append(m.val, make([]uint32, n-len(m.val))...)
	}
	m.stamp[id], m.val[id] = gen, v
}

// compactSrc holds one input's remaps into the compaction Builder.
type compactSrc struct {
	names, keys, origins idMap
	strs                 idMap
	strsOf               *chunk // chunk whose page strings strs maps
	strGen               uint32
}

// addTrace returns the number of trace id, adding it when new.
func (b *Builder) addTrace(id span.TraceID) int32 {
	if t, ok := b.traceHT.find(&b.traces, id); ok {
		return t
	}
	t := int32(b.traces.len())
	b.traces.append(traceInfo{id: id, min: math.MaxUint64, first: -1, last: -1})
	b.traceHT.insert(&b.traces, t)
	return t
}

var errID = errors.New("id out of range")

// str maps page string id of cs.strsOf to the Builder's strings.
func (b *Builder) str(cs *compactSrc, ch *chunk, id uint32) (uint32, error) {
	if cs.strsOf != ch || cs.strGen != b.gen {
		cs.strsOf, cs.strGen = ch, b.gen
		cs.strs.stamp = cs.strs.stamp[:0] // stamps of a new chunk are meaningless
		cs.strs.val = cs.strs.val[:0]
	}
	if v, ok := cs.strs.get(int(id), b.gen); ok {
		return v, nil
	}
	if int(id) >= ch.strs.count() {
		return 0, errID
	}
	v := b.strs.internBytes(ch.strs.bytes(id))
	cs.strs.set(int(id), b.gen, v)
	return v, nil
}

func (b *Builder) key(cs *compactSrc, t *tables, id uint32, scope uint8) (uint32, error) {
	k, ok := cs.keys.get(int(id), b.gen)
	if !ok {
		if int(id) >= t.keys.count() {
			return 0, errID
		}
		k = b.tab.keys.internBytes(t.keys.bytes(id))
		cs.keys.set(int(id), b.gen, k)
	}
	if int(k) >= len(b.tab.keyScopes) || b.tab.keyScopes[k]&scope == 0 {
		b.markKey(k, scope)
	}
	return k, nil
}

// copyAttr maps one attribute entry of src (kt form) to the Builder.
func (b *Builder) copyAttr(cs *compactSrc, ch *chunk, t *tables, src, dst *attrList, kt, v uint32, scope uint8) (uint32, uint32, error) {
	key, err := b.key(cs, t, kt>>ktKeyShift, scope)
	if err != nil {
		return 0, 0, err
	}
	typ := kt & ktTypeMask
	b.tab.keyTypes[key] |= 1 << typ
	nkt := key<<ktKeyShift | typ
	switch span.ValueType(typ) {
	case span.TypeString, span.TypeBytes, span.TypeArray, span.TypeMap:
		v, err = b.str(cs, ch, v)
	case span.TypeBool, span.TypeInt, span.TypeDouble:
		if kt&ktBig != 0 {
			if int(v) >= len(src.nums) {
				return 0, 0, errID
			}
			nkt |= ktBig
			v = dst.addNum(src.nums[v])
		}
	default:
		v = 0
	}
	return nkt, v, err
}

func (b *Builder) copyAttrs(cs *compactSrc, ch *chunk, t *tables, src, dst *attrList, i int, scope uint8) error {
	vals := src.val[src.off[i]:src.off[i+1]]
	for j, kt := range src.keys(i) {
		nkt, v, err := b.copyAttr(cs, ch, t, src, dst, kt, vals[j], scope)
		if err != nil {
			return err
		}
		dst.kt = append(dst.kt, nkt)
		dst.val = append(dst.val, v)
	}
	dst.off = append(dst.off, uint32(len(dst.val)))
	return nil
}

// copyRow appends row r of the decoded block chunk ch (tables t) to trace
// tr of b, unless dd has seen an exact duplicate of it.
func (b *Builder) copyRow(cs *compactSrc, ch *chunk, t *tables, r int, tr int32, dd *dedup) error {
	gen := b.gen
	name, ok := cs.names.get(int(ch.name[r]), gen)
	if !ok {
		name = b.tab.names.internBytes(t.names.bytes(ch.name[r]))
		cs.names.set(int(ch.name[r]), gen, name)
	}
	start, end := ch.start[r], ch.endAt(r)
	if !dd.add(dedupKey{id: ch.spanID[r], start: start, end: end, name: name}) {
		return nil
	}
	o, ok := cs.origins.get(int(ch.origin[r]), gen)
	if !ok {
		or := t.origins[ch.origin[r]]
		res, sc := b.internResource(&t.resources[or.res]), b.internScope(&t.scopes[or.scope])
		no := origin{res, sc}
		if o, ok = b.originMap[no]; !ok {
			o = uint32(len(b.tab.origins))
			b.tab.origins = append(b.tab.origins, no)
			b.originMap[no] = o
		}
		cs.origins.set(int(ch.origin[r]), gen, o)
	}
	m := t.misc[ch.misc[r]]
	var err error
	if ch.state != nil {
		if m.state, err = b.str(cs, ch, ch.state[r]); err != nil {
			return err
		}
		if m.msg, err = b.str(cs, ch, ch.msg[r]); err != nil {
			return err
		}
	}
	misc, ok := b.miscMap[m]
	if !ok {
		misc = uint32(len(b.tab.misc))
		b.tab.misc = append(b.tab.misc, m)
		b.miscMap[m] = misc
	}
	pair := uint64(b.resSvc[b.tab.origins[o].res])<<32 | uint64(name)
	if pair != b.lastPair {
		b.pairs[pair] = struct{}{}
		b.lastPair = pair
	}

	c := b.openSeg()
	row := int32(b.n)
	ti := b.traces.ptr(int(tr))
	if p := ti.last; p >= 0 {
		pc, pi := b.seg(p)
		pc.next[pi] = row
	} else {
		ti.first = row
	}
	ti.last = row
	ti.min = min(ti.min, start)
	ti.max = max(ti.max, end)
	b.minT = min(b.minT, start)
	b.maxT = max(b.maxT, start)

	local := c.n
	c.trace = append(c.trace, tr)
	c.next = append(c.next, -1)
	c.spanID = append(c.spanID, ch.spanID[r])
	c.parent = append(c.parent, ch.parent[r])
	c.start = append(c.start, start)
	c.setEnd(local, start, end)
	c.name = append(c.name, name)
	c.misc = append(c.misc, misc)
	c.origin = append(c.origin, o)
	// span attributes: values, and the shape of keys
	src := &ch.attrs
	vals := src.val[src.off[r]:src.off[r+1]]
	b.kts = b.kts[:0]
	for j, kt := range src.keys(r) {
		nkt, v, err := b.copyAttr(cs, ch, t, src, &c.attrs, kt, vals[j], keySpan)
		if err != nil {
			return err
		}
		b.kts = append(b.kts, nkt)
		c.attrs.val = append(c.attrs.val, v)
	}
	c.attrs.shp = append(c.attrs.shp, b.shp.intern(b.kts))
	c.attrs.off = append(c.attrs.off, uint32(len(c.attrs.val)))
	if lo, hi := sparseRange(ch.evRows, ch.evOff, r); hi > lo {
		c.evRows = append(c.evRows, uint32(local))
		for e := lo; e < hi; e++ {
			c.evTime = append(c.evTime, ch.evTime[e])
			nm, err := b.str(cs, ch, ch.evName[e])
			if err != nil {
				return err
			}
			c.evName = append(c.evName, nm)
			c.evDrop = append(c.evDrop, ch.evDrop[e])
			if err := b.copyAttrs(cs, ch, t, &ch.evAttrs, &c.evAttrs, e, keyEvent); err != nil {
				return err
			}
		}
		c.evOff = append(c.evOff, uint32(len(c.evTime)))
	}
	if lo, hi := sparseRange(ch.lnRows, ch.lnOff, r); hi > lo {
		c.lnRows = append(c.lnRows, uint32(local))
		for e := lo; e < hi; e++ {
			c.lnTrace = append(c.lnTrace, ch.lnTrace[e])
			c.lnSpan = append(c.lnSpan, ch.lnSpan[e])
			st, err := b.str(cs, ch, ch.lnState[e])
			if err != nil {
				return err
			}
			c.lnState = append(c.lnState, st)
			c.lnFlags = append(c.lnFlags, ch.lnFlags[e])
			c.lnDrop = append(c.lnDrop, ch.lnDrop[e])
			if err := b.copyAttrs(cs, ch, t, &ch.lnAttrs, &c.lnAttrs, e, keyLink); err != nil {
				return err
			}
		}
		c.lnOff = append(c.lnOff, uint32(len(c.lnTrace)))
	}
	c.n++
	b.n++
	return nil
}
