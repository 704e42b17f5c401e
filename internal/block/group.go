package block

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/encoding"
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
func (r *Reader) chunkCache(ctx context.Context, gi int, mask colMask, pc *cache.Cache) (*chunk, error) {
	return r.chunkInto(ctx, gi, mask, pc, nil)
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
// not nil (pc must then be nil).
func (r *Reader) chunkInto(ctx context.Context, gi int, mask colMask, pc *cache.Cache, spare *decodeBufs) (*chunk, error) {
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
		if v, ok := pc.Get(cache.Key{Dir: r.dir, Kind: kindGroupCol, Idx: int32(gi), Col: int8(c)}); ok {
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
		key := cache.Key{Dir: r.dir, Kind: kindGroupCol, Idx: int32(gi), Col: int8(c)}
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
			pc.Put(key, part, size)
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
// already decoded columns c depends on. It returns the decoded size. Each
// column has a step of its own below; the steps leave their failures in
// the decoder, checked here once.
func (r *Reader) decodeColumn(c int, raw []byte, g *groupInfo, deps, p *chunk) (int64, error) {
	n := g.rows
	d := encoding.NewDecbuf(raw)
	var size int64
	var err error
	switch c {
	case colRuns:
		size, err = r.decodeRuns(&d, g, p)
	case colSpanID:
		size = decodeSpanIDs(&d, n, p)
	case colParent:
		size = decodeParents(&d, n, deps, p)
	case colTimes:
		size = decodeTimes(&d, g, deps, p)
	case colName, colMisc, colOrigin:
		size = r.decodeRefs(&d, c, n, p)
	case colText:
		size = decodeText(&d, g, p)
	case colAttrs:
		size, err = r.decodeAttrsColumn(&d, raw, g, p)
	case colEvents:
		size = r.decodeEvents(&d, g, deps, p)
	case colLinks:
		size = r.decodeLinks(&d, g, p)
	case colStrs:
		size, err = decodeStrs(&d, raw, g, p)
	}
	if err != nil {
		return 0, err
	}
	if d.Err() != nil {
		return 0, d.Err()
	}
	if d.Len() != 0 {
		return 0, fmt.Errorf("at byte %d: %w", d.Offset(), errTrailing)
	}
	return size + 256, nil
}

// decodeRuns decodes the trace-run column: run lengths that map each row to
// its trace's index in the group.
func (r *Reader) decodeRuns(d *encoding.Decbuf, g *groupInfo, p *chunk) (int64, error) {
	n := g.rows
	runs := d.Count(1)
	if runs == 0 {
		return 0, errors.New("no runs")
	}
	p.trace = p.trace[:0]
	for i := 0; i < runs && d.Err() == nil; i++ {
		k := d.Limit(uint64(n - len(p.trace)))
		if k == 0 {
			d.Fail(encoding.ErrRange)
		}
		for j := uint64(0); j < k; j++ {
			p.trace = append(p.trace, int32(i))
		}
	}
	if d.Err() == nil && len(p.trace) != n {
		d.Fail(errors.New("run lengths do not add up to the group's rows"))
	}
	if d.Err() == nil && g.firstTrace+int64(runs) > r.traces {
		d.Fail(encoding.ErrRange)
	}
	return int64(4 * n), nil
}

// decodeSpanIDs decodes the span ID column: 8 bytes a row.
func decodeSpanIDs(d *encoding.Decbuf, n int, p *chunk) int64 {
	b := d.Bytes(8 * n)
	if d.Err() == nil {
		p.spanID = resize(p.spanID, n)
		for i := range p.spanID {
			copy(p.spanID[i][:], b[8*i:])
		}
	}
	return int64(8 * n)
}

// decodeParents decodes the parent column: none, an explicit ID, or a
// back-reference to an earlier span of the same trace (deps.trace,
// deps.spanID).
func decodeParents(d *encoding.Decbuf, n int, deps, p *chunk) int64 {
	p.parent = resize(p.parent, n)
	runStart := 0
	for i := 0; i < n && d.Err() == nil; i++ {
		if i > 0 && deps.trace[i] != deps.trace[i-1] {
			runStart = i
		}
		code := d.Uvarint()
		switch {
		case code == 0:
		case code == 1:
			copy(p.parent[i][:], d.Bytes(8))
		default:
			back := code - 2
			if back >= uint64(i-runStart) {
				d.Fail(errors.New("parent reference out of the trace"))
				break
			}
			p.parent[i] = deps.spanID[i-1-int(back)]
		}
	}
	return int64(8 * n)
}

// decodeTimes decodes the time column: start deltas within a trace and
// zigzag durations, as byte planes.
func decodeTimes(d *encoding.Decbuf, g *groupInfo, deps, p *chunk) int64 {
	n := g.rows
	p.start = resize(p.start, n)
	p.end = resize(p.end, n)
	b := d.Bytes(16 * n)
	if d.Err() != nil {
		return 0
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
		p.end[i] = p.start[i] + uint64(encoding.Unzigzag(p.end[i]))
	}
	return int64(16 * n)
}

// decodeRefs decodes column c, one of the dictionary-reference columns
// (names, misc, origins), checking each reference against its table.
func (r *Reader) decodeRefs(d *encoding.Decbuf, c, n int, p *chunk) int64 {
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
		v := d.Uvarint()
		if v >= lim {
			d.Fail(encoding.ErrRange)
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
	return int64(4 * n)
}

// decodeText decodes the status text column: state and message string ids.
func decodeText(d *encoding.Decbuf, g *groupInfo, p *chunk) int64 {
	n := g.rows
	p.state = resize(p.state, n)
	p.msg = resize(p.msg, n)
	for i := 0; i < n; i++ {
		p.state[i] = d.Uvarint32()
	}
	for i := 0; i < n; i++ {
		p.msg[i] = d.Uvarint32()
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		if p.state[i] >= g.nstrs || p.msg[i] >= g.nstrs {
			d.Fail(encoding.ErrRange)
		}
	}
	return int64(8 * n)
}

// decodeAttrsColumn decodes the attribute column, which reads raw itself
// and leaves d consumed.
func (r *Reader) decodeAttrsColumn(d *encoding.Decbuf, raw []byte, g *groupInfo, p *chunk) (int64, error) {
	n := g.rows
	if err := r.decodeAttrCol(raw, g, &p.attrs, &p.secRaw); err != nil {
		return 0, err
	}
	d.Bytes(d.Len()) // the attribute column decoded raw itself
	a := &p.attrs
	return int64(12*len(a.kt) + 4*n + 8*len(a.nums)), nil
}

// decodeEvents decodes the events column: per row with events, the row
// delta and its events (time from deps.start, name, dropped count,
// attributes).
func (r *Reader) decodeEvents(d *encoding.Decbuf, g *groupInfo, deps, p *chunk) int64 {
	n := g.rows
	rows := d.Count(2)
	p.evOff = append(p.evOff[:0], 0)
	p.evRows, p.evTime, p.evName, p.evDrop = p.evRows[:0], p.evTime[:0], p.evName[:0], p.evDrop[:0]
	p.evAttrs.reset()
	row := 0
	for i := 0; i < rows && d.Err() == nil; i++ {
		delta := d.Uvarint()
		if (i > 0 && delta == 0) || delta >= uint64(n-row) {
			d.Fail(errors.New("event row out of range"))
			break
		}
		row += int(delta)
		cnt := d.Count(4)
		if cnt == 0 {
			d.Fail(encoding.ErrRange)
		}
		for e := 0; e < cnt && d.Err() == nil; e++ {
			p.evTime = append(p.evTime, deps.start[row]+uint64(d.Varint()))
			nm := d.Uvarint32()
			if nm >= g.nstrs {
				d.Fail(encoding.ErrRange)
			}
			p.evName = append(p.evName, nm)
			p.evDrop = append(p.evDrop, d.Uvarint32())
			k := d.Count(1)
			r.decodeAttrEntries(d, &p.evAttrs, k, g.nstrs)
			p.evAttrs.off = append(p.evAttrs.off, uint32(len(p.evAttrs.kt)))
		}
		p.evRows = append(p.evRows, uint32(row))
		p.evOff = append(p.evOff, uint32(len(p.evTime)))
	}
	return int64(len(p.evTime)*20 + len(p.evAttrs.kt)*8 + len(p.evRows)*8)
}

// decodeLinks decodes the links column: per row with links, the row delta
// and its links (trace and span ID, state, flags, dropped count,
// attributes).
func (r *Reader) decodeLinks(d *encoding.Decbuf, g *groupInfo, p *chunk) int64 {
	n := g.rows
	rows := d.Count(2)
	p.lnOff = append(p.lnOff[:0], 0)
	p.lnRows, p.lnTrace, p.lnSpan, p.lnState, p.lnFlags, p.lnDrop = p.lnRows[:0], p.lnTrace[:0], p.lnSpan[:0], p.lnState[:0], p.lnFlags[:0], p.lnDrop[:0]
	p.lnAttrs.reset()
	row := 0
	for i := 0; i < rows && d.Err() == nil; i++ {
		delta := d.Uvarint()
		if (i > 0 && delta == 0) || delta >= uint64(n-row) {
			d.Fail(errors.New("link row out of range"))
			break
		}
		row += int(delta)
		cnt := d.Count(28)
		if cnt == 0 {
			d.Fail(encoding.ErrRange)
		}
		for e := 0; e < cnt && d.Err() == nil; e++ {
			var tid span.TraceID
			var sid span.SpanID
			copy(tid[:], d.Bytes(16))
			copy(sid[:], d.Bytes(8))
			p.lnTrace = append(p.lnTrace, tid)
			p.lnSpan = append(p.lnSpan, sid)
			st := d.Uvarint32()
			if st >= g.nstrs {
				d.Fail(encoding.ErrRange)
			}
			p.lnState = append(p.lnState, st)
			p.lnFlags = append(p.lnFlags, d.Uvarint32())
			p.lnDrop = append(p.lnDrop, d.Uvarint32())
			k := d.Count(1)
			r.decodeAttrEntries(d, &p.lnAttrs, k, g.nstrs)
			p.lnAttrs.off = append(p.lnAttrs.off, uint32(len(p.lnAttrs.kt)))
		}
		p.lnRows = append(p.lnRows, uint32(row))
		p.lnOff = append(p.lnOff, uint32(len(p.lnTrace)))
	}
	return int64(len(p.lnTrace)*40 + len(p.lnAttrs.kt)*8 + len(p.lnRows)*8)
}

// decodeStrs decodes the group's string table, whose count the group
// directory gives.
func decodeStrs(d *encoding.Decbuf, raw []byte, g *groupInfo, p *chunk) (int64, error) {
	cnt := d.Count(1)
	if uint32(cnt) != g.nstrs {
		return 0, fmt.Errorf("string count %d, directory says %d", cnt, g.nstrs)
	}
	sd := p.strs
	if sd == nil {
		sd = &strDict{}
	}
	sd.offs = append(slices.Grow(sd.offs[:0], cnt+1), 0)
	total := uint64(0)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		total += d.Limit(uint64(len(raw)))
		if total > uint64(len(raw)) {
			d.Fail(encoding.ErrRange)
		}
		sd.offs = append(sd.offs, uint32(total))
	}
	sd.data = d.Bytes(int(total))
	p.strs = sd
	return int64(len(raw) + 4*cnt), nil
}

// decodeAttrEntries reads k attribute entries into a.
func (r *Reader) decodeAttrEntries(d *encoding.Decbuf, a *attrList, k int, nstrs uint32) {
	nkeys := uint64(r.tab.keys.count())
	for j := 0; j < k && d.Err() == nil; j++ {
		kt := d.Uvarint()
		key, t := kt>>3, span.ValueType(kt&7)
		if key >= nkeys {
			d.Fail(errors.New("attribute key id out of range"))
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
func decodeAttrValue(d *encoding.Decbuf, kt uint32, a *attrList, nstrs uint32) (uint32, uint32) {
	var v uint32
	switch t := span.ValueType(kt & ktTypeMask); t {
	case span.TypeString, span.TypeBytes, span.TypeArray, span.TypeMap:
		v = d.Uvarint32()
		if v >= nstrs {
			d.Fail(errors.New("string id out of range"))
			return kt, 0
		}
	case span.TypeBool, span.TypeInt, span.TypeDouble:
		var num uint64
		switch t {
		case span.TypeDouble:
			num = d.Uint64()
		case span.TypeInt:
			num = uint64(d.Varint())
		default:
			num = d.Uvarint()
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
	ck := cache.Key{Dir: r.dir, Kind: kindKeyAttrs, Idx: int32(gi), Attr: key}
	if v, ok := r.cache.Get(ck); ok {
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
	if len(stored) > 0 && stored[0] == codecRaw && uint32(len(stored)) == ref.size && encoding.CRC32C(stored) == ref.crc && uint32(len(stored)-1) == ref.raw {
		raw = stored[1:] // the usual case: sections compressed, the page not
	} else if raw, err = decodePage(stored, ref, nil); err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	a, err := r.decodeKeyAttrs(raw, g, key)
	if err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	r.cache.Put(ck, a, int64(4*len(a.off)+8*len(a.kt)+8*len(a.nums)+64))
	return a, nil
}
