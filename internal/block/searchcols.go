package block

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"sync"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// Search columns. A search reads a few columns of every candidate row
// group; to answer the next search from memory, the page cache holds them
// in compact forms of their own, separate from the decoded columns that
// trace loads use:
//
//   - the runs, name, misc and origin columns as narrow integers (cache
//     kind kindNarrow), widened into the scan's reused memory;
//   - the span attributes of one key (kindKeyCol) as a keyCol: its
//     entries' rows, types and values, with the strings they use copied
//     into a small dictionary of their own, so that a search needs neither
//     the rest of the attrs column nor the group's string dictionary
//     (which holds every string of the group: user ids, URLs, ...).
//
// The 1 M-span benchmark's broad search (service, one attribute) then
// holds about 5 KB per row group of 2048 spans instead of ~40 KB plus the
// string dictionary, and repeated searches no longer evict one another.

// Cache kinds of the search columns (the others are in reader.go).
const (
	kindNarrow = 4
	kindKeyCol = 5
)

// narrowCols are the columns searches cache as narrow integers.
const narrowCols = colMask(1<<colRuns | 1<<colName | 1<<colMisc | 1<<colOrigin)

// keyCol is the span attributes of one key in one row group, in row order
// (for a row, in the order of the row's attributes).
type keyCol struct {
	n, m  int    // rows of the group, entries
	dense bool   // one entry per row: entry i is on row i
	rows  narrow // unless dense: the row of each entry, ascending
	tb    narrow // per entry: ktBig|type; empty when all are uni
	uni   uint32
	vals  narrow   // per entry: a string id of strs, a number, or an index into nums
	nums  []uint64 // numbers that do not fit 32 bits, and doubles
	strs  *strDict // the strings the entries use; id 0 is ""
}

// kt returns entry e's ktBig|type.
func (k *keyCol) kt(e int) uint32 {
	if k.tb.n == 0 {
		return k.uni
	}
	return k.tb.at(e)
}

// firstEntry returns the first entry on row lo or later.
func (k *keyCol) firstEntry(lo int) int {
	if k.dense || lo <= 0 {
		return min(lo, k.m)
	}
	return sort.Search(k.m, func(e int) bool { return int(k.rows.at(e)) >= lo })
}

func (k *keyCol) size() int64 {
	return k.rows.size() + k.tb.size() + k.vals.size() + int64(8*len(k.nums)) +
		int64(len(k.strs.data)+4*len(k.strs.offs)) + 128
}

// searchScratch is the memory one search goroutine reuses from group to
// group: the chunk it scans and the buffers that decode uncached pages.
type searchScratch struct {
	ch     chunk
	runs   []uint32    // rows per run (trace) of the chunk
	ids    [4][]uint32 // widened name, misc, origin ids; decode buffer
	stored []byte
	raw    []byte
	sec    []byte
	strBuf []byte // stored string page
	strRaw []byte
	strs   strDict
	rows   []uint32
	tb     []uint32
	vals   []uint32
	remap  []uint32
	a      attrList
}

var searchScratches = sync.Pool{New: func() any { return new(searchScratch) }}

// emptyStrs stands for the string dictionary of a chunk read without it.
var emptyStrs = &strDict{offs: []uint32{0, 0}}

// groupWithin reports whether every row of g satisfies q's start bounds
// and q has no duration bounds, so that rows need no time check.
func groupWithin(q *search.Query, g *groupInfo) bool {
	return q.MinDuration == 0 && q.MaxDuration == 0 && (q.Start == 0 || g.minStart >= q.Start) && (q.End == 0 || g.maxStart <= q.End)
}

// searchMask prepares p for a Reader: span attribute conditions read a
// column of their key only. It returns the columns to read of every
// group, apart from the times that searchChunk adds where rows need a
// time check.
func (p *plan) searchMask() colMask {
	for i := range p.conds {
		if p.conds[i].rowScopes&keySpan != 0 {
			p.conds[i].keyCol = true
		}
	}
	return p.needs() &^ (1 << colTimes)
}

