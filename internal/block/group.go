package block

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"

	"github.com/clew-dev/clew/internal/span"
)

// colDeps lists the columns each column's decoder needs.
var colDeps = [numCols]colMask{
	colParent: 1<<colRuns | 1<<colSpanID,
	colTimes:  1 << colRuns,
	colEvents: 1<<colRuns | 1<<colTimes,
}

func expand(m colMask) colMask {
	for {
		n := m
		for c := 0; c < numCols; c++ {
			if m&(1<<c) != 0 {
				n |= colDeps[c]
			}
		}
		if n == m {
			return m
		}
		m = n
	}
}

// chunk assembles the columns in mask of group gi, decoding (or taking from
// the cache) each column page once.
func (r *Reader) chunk(ctx context.Context, gi int, mask colMask) (*chunk, error) {
	return r.chunkCache(ctx, gi, mask, r.cache)
}

// chunkCache is chunk with an explicit cache (nil: none).
func (r *Reader) chunkCache(ctx context.Context, gi int, mask colMask, cache *Cache) (*chunk, error) {
	return r.chunkInto(ctx, gi, mask, cache, nil)
}

// decodeBufs holds the buffers of the previous chunk decoded by chunkInto
// for reuse: a sequential reader (compaction) then decodes every group into
// the same memory. The chunk decoded last must be dead when the next is.
//
// Only the decoded columns and the string page (which the chunk's strings
// alias) must outlive the decode; the stored bytes and the other raw pages
// may be shared by the decoders of several sequential readers.
type decodeBufs struct {
	shared *decodeScratch
	strRaw []byte
	parts  [numCols]*chunk
}

type decodeScratch struct {
	stored []byte
	raw    [numCols][]byte
}

func (s *decodeBufs) raw(c int) *[]byte {
	if c == colStrs || s.shared == nil {
		return &s.strRaw
	}
	return &s.shared.raw[c]
}

// chunkInto is chunkCache decoding into the buffers of spare when spare is
// not nil (cache must then be nil).
func (r *Reader) chunkInto(ctx context.Context, gi int, mask colMask, cache *Cache, spare *decodeBufs) (*chunk, error) {
	if r.closed.Load() {
		return nil, errClosed
	}
	g := &r.groups[gi]
	mask = expand(mask)
	ch := &chunk{n: g.rows}
	var parts [numCols]*chunk
	missing := colMask(0)
	for c := 0; c < numCols; c++ {
		if mask&(1<<c) == 0 {
			continue
		}
		if v, ok := cache.get(cacheKey{dir: r.dir, kind: 0, idx: int32(gi), col: int8(c)}); ok {
			parts[c] = v.(*chunk)
		} else {
			missing |= 1 << c
		}
	}
	// Fetch the missing pages with one ranged read per contiguous run.
	var stored [numCols][]byte
	for c := 0; c < numCols; {
		if missing&(1<<c) == 0 {
			c++
			continue
		}
		e := c
		for e+1 < numCols && missing&(1<<(e+1)) != 0 {
			e++
		}
		off := g.cols[c].off
		size := g.cols[e].off + int64(g.cols[e].size) - off
		whole := spare != nil && spare.shared != nil && c == 0 && e == numCols-1 // one read for the group
		var dst []byte
		if whole {
			dst = spare.shared.stored
		}
		buf, err := r.readRangeInto(ctx, off, size, fmt.Sprintf("group %d", gi), dst)
		if err != nil {
			return nil, err
		}
		if whole {
			spare.shared.stored = buf
		}
		for k := c; k <= e; k++ {
			stored[k] = buf[g.cols[k].off-off : g.cols[k].off-off+int64(g.cols[k].size)]
		}
		c = e + 1
	}
	for c := 0; c < numCols; c++ {
		if mask&(1<<c) == 0 {
			continue
		}
		key := cacheKey{dir: r.dir, kind: 0, idx: int32(gi), col: int8(c)}
		part := parts[c]
		if part == nil {
			what := fmt.Sprintf("group %d column %s", gi, colNames[c])
			var dst []byte
			if spare != nil {
				dst = *spare.raw(c)
			}
			raw, err := decodePage(stored[c], g.cols[c], dst)
			if err != nil {
				return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: g.cols[c].off, Err: fmt.Errorf("%s: %w", what, err)}
			}
			if spare != nil {
				*spare.raw(c) = raw
				if spare.parts[c] == nil {
					spare.parts[c] = &chunk{}
				}
				part = spare.parts[c]
				part.n = g.rows
			} else {
				part = &chunk{n: g.rows}
			}
			size, err := r.decodeColumn(c, raw, g, ch, part)
			if err != nil {
				return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: g.cols[c].off, Err: fmt.Errorf("%s: %w", what, err)}
			}
			if spare == nil {
				part.secRaw = nil // do not keep decode buffers in the cache
			}
			cache.put(key, part, size)
		}
		merge(ch, part, c)
	}
	if ch.strs == nil {
		ch.strs = &strDict{offs: []uint32{0, 0}}
	}
	return ch, nil
}

