package block

import (
	"math"
	"slices"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/span"
)

// Key scope bits recorded per attribute key.
const (
	keySpan uint8 = 1 << iota
	keyResource
	keyScope
	keyEvent
	keyLink
)

// Builder accumulates spans in memory in columnar form: strings interned in
// arenas, rows in fixed-size segments of segRows rows whose columns are
// allocated once at their final size, so that growing never copies rows and
// never over-allocates by more than one segment. It is the store's head and
// the input of Write. Append must not run concurrently with any other method;
// the query methods may run concurrently with each other.
type Builder struct {
	tab  tables
	segs []*chunk // full segments, then the open one
	free []*chunk // emptied segments kept by reset for reuse
	n    int      // rows
	strs *strDict // value strings of all segments
	shp  *shapeTab

	traces  chunked[traceInfo]
	traceHT traceTable

	miscMap   map[miscEntry]uint32
	resMap    map[string]uint32
	scopeMap  map[string]uint32
	originMap map[origin]uint32

	svc      *strDict // service names
	resSvc   []uint32 // per resource: service id
	pairs    map[uint64]struct{}
	lastPair uint64

	minT, maxT uint64
	gen        uint32 // incremented by reset; stamps Compact's id remaps
	reuse      bool   // reset and refilled (Compact): keep segment capacity

	// per-Append scratch
	scratch  []byte
	kts      []uint32
	batchRes map[*span.Resource]uint32
	batchSc  map[*span.Scope]uint32
}

// traceInfo is the Builder's per-trace record.
type traceInfo struct {
	id          span.TraceID
	min, max    uint64 // minimum start, maximum end
	first, last int32  // rows; the rest of the trace's rows follow chunk.next
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	b := &Builder{}
	b.tab.names = newStrDict()
	b.tab.keys = newStrDict()
	b.strs = newStrDict()
	b.shp = newShapeTab()
	b.svc = newStrDict()
	b.traceHT.init()
	b.miscMap = make(map[miscEntry]uint32)
	b.resMap = make(map[string]uint32)
	b.scopeMap = make(map[string]uint32)
	b.originMap = make(map[origin]uint32)
	b.pairs = make(map[uint64]struct{})
	b.batchRes = make(map[*span.Resource]uint32)
	b.batchSc = make(map[*span.Scope]uint32)
	b.lastPair = math.MaxUint64
	b.tab.misc = append(b.tab.misc, miscEntry{})
	b.miscMap[miscEntry{}] = 0
	b.minT = math.MaxUint64
	b.gen = 1
	return b
}

// reset empties b for reuse, keeping its segments (used by Compact).
func (b *Builder) reset() {
	b.tab.names.reset()
	b.tab.keys.reset()
	b.strs.reset()
	b.shp.reset()
	b.svc.reset()
	b.traces.reset()
	b.traceHT.reset()
	clear(b.miscMap)
	clear(b.resMap)
	clear(b.scopeMap)
	clear(b.originMap)
	clear(b.pairs)
	b.lastPair = math.MaxUint64
	b.tab.keyScopes = b.tab.keyScopes[:0]
	b.tab.keyTypes = b.tab.keyTypes[:0]
	b.resSvc = b.resSvc[:0]
	b.tab.misc = append(b.tab.misc[:0], miscEntry{})
	b.miscMap[miscEntry{}] = 0
	b.tab.origins = b.tab.origins[:0]
	clear(b.tab.resources)
	b.tab.resources = b.tab.resources[:0]
	clear(b.tab.scopes)
	b.tab.scopes = b.tab.scopes[:0]
	b.tab.services = b.tab.services[:0]
	b.free = append(b.free, b.segs...)
	clear(b.segs)
	b.segs = b.segs[:0]
	b.n = 0
	b.minT, b.maxT = math.MaxUint64, 0
	b.gen++
	if b.gen == 0 { // wrapped: stamps of an old generation could match
		b.gen = 1
	}
}

// Len returns the number of spans held.
func (b *Builder) Len() int { return b.n }

// TimeRange returns the minimum and maximum span start time; both are zero
// when b is empty.
func (b *Builder) TimeRange() (min, max uint64) {
	if b.n == 0 {
		return 0, 0
	}
	return b.minT, b.maxT
}