// searchChunk assembles in sc the columns of group gi that p needs (mask,
// from searchMask, plus the times when rows need a time check), sets the
// key columns of p's conditions and prepares p. The runs (rows per trace)
// go to sc.runs; ch.trace is set only when the times' decoder needed it.
// It returns nil when the group's string dictionaries rule every row out.
func (r *Reader) searchChunk(ctx context.Context, gi int, p *plan, mask colMask, sc *searchScratch) (*chunk, error) {
	if r.closed.Load() {
		return nil, errClosed
	}
	g := &r.groups[gi]
	rowTimes := p.times && !groupWithin(p.q, g)
	if rowTimes {
		mask |= 1 << colTimes
	}
	nm := mask & narrowCols
	other := mask &^ narrowCols
	ch := &sc.ch
	*ch = chunk{n: g.rows}
	if other != 0 {
		part, err := r.chunk(ctx, gi, other)
		if err != nil {
			return nil, err
		}
		*ch = *part
		nm &^= expand(other) // columns the decoder already needed (runs for times)
		if ch.trace != nil {
			sc.runs = sc.runs[:0]
			for i, t := range ch.trace {
				if i == 0 || t != ch.trace[i-1] {
					sc.runs = append(sc.runs, 0)
				}
				sc.runs[len(sc.runs)-1]++
			}
		}
	}
	if nm != 0 {
		if err := r.narrowCols(ctx, gi, nm, sc); err != nil {
			return nil, err
		}
	}
	if ch.strs == nil {
		ch.strs = emptyStrs
	}
	for i := range p.conds {
		cp := &p.conds[i]
		if cp.keyCol {
			kc, err := r.keyColumn(ctx, gi, cp.keyID, sc)
			if err != nil {
				return nil, err
			}
			cp.kc = kc
		}
	}
	p.prepare(ch)
	p.rowTimes = rowTimes
	if p.skipByDict(ch) {
		return nil, nil
	}
	return ch, nil
}

// narrowCols sets the columns in nm (of narrowCols) of sc.ch from the
// cache or, decoding them, into it.
func (r *Reader) narrowCols(ctx context.Context, gi int, nm colMask, sc *searchScratch) error {
	g := &r.groups[gi]
	var cols [numCols]*narrow
	missing := colMask(0)
	for c := 0; c < numCols; c++ {
		if nm&(1<<c) == 0 {
			continue
		}
		if v, ok := r.cache.Get(cache.Key{Dir: r.dir, Kind: kindNarrow, Idx: int32(gi), Col: int8(c)}); ok {
			cols[c] = v.(*narrow)
		} else {
			missing |= 1 << c
		}
	}
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
		buf, err := r.readRangeInto(ctx, off, size, fmt.Sprintf("group %d", gi), sc.stored)
		if err != nil {
			return err
		}
		sc.stored = buf
		for k := c; k <= e; k++ {
			stored := buf[g.cols[k].off-off : g.cols[k].off-off+int64(g.cols[k].size)]
			x, err := r.decodeNarrow(k, stored, g, sc)
			if err != nil {
				return &CorruptionError{Object: path.Join(r.dir, DataName), Offset: g.cols[k].off, Err: fmt.Errorf("group %d column %s: %w", gi, colNames[k], err)}
			}
			r.cache.Put(cache.Key{Dir: r.dir, Kind: kindNarrow, Idx: int32(gi), Col: int8(k)}, x, x.size())
			cols[k] = x
		}
		c = e + 1
	}
	ch := &sc.ch
	for c := 0; c < numCols; c++ {
		x := cols[c]
		if x == nil {
			continue
		}
		switch c {
		case colRuns:
			sc.runs = x.expand(sc.runs)
		case colName:
			sc.ids[0] = x.expand(sc.ids[0])
			ch.name = sc.ids[0]
		case colMisc:
			sc.ids[1] = x.expand(sc.ids[1])
			ch.misc = sc.ids[1]
		case colOrigin:
			sc.ids[2] = x.expand(sc.ids[2])
			ch.origin = sc.ids[2]
		}
	}
	return nil
}