func merge(dst, p *chunk, c int) {
	switch c {
	case colRuns:
		dst.trace = p.trace
	case colSpanID:
		dst.spanID = p.spanID
	case colParent:
		dst.parent = p.parent
	case colTimes:
		dst.start, dst.end = p.start, p.end
	case colName:
		dst.name = p.name
	case colMisc:
		dst.misc = p.misc
	case colOrigin:
		dst.origin = p.origin
	case colText:
		dst.state, dst.msg = p.state, p.msg
	case colAttrs:
		dst.attrs = p.attrs
	case colEvents:
		dst.evRows, dst.evOff, dst.evTime, dst.evName, dst.evDrop, dst.evAttrs = p.evRows, p.evOff, p.evTime, p.evName, p.evDrop, p.evAttrs
	case colLinks:
		dst.lnRows, dst.lnOff, dst.lnTrace, dst.lnSpan, dst.lnState, dst.lnFlags, dst.lnDrop, dst.lnAttrs = p.lnRows, p.lnOff, p.lnTrace, p.lnSpan, p.lnState, p.lnFlags, p.lnDrop, p.lnAttrs
	case colStrs:
		dst.strs = p.strs
	}
}

var errTrailing = errors.New("trailing bytes")

// unplane64 decodes len(dst) 64-bit values stored as 8 byte planes (byte
// p of value i at p*len(dst)+i) from b, plane by plane.
func unplane64(dst []uint64, b []byte) {
	n := len(dst)
	clear(dst)
	for p := 0; p < 8; p++ {
		plane := b[p*n : (p+1)*n]
		sh := uint(8 * p)
		for i, c := range plane {
			dst[i] |= uint64(c) << sh
		}
	}
}

// appendPlanes64 appends vals as 8 byte planes.
func appendPlanes64(dst []byte, vals []uint64) []byte {
	for p := 0; p < 8; p++ {
		for _, u := range vals {
			dst = append(dst, byte(u>>(8*p)))
		}
	}
	return dst
}