// MemSize returns the approximate number of heap bytes b holds.
func (b *Builder) MemSize() int64 {
	n := int64(0)
	for _, c := range b.segs {
		n += c.memSize()
	}
	n += b.strs.memSize() + b.shp.memSize()
	n += b.tab.names.memSize() + b.tab.keys.memSize() + b.svc.memSize()
	n += b.traces.memSize(40) + b.traceHT.memSize()
	n += int64(len(b.miscMap))*64 + int64(len(b.pairs))*24 + int64(len(b.resMap)+len(b.scopeMap))*256
	n += int64(cap(b.tab.misc))*32 + int64(cap(b.tab.origins))*8 + int64(len(b.originMap))*24
	return n
}

// seg returns the segment holding row r and r's index in it.
func (b *Builder) seg(r int32) (*chunk, int) {
	return b.segs[r>>segShift], int(r & segMask)
}

// openSeg returns the segment rows are appended to, starting a new one when
// the last is full.
func (b *Builder) openSeg() *chunk {
	if k := len(b.segs); k > 0 && b.segs[k-1].n < segRows {
		return b.segs[k-1]
	}
	var prev *chunk
	if k := len(b.segs); k > 0 {
		prev = b.segs[k-1]
		if !b.reuse {
			prev.seal()
		}
	}
	var c *chunk
	if k := len(b.free); k > 0 {
		c = b.free[k-1]
		b.free = b.free[:k-1]
		c.clearSeg()
	} else {
		c = newSeg()
	}
	c.strs = b.strs
	c.attrs.shapes = b.shp
	if prev != nil {
		// Size the attribute values like the previous segment's, so the
		// common case allocates once at the right size.
		c.attrs.val = slices.Grow(c.attrs.val, len(prev.attrs.val)+len(prev.attrs.val)/32)
		c.attrs.nums = slices.Grow(c.attrs.nums, len(prev.attrs.nums)+len(prev.attrs.nums)/32)
	}
	b.segs = append(b.segs, c)
	return c
}

// Append adds the spans of batch. It copies everything it keeps, so the
// batch's strings may alias a request buffer.
func (b *Builder) Append(batch *span.Batch) {
	clear(b.batchRes)
	clear(b.batchSc)
	lastOrigin := uint32(math.MaxUint32)
	var lastRes *span.Resource
	var lastSc *span.Scope
	lastMisc := miscEntry{}
	lastMiscID := uint32(0)
	lastTrace := int32(-1)
	var lastTID span.TraceID
	for i := range batch.Spans {
		s := &batch.Spans[i]
		c := b.openSeg()
		// origin
		if lastOrigin == math.MaxUint32 || s.Resource != lastRes || s.Scope != lastSc {
			lastOrigin = b.internOrigin(s.Resource, s.Scope)
			lastRes, lastSc = s.Resource, s.Scope
		}
		// trace
		row := int32(b.n)
		if lastTrace < 0 || s.TraceID != lastTID {
			t, ok := b.traceHT.find(&b.traces, s.TraceID)
			if !ok {
				t = int32(b.traces.len())
				b.traces.append(traceInfo{id: s.TraceID, min: s.StartUnixNano, max: s.EndUnixNano, first: row, last: -1})
				b.traceHT.insert(&b.traces, t)
			}
			lastTrace, lastTID = t, s.TraceID
		}
		t := lastTrace
		ti := b.traces.ptr(int(t))
		if p := ti.last; p >= 0 {
			pc, pi := b.seg(p)
			pc.next[pi] = row
		} else {
			ti.first = row
		}
		ti.last = row
		ti.min = min(ti.min, s.StartUnixNano)
		ti.max = max(ti.max, s.EndUnixNano)
		b.minT = min(b.minT, s.StartUnixNano)
		b.maxT = max(b.maxT, s.StartUnixNano)

		// misc
		m := miscEntry{kind: s.Kind, status: s.StatusCode, flags: s.Flags, dAttrs: s.DroppedAttrs, dEvents: s.DroppedEvents, dLinks: s.DroppedLinks}
		if s.TraceState != "" {
			m.state = b.strs.intern(s.TraceState)
		}
		if s.StatusMessage != "" {
			m.msg = b.strs.intern(s.StatusMessage)
		}
		if m != lastMisc {
			id, ok := b.miscMap[m]
			if !ok {
				id = uint32(len(b.tab.misc))
				b.tab.misc = append(b.tab.misc, m)
				b.miscMap[m] = id
			}
			lastMisc, lastMiscID = m, id
		}
		nameID := b.tab.names.intern(s.Name)
		pair := uint64(b.resSvc[b.tab.origins[lastOrigin].res])<<32 | uint64(nameID)
		if pair != b.lastPair {
			b.pairs[pair] = struct{}{}
			b.lastPair = pair
		}

		local := c.n
		c.trace = append(c.trace, t)
		c.next = append(c.next, -1)
		c.spanID = append(c.spanID, s.SpanID)
		c.parent = append(c.parent, s.ParentSpanID)
		c.start = append(c.start, s.StartUnixNano)
		c.setEnd(local, s.StartUnixNano, s.EndUnixNano)
		c.name = append(c.name, nameID)
		c.misc = append(c.misc, lastMiscID)
		c.origin = append(c.origin, lastOrigin)
		b.appendRowAttrs(c, s.Attrs)
		if len(s.Events) > 0 {
			c.evRows = append(c.evRows, uint32(local))
			for j := range s.Events {
				e := &s.Events[j]
				c.evTime = append(c.evTime, e.TimeUnixNano)
				c.evName = append(c.evName, b.strs.intern(e.Name))
				c.evDrop = append(c.evDrop, e.DroppedAttrs)
				b.appendAttrs(c, &c.evAttrs, e.Attrs, keyEvent)
			}
			c.evOff = append(c.evOff, uint32(len(c.evTime)))
		}
		if len(s.Links) > 0 {
			c.lnRows = append(c.lnRows, uint32(local))
			for j := range s.Links {
				l := &s.Links[j]
				c.lnTrace = append(c.lnTrace, l.TraceID)
				c.lnSpan = append(c.lnSpan, l.SpanID)
				c.lnState = append(c.lnState, b.strs.intern(l.TraceState))
				c.lnFlags = append(c.lnFlags, l.Flags)
				c.lnDrop = append(c.lnDrop, l.DroppedAttrs)
				b.appendAttrs(c, &c.lnAttrs, l.Attrs, keyLink)
			}
			c.lnOff = append(c.lnOff, uint32(len(c.lnTrace)))
		}
		c.n++
		b.n++
	}
}