// decodeNarrow decodes column c (runs, name, misc or origin) of group g
// from its stored page, checking it as decodeColumn does.
func (r *Reader) decodeNarrow(c int, stored []byte, g *groupInfo, sc *searchScratch) (*narrow, error) {
	raw, err := decodePage(stored, g.cols[c], sc.raw)
	if err != nil {
		return nil, err
	}
	sc.raw = raw
	n := g.rows
	d := encoding.NewDecbuf(raw)
	out := sc.ids[3][:0]
	if c == colRuns {
		runs := d.Count(1)
		if runs == 0 {
			return nil, errors.New("no runs")
		}
		left := uint64(n)
		for i := 0; i < runs && d.Err() == nil; i++ {
			k := d.Limit(left)
			if k == 0 {
				d.Fail(encoding.ErrRange)
			}
			left -= k
			out = append(out, uint32(k))
		}
		if d.Err() == nil && left != 0 {
			d.Fail(errors.New("run lengths do not add up to the group's rows"))
		}
		if d.Err() == nil && g.firstTrace+int64(runs) > r.traces {
			d.Fail(encoding.ErrRange)
		}
	} else {
		lim := uint64(r.tab.names.count())
		if c == colMisc {
			lim = uint64(len(r.tab.misc))
		} else if c == colOrigin {
			lim = uint64(len(r.tab.origins))
		}
		out = slices.Grow(out, n)
		for i := 0; i < n && d.Err() == nil; i++ {
			v := d.Uvarint()
			if v >= lim {
				d.Fail(encoding.ErrRange)
				break
			}
			out = append(out, uint32(v))
		}
	}
	sc.ids[3] = out
	if d.Err() != nil {
		return nil, d.Err()
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("at byte %d: %w", d.Offset(), errTrailing)
	}
	x := makeNarrow(out)
	return &x, nil
}

// attrsRaw reads the attrs column of group gi (codec 0: its sections are
// compressed one by one) into sc's memory and returns its payload.
func (r *Reader) attrsRaw(ctx context.Context, gi int, dst *[]byte) ([]byte, error) {
	g := &r.groups[gi]
	ref := g.cols[colAttrs]
	what := fmt.Sprintf("group %d column %s", gi, colNames[colAttrs])
	stored, err := r.readRangeInto(ctx, ref.off, int64(ref.size), what, *dst)
	if err != nil {
		return nil, err
	}
	*dst = stored
	if len(stored) > 0 && stored[0] == codecRaw && uint32(len(stored)) == ref.size && encoding.CRC32C(stored) == ref.crc && uint32(len(stored)-1) == ref.raw {
		return stored[1:], nil // the usual case: sections compressed, the page not
	}
	raw, err := decodePage(stored, ref, nil)
	if err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	return raw, nil
}

// keyColumn returns the span attributes of key id key in group gi as a
// keyCol, from the cache or decoded (and then cached).
func (r *Reader) keyColumn(ctx context.Context, gi int, key uint32, sc *searchScratch) (*keyCol, error) {
	ck := cache.Key{Dir: r.dir, Kind: kindKeyCol, Idx: int32(gi), Attr: key}
	if v, ok := r.cache.Get(ck); ok {
		return v.(*keyCol), nil
	}
	g := &r.groups[gi]
	raw, err := r.attrsRaw(ctx, gi, &sc.stored)
	if err != nil {
		return nil, err
	}
	kc, err := r.decodeKeyCol(ctx, gi, raw, key, sc)
	if err != nil {
		var ce *CorruptionError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: g.cols[colAttrs].off, Err: fmt.Errorf("group %d column %s: %w", gi, colNames[colAttrs], err)}
	}
	r.cache.Put(ck, kc, kc.size())
	return kc, nil
}

