package block

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"

	"github.com/clew-dev/clew/internal/span"
)

// Builder memory layout. Rows live in segments of segRows rows; a segment's
// fixed-width columns are allocated once with capacity segRows, so appending
// never copies rows and the over-allocation is bounded by one segment. Span
// attributes store only values per row; the row's sequence of keys and types
// (its shape, the same for most spans of one instrumentation) is interned
// once in a shapeTab. Durations are 32-bit with an escape for the rare span
// longer than ~4.3 s or ending before it starts.
const (
	segShift = 12
	segRows  = 1 << segShift
	segMask  = segRows - 1

	durEscape = math.MaxUint32
)

func newSeg() *chunk {
	return &chunk{
		trace:  make([]int32, 0, segRows),
		next:   make([]int32, 0, segRows),
		spanID: make([]span.SpanID, 0, segRows),
		parent: make([]span.SpanID, 0, segRows),
		start:  make([]uint64, 0, segRows),
		dur:    make([]uint32, 0, segRows),
		name:   make([]uint32, 0, segRows),
		misc:   make([]uint32, 0, segRows),
		origin: make([]uint32, 0, segRows),
		attrs:  attrList{off: append(make([]uint32, 0, segRows+1), 0), shp: make([]uint32, 0, segRows)},
		evOff:  []uint32{0},
		lnOff:  []uint32{0},
		evAttrs: attrList{
			off: []uint32{0},
		},
		lnAttrs: attrList{off: []uint32{0}},
	}
}

// clearSeg empties a segment for reuse, keeping its capacity.
func (c *chunk) clearSeg() {
	c.n = 0
	c.trace, c.next, c.spanID, c.parent, c.start, c.dur = c.trace[:0], c.next[:0], c.spanID[:0], c.parent[:0], c.start[:0], c.dur[:0]
	clear(c.endX)
	c.name, c.misc, c.origin = c.name[:0], c.misc[:0], c.origin[:0]
	c.attrs.reset()
	c.attrs.shp = c.attrs.shp[:0]
	c.evRows, c.evOff, c.evTime, c.evName, c.evDrop = c.evRows[:0], append(c.evOff[:0], 0), c.evTime[:0], c.evName[:0], c.evDrop[:0]
	c.evAttrs.reset()
	c.lnRows, c.lnOff, c.lnTrace, c.lnSpan, c.lnState, c.lnFlags, c.lnDrop = c.lnRows[:0], append(c.lnOff[:0], 0), c.lnTrace[:0], c.lnSpan[:0], c.lnState[:0], c.lnFlags[:0], c.lnDrop[:0]
	c.lnAttrs.reset()
}

// seal trims the growable lists of a full segment to their length when
// they are noticeably over-allocated.
func (c *chunk) seal() {
	c.attrs.val = trim(c.attrs.val)
	c.attrs.nums = trim(c.attrs.nums)
}

func trim[T any](s []T) []T {
	if cap(s)-len(s) > len(s)/16+16 {
		return slices.Clip(append([]T(nil), s...))
	}
	return s
}

// setEnd records the end time of local row i, which starts at start.
func (c *chunk) setEnd(i int, start, end uint64) {
	if end >= start && end-start < durEscape {
		c.dur = append(c.dur, uint32(end-start))
		return
	}
	c.dur = append(c.dur, durEscape)
	if c.endX == nil {
		c.endX = make(map[int32]uint64)
	}
	c.endX[int32(i)] = end
}

// endAt returns the end time of row r.
func (c *chunk) endAt(r int) uint64 {
	if c.dur == nil {
		return c.end[r]
	}
	if d := c.dur[r]; d != durEscape {
		return c.start[r] + uint64(d)
	}
	return c.endX[int32(r)]
}

func (c *chunk) memSize() int64 {
	n := int64(cap(c.trace)+cap(c.next)+cap(c.dur)+cap(c.name)+cap(c.misc)+cap(c.origin))*4 +
		int64(cap(c.spanID)+cap(c.parent)+cap(c.start))*8 + int64(len(c.endX))*24 +
		c.attrs.memSize() + int64(cap(c.attrs.shp))*4 +
		int64(cap(c.evRows)+cap(c.evOff)+cap(c.evName)+cap(c.evDrop))*4 + int64(cap(c.evTime))*8 + c.evAttrs.memSize() +
		int64(cap(c.lnRows)+cap(c.lnOff)+cap(c.lnState)+cap(c.lnFlags)+cap(c.lnDrop))*4 + int64(cap(c.lnTrace))*16 + int64(cap(c.lnSpan))*8 + c.lnAttrs.memSize()
	return n + 512
}