func (b *Builder) markKey(id uint32, scope uint8) {
	for int(id) >= len(b.tab.keyScopes) {
		b.tab.keyScopes = append(b.tab.keyScopes, 0)
		b.tab.keyTypes = append(b.tab.keyTypes, 0)
	}
	b.tab.keyScopes[id] |= scope
}

// appendAttrs appends one owner's attributes to a (event and link lists,
// which store a key and type per attribute).
func (b *Builder) appendAttrs(c *chunk, a *attrList, attrs []span.Attr, scope uint8) {
	for i := range attrs {
		kt, v := b.attrEntry(c, a, &attrs[i], scope)
		a.kt = append(a.kt, kt)
		a.val = append(a.val, v)
	}
	a.off = append(a.off, uint32(len(a.val)))
}

// appendRowAttrs appends a span's attributes to c.attrs: the values, and
// the sequence of keys and types interned once as the row's shape.
func (b *Builder) appendRowAttrs(c *chunk, attrs []span.Attr) {
	a := &c.attrs
	b.kts = b.kts[:0]
	for i := range attrs {
		kt, v := b.attrEntry(c, a, &attrs[i], keySpan)
		b.kts = append(b.kts, kt)
		a.val = append(a.val, v)
	}
	a.shp = append(a.shp, b.shp.intern(b.kts))
	a.off = append(a.off, uint32(len(a.val)))
}

func (b *Builder) attrEntry(c *chunk, a *attrList, at *span.Attr, scope uint8) (uint32, uint32) {
	key := b.tab.keys.intern(at.Key)
	if int(key) >= len(b.tab.keyScopes) || b.tab.keyScopes[key]&scope == 0 {
		b.markKey(key, scope)
	}
	kt, v := b.encodeValue(a, key, at.Value)
	b.tab.keyTypes[key] |= 1 << (kt & ktTypeMask)
	return kt, v
}

func (b *Builder) encodeValue(a *attrList, key uint32, v span.Value) (uint32, uint32) {
	t := v.Type
	kt := key<<ktKeyShift | uint32(t&ktTypeMask)
	switch t {
	case span.TypeString, span.TypeBytes:
		return kt, b.strs.intern(v.Str)
	case span.TypeBool, span.TypeInt:
		if v.Num <= math.MaxUint32 {
			return kt, uint32(v.Num)
		}
		return kt | ktBig, a.addNum(v.Num)
	case span.TypeDouble:
		return kt | ktBig, a.addNum(v.Num)
	case span.TypeArray, span.TypeMap:
		b.scratch = appendValue(b.scratch[:0], v)
		return kt, b.strs.internBytes(b.scratch)
	}
	// Unknown types are stored as empty values.
	return key << ktKeyShift, 0
}