// resize returns s with length n and zeroed elements, reusing its capacity.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// decodeColumn decodes column c of group g from raw into p; deps holds the
// already decoded columns c depends on. It returns the decoded size.
func (r *Reader) decodeColumn(c int, raw []byte, g *groupInfo, deps, p *chunk) (int64, error) {
	n := g.rows
	d := decbuf{b: raw}
	var size int64
	switch c {
	case colRuns:
		runs := d.count(1)
		if runs == 0 {
			return 0, errors.New("no runs")
		}
		p.trace = p.trace[:0]
		for i := 0; i < runs && d.err == nil; i++ {
			k := d.limit(uint64(n - len(p.trace)))
			if k == 0 {
				d.fail(errRange)
			}
			for j := uint64(0); j < k; j++ {
				p.trace = append(p.trace, int32(i))
			}
		}
		if d.err == nil && len(p.trace) != n {
			d.fail(errors.New("run lengths do not add up to the group's rows"))
		}
		if d.err == nil && g.firstTrace+int64(runs) > r.traces {
			d.fail(errRange)
		}
		size = int64(4 * n)
	case colSpanID:
		b := d.bytes(8 * n)
		if d.err == nil {
			p.spanID = resize(p.spanID, n)
			for i := range p.spanID {
				copy(p.spanID[i][:], b[8*i:])
			}
		}
		size = int64(8 * n)
	case colParent:
		p.parent = resize(p.parent, n)
		runStart := 0
		for i := 0; i < n && d.err == nil; i++ {
			if i > 0 && deps.trace[i] != deps.trace[i-1] {
				runStart = i
			}
			code := d.uvarint()
			switch {
			case code == 0:
			case code == 1:
				copy(p.parent[i][:], d.bytes(8))
			default:
				back := code - 2
				if back >= uint64(i-runStart) {
					d.fail(errors.New("parent reference out of the trace"))
					break
				}
				p.parent[i] = deps.spanID[i-1-int(back)]
			}
		}
		size = int64(8 * n)
	case colTimes:
		p.start = resize(p.start, n)
		p.end = resize(p.end, n)
		b := d.bytes(16 * n)
		if d.err != nil {
			break
		}
		unplane64(p.start, b) // deltas
		for i := 0; i < n; i++ {
			if i == 0 || deps.trace[i] != deps.trace[i-1] {
				p.start[i] += g.minStart
			} else {
				p.start[i] += p.start[i-1]
			}
		}
		unplane64(p.end, b[8*n:]) // zigzag durations
		for i := 0; i < n; i++ {
			p.end[i] = p.start[i] + uint64(unzigzag(p.end[i]))
		}
		size = int64(16 * n)
	case colName, colMisc, colOrigin:
		lim := uint64(r.tab.names.count())
		if c == colMisc {
			lim = uint64(len(r.tab.misc))
		} else if c == colOrigin {
			lim = uint64(len(r.tab.origins))
		}
		var out []uint32
		switch c {
		case colName:
			out = resize(p.name, n)
		case colMisc:
			out = resize(p.misc, n)
		default:
			out = resize(p.origin, n)
		}
		for i := range out {
			v := d.uvarint()
			if v >= lim {
				d.fail(errRange)
				break
			}
			out[i] = uint32(v)
		}
		switch c {
		case colName:
			p.name = out
		case colMisc:
			p.misc = out
		default:
			p.origin = out
		}
		size = int64(4 * n)
	case colText:
		p.state = resize(p.state, n)
		p.msg = resize(p.msg, n)
		for i := 0; i < n; i++ {
			p.state[i] = d.uvarint32()
		}
		for i := 0; i < n; i++ {
			p.msg[i] = d.uvarint32()
		}
		for i := 0; i < n && d.err == nil; i++ {
			if p.state[i] >= g.nstrs || p.msg[i] >= g.nstrs {
				d.fail(errRange)
			}
		}
		size = int64(8 * n)
	case colAttrs:
		if err := r.decodeAttrCol(raw, g, &p.attrs, &p.secRaw); err != nil {
			return 0, err
		}
		d.i = len(d.b)
		a := &p.attrs
		size = int64(12*len(a.kt) + 4*n + 8*len(a.nums))
	case colEvents:
		rows := d.count(2)
		p.evOff = append(p.evOff[:0], 0)
		p.evRows, p.evTime, p.evName, p.evDrop = p.evRows[:0], p.evTime[:0], p.evName[:0], p.evDrop[:0]
		p.evAttrs.reset()
		row := 0
		for i := 0; i < rows && d.err == nil; i++ {
			delta := d.uvarint()
			if (i > 0 && delta == 0) || delta >= uint64(n-row) {
				d.fail(errors.New("event row out of range"))
				break
			}
			row += int(delta)
			cnt := d.count(4)
			if cnt == 0 {
				d.fail(errRange)
			}
			for e := 0; e < cnt && d.err == nil; e++ {
				p.evTime = append(p.evTime, deps.start[row]+uint64(d.varint()))
				nm := d.uvarint32()
				if nm >= g.nstrs {
					d.fail(errRange)
				}
				p.evName = append(p.evName, nm)
				p.evDrop = append(p.evDrop, d.uvarint32())
				k := d.count(1)
				r.decodeAttrEntries(&d, &p.evAttrs, k, g.nstrs)
				p.evAttrs.off = append(p.evAttrs.off, uint32(len(p.evAttrs.kt)))
			}
			p.evRows = append(p.evRows, uint32(row))
			p.evOff = append(p.evOff, uint32(len(p.evTime)))
		}
		size = int64(len(p.evTime)*20 + len(p.evAttrs.kt)*8 + len(p.evRows)*8)
	case colLinks:
		rows := d.count(2)
		p.lnOff = append(p.lnOff[:0], 0)
		p.lnRows, p.lnTrace, p.lnSpan, p.lnState, p.lnFlags, p.lnDrop = p.lnRows[:0], p.lnTrace[:0], p.lnSpan[:0], p.lnState[:0], p.lnFlags[:0], p.lnDrop[:0]
		p.lnAttrs.reset()
		row := 0
		for i := 0; i < rows && d.err == nil; i++ {
			delta := d.uvarint()
			if (i > 0 && delta == 0) || delta >= uint64(n-row) {
				d.fail(errors.New("link row out of range"))
				break
			}
			row += int(delta)
			cnt := d.count(28)
			if cnt == 0 {
				d.fail(errRange)
			}
			for e := 0; e < cnt && d.err == nil; e++ {
				var tid span.TraceID
				var sid span.SpanID
				copy(tid[:], d.bytes(16))
				copy(sid[:], d.bytes(8))
				p.lnTrace = append(p.lnTrace, tid)
				p.lnSpan = append(p.lnSpan, sid)
				st := d.uvarint32()
				if st >= g.nstrs {
					d.fail(errRange)
				}
				p.lnState = append(p.lnState, st)
				p.lnFlags = append(p.lnFlags, d.uvarint32())
				p.lnDrop = append(p.lnDrop, d.uvarint32())
				k := d.count(1)
				r.decodeAttrEntries(&d, &p.lnAttrs, k, g.nstrs)
				p.lnAttrs.off = append(p.lnAttrs.off, uint32(len(p.lnAttrs.kt)))
			}
			p.lnRows = append(p.lnRows, uint32(row))
			p.lnOff = append(p.lnOff, uint32(len(p.lnTrace)))
		}
		size = int64(len(p.lnTrace)*40 + len(p.lnAttrs.kt)*8 + len(p.lnRows)*8)
	case colStrs:
		cnt := d.count(1)
		if uint32(cnt) != g.nstrs {
			return 0, fmt.Errorf("string count %d, directory says %d", cnt, g.nstrs)
		}
		sd := p.strs
		if sd == nil {
			sd = &strDict{}
		}
		sd.offs = append(slices.Grow(sd.offs[:0], cnt+1), 0)
		total := uint64(0)
		for i := 0; i < cnt && d.err == nil; i++ {
			total += d.limit(uint64(len(raw)))
			if total > uint64(len(raw)) {
				d.fail(errRange)
			}
			sd.offs = append(sd.offs, uint32(total))
		}
		sd.data = d.bytes(int(total))
		p.strs = sd
		size = int64(len(raw) + 4*cnt)
	}
	if d.err != nil {
		return 0, fmt.Errorf("at byte %d: %w", d.off, d.err)
	}
	if d.len() != 0 {
		return 0, fmt.Errorf("at byte %d: %w", d.off, errTrailing)
	}
	return size + 256, nil
}

