package block

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"path"
	"reflect"
	"testing"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// smallBlock writes a small random block into a memory bucket and returns
// its objects.
func smallBlock(tb testing.TB, seed uint64) map[string][]byte {
	ctx := context.Background()
	b := NewBuilder()
	g := newRandGen(seed)
	for i := 0; i < 3; i++ {
		b.Append(g.batch(20))
	}
	bkt := objstore.NewInMemBucket()
	if _, err := b.Write(ctx, bkt, "blk", Meta{ID: "x"}); err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, name := range []string{DataName, IndexName, MetaName} {
		rc, err := bkt.Get(ctx, path.Join("blk", name))
		if err != nil {
			tb.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		out[name] = data
	}
	return out
}

// exercise opens a block from objects and runs every query method; errors
// are expected, panics are not.
func exercise(data, index, meta []byte) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	bkt.Upload(ctx, "blk/"+DataName, bytes.NewReader(data))
	bkt.Upload(ctx, "blk/"+IndexName, bytes.NewReader(index))
	bkt.Upload(ctx, "blk/"+MetaName, bytes.NewReader(meta))
	r, err := Open(ctx, bkt, "blk", ReaderOptions{})
	if err != nil {
		return
	}
	q := &search.Query{Conds: []search.Cond{{Key: "k1", Op: search.OpExists}}}
	_ = q.Compile()
	var ids []span.TraceID
	_ = r.Search(ctx, q, func(h storage.Hit) bool { ids = append(ids, h.TraceID); return true })
	q2 := &search.Query{MinDuration: 1}
	_ = q2.Compile()
	_ = r.Search(ctx, q2, func(h storage.Hit) bool { ids = append(ids, h.TraceID); return true })
	for _, id := range ids {
		var b span.Batch
		_, _ = r.FindTrace(ctx, id, &b)
	}
	for _, tp := range r.tpages {
		var b span.Batch
		_, _ = r.FindTrace(ctx, tp.firstID, &b)
	}
	_, _ = r.AttrValues(ctx, search.ScopeAny, "k1", 100)
	var its []*Reader
	its = append(its, r)
	_, _ = Compact(ctx, objstore.NewInMemBucket(), "out", Meta{}, its)
}

// FuzzOpen feeds random index objects (and random data) to Open and the
// query methods.
func FuzzOpen(f *testing.F) {
	objs := smallBlock(f, 1)
	f.Add(objs[IndexName], objs[DataName])
	f.Add([]byte("CLWI\x01\x00\x00\x00"), []byte{})
	f.Fuzz(func(t *testing.T, index, data []byte) {
		exercise(data, index, objs[MetaName])
	})
}

// FuzzReadPage mutates the data object of a valid block (keeping the index),
// so that decoding reaches the column decoders; CRCs are recomputed so the
// mutations are not all rejected by the checksum.
func FuzzReadPage(f *testing.F) {
	objs := smallBlock(f, 2)
	f.Add(uint32(100), []byte{0xff, 0x00, 0x7f})
	f.Add(uint32(9), []byte{1})
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		data := bytes.Clone(objs[DataName])
		if len(data) == 0 {
			return
		}
		o := int(off) % len(data)
		copy(data[o:], patch)
		// Rewrite the index so page CRCs match the mutated bytes; the
		// decoders behind the checksum get the mutated content.
		r := &Reader{dir: "blk"}
		if err := r.decodeIndex(objs[IndexName]); err != nil {
			t.Fatal(err)
		}
		w := &blockWriter{tab: r.tab, groups: r.groups, tpages: r.tpages, vpages: r.vpages, namePost: r.namePost, originPost: r.originPost, spans: r.spans, traces: r.traces}
		for i := range w.vpages {
			ref := &w.vpages[i].ref
			ref.crc = encoding.CRC32C(data[ref.off : ref.off+int64(ref.size)])
		}
		for i := range w.groups {
			for c := range w.groups[i].cols {
				ref := &w.groups[i].cols[c]
				ref.crc = encoding.CRC32C(data[ref.off : ref.off+int64(ref.size)])
			}
		}
		for i := range w.tpages {
			ref := &w.tpages[i].ref
			ref.crc = encoding.CRC32C(data[ref.off : ref.off+int64(ref.size)])
		}
		idx := w.encodeIndex(int64(len(data)), r.bloom)
		exercise(data, idx, objs[MetaName])
	})
}

// FuzzRoundTrip checks that nested values survive the value codec and the
// block codecs.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), []byte("x"))
	f.Add(uint64(7), []byte{0, 1, 2, 0xff})
	f.Fuzz(func(t *testing.T, seed uint64, raw []byte) {
		// value codec on arbitrary bytes: must not panic
		d := encoding.NewDecbuf(raw)
		v := decodeValue(&d, 0)
		if d.Err() == nil {
			enc := appendValue(nil, v)
			d2 := encoding.NewDecbuf(enc)
			v2 := decodeValue(&d2, 0)
			if d2.Err() != nil || !reflect.DeepEqual(v, v2) {
				t.Fatalf("value round trip: %v vs %v (%v)", v, v2, d2.Err())
			}
		}
		// random values through Builder -> block -> FindTrace
		g := newRandGen(seed)
		g.rnd = rand.New(rand.NewPCG(seed, uint64(len(raw))))
		batch := g.batch(5)
		if len(raw) > 0 {
			batch.Spans[0].Attrs = append(batch.Spans[0].Attrs, span.Attr{Key: string(raw), Value: span.BytesValue(raw)})
		}
		b := NewBuilder()
		b.Append(batch)
		ctx := context.Background()
		bkt := objstore.NewInMemBucket()
		if _, err := b.Write(ctx, bkt, "blk", Meta{}); err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, bkt, "blk", ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range batch.Spans {
			var got, want span.Batch
			if _, err := r.FindTrace(ctx, s.TraceID, &got); err != nil {
				t.Fatal(err)
			}
			if _, err := b.FindTrace(ctx, s.TraceID, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Spans, want.Spans) {
				t.Fatalf("trace %s differs between builder and block", s.TraceID)
			}
		}
	})
}
