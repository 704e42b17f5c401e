package block

import (
	"bytes"
	"context"
	"fmt"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/span"
)

// traceIter walks the traces of one Reader in trace ID order.
type traceIter struct {
	r     *Reader
	ord   int64
	tp    *tracePage
	tpIdx int
	gi    int
	ch    *chunk
	bufs  decodeBufs
	tpBuf tracePage
	tpSc  traceScratch
}

func (it *traceIter) valid() bool { return it.ord < it.r.traces }

// load makes it.tp hold the current trace's page.
func (it *traceIter) load(ctx context.Context) error {
	if !it.valid() {
		return nil
	}
	for it.tp == nil || it.ord >= it.r.tpages[it.tpIdx].firstOrd+int64(len(it.tp.ids)) {
		if it.tp != nil {
			it.tpIdx++
		}
		tp, err := it.r.tracePageInto(ctx, it.tpIdx, &it.tpBuf, &it.tpSc)
		if err != nil {
			return err
		}
		it.tp = tp
	}
	return nil
}

func (it *traceIter) id() span.TraceID { return it.tp.ids[it.ord-it.r.tpages[it.tpIdx].firstOrd] }

// copyCurrent copies the current trace's rows into dst, which must hold
// trace t, without materializing spans: ids are remapped through cs.
func (it *traceIter) copyCurrent(ctx context.Context, dst *Builder, t int32, cs *compactSrc, dd *dedup) error {
	j := it.ord - it.r.tpages[it.tpIdx].firstOrd
	lo := it.tp.firstRow[j]
	hi := lo + int64(it.tp.rows[j])
	id := it.tp.ids[j]
	for row := lo; row < hi; row++ {
		for it.gi < len(it.r.groups) && it.r.groups[it.gi].firstRow+int64(it.r.groups[it.gi].rows) <= row {
			it.gi++
			it.ch = nil
		}
		if it.gi == len(it.r.groups) {
			return &CorruptionError{Object: it.r.dir, Offset: 0, Err: fmt.Errorf("trace %s rows beyond the last group", id)}
		}
		if it.ch == nil {
			ch, err := it.r.chunkInto(ctx, it.gi, allCols, nil, &it.bufs)
			if err != nil {
				return err
			}
			it.ch = ch
		}
		g := &it.r.groups[it.gi]
		if row < g.firstRow {
			return &CorruptionError{Object: it.r.dir, Offset: 0, Err: fmt.Errorf("trace %s row %d not in any group", id, row)}
		}
		if err := dst.copyRow(cs, it.ch, &it.r.tab, int(row-g.firstRow), t, dd); err != nil {
			return fmt.Errorf("read trace %s of block %s: %w", id, it.r.dir, err)
		}
	}
	return nil
}

type spanKey struct {
	id         span.SpanID
	start, end uint64
	name       string
}

// dedupKey identifies a span of the trace being compacted; name is the
// Builder's name id.
type dedupKey struct {
	id         span.SpanID
	start, end uint64
	name       uint32
}

// dedup remembers the spans of one trace: a list while short, a map beyond.
type dedup struct {
	list []dedupKey
	m    map[dedupKey]struct{}
}

func (d *dedup) reset() {
	d.list = d.list[:0]
	if len(d.m) > 0 {
		clear(d.m)
	}
}

// add records k and reports whether it was new.
func (d *dedup) add(k dedupKey) bool {
	if len(d.list) < 64 {
		for i := range d.list {
			if d.list[i] == k {
				return false
			}
		}
		d.list = append(d.list, k)
		return true
	}
	if d.m == nil {
		d.m = make(map[dedupKey]struct{})
	}
	if len(d.m) == 0 {
		for _, x := range d.list {
			d.m[x] = struct{}{}
		}
	}
	if _, ok := d.m[k]; ok {
		return false
	}
	d.m[k] = struct{}{}
	return true
}

// Compact merges inputs into one new block under dir, streaming their traces
// in trace ID order so memory stays bounded by a row group per input and one
// output row group. Spans that are exact duplicates (same trace ID, span ID,
// start, end and name), within or across inputs, are written once. meta's CreatedAt and WALSegmentEnd
// become the maximum over meta and the inputs; Sources lists the input ids.
func Compact(ctx context.Context, bkt objstore.Bucket, dir string, meta Meta, inputs []*Reader) (Meta, error) {
	traces := int64(0)
	for _, in := range inputs {
		traces += in.traces
	}
	w := newBlockWriter(ctx, bkt, dir, int(traces))
	its := make([]*traceIter, 0, len(inputs))
	var scratch decodeScratch // inputs decode one at a time
	meta.Sources = meta.Sources[:0]
	for _, in := range inputs {
		m := in.Meta()
		meta.CreatedAt = max(meta.CreatedAt, m.CreatedAt)
		meta.WALSegmentEnd = max(meta.WALSegmentEnd, m.WALSegmentEnd)
		meta.Sources = append(meta.Sources, m.ID)
		it := &traceIter{r: in}
		it.bufs.shared = &scratch
		if err := it.load(ctx); err != nil {
			return meta, w.abort(fmt.Errorf("compact into %s: %w", dir, err))
		}
		its = append(its, it)
	}
	tmp := NewBuilder()
	tmp.reuse = true
	srcs := make([]compactSrc, len(its))
	var dd dedup
	fail := func(err error) (Meta, error) {
		return meta, w.abort(fmt.Errorf("compact into %s: %w", dir, err))
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		var cur *span.TraceID
		var best span.TraceID
		rows := 0
		for _, it := range its {
			if !it.valid() {
				continue
			}
			id := it.id()
			if cur == nil || bytes.Compare(id[:], best[:]) < 0 {
				best = id
				cur = &best
			}
		}
		if cur == nil {
			break
		}
		for _, it := range its {
			if it.valid() && it.id() == best {
				rows += int(it.tp.rows[it.ord-it.r.tpages[it.tpIdx].firstOrd])
			}
		}
		if tmp.Len() > 0 && tmp.Len()+rows > groupRows {
			if err := w.addBuilder(tmp); err != nil {
				return fail(err)
			}
			tmp.reset()
		}
		t := tmp.addTrace(best)
		dd.reset()
		for i, it := range its {
			if !it.valid() || it.id() != best {
				continue
			}
			if err := it.copyCurrent(ctx, tmp, t, &srcs[i], &dd); err != nil {
				return fail(err)
			}
			it.ord++
			if err := it.load(ctx); err != nil {
				return fail(err)
			}
		}
	}
	if tmp.Len() > 0 {
		if err := w.addBuilder(tmp); err != nil {
			return fail(err)
		}
	}
	m, err := w.finish(meta)
	if err != nil {
		return m, fmt.Errorf("compact into %s: %w", dir, err)
	}
	return m, nil
}