// decodeAttrEntries reads k attribute entries into a.
func (r *Reader) decodeAttrEntries(d *decbuf, a *attrList, k int, nstrs uint32) {
	nkeys := uint64(r.tab.keys.count())
	for j := 0; j < k && d.err == nil; j++ {
		kt := d.uvarint()
		key, t := kt>>3, span.ValueType(kt&7)
		if key >= nkeys {
			d.fail(errors.New("attribute key id out of range"))
			return
		}
		mkt, v := decodeAttrValue(d, uint32(key)<<ktKeyShift|uint32(t), a, nstrs)
		a.kt = append(a.kt, mkt)
		a.val = append(a.val, v)
	}
}

// decodeAttrValue reads the value of an attribute whose key<<4|type is kt
// and returns the in-memory kt (with ktBig set when the number went to
// a.nums) and value.
func decodeAttrValue(d *decbuf, kt uint32, a *attrList, nstrs uint32) (uint32, uint32) {
	var v uint32
	switch t := span.ValueType(kt & ktTypeMask); t {
	case span.TypeString, span.TypeBytes, span.TypeArray, span.TypeMap:
		v = d.uvarint32()
		if v >= nstrs {
			d.fail(errors.New("string id out of range"))
			return kt, 0
		}
	case span.TypeBool, span.TypeInt, span.TypeDouble:
		var num uint64
		switch t {
		case span.TypeDouble:
			num = d.u64()
		case span.TypeInt:
			num = uint64(d.varint())
		default:
			num = d.uvarint()
		}
		if num <= math.MaxUint32 && t != span.TypeDouble {
			v = uint32(num)
		} else {
			kt |= ktBig
			v = uint32(len(a.nums))
			a.nums = append(a.nums, num)
		}
	}
	return kt, v
}

// keyAttrs returns the span attributes of key id key in group gi: an
// attrList over the group's rows holding only that key's entries, with
// string ids of the group's dictionary. Span scans project requested keys
// from it; conditions read keyColumn's keyCol instead.
func (r *Reader) keyAttrs(ctx context.Context, gi int, key uint32) (*attrList, error) {
	ck := cacheKey{dir: r.dir, kind: 3, idx: int32(gi), key: key}
	if v, ok := r.cache.get(ck); ok {
		return v.(*attrList), nil
	}
	g := &r.groups[gi]
	ref := g.cols[colAttrs]
	what := fmt.Sprintf("group %d column %s", gi, colNames[colAttrs])
	stored, err := r.readRange(ctx, ref.off, int64(ref.size), what)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if len(stored) > 0 && stored[0] == codecRaw && uint32(len(stored)) == ref.size && crc32c(stored) == ref.crc && uint32(len(stored)-1) == ref.raw {
		raw = stored[1:] // the usual case: sections compressed, the page not
	} else if raw, err = decodePage(stored, ref, nil); err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	a, err := r.decodeKeyAttrs(raw, g, key)
	if err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	r.cache.put(ck, a, int64(4*len(a.off)+8*len(a.kt)+8*len(a.nums)+64))
	return a, nil
}
