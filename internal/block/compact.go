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
		tp, err := it.r.tracePage(ctx, it.tpIdx)
		if err != nil {
			return err
		}
		it.tp = tp
	}
	return nil
}

func (it *traceIter) id() span.TraceID { return it.tp.ids[it.ord-it.r.tpages[it.tpIdx].firstOrd] }

// appendCurrent materializes the current trace's spans into dst.
func (it *traceIter) appendCurrent(ctx context.Context, dst *span.Batch) error {
	j := it.ord - it.r.tpages[it.tpIdx].firstOrd
	lo := it.tp.firstRow[j]
	hi := lo + int64(it.tp.rows[j])
	id := it.tp.ids[j]
	var oc originCopier
	for row := lo; row < hi; row++ {
		for it.gi < len(it.r.groups) && it.r.groups[it.gi].firstRow+int64(it.r.groups[it.gi].rows) <= row {
			it.gi++
			it.ch = nil
		}
		if it.gi == len(it.r.groups) {
			return &CorruptionError{Object: it.r.dir, Offset: 0, Err: fmt.Errorf("trace %s rows beyond the last group", id)}
		}
		if it.ch == nil {
			ch, err := it.r.chunkCache(ctx, it.gi, allCols, nil)
			if err != nil {
				return err
			}
			it.ch = ch
		}
		g := &it.r.groups[it.gi]
		if row < g.firstRow {
			return &CorruptionError{Object: it.r.dir, Offset: 0, Err: fmt.Errorf("trace %s row %d not in any group", id, row)}
		}
		if err := it.ch.appendSpan(&it.r.tab, int(row-g.firstRow), id, &oc, dst); err != nil {
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

// Compact merges inputs into one new block under dir, streaming their traces
// in trace ID order so memory stays bounded by a row group per input and one
// output row group. Spans that are exact duplicates (same trace ID, span ID,
// start, end and name), within or across inputs, are written once. meta's CreatedAt and WALSegmentEnd
// become the maximum over meta and the inputs; Sources lists the input ids.
func Compact(ctx context.Context, bkt objstore.Bucket, dir string, meta Meta, inputs []*Reader) (Meta, error) {
	w := newBlockWriter(ctx, bkt, dir)
	its := make([]*traceIter, 0, len(inputs))
	meta.Sources = meta.Sources[:0]
	for _, in := range inputs {
		m := in.Meta()
		meta.CreatedAt = max(meta.CreatedAt, m.CreatedAt)
		meta.WALSegmentEnd = max(meta.WALSegmentEnd, m.WALSegmentEnd)
		meta.Sources = append(meta.Sources, m.ID)
		it := &traceIter{r: in}
		if err := it.load(ctx); err != nil {
			return meta, w.abort(fmt.Errorf("compact into %s: %w", dir, err))
		}
		its = append(its, it)
	}
	tmp := NewBuilder()
	var batch span.Batch
	dedup := map[spanKey]struct{}{}
	fail := func(err error) (Meta, error) {
		return meta, w.abort(fmt.Errorf("compact into %s: %w", dir, err))
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		var cur *span.TraceID
		var best span.TraceID
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
		batch.Reset()
		sources := 0
		for _, it := range its {
			if !it.valid() || it.id() != best {
				continue
			}
			sources++
			if err := it.appendCurrent(ctx, &batch); err != nil {
				return fail(err)
			}
			it.ord++
			if err := it.load(ctx); err != nil {
				return fail(err)
			}
		}
		if sources > 0 {
			clear(dedup)
			out := batch.Spans[:0]
			for _, s := range batch.Spans {
				k := spanKey{s.SpanID, s.StartUnixNano, s.EndUnixNano, s.Name}
				if _, ok := dedup[k]; ok {
					continue
				}
				dedup[k] = struct{}{}
				out = append(out, s)
			}
			clear(batch.Spans[len(out):])
			batch.Spans = out
		}
		if tmp.Len() > 0 && tmp.Len()+len(batch.Spans) > groupRows {
			if err := w.addBuilder(tmp); err != nil {
				return fail(err)
			}
			tmp.reset()
		}
		tmp.Append(&batch)
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