// decodeKeyCol decodes the section of key of an attrs column (raw) of
// group gi into a keyCol, copying the strings its entries use out of the
// group's string dictionary.
func (r *Reader) decodeKeyCol(ctx context.Context, gi int, raw []byte, key uint32, sc *searchScratch) (*keyCol, error) {
	g := &r.groups[gi]
	n := g.rows
	kc := &keyCol{n: n, strs: emptyStrs}
	_, keys, err := r.attrDir(raw)
	if err != nil {
		return nil, err
	}
	x := sort.Search(len(keys), func(i int) bool { return keys[i].key >= key })
	if x == len(keys) || keys[x].key != key {
		return kc, nil
	}
	b, err := section(raw, keys[x], sc.sec)
	if err != nil {
		return nil, err
	}
	sc.sec = b
	s, err := newSecDec(b)
	if err != nil {
		return nil, fmt.Errorf("attribute section of key %d: %w", key, err)
	}
	a := &sc.a
	a.nums = a.nums[:0]
	rows, tbs, vals := sc.rows[:0], sc.tb[:0], sc.vals[:0]
	row := 0
	dense, needStrs := true, false
	for s.left > 0 {
		h, kt, v, err := s.next(key<<ktKeyShift, a, g.nstrs)
		if err == nil && h>>3 >= uint64(n-row) {
			err = errors.New("attribute row out of range")
		}
		if err != nil {
			return nil, fmt.Errorf("attribute section of key %d: %w", key, err)
		}
		row += int(h >> 3)
		dense = dense && row == len(rows)
		rows = append(rows, uint32(row))
		tb := kt & (ktBig | ktTypeMask)
		tbs = append(tbs, tb)
		vals = append(vals, v)
		switch span.ValueType(tb & ktTypeMask) {
		case span.TypeString, span.TypeBytes, span.TypeArray, span.TypeMap:
			needStrs = true
		}
	}
	if !s.done() {
		return nil, fmt.Errorf("attribute section of key %d: %w", key, errTrailing)
	}
	sc.rows, sc.tb, sc.vals = rows, tbs, vals
	kc.m = len(rows)
	kc.dense = dense && kc.m == n
	if needStrs {
		gs, err := r.groupStrs(ctx, gi, sc)
		if err != nil {
			return nil, err
		}
		local := &strDict{offs: []uint32{0, 0}}
		remap := resize(sc.remap, gs.count())
		sc.remap = remap
		for e, tb := range tbs {
			switch span.ValueType(tb & ktTypeMask) {
			case span.TypeString, span.TypeBytes, span.TypeArray, span.TypeMap:
			default:
				continue
			}
			gid := vals[e]
			if int(gid) >= gs.count() {
				return nil, errors.New("string id out of range")
			}
			if gid == 0 && len(gs.bytes(0)) == 0 {
				continue // "" is id 0 in both
			}
			if remap[gid] == 0 {
				local.data = append(local.data, gs.bytes(gid)...)
				local.offs = append(local.offs, uint32(len(local.data)))
				remap[gid] = uint32(local.count() - 1)
			}
			vals[e] = remap[gid]
		}
		local.data, local.offs = slices.Clip(local.data), slices.Clip(local.offs)
		kc.strs = local
	}
	uniform := true
	for _, tb := range tbs {
		if tb != tbs[0] {
			uniform = false
			break
		}
	}
	if uniform && len(tbs) > 0 {
		kc.uni = tbs[0]
	} else if !uniform {
		kc.tb = makeNarrow(tbs)
	}
	if !kc.dense {
		kc.rows = makeNarrow(rows)
	}
	kc.vals = makeNarrow(vals)
	if len(a.nums) > 0 {
		kc.nums = slices.Clone(a.nums)
	}
	return kc, nil
}

// groupStrs returns the string dictionary of group gi: the cached decoded
// column when there, else decoded into sc's memory (not cached: it is
// large, and the key columns built from it are what later searches read).
func (r *Reader) groupStrs(ctx context.Context, gi int, sc *searchScratch) (*strDict, error) {
	if v, ok := r.cache.Get(cache.Key{Dir: r.dir, Kind: kindGroupCol, Idx: int32(gi), Col: colStrs}); ok {
		return v.(*chunk).strs, nil
	}
	g := &r.groups[gi]
	ref := g.cols[colStrs]
	what := fmt.Sprintf("group %d column %s", gi, colNames[colStrs])
	stored, err := r.readRangeInto(ctx, ref.off, int64(ref.size), what, sc.strBuf)
	if err != nil {
		return nil, err
	}
	sc.strBuf = stored
	raw, err := decodePage(stored, ref, sc.strRaw)
	if err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	sc.strRaw = raw
	part := chunk{n: g.rows, strs: &sc.strs}
	if _, err := r.decodeColumn(colStrs, raw, g, nil, &part); err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	return part.strs, nil
}