func (b *Builder) internOrigin(r *span.Resource, s *span.Scope) uint32 {
	ri, ok := b.batchRes[r]
	if !ok {
		ri = b.internResource(r)
		b.batchRes[r] = ri
	}
	si, ok := b.batchSc[s]
	if !ok {
		si = b.internScope(s)
		b.batchSc[s] = si
	}
	o := origin{ri, si}
	id, ok := b.originMap[o]
	if !ok {
		id = uint32(len(b.tab.origins))
		b.tab.origins = append(b.tab.origins, o)
		b.originMap[o] = id
	}
	return id
}

func (b *Builder) internResource(r *span.Resource) uint32 {
	if r == nil {
		r = &span.Resource{}
	}
	b.scratch = appendResource(b.scratch[:0], r)
	if id, ok := b.resMap[string(b.scratch)]; ok {
		return id
	}
	id := uint32(len(b.tab.resources))
	b.resMap[string(b.scratch)] = id
	cr := cloneResourceStrings(r)
	b.tab.resources = append(b.tab.resources, *cr)
	svc := cr.ServiceName() // r's strings may alias a request buffer
	b.tab.services = append(b.tab.services, svc)
	b.resSvc = append(b.resSvc, b.svc.intern(svc))
	for i := range r.Attrs {
		b.markKey(b.tab.keys.intern(r.Attrs[i].Key), keyResource)
	}
	return id
}

func (b *Builder) internScope(s *span.Scope) uint32 {
	if s == nil {
		s = &span.Scope{}
	}
	b.scratch = appendScope(b.scratch[:0], s)
	if id, ok := b.scopeMap[string(b.scratch)]; ok {
		return id
	}
	id := uint32(len(b.tab.scopes))
	b.scopeMap[string(b.scratch)] = id
	b.tab.scopes = append(b.tab.scopes, *cloneScopeStrings(s))
	for i := range s.Attrs {
		b.markKey(b.tab.keys.intern(s.Attrs[i].Key), keyScope)
	}
	return id
}

func appendResource(dst []byte, r *span.Resource) []byte {
	dst = appendAttrs(dst, r.Attrs)
	dst = encoding.AppendUvarint(dst, uint64(r.DroppedAttrs))
	return encoding.AppendString(dst, r.SchemaURL)
}

func appendScope(dst []byte, s *span.Scope) []byte {
	dst = encoding.AppendString(dst, s.Name)
	dst = encoding.AppendString(dst, s.Version)
	dst = appendAttrs(dst, s.Attrs)
	dst = encoding.AppendUvarint(dst, uint64(s.DroppedAttrs))
	return encoding.AppendString(dst, s.SchemaURL)
}

func decodeResource(d *encoding.Decbuf) span.Resource {
	var r span.Resource
	r.Attrs = decodeAttrs(d, 0)
	r.DroppedAttrs = d.Uvarint32()
	r.SchemaURL = d.UvarintString()
	return r
}

func decodeScope(d *encoding.Decbuf) span.Scope {
	var s span.Scope
	s.Name = d.UvarintString()
	s.Version = d.UvarintString()
	s.Attrs = decodeAttrs(d, 0)
	s.DroppedAttrs = d.Uvarint32()
	s.SchemaURL = d.UvarintString()
	return s
}

// cloneResourceStrings deep-copies r including its string bytes, which may
// alias a request buffer.
func cloneResourceStrings(r *span.Resource) *span.Resource {
	// Round-tripping through the codec copies every string.
	buf := appendResource(nil, r)
	d := encoding.NewDecbuf(buf)
	out := decodeResource(&d)
	return &out
}

func cloneScopeStrings(s *span.Scope) *span.Scope {
	buf := appendScope(nil, s)
	d := encoding.NewDecbuf(buf)
	out := decodeScope(&d)
	return &out
}

// labels

func (b *Builder) services() []string {
	out := make([]string, 0, b.svc.count())
	for id := 1; id < b.svc.count(); id++ {
		out = append(out, b.svc.str(uint32(id)))
	}
	return sortedUnique(out)
}

func (b *Builder) spanNames(service string) []string {
	var want uint32
	if service != "" {
		id, ok := b.svc.lookup(service)
		if !ok {
			return nil
		}
		want = id
	}
	out := []string{}
	for p := range b.pairs {
		if service != "" && uint32(p>>32) != want {
			continue
		}
		out = append(out, b.tab.names.str(uint32(p)))
	}
	return sortedUnique(out)
}

func (b *Builder) attrKeys(mask uint8) []string {
	out := []string{}
	for id, m := range b.tab.keyScopes {
		if m&mask != 0 {
			out = append(out, b.tab.keys.str(uint32(id)))
		}
	}
	return sortedUnique(out)
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
