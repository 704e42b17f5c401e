package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/span"
)

// blockWriter streams row groups and trace index pages into the data object
// and accumulates the block-level tables written to the index object.
type blockWriter struct {
	ctx  context.Context
	bkt  objstore.Bucket
	dir  string
	pw   *io.PipeWriter
	done chan error
	off  int64

	tab       tables
	miscMap   map[miscEntry]uint32
	resMap    map[string]uint32
	scMap     map[string]uint32
	originMap map[origin]uint32
	svc       *strDict
	pairs     map[uint64]struct{}

	groups []groupInfo
	tpages []tracePageInfo
	vpages []valuePageInfo
	bloom  bloom // filled as traces are added

	// pruning index: (id<<32 | group) pairs, per-group stamps (group+1)
	namePairs   []uint64
	originPairs []uint64
	valGroups   [][]uint32 // per group: sorted distinct value hashes
	gVals       []uint32   // value hashes of the group being built
	nameSeen    []uint32
	originSeen  []uint32
	valSeen     []uint64 // per page string id: bit k set when key k < 64 was noted
	namePost    postings
	originPost  postings
	hbuf        []byte

	spans, traces int64
	minT, maxT    uint64

	// trace page being built
	tp         []byte
	tpN        int
	tpFirstID  span.TraceID
	tpFirstRow int64
	tpPrevMin  uint64

	// group being built: rows of the current source builder
	src      *Builder
	gRows    []int32
	gRuns    []int32
	gFirstTr int64

	// remaps from the current source builder's ids
	nameRemap   []uint32
	keyRemap    []uint32
	miscRemap   []uint32
	originRemap []uint32
	strGen      []uint32
	strMap      []uint32
	gen         uint32
	page        *strDict

	cols    [numCols][]byte
	u64s    []uint64
	attrCol attrColWriter
	pageBuf []byte
	scratch []byte
}

// newBlockWriter starts a block; traces bounds the number of traces it will
// hold (it sizes the bloom filter).
func newBlockWriter(ctx context.Context, bkt objstore.Bucket, dir string, traces int) *blockWriter {
	w := &blockWriter{
		ctx: ctx, bkt: bkt, dir: dir,
		bloom:     newBloom(traces),
		miscMap:   make(map[miscEntry]uint32),
		resMap:    make(map[string]uint32),
		scMap:     make(map[string]uint32),
		originMap: make(map[origin]uint32),
		svc:       newStrDict(),
		pairs:     make(map[uint64]struct{}),
		page:      newStrDict(),
		minT:      math.MaxUint64,
	}
	w.tab.names = newStrDict()
	w.tab.keys = newStrDict()
	pr, pw := io.Pipe()
	w.pw = pw
	w.done = make(chan error, 1)
	go func() {
		err := bkt.Upload(ctx, path.Join(dir, DataName), pr)
		pr.CloseWithError(err) // unblock the writer if Upload returned early
		w.done <- err
	}()
	hdr := append(dataMagic[:], FormatVersion, 0, 0, 0)
	w.write(hdr)
	return w
}

func (w *blockWriter) write(p []byte) error {
	n, err := w.pw.Write(p)
	w.off += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", DataName, err)
	}
	return nil
}

// abort stops the data upload and waits for it.
func (w *blockWriter) abort(err error) error {
	w.pw.CloseWithError(err)
	<-w.done
	return err
}

// addBuilder appends all traces of b, which must all sort after every trace
// added before.
func (w *blockWriter) addBuilder(b *Builder) error {
	w.src = b
	w.remap(b)
	order := make([]int32, b.ntraces())
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int {
		a, c := b.traces.ptr(int(x)), b.traces.ptr(int(y))
		return bytes.Compare(a.id[:], c.id[:])
	})
	var rows []int32
	for _, t := range order {
		rows = b.traceRows(t, rows[:0])
		if err := w.addTrace(b.traceID(int(t)), rows); err != nil {
			return err
		}
	}
	return w.flushGroup()
}

