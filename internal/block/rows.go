package block

import (
	"errors"
	"sort"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/span"
)

// kt packs an attribute key id, a "big" flag and the value type:
// key<<4 | big<<3 | type. With big set the value is an index into nums,
// otherwise it is the value itself (ints and bools below 2^32) or a string id.
const (
	ktTypeMask = 7
	ktBig      = 8
	ktKeyShift = 4
	maxKeyID   = 1<<28 - 1
)

// attrList is a flat list of attributes of several owners (rows, events or
// links): the attributes of owner i are kt[off[i]:off[i+1]].
//
// A Builder's span attributes store no kt per attribute: owner i's kt values
// are the interned shape shapes.get(shp[i]) instead.
type attrList struct {
	off    []uint32
	kt     []uint32
	val    []uint32
	nums   []uint64 // values of kt entries with ktBig set
	shp    []uint32 // per owner: shape id, when shapes is set
	shapes *shapeTab
}

// addNum stores a 64-bit value and returns its index in nums. The spans of a
// trace often repeat a value (a cart total, a request size), so the last few
// values are reused when equal.
func (a *attrList) addNum(v uint64) uint32 {
	for k := len(a.nums) - 1; k >= 0 && k >= len(a.nums)-4; k-- {
		if a.nums[k] == v {
			return uint32(k)
		}
	}
	a.nums = append(a.nums, v)
	return uint32(len(a.nums) - 1)
}

// keys returns the kt values of owner i, parallel to val[off[i]:off[i+1]].
func (a *attrList) keys(i int) []uint32 {
	if a.shapes != nil {
		return a.shapes.get(a.shp[i])
	}
	return a.kt[a.off[i]:a.off[i+1]]
}

func (a *attrList) reset() {
	a.off = append(a.off[:0], 0)
	a.kt = a.kt[:0]
	a.val = a.val[:0]
	a.nums = a.nums[:0]
}

func (a *attrList) memSize() int64 {
	return int64(4*(cap(a.off)+cap(a.kt)+cap(a.val)) + 8*cap(a.nums))
}

// miscEntry holds a span's rarely varying fields. In a Builder, state and msg
// are string ids; in a block they are per-row columns and zero here.
type miscEntry struct {
	kind                    span.Kind
	status                  span.StatusCode
	flags                   uint32
	dAttrs, dEvents, dLinks uint32
	state, msg              uint32
}

type origin struct{ res, scope uint32 }

// tables are the per-block (or per-Builder) lookup tables that rows refer to.
type tables struct {
	names     *strDict
	keys      *strDict
	misc      []miscEntry
	origins   []origin
	resources []span.Resource
	scopes    []span.Scope
	services  []string // per resource: service name
	keyScopes []uint8  // per key id: key scope bits
	keyTypes  []uint8  // per key id: bit 1<<type for each value type on rows, events and links
}

// chunk is a set of span rows in columnar form: the whole Builder, or one
// decoded row group of a block. Strings of values live in strs; names and keys
// in the tables.
type chunk struct {
	n      int
	trace  []int32
	spanID []span.SpanID
	parent []span.SpanID
	start  []uint64
	end    []uint64 // block chunks; segments of a Builder hold dur and endX
	dur    []uint32 // Builder segments: end-start, or durEscape
	endX   map[int32]uint64
	next   []int32 // Builder segments: next row of the same trace, -1 at the end
	name   []uint32
	misc   []uint32
	origin []uint32
	state  []uint32 // block chunks only: trace state string id per row
	msg    []uint32 // block chunks only: status message string id per row
	attrs  attrList

	evRows  []uint32 // rows that have events, ascending
	evOff   []uint32 // len(evRows)+1: events of evRows[i] are evOff[i]:evOff[i+1]
	evTime  []uint64
	evName  []uint32
	evDrop  []uint32
	evAttrs attrList

	lnRows  []uint32
	lnOff   []uint32
	lnTrace []span.TraceID
	lnSpan  []span.SpanID
	lnState []uint32
	lnFlags []uint32
	lnDrop  []uint32
	lnAttrs attrList

	strs *strDict

	secRaw [][]byte // attrs column of a block chunk: decoded sections, for reuse
}

// sparseRange returns the [lo, hi) item range of row r in a sparse list.
func sparseRange(rows, off []uint32, r int) (int, int) {
	i := sort.Search(len(rows), func(i int) bool { return rows[i] >= uint32(r) })
	if i < len(rows) && rows[i] == uint32(r) {
		return int(off[i]), int(off[i+1])
	}
	return 0, 0
}

// value builds the span.Value of one attribute of a, deep-copying strings.
func (ch *chunk) value(a *attrList, kt, v uint32) (span.Value, error) {
	return valueOf(ch.strs, a.nums, kt, v)
}