// chunked is an append-only sequence in fixed-size chunks: growing never
// copies elements and over-allocates by at most one chunk.
type chunked[T any] struct {
	chunks [][]T
	n      int
}

const chunkedShift = 12

func (c *chunked[T]) len() int { return c.n }

func (c *chunked[T]) append(v T) {
	k := c.n >> chunkedShift
	if k == len(c.chunks) {
		c.chunks = append(c.chunks, make([]T, 1<<chunkedShift))
	}
	c.chunks[k][c.n&(1<<chunkedShift-1)] = v
	c.n++
}

func (c *chunked[T]) ptr(i int) *T { return &c.chunks[i>>chunkedShift][i&(1<<chunkedShift-1)] }

func (c *chunked[T]) reset() {
	for _, ch := range c.chunks {
		clear(ch)
	}
	c.n = 0
}

func (c *chunked[T]) memSize(elem int) int64 {
	return int64(len(c.chunks))<<chunkedShift*int64(elem) + int64(cap(c.chunks))*24
}

// traceTable maps trace IDs to Builder trace numbers: open addressing over
// the trace records, 4 bytes a slot.
type traceTable struct {
	seed  maphash.Seed
	slots []int32 // trace number + 1; 0 = empty
	n     int
}

func (t *traceTable) init() {
	t.seed = maphash.MakeSeed()
	t.slots = make([]int32, 1024)
	t.n = 0
}

func (t *traceTable) reset() {
	clear(t.slots)
	t.n = 0
}

func (t *traceTable) hash(id *span.TraceID) uint64 {
	return maphash.Comparable(t.seed, binary.LittleEndian.Uint64(id[:8])^binary.LittleEndian.Uint64(id[8:])*0x9e3779b97f4a7c15)
}

func (t *traceTable) find(tr *chunked[traceInfo], id span.TraceID) (int32, bool) {
	mask := uint64(len(t.slots) - 1)
	for h := t.hash(&id) & mask; ; h = (h + 1) & mask {
		s := t.slots[h]
		if s == 0 {
			return 0, false
		}
		if tr.ptr(int(s-1)).id == id {
			return s - 1, true
		}
	}
}

// insert adds trace number i, whose ID is not in the table yet.
func (t *traceTable) insert(tr *chunked[traceInfo], i int32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		old := t.slots
		t.slots = make([]int32, 2*len(old))
		t.n = 0
		for _, s := range old {
			if s != 0 {
				t.put(tr, s-1)
			}
		}
	}
	t.put(tr, i)
}

func (t *traceTable) put(tr *chunked[traceInfo], i int32) {
	mask := uint64(len(t.slots) - 1)
	id := tr.ptr(int(i)).id
	h := t.hash(&id) & mask
	for t.slots[h] != 0 {
		h = (h + 1) & mask
	}
	t.slots[h] = i + 1
	t.n++
}

func (t *traceTable) memSize() int64 { return int64(cap(t.slots)) * 4 }

func (b *Builder) ntraces() int { return b.traces.len() }

func (b *Builder) traceID(t int) span.TraceID { return b.traces.ptr(t).id }

// shapeTab interns the key-and-type sequences (kt values) of rows.
type shapeTab struct {
	data []uint32
	off  []uint32 // shape i is data[off[i]:off[i+1]]
	m    map[string]uint32
	buf  []byte
	last uint32
}

func newShapeTab() *shapeTab {
	s := &shapeTab{m: make(map[string]uint32)}
	s.reset()
	return s
}

func (s *shapeTab) reset() {
	s.data = s.data[:0]
	s.off = append(s.off[:0], 0, 0) // shape 0: no attributes
	clear(s.m)
	s.m[""] = 0
	s.last = 0
}

func (s *shapeTab) get(id uint32) []uint32 { return s.data[s.off[id]:s.off[id+1]] }

func (s *shapeTab) intern(kts []uint32) uint32 {
	if slices.Equal(s.get(s.last), kts) {
		return s.last
	}
	s.buf = s.buf[:0]
	for _, kt := range kts {
		s.buf = binary.LittleEndian.AppendUint32(s.buf, kt)
	}
	id, ok := s.m[string(s.buf)]
	if !ok {
		id = uint32(len(s.off) - 1)
		s.data = append(s.data, kts...)
		s.off = append(s.off, uint32(len(s.data)))
		s.m[string(s.buf)] = id
	}
	s.last = id
	return id
}

func (s *shapeTab) memSize() int64 {
	return int64(cap(s.data)+cap(s.off))*4 + int64(len(s.m))*48 + int64(len(s.data))*4
}