func (w *blockWriter) addTrace(id span.TraceID, rows []int32) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	b := w.src
	minS, maxE := uint64(math.MaxUint64), uint64(0)
	for _, r := range rows {
		c, i := b.seg(r)
		s := c.start[i]
		minS = min(minS, s)
		maxE = max(maxE, c.endAt(i))
		w.minT = min(w.minT, s)
		w.maxT = max(w.maxT, s)
	}
	// trace index entry
	if w.tpN == 0 {
		w.tpFirstID = id
		w.tpFirstRow = w.spans
		w.tpPrevMin = 0
	}
	w.tp = append(w.tp, id[:]...)
	w.tp = encoding.AppendUvarint(w.tp, uint64(len(rows)))
	w.tp = encoding.AppendVarint(w.tp, int64(minS-w.tpPrevMin))
	w.tp = encoding.AppendVarint(w.tp, int64(maxE-minS))
	w.tpPrevMin = minS
	w.tpN++
	w.bloom.add(traceHash(id))
	ord := w.traces
	w.traces++
	w.spans += int64(len(rows))
	if w.tpN == tracesPerPage {
		if err := w.flushTracePage(); err != nil {
			return err
		}
	}
	// rows into groups
	if len(w.gRows) > 0 && len(w.gRows)+len(rows) > groupRows {
		if err := w.flushGroup(); err != nil {
			return err
		}
	}
	for len(rows) > 0 {
		if len(w.gRows) == 0 {
			w.gFirstTr = ord
		}
		k := min(len(rows), groupRows-len(w.gRows))
		w.gRows = append(w.gRows, rows[:k]...)
		w.gRuns = append(w.gRuns, int32(k))
		rows = rows[k:]
		if len(w.gRows) == groupRows {
			if err := w.flushGroup(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *blockWriter) flushTracePage() error {
	if w.tpN == 0 {
		return nil
	}
	ref, err := w.writePage(w.tp)
	if err != nil {
		return err
	}
	w.tpages = append(w.tpages, tracePageInfo{firstID: w.tpFirstID, firstOrd: w.traces - int64(w.tpN), firstRow: w.tpFirstRow, n: w.tpN, ref: ref})
	w.tp = w.tp[:0]
	w.tpN = 0
	return nil
}

func (w *blockWriter) writeRawPage(raw []byte) (pageRef, error) {
	w.pageBuf = appendRawPage(w.pageBuf[:0], raw)
	ref := pageRef{off: w.off, size: uint32(len(w.pageBuf)), raw: uint32(len(raw)), crc: encoding.CRC32C(w.pageBuf)}
	return ref, w.write(w.pageBuf)
}

func (w *blockWriter) writePage(raw []byte) (pageRef, error) {
	w.pageBuf = appendPage(w.pageBuf[:0], raw)
	ref := pageRef{off: w.off, size: uint32(len(w.pageBuf)), raw: uint32(len(raw)), crc: encoding.CRC32C(w.pageBuf)}
	return ref, w.write(w.pageBuf)
}

// remap interns the tables of b into the block tables.
func (w *blockWriter) remap(b *Builder) {
	w.nameRemap = w.nameRemap[:0]
	for id := 0; id < b.tab.names.count(); id++ {
		w.nameRemap = append(w.nameRemap, w.tab.names.internBytes(b.tab.names.bytes(uint32(id))))
	}
	w.keyRemap = w.keyRemap[:0]
	for id := 0; id < b.tab.keys.count(); id++ {
		k := w.tab.keys.internBytes(b.tab.keys.bytes(uint32(id)))
		w.keyRemap = append(w.keyRemap, k)
		for int(k) >= len(w.tab.keyScopes) {
			w.tab.keyScopes = append(w.tab.keyScopes, 0)
			w.tab.keyTypes = append(w.tab.keyTypes, 0)
		}
		if id < len(b.tab.keyScopes) {
			w.tab.keyScopes[k] |= b.tab.keyScopes[id]
			w.tab.keyTypes[k] |= b.tab.keyTypes[id]
		}
	}
	w.miscRemap = w.miscRemap[:0]
	for _, m := range b.tab.misc {
		m.state, m.msg = 0, 0
		id, ok := w.miscMap[m]
		if !ok {
			id = uint32(len(w.tab.misc))
			w.tab.misc = append(w.tab.misc, m)
			w.miscMap[m] = id
		}
		w.miscRemap = append(w.miscRemap, id)
	}
	resRemap := make([]uint32, len(b.tab.resources))
	for i := range b.tab.resources {
		w.scratch = appendResource(w.scratch[:0], &b.tab.resources[i])
		id, ok := w.resMap[string(w.scratch)]
		if !ok {
			id = uint32(len(w.tab.resources))
			w.resMap[string(w.scratch)] = id
			w.tab.resources = append(w.tab.resources, b.tab.resources[i])
			w.tab.services = append(w.tab.services, b.tab.services[i])
		}
		resRemap[i] = id
	}
	scRemap := make([]uint32, len(b.tab.scopes))
	for i := range b.tab.scopes {
		w.scratch = appendScope(w.scratch[:0], &b.tab.scopes[i])
		id, ok := w.scMap[string(w.scratch)]
		if !ok {
			id = uint32(len(w.tab.scopes))
			w.scMap[string(w.scratch)] = id
			w.tab.scopes = append(w.tab.scopes, b.tab.scopes[i])
		}
		scRemap[i] = id
	}
	w.originRemap = w.originRemap[:0]
	for _, o := range b.tab.origins {
		no := origin{resRemap[o.res], scRemap[o.scope]}
		id, ok := w.originMap[no]
		if !ok {
			id = uint32(len(w.tab.origins))
			w.tab.origins = append(w.tab.origins, no)
			w.originMap[no] = id
		}
		w.originRemap = append(w.originRemap, id)
	}
	// service/name pairs, in block ids
	for p := range b.pairs {
		svc := w.svc.internBytes(b.svc.bytes(uint32(p >> 32)))
		w.pairs[uint64(svc)<<32|uint64(w.nameRemap[uint32(p)])] = struct{}{}
	}
	n := b.strs.count()
	if cap(w.strGen) < n {
		w.strGen = make([]uint32, n)
		w.strMap = make([]uint32, n)
		w.gen = 0
	}
	w.strGen = w.strGen[:n]
	w.strMap = w.strMap[:n]
}

// pageStr maps a source string id to the current page dictionary.
func (w *blockWriter) pageStr(id uint32) uint32 {
	if w.strGen[id] == w.gen {
		return w.strMap[id]
	}
	p := w.page.internBytes(w.src.strs.bytes(id))
	w.strGen[id] = w.gen
	w.strMap[id] = p
	return p
}

func (w *blockWriter) newPageDict() {
	w.page.reset()
	w.valSeen = w.valSeen[:0]
	w.gen++
	if w.gen == 0 { // wrapped: clear stamps
		clear(w.strGen)
		w.gen = 1
	}
}

// flushGroup encodes and writes the current row group: its summary, then
// each column in turn (the order matters: the page dictionary numbers
// strings in first-use order), then the pages.
func (w *blockWriter) flushGroup() error {
	if len(w.gRows) == 0 {
		return nil
	}
	g := w.groupSummary()
	w.newPageDict()
	for i := range w.cols {
		w.cols[i] = w.cols[i][:0]
	}
	w.encodeRuns()
	w.encodeIDsAndTimes(g.minStart)
	w.encodeRefsAndText()
	w.encodeAttrs()
	evRows, lnRows := w.sparseRows()
	w.cols[colEvents] = w.appendEvents(w.cols[colEvents], evRows)
	w.cols[colLinks] = w.appendLinks(w.cols[colLinks], lnRows)
	w.encodePageStrs()
	g.nstrs = uint32(w.page.count())
	return w.writeGroup(&g)
}

// groupSummary returns the current group's row range and its start time
// and duration bounds.
func (w *blockWriter) groupSummary() groupInfo {
	b, rows := w.src, w.gRows
	g := groupInfo{firstRow: w.spans - int64(len(rows)), rows: len(rows), firstTrace: w.gFirstTr,
		minStart: math.MaxUint64, minDur: math.MaxUint64}
	// firstRow: rows of traces added but not yet flushed are all in this group.
	if len(w.groups) > 0 {
		last := w.groups[len(w.groups)-1]
		g.firstRow = last.firstRow + int64(last.rows)
	} else {
		g.firstRow = 0
	}
	for _, r := range rows {
		c, i := b.seg(r)
		s := c.start[i]
		g.minStart = min(g.minStart, s)
		g.maxStart = max(g.maxStart, s)
		d := dur(s, c.endAt(i))
		g.minDur = min(g.minDur, d)
		g.maxDur = max(g.maxDur, d)
	}
	return g
}

// encodeRuns encodes the trace-run column: the number of rows of each
// trace of the group.
func (w *blockWriter) encodeRuns() {
	buf := encoding.AppendUvarint(w.cols[colRuns], uint64(len(w.gRuns)))
	for _, n := range w.gRuns {
		buf = encoding.AppendUvarint(buf, uint64(n))
	}
	w.cols[colRuns] = buf
}

// encodeIDsAndTimes encodes the span ID, parent and time columns; parents
// found among the trace's previous spans become back-references, and start
// times are deltas within the trace from minStart.
func (w *blockWriter) encodeIDsAndTimes(minStart uint64) {
	b, rows := w.src, w.gRows
	ids, par, tim := w.cols[colSpanID], w.cols[colParent], w.cols[colTimes]
	i := 0
	for _, n := range w.gRuns {
		run := rows[i : i+int(n)]
		for j, r := range run {
			c, ri := b.seg(r)
			ids = append(ids, c.spanID[ri][:]...)
			p := c.parent[ri]
			switch {
			case p.IsZero():
				par = append(par, 0)
			default:
				code := uint64(1)
				for k := j - 1; k >= 0 && k >= j-parentLookback; k-- {
					if kc, ki := b.seg(run[k]); kc.spanID[ki] == p {
						code = uint64(2 + (j - 1 - k))
						break
					}
				}
				par = encoding.AppendUvarint(par, code)
				if code == 1 {
					par = append(par, p[:]...)
				}
			}
			if j == 0 {
				w.u64s = append(w.u64s, c.start[ri]-minStart)
			} else {
				pc, pi := b.seg(run[j-1])
				w.u64s = append(w.u64s, c.start[ri]-pc.start[pi])
			}
		}
		i += int(n)
	}
	tim = appendPlanes64(tim, w.u64s)
	w.u64s = w.u64s[:0]
	for _, r := range rows {
		c, i := b.seg(r)
		w.u64s = append(w.u64s, encoding.Zigzag(int64(c.endAt(i)-c.start[i])))
	}
	tim = appendPlanes64(tim, w.u64s)
	w.u64s = w.u64s[:0]
	w.cols[colSpanID], w.cols[colParent], w.cols[colTimes] = ids, par, tim
}

// encodeRefsAndText encodes the name, misc and origin columns (block
// dictionary ids), notes which names and origins the group holds for the
// value index, and encodes the status text column (page string ids).
func (w *blockWriter) encodeRefsAndText() {
	b, rows := w.src, w.gRows
	nm, ms, or, tx := w.cols[colName], w.cols[colMisc], w.cols[colOrigin], w.cols[colText]
	gi := uint32(len(w.groups))
	w.nameSeen = growStamps(w.nameSeen, w.tab.names.count())
	w.originSeen = growStamps(w.originSeen, len(w.tab.origins))
	for _, r := range rows {
		c, i := b.seg(r)
		name, orig := w.nameRemap[c.name[i]], w.originRemap[c.origin[i]]
		nm = encoding.AppendUvarint(nm, uint64(name))
		ms = encoding.AppendUvarint(ms, uint64(w.miscRemap[c.misc[i]]))
		or = encoding.AppendUvarint(or, uint64(orig))
		if w.nameSeen[name] != gi+1 {
			w.nameSeen[name] = gi + 1
			w.namePairs = append(w.namePairs, uint64(name)<<32|uint64(gi))
		}
		if w.originSeen[orig] != gi+1 {
			w.originSeen[orig] = gi + 1
			w.originPairs = append(w.originPairs, uint64(orig)<<32|uint64(gi))
		}
	}
	for _, r := range rows {
		c, i := b.seg(r)
		tx = encoding.AppendUvarint(tx, uint64(w.pageStr(b.tab.misc[c.misc[i]].state)))
	}
	for _, r := range rows {
		c, i := b.seg(r)
		tx = encoding.AppendUvarint(tx, uint64(w.pageStr(b.tab.misc[c.misc[i]].msg)))
	}
	w.cols[colName], w.cols[colMisc], w.cols[colOrigin], w.cols[colText] = nm, ms, or, tx
}

// encodeAttrs encodes the attribute column: the order section and a
// section per key.
func (w *blockWriter) encodeAttrs() {
	b, rows := w.src, w.gRows
	ac := &w.attrCol
	ac.reset()
	for _, r := range rows {
		c, i := b.seg(r)
		ac.order = encoding.AppendUvarint(ac.order, uint64(c.attrs.off[i+1]-c.attrs.off[i]))
	}
	for _, r := range rows {
		c, i := b.seg(r)
		ac.order = w.appendAttrKeys(ac.order, &c.attrs, i)
	}
	for gi, r := range rows {
		c, i := b.seg(r)
		vals := c.attrs.val[c.attrs.off[i]:c.attrs.off[i+1]]
		for j, kt := range c.attrs.keys(i) {
			x := ac.entry(w.keyRemap[kt>>ktKeyShift], gi, kt&ktTypeMask)
			if span.ValueType(kt&ktTypeMask) == span.TypeInt {
				num := uint64(vals[j])
				if kt&ktBig != 0 {
					num = c.attrs.nums[vals[j]]
				}
				ac.ints[x] = append(ac.ints[x], encoding.Zigzag(int64(num)))
				continue
			}
			ac.bufs[x] = w.appendAttrValue(ac.bufs[x], &c.attrs, kt, vals[j])
		}
	}
	w.cols[colAttrs] = ac.finish(w.cols[colAttrs], &w.scratch)
}

// sparseRows returns the group rows that have events and those that have
// links.
func (w *blockWriter) sparseRows() (evRows, lnRows []int) {
	b, rows := w.src, w.gRows
	// events and links: sparse
	for gi, r := range rows {
		c, i := b.seg(r)
		if len(c.evRows) > 0 {
			if lo, hi := sparseRange(c.evRows, c.evOff, i); hi > lo {
				evRows = append(evRows, gi)
			}
		}
		if len(c.lnRows) > 0 {
			if lo, hi := sparseRange(c.lnRows, c.lnOff, i); hi > lo {
				lnRows = append(lnRows, gi)
			}
		}
	}
	return evRows, lnRows
}

// appendEvents appends the events column for evRows to ev: a row delta
// and the events of each.
func (w *blockWriter) appendEvents(ev []byte, evRows []int) []byte {
	b, rows := w.src, w.gRows
	ev = encoding.AppendUvarint(ev, uint64(len(evRows)))
	prev := 0
	for _, gi := range evRows {
		c, r := b.seg(rows[gi])
		lo, hi := sparseRange(c.evRows, c.evOff, r)
		ev = encoding.AppendUvarint(ev, uint64(gi-prev))
		prev = gi
		ev = encoding.AppendUvarint(ev, uint64(hi-lo))
		for e := lo; e < hi; e++ {
			ev = encoding.AppendVarint(ev, int64(c.evTime[e]-c.start[r]))
			ev = encoding.AppendUvarint(ev, uint64(w.pageStr(c.evName[e])))
			ev = encoding.AppendUvarint(ev, uint64(c.evDrop[e]))
			ev = encoding.AppendUvarint(ev, uint64(c.evAttrs.off[e+1]-c.evAttrs.off[e]))
			ev = w.appendAttrEntries(ev, &c.evAttrs, e)
		}
	}
	return ev
}

// appendLinks appends the links column for lnRows to ln: a row delta and
// the links of each.
func (w *blockWriter) appendLinks(ln []byte, lnRows []int) []byte {
	b, rows := w.src, w.gRows
	ln = encoding.AppendUvarint(ln, uint64(len(lnRows)))
	prev := 0
	for _, gi := range lnRows {
		c, r := b.seg(rows[gi])
		lo, hi := sparseRange(c.lnRows, c.lnOff, r)
		ln = encoding.AppendUvarint(ln, uint64(gi-prev))
		prev = gi
		ln = encoding.AppendUvarint(ln, uint64(hi-lo))
		for e := lo; e < hi; e++ {
			ln = append(ln, c.lnTrace[e][:]...)
			ln = append(ln, c.lnSpan[e][:]...)
			ln = encoding.AppendUvarint(ln, uint64(w.pageStr(c.lnState[e])))
			ln = encoding.AppendUvarint(ln, uint64(c.lnFlags[e]))
			ln = encoding.AppendUvarint(ln, uint64(c.lnDrop[e]))
			ln = encoding.AppendUvarint(ln, uint64(c.lnAttrs.off[e+1]-c.lnAttrs.off[e]))
			ln = w.appendAttrEntries(ln, &c.lnAttrs, e)
		}
	}
	return ln
}

// encodePageStrs encodes the page dictionary: count, lengths, bytes.
func (w *blockWriter) encodePageStrs() {
	st := encoding.AppendUvarint(w.cols[colStrs], uint64(w.page.count()))
	for id := 0; id < w.page.count(); id++ {
		st = encoding.AppendUvarint(st, uint64(w.page.offs[id+1]-w.page.offs[id]))
	}
	st = append(st, w.page.data...)
	w.cols[colStrs] = st
}

// writeGroup writes the group's column pages and records the group.
func (w *blockWriter) writeGroup(g *groupInfo) error {
	for col := range w.cols {
		write := w.writePage
		if col == colAttrs {
			write = w.writeRawPage // its sections are compressed
		}
		ref, err := write(w.cols[col])
		if err != nil {
			return err
		}
		g.cols[col] = ref
	}
	slices.Sort(w.gVals)
	w.valGroups = append(w.valGroups, slices.Clone(slices.Compact(w.gVals)))
	w.gVals = w.gVals[:0]
	w.groups = append(w.groups, *g)
	w.gRows = w.gRows[:0]
	w.gRuns = w.gRuns[:0]
	return nil
}

// growStamps returns s with at least n entries.
func growStamps(s []uint32, n int) []uint32 {
	if len(s) < n {
		s = append(s, make([]uint32, n-len(s))...)
	}
	return s
}

// noteValue records that the group being written holds block key key with
// the string of page id sid, for the value index.
func (w *blockWriter) noteValue(key, sid uint32) {
	for int(sid) >= len(w.valSeen) {
		w.valSeen = append(w.valSeen, 0)
	}
	if key < 64 {
		if w.valSeen[sid]&(1<<key) != 0 {
			return
		}
		w.valSeen[sid] |= 1 << key
	}
	kb := w.tab.keys.bytes(key)
	w.hbuf = encoding.AppendUvarint(w.hbuf[:0], uint64(len(kb)))
	w.hbuf = append(w.hbuf, kb...)
	w.hbuf = append(w.hbuf, w.page.bytes(sid)...)
	h := uint32(xxhash.Sum64(w.hbuf))
	w.gVals = append(w.gVals, h)
}

// finishPruning writes the value index pages and builds the name and
// origin postings.
func (w *blockWriter) finishPruning() error {
	for _, p := range []*[]uint64{&w.namePairs, &w.originPairs} {
		slices.Sort(*p)
		*p = slices.Compact(*p)
	}
	w.namePost = buildPostings(w.namePairs, w.tab.names.count())
	w.originPost = buildPostings(w.originPairs, len(w.tab.origins))
	w.namePairs, w.originPairs = nil, nil
	err := w.writeValuePages()
	w.valGroups = nil
	return err
}

func dur(start, end uint64) uint64 {
	if end < start {
		return 0
	}
	return end - start
}

// appendAttrEntries appends owner i's attributes of a: per attribute the
// block key id and type as key<<3|type, then the value.
func (w *blockWriter) appendAttrEntries(dst []byte, a *attrList, i int) []byte {
	vals := a.val[a.off[i]:a.off[i+1]]
	for j, kt := range a.keys(i) {
		dst = w.appendAttrKey(dst, kt)
		dst = w.appendAttrValue(dst, a, kt, vals[j])
	}
	return dst
}

func (w *blockWriter) appendAttrKeys(dst []byte, a *attrList, i int) []byte {
	for _, kt := range a.keys(i) {
		dst = w.appendAttrKey(dst, kt)
	}
	return dst
}

func (w *blockWriter) appendAttrKey(dst []byte, kt uint32) []byte {
	return encoding.AppendUvarint(dst, uint64(w.keyRemap[kt>>ktKeyShift])<<3|uint64(kt&ktTypeMask))
}

func (w *blockWriter) appendAttrValue(dst []byte, a *attrList, kt, v uint32) []byte {
	t := kt & ktTypeMask
	switch span.ValueType(t) {
	case span.TypeString, span.TypeBytes, span.TypeArray, span.TypeMap:
		sid := w.pageStr(v)
		dst = encoding.AppendUvarint(dst, uint64(sid))
		if t == uint32(span.TypeString) {
			w.noteValue(w.keyRemap[kt>>ktKeyShift], sid)
		}
	case span.TypeBool, span.TypeInt, span.TypeDouble:
		num := uint64(v)
		if kt&ktBig != 0 {
			num = a.nums[v]
		}
		switch span.ValueType(t) {
		case span.TypeDouble:
			dst = encoding.AppendUint64(dst, num)
		case span.TypeInt:
			dst = encoding.AppendVarint(dst, int64(num))
		default:
			dst = encoding.AppendUvarint(dst, num)
		}
	}
	return dst
}

// finish writes the trailing pages, the index and meta.json.
func (w *blockWriter) finish(meta Meta) (Meta, error) {
	if err := w.flushGroup(); err != nil {
		return meta, w.abort(err)
	}
	if err := w.flushTracePage(); err != nil {
		return meta, w.abort(err)
	}
	if err := w.finishPruning(); err != nil {
		return meta, w.abort(err)
	}
	if err := w.pw.Close(); err != nil {
		return meta, w.abort(err)
	}
	if err := <-w.done; err != nil {
		return meta, fmt.Errorf("upload %s: %w", DataName, err)
	}
	dataSize := w.off
	idx := w.encodeIndex(dataSize, w.bloom)
	if err := w.bkt.Upload(w.ctx, path.Join(w.dir, IndexName), bytes.NewReader(idx)); err != nil {
		return meta, fmt.Errorf("upload %s: %w", IndexName, err)
	}
	meta.Version = FormatVersion
	meta.Spans, meta.Traces = w.spans, w.traces
	if w.spans > 0 {
		meta.MinTime, meta.MaxTime = w.minT, w.maxT
	} else {
		meta.MinTime, meta.MaxTime = 0, 0
	}
	meta.Services = w.services()
	meta.SpanNames = w.spanNames()
	meta.AttrKeys = map[string][]string{}
	for _, sc := range []struct {
		name string
		bit  uint8
	}{{"span", keySpan}, {"resource", keyResource}, {"scope", keyScope}, {"event", keyEvent}, {"link", keyLink}} {
		keys := []string{}
		for id, m := range w.tab.keyScopes {
			if m&sc.bit != 0 {
				keys = append(keys, w.tab.keys.str(uint32(id)))
			}
		}
		meta.AttrKeys[sc.name] = sortedUnique(keys)
	}
	// Size counts meta.json too: marshal once with a guess, then settle.
	meta.Size = dataSize + int64(len(idx))
	mj, err := marshalMeta(&meta)
	if err != nil {
		return meta, fmt.Errorf("encode %s: %w", MetaName, err)
	}
	for i := 0; i < 3; i++ {
		meta.Size = dataSize + int64(len(idx)) + int64(len(mj))
		if mj, err = marshalMeta(&meta); err != nil {
			return meta, fmt.Errorf("encode %s: %w", MetaName, err)
		}
	}
	if err := w.bkt.Upload(w.ctx, path.Join(w.dir, MetaName), bytes.NewReader(mj)); err != nil {
		return meta, fmt.Errorf("upload %s: %w", MetaName, err)
	}
	return meta, nil
}

func (w *blockWriter) services() []string {
	out := []string{}
	for id := 1; id < w.svc.count(); id++ {
		out = append(out, w.svc.str(uint32(id)))
	}
	return sortedUnique(out)
}

func (w *blockWriter) spanNames() map[string][]string {
	m := map[string][]string{}
	for p := range w.pairs {
		svc := w.svc.str(uint32(p >> 32))
		m[svc] = append(m[svc], w.tab.names.str(uint32(p)))
	}
	for k, v := range m {
		m[k] = sortedUnique(v)
	}
	return m
}

// encodeIndex builds the index object.
func (w *blockWriter) encodeIndex(dataSize int64, bl bloom) []byte {
	b := encoding.AppendUvarint(nil, uint64(dataSize))
	b = encoding.AppendUvarint(b, uint64(w.spans))
	b = encoding.AppendUvarint(b, uint64(w.traces))
	b = appendDict(b, w.tab.names)
	b = appendDict(b, w.tab.keys)
	for id := 0; id < w.tab.keys.count(); id++ {
		var m, t uint8
		if id < len(w.tab.keyScopes) {
			m, t = w.tab.keyScopes[id], w.tab.keyTypes[id]
		}
		b = append(b, m, t)
	}
	b = encoding.AppendUvarint(b, uint64(len(w.tab.resources)))
	for i := range w.tab.resources {
		b = appendResource(b, &w.tab.resources[i])
	}
	b = encoding.AppendUvarint(b, uint64(len(w.tab.scopes)))
	for i := range w.tab.scopes {
		b = appendScope(b, &w.tab.scopes[i])
	}
	b = encoding.AppendUvarint(b, uint64(len(w.tab.origins)))
	for _, o := range w.tab.origins {
		b = encoding.AppendUvarint(b, uint64(o.res))
		b = encoding.AppendUvarint(b, uint64(o.scope))
	}
	b = encoding.AppendUvarint(b, uint64(len(w.tab.misc)))
	for _, m := range w.tab.misc {
		b = encoding.AppendUvarint(b, uint64(m.kind))
		b = encoding.AppendUvarint(b, uint64(m.status))
		b = encoding.AppendUvarint(b, uint64(m.flags))
		b = encoding.AppendUvarint(b, uint64(m.dAttrs))
		b = encoding.AppendUvarint(b, uint64(m.dEvents))
		b = encoding.AppendUvarint(b, uint64(m.dLinks))
	}
	b = encoding.AppendUvarint(b, uint64(len(w.groups)))
	for i := range w.groups {
		g := &w.groups[i]
		b = encoding.AppendUvarint(b, uint64(g.rows))
		b = encoding.AppendUvarint(b, uint64(g.firstTrace))
		b = encoding.AppendUvarint(b, g.minStart)
		b = encoding.AppendUvarint(b, g.maxStart-g.minStart)
		b = encoding.AppendUvarint(b, g.minDur)
		b = encoding.AppendUvarint(b, g.maxDur-g.minDur)
		b = encoding.AppendUvarint(b, uint64(g.nstrs))
		b = encoding.AppendUvarint(b, uint64(g.cols[0].off))
		for _, ref := range g.cols {
			b = appendPageRef(b, ref)
		}
	}
	b = encoding.AppendUvarint(b, uint64(len(w.tpages)))
	for i := range w.tpages {
		tp := &w.tpages[i]
		b = append(b, tp.firstID[:]...)
		b = encoding.AppendUvarint(b, uint64(tp.n))
		b = encoding.AppendUvarint(b, uint64(tp.firstRow))
		b = encoding.AppendUvarint(b, uint64(tp.ref.off))
		b = appendPageRef(b, tp.ref)
	}
	b = appendPostings(b, &w.namePost)
	b = appendPostings(b, &w.originPost)
	b = encoding.AppendUvarint(b, uint64(len(w.vpages)))
	for i := range w.vpages {
		vp := &w.vpages[i]
		b = encoding.AppendUvarint(b, uint64(vp.firstHash))
		b = encoding.AppendUvarint(b, uint64(vp.n))
		b = encoding.AppendUvarint(b, uint64(vp.ref.off))
		b = appendPageRef(b, vp.ref)
	}
	b = encoding.AppendUvarint(b, uint64(bl.k))
	b = encoding.AppendUvarint(b, uint64(len(bl.words)))
	for _, x := range bl.words {
		b = encoding.AppendUint64(b, x)
	}
	out := append(indexMagic[:], FormatVersion, 0, 0, 0)
	out = encoding.AppendUvarint(out, uint64(len(b)))
	out = appendPage(out, b)
	return encoding.AppendUint32(out, encoding.CRC32C(out))
}

func appendPageRef(b []byte, ref pageRef) []byte {
	b = encoding.AppendUvarint(b, uint64(ref.size))
	b = encoding.AppendUvarint(b, uint64(ref.raw))
	return encoding.AppendUint32(b, ref.crc)
}

func appendDict(b []byte, d *strDict) []byte {
	b = encoding.AppendUvarint(b, uint64(d.count()))
	for id := 0; id < d.count(); id++ {
		b = encoding.AppendString(b, string(d.bytes(uint32(id))))
	}
	return b
}

// Write sorts and encodes the spans of b as a block under dir in bkt and
// returns meta completed with the block's statistics. meta.json is written
// last. Write does not modify b, so queries may run on b concurrently.
func (b *Builder) Write(ctx context.Context, bkt objstore.Bucket, dir string, meta Meta) (Meta, error) {
	w := newBlockWriter(ctx, bkt, dir, b.ntraces())
	if err := w.addBuilder(b); err != nil {
		return meta, w.abort(fmt.Errorf("write block %s: %w", dir, err))
	}
	m, err := w.finish(meta)
	if err != nil {
		return m, fmt.Errorf("write block %s: %w", dir, err)
	}
	return m, nil
}

var errClosed = errors.New("reader closed")