// valueOf builds the span.Value of one attribute whose string ids point
// into strs and whose big numbers are in nums, deep-copying strings.
func valueOf(strs *strDict, nums []uint64, kt, v uint32) (span.Value, error) {
	t := span.ValueType(kt & ktTypeMask)
	num := uint64(v)
	if kt&ktBig != 0 {
		if int(v) >= len(nums) {
			return span.Value{}, errors.New("number index out of range")
		}
		num = nums[v]
	}
	switch t {
	case span.TypeEmpty:
		return span.Value{}, nil
	case span.TypeString, span.TypeBytes:
		if int(v) >= strs.count() {
			return span.Value{}, errors.New("string id out of range")
		}
		return span.Value{Type: t, Str: strs.str(v)}, nil
	case span.TypeBool, span.TypeInt, span.TypeDouble:
		return span.Value{Type: t, Num: num}, nil
	case span.TypeArray, span.TypeMap:
		if int(v) >= strs.count() {
			return span.Value{}, errors.New("string id out of range")
		}
		d := encoding.NewDecbuf(strs.bytes(v))
		val := decodeValue(&d, 0)
		if d.Err() != nil {
			return span.Value{}, d.Err()
		}
		if val.Type != t {
			return span.Value{}, errors.New("nested value type mismatch")
		}
		return val, nil
	}
	return span.Value{}, errors.New("unknown value type")
}

func (ch *chunk) attrSlice(t *tables, a *attrList, i int) ([]span.Attr, error) {
	lo, hi := a.off[i], a.off[i+1]
	if lo == hi {
		return nil, nil
	}
	kts, vals := a.keys(i), a.val[lo:hi]
	out := make([]span.Attr, 0, hi-lo)
	for j, kt := range kts {
		key := kt >> ktKeyShift
		if int(key) >= t.keys.count() {
			return nil, errors.New("attribute key id out of range")
		}
		v, err := ch.value(a, kt, vals[j])
		if err != nil {
			return nil, err
		}
		out = append(out, span.Attr{Key: t.keys.str(key), Value: v})
	}
	return out, nil
}

// originCopier deep-copies resources and scopes into a batch once each.
type originCopier struct {
	res   map[uint32]*span.Resource
	scope map[uint32]*span.Scope
}

func (oc *originCopier) get(t *tables, o uint32, dst *span.Batch) (*span.Resource, *span.Scope) {
	or := t.origins[o]
	if oc.res == nil {
		oc.res = make(map[uint32]*span.Resource)
		oc.scope = make(map[uint32]*span.Scope)
	}
	r, ok := oc.res[or.res]
	if !ok {
		r = cloneResource(&t.resources[or.res])
		oc.res[or.res] = r
		dst.Resources = append(dst.Resources, r)
	}
	s, ok := oc.scope[or.scope]
	if !ok {
		s = cloneScope(&t.scopes[or.scope])
		oc.scope[or.scope] = s
		dst.Scopes = append(dst.Scopes, s)
	}
	return r, s
}

// appendSpan materializes row r as a span appended to dst.
func (ch *chunk) appendSpan(t *tables, r int, tid span.TraceID, oc *originCopier, dst *span.Batch) error {
	m := t.misc[ch.misc[r]]
	state, msg := m.state, m.msg
	if ch.state != nil {
		state, msg = ch.state[r], ch.msg[r]
	}
	if int(state) >= ch.strs.count() || int(msg) >= ch.strs.count() || int(ch.name[r]) >= t.names.count() {
		return errors.New("string id out of range")
	}
	s := span.Span{
		TraceID:       tid,
		SpanID:        ch.spanID[r],
		ParentSpanID:  ch.parent[r],
		TraceState:    ch.strs.str(state),
		Flags:         m.flags,
		Name:          t.names.str(ch.name[r]),
		Kind:          m.kind,
		StartUnixNano: ch.start[r],
		EndUnixNano:   ch.endAt(r),
		DroppedAttrs:  m.dAttrs,
		DroppedEvents: m.dEvents,
		DroppedLinks:  m.dLinks,
		StatusCode:    m.status,
		StatusMessage: ch.strs.str(msg),
	}
	var err error
	if s.Attrs, err = ch.attrSlice(t, &ch.attrs, r); err != nil {
		return err
	}
	if lo, hi := sparseRange(ch.evRows, ch.evOff, r); hi > lo {
		s.Events = make([]span.Event, 0, hi-lo)
		for e := lo; e < hi; e++ {
			ev := span.Event{TimeUnixNano: ch.evTime[e], Name: ch.strs.str(ch.evName[e]), DroppedAttrs: ch.evDrop[e]}
			if ev.Attrs, err = ch.attrSlice(t, &ch.evAttrs, e); err != nil {
				return err
			}
			s.Events = append(s.Events, ev)
		}
	}
	if lo, hi := sparseRange(ch.lnRows, ch.lnOff, r); hi > lo {
		s.Links = make([]span.Link, 0, hi-lo)
		for e := lo; e < hi; e++ {
			l := span.Link{TraceID: ch.lnTrace[e], SpanID: ch.lnSpan[e], TraceState: ch.strs.str(ch.lnState[e]), Flags: ch.lnFlags[e], DroppedAttrs: ch.lnDrop[e]}
			if l.Attrs, err = ch.attrSlice(t, &ch.lnAttrs, e); err != nil {
				return err
			}
			s.Links = append(s.Links, l)
		}
	}
	s.Resource, s.Scope = oc.get(t, ch.origin[r], dst)
	dst.Spans = append(dst.Spans, s)
	return nil
}

