package block

import (
	"math"
	"slices"

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
// arenas, rows in append-only slices. It is the store's head and the input of
// Write. Append must not run concurrently with any other method; the query
// methods may run concurrently with each other.
type Builder struct {
	tab tables
	ch  chunk

	traceMap map[span.TraceID]int32
	tIDs     []span.TraceID
	tMin     []uint64
	tMax     []uint64
	tFirst   []int32
	tLast    []int32
	next     []int32 // per row: next row of the same trace, -1 at the end

	miscMap   map[miscEntry]uint32
	resMap    map[string]uint32
	scopeMap  map[string]uint32
	originMap map[origin]uint32

	svc      *strDict // service names
	resSvc   []uint32 // per resource: service id
	pairs    map[uint64]struct{}
	lastPair uint64

	minT, maxT uint64

	// per-Append scratch
	scratch  []byte
	batchRes map[*span.Resource]uint32
	batchSc  map[*span.Scope]uint32
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	b := &Builder{}
	b.tab.names = newStrDict()
	b.tab.keys = newStrDict()
	b.ch.strs = newStrDict()
	b.svc = newStrDict()
	b.traceMap = make(map[span.TraceID]int32)
	b.miscMap = make(map[miscEntry]uint32)
	b.resMap = make(map[string]uint32)
	b.scopeMap = make(map[string]uint32)
	b.originMap = make(map[origin]uint32)
	b.pairs = make(map[uint64]struct{})
	b.batchRes = make(map[*span.Resource]uint32)
	b.batchSc = make(map[*span.Scope]uint32)
	b.lastPair = math.MaxUint64
	b.ch.attrs.reset()
	b.ch.evAttrs.reset()
	b.ch.lnAttrs.reset()
	b.ch.evOff = append(b.ch.evOff[:0], 0)
	b.ch.lnOff = append(b.ch.lnOff[:0], 0)
	b.tab.misc = append(b.tab.misc, miscEntry{})
	b.miscMap[miscEntry{}] = 0
	b.minT = math.MaxUint64
	return b
}

// reset empties b for reuse, keeping capacity (used by Compact).
func (b *Builder) reset() {
	b.tab.names.reset()
	b.tab.keys.reset()
	b.ch.strs.reset()
	b.svc.reset()
	clear(b.traceMap)
	clear(b.miscMap)
	clear(b.resMap)
	clear(b.scopeMap)
	clear(b.originMap)
	clear(b.pairs)
	b.lastPair = math.MaxUint64
	b.tIDs, b.tMin, b.tMax, b.tFirst, b.tLast, b.next = b.tIDs[:0], b.tMin[:0], b.tMax[:0], b.tFirst[:0], b.tLast[:0], b.next[:0]
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
	c := &b.ch
	c.n = 0
	c.trace, c.spanID, c.parent, c.start, c.end = c.trace[:0], c.spanID[:0], c.parent[:0], c.start[:0], c.end[:0]
	c.name, c.misc, c.origin = c.name[:0], c.misc[:0], c.origin[:0]
	c.attrs.reset()
	c.evRows, c.evOff, c.evTime, c.evName, c.evDrop = c.evRows[:0], append(c.evOff[:0], 0), c.evTime[:0], c.evName[:0], c.evDrop[:0]
	c.evAttrs.reset()
	c.lnRows, c.lnOff, c.lnTrace, c.lnSpan, c.lnState, c.lnFlags, c.lnDrop = c.lnRows[:0], append(c.lnOff[:0], 0), c.lnTrace[:0], c.lnSpan[:0], c.lnState[:0], c.lnFlags[:0], c.lnDrop[:0]
	c.lnAttrs.reset()
	b.minT, b.maxT = math.MaxUint64, 0
}

// Len returns the number of spans held.
func (b *Builder) Len() int { return b.ch.n }

// TimeRange returns the minimum and maximum span start time; both are zero
// when b is empty.
func (b *Builder) TimeRange() (min, max uint64) {
	if b.ch.n == 0 {
		return 0, 0
	}
	return b.minT, b.maxT
}

// MemSize returns the approximate number of heap bytes b holds.
func (b *Builder) MemSize() int64 {
	c := &b.ch
	n := int64(cap(c.trace))*4 + int64(cap(c.spanID)+cap(c.parent))*8 + int64(cap(c.start)+cap(c.end))*8 +
		int64(cap(c.name)+cap(c.misc)+cap(c.origin))*4 + c.attrs.memSize() +
		int64(cap(c.evRows)+cap(c.evOff)+cap(c.evName)+cap(c.evDrop))*4 + int64(cap(c.evTime))*8 + c.evAttrs.memSize() +
		int64(cap(c.lnRows)+cap(c.lnOff)+cap(c.lnState)+cap(c.lnFlags)+cap(c.lnDrop))*4 + int64(cap(c.lnTrace))*16 + int64(cap(c.lnSpan))*8 + c.lnAttrs.memSize() +
		c.strs.memSize()
	n += b.tab.names.memSize() + b.tab.keys.memSize() + b.svc.memSize()
	n += int64(cap(b.tIDs))*16 + int64(cap(b.tMin)+cap(b.tMax))*8 + int64(cap(b.tFirst)+cap(b.tLast)+cap(b.next))*4
	n += int64(len(b.traceMap)) * 40 // map buckets: key, value, overhead
	n += int64(len(b.miscMap))*48 + int64(len(b.pairs))*24 + int64(len(b.resMap)+len(b.scopeMap))*256
	return n
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
	c := &b.ch
	for i := range batch.Spans {
		s := &batch.Spans[i]
		// origin
		if lastOrigin == math.MaxUint32 || s.Resource != lastRes || s.Scope != lastSc {
			lastOrigin = b.internOrigin(s.Resource, s.Scope)
			lastRes, lastSc = s.Resource, s.Scope
		}
		// trace
		row := int32(c.n)
		if lastTrace < 0 || s.TraceID != lastTID {
			t, ok := b.traceMap[s.TraceID]
			if !ok {
				t = int32(len(b.tIDs))
				b.traceMap[s.TraceID] = t
				b.tIDs = append(b.tIDs, s.TraceID)
				b.tMin = append(b.tMin, s.StartUnixNano)
				b.tMax = append(b.tMax, s.EndUnixNano)
				b.tFirst = append(b.tFirst, row)
				b.tLast = append(b.tLast, -1)
			}
			lastTrace, lastTID = t, s.TraceID
		}
		t := lastTrace
		if p := b.tLast[t]; p >= 0 {
			b.next[p] = row
		} else {
			b.tFirst[t] = row
		}
		b.tLast[t] = row
		b.next = append(b.next, -1)
		b.tMin[t] = min(b.tMin[t], s.StartUnixNano)
		b.tMax[t] = max(b.tMax[t], s.EndUnixNano)
		b.minT = min(b.minT, s.StartUnixNano)
		b.maxT = max(b.maxT, s.StartUnixNano)

		// misc
		m := miscEntry{kind: s.Kind, status: s.StatusCode, flags: s.Flags, dAttrs: s.DroppedAttrs, dEvents: s.DroppedEvents, dLinks: s.DroppedLinks}
		if s.TraceState != "" {
			m.state = c.strs.intern(s.TraceState)
		}
		if s.StatusMessage != "" {
			m.msg = c.strs.intern(s.StatusMessage)
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

		c.trace = append(c.trace, t)
		c.spanID = append(c.spanID, s.SpanID)
		c.parent = append(c.parent, s.ParentSpanID)
		c.start = append(c.start, s.StartUnixNano)
		c.end = append(c.end, s.EndUnixNano)
		c.name = append(c.name, nameID)
		c.misc = append(c.misc, lastMiscID)
		c.origin = append(c.origin, lastOrigin)
		b.appendAttrs(&c.attrs, s.Attrs, keySpan)
		if len(s.Events) > 0 {
			c.evRows = append(c.evRows, uint32(row))
			for j := range s.Events {
				e := &s.Events[j]
				c.evTime = append(c.evTime, e.TimeUnixNano)
				c.evName = append(c.evName, c.strs.intern(e.Name))
				c.evDrop = append(c.evDrop, e.DroppedAttrs)
				b.appendAttrs(&c.evAttrs, e.Attrs, keyEvent)
			}
			c.evOff = append(c.evOff, uint32(len(c.evTime)))
		}
		if len(s.Links) > 0 {
			c.lnRows = append(c.lnRows, uint32(row))
			for j := range s.Links {
				l := &s.Links[j]
				c.lnTrace = append(c.lnTrace, l.TraceID)
				c.lnSpan = append(c.lnSpan, l.SpanID)
				c.lnState = append(c.lnState, c.strs.intern(l.TraceState))
				c.lnFlags = append(c.lnFlags, l.Flags)
				c.lnDrop = append(c.lnDrop, l.DroppedAttrs)
				b.appendAttrs(&c.lnAttrs, l.Attrs, keyLink)
			}
			c.lnOff = append(c.lnOff, uint32(len(c.lnTrace)))
		}
		c.n++
	}
}

func (b *Builder) markKey(id uint32, scope uint8) {
	for int(id) >= len(b.tab.keyScopes) {
		b.tab.keyScopes = append(b.tab.keyScopes, 0)
		b.tab.keyTypes = append(b.tab.keyTypes, 0)
	}
	b.tab.keyScopes[id] |= scope
}

// appendAttrs appends one owner's attributes to a.
func (b *Builder) appendAttrs(a *attrList, attrs []span.Attr, scope uint8) {
	c := &b.ch
	for i := range attrs {
		at := &attrs[i]
		key := b.tab.keys.intern(at.Key)
		if int(key) >= len(b.tab.keyScopes) || b.tab.keyScopes[key]&scope == 0 {
			b.markKey(key, scope)
		}
		kt, v := b.encodeValue(c, a, key, at.Value)
		b.tab.keyTypes[key] |= 1 << (kt & ktTypeMask)
		a.kt = append(a.kt, kt)
		a.val = append(a.val, v)
	}
	a.off = append(a.off, uint32(len(a.kt)))
}

func (b *Builder) encodeValue(c *chunk, a *attrList, key uint32, v span.Value) (uint32, uint32) {
	t := v.Type
	kt := key<<ktKeyShift | uint32(t&ktTypeMask)
	switch t {
	case span.TypeString, span.TypeBytes:
		return kt, c.strs.intern(v.Str)
	case span.TypeBool, span.TypeInt:
		if v.Num <= math.MaxUint32 {
			return kt, uint32(v.Num)
		}
		a.nums = append(a.nums, v.Num)
		return kt | ktBig, uint32(len(a.nums) - 1)
	case span.TypeDouble:
		a.nums = append(a.nums, v.Num)
		return kt | ktBig, uint32(len(a.nums) - 1)
	case span.TypeArray, span.TypeMap:
		b.scratch = appendValue(b.scratch[:0], v)
		return kt, c.strs.internBytes(b.scratch)
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
	dst = appendUvarint(dst, uint64(r.DroppedAttrs))
	return appendString(dst, r.SchemaURL)
}

func appendScope(dst []byte, s *span.Scope) []byte {
	dst = appendString(dst, s.Name)
	dst = appendString(dst, s.Version)
	dst = appendAttrs(dst, s.Attrs)
	dst = appendUvarint(dst, uint64(s.DroppedAttrs))
	return appendString(dst, s.SchemaURL)
}

func decodeResource(d *decbuf) span.Resource {
	var r span.Resource
	r.Attrs = decodeAttrs(d, 0)
	r.DroppedAttrs = d.uvarint32()
	r.SchemaURL = d.str()
	return r
}

func decodeScope(d *decbuf) span.Scope {
	var s span.Scope
	s.Name = d.str()
	s.Version = d.str()
	s.Attrs = decodeAttrs(d, 0)
	s.DroppedAttrs = d.uvarint32()
	s.SchemaURL = d.str()
	return s
}

// cloneResourceStrings deep-copies r including its string bytes, which may
// alias a request buffer.
func cloneResourceStrings(r *span.Resource) *span.Resource {
	// Round-tripping through the codec copies every string.
	buf := appendResource(nil, r)
	d := decbuf{b: buf}
	out := decodeResource(&d)
	return &out
}

func cloneScopeStrings(s *span.Scope) *span.Scope {
	buf := appendScope(nil, s)
	d := decbuf{b: buf}
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