func cloneAttrs(a []span.Attr) []span.Attr {
	if len(a) == 0 {
		return nil
	}
	out := make([]span.Attr, len(a))
	for i := range a {
		out[i] = span.Attr{Key: a[i].Key, Value: cloneValue(a[i].Value)}
	}
	return out
}

func cloneValue(v span.Value) span.Value {
	if len(v.Array) > 0 {
		arr := make([]span.Value, len(v.Array))
		for i := range v.Array {
			arr[i] = cloneValue(v.Array[i])
		}
		v.Array = arr
	} else {
		v.Array = nil
	}
	v.Map = cloneAttrs(v.Map)
	return v
}

func cloneResource(r *span.Resource) *span.Resource {
	return &span.Resource{Attrs: cloneAttrs(r.Attrs), DroppedAttrs: r.DroppedAttrs, SchemaURL: r.SchemaURL}
}

func cloneScope(s *span.Scope) *span.Scope {
	return &span.Scope{Name: s.Name, Version: s.Version, Attrs: cloneAttrs(s.Attrs), DroppedAttrs: s.DroppedAttrs, SchemaURL: s.SchemaURL}
}

// maxValueDepth bounds the nesting of array and map values on decode.
const maxValueDepth = 64

// appendValue encodes v (any type, nested) as: type byte, then the payload.
func appendValue(dst []byte, v span.Value) []byte {
	dst = append(dst, byte(v.Type))
	switch v.Type {
	case span.TypeString, span.TypeBytes:
		dst = encoding.AppendString(dst, v.Str)
	case span.TypeBool, span.TypeInt:
		dst = encoding.AppendUvarint(dst, v.Num)
	case span.TypeDouble:
		dst = encoding.AppendUint64(dst, v.Num)
	case span.TypeArray:
		dst = encoding.AppendUvarint(dst, uint64(len(v.Array)))
		for i := range v.Array {
			dst = appendValue(dst, v.Array[i])
		}
	case span.TypeMap:
		dst = appendAttrs(dst, v.Map)
	}
	return dst
}

func appendAttrs(dst []byte, attrs []span.Attr) []byte {
	dst = encoding.AppendUvarint(dst, uint64(len(attrs)))
	for i := range attrs {
		dst = encoding.AppendString(dst, attrs[i].Key)
		dst = appendValue(dst, attrs[i].Value)
	}
	return dst
}

var errDepth = errors.New("value nested too deeply")

func decodeValue(d *encoding.Decbuf, depth int) span.Value {
	if depth > maxValueDepth {
		d.Fail(errDepth)
		return span.Value{}
	}
	t := span.ValueType(d.Byte())
	v := span.Value{Type: t}
	switch t {
	case span.TypeEmpty:
	case span.TypeString, span.TypeBytes:
		v.Str = d.UvarintString()
	case span.TypeBool, span.TypeInt:
		v.Num = d.Uvarint()
	case span.TypeDouble:
		v.Num = d.Uint64()
	case span.TypeArray:
		n := d.Count(1)
		if n > 0 {
			v.Array = make([]span.Value, 0, n)
			for i := 0; i < n && d.Err() == nil; i++ {
				v.Array = append(v.Array, decodeValue(d, depth+1))
			}
		}
	case span.TypeMap:
		v.Map = decodeAttrs(d, depth+1)
	default:
		d.Fail(errors.New("unknown value type"))
	}
	return v
}

func decodeAttrs(d *encoding.Decbuf, depth int) []span.Attr {
	n := d.Count(2)
	if n == 0 {
		return nil
	}
	out := make([]span.Attr, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.UvarintString()
		out = append(out, span.Attr{Key: k, Value: decodeValue(d, depth)})
	}
	return out
}
